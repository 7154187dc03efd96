"""`stackdecide bench`: benchmark a running OpenAI-compatible server."""

from __future__ import annotations

import click

from stackdecide.bench.capacity_plan import capacity_plan_from_options, lengths_from_options
from stackdecide.bench.progress import TqdmProgress
from stackdecide.bench.prompts import PROMPT_MODES
from stackdecide.bench.runner import SCENARIOS, BenchConfig, BenchError, BenchResult, runner_for
from stackdecide.bench.stats import parse_slo
from stackdecide.bench.stream import Timeouts
from stackdecide.cli._app import FORMATS, handle_errors, main
from stackdecide.evidence.records import HardwareInfo
from stackdecide.evidence.store import EvidenceStore
from stackdecide.loop import result_records
from stackdecide.model.metrics import GOODPUT_LATENCIES, LATENCIES, PERCENTILE_KEYS
from stackdecide.report.bench import render


def _concurrency(ctx: click.Context, param: click.Parameter, value: str | None
                 ) -> tuple[int, ...] | None:
    if value is None:
        return None
    try:
        levels = tuple(int(part) for part in value.replace(" ", "").split(",") if part)
    except ValueError:
        raise click.BadParameter(f"'{value}' is not a comma-separated list of integers "
                                 "such as 1,4,16") from None
    if not levels:
        raise click.BadParameter("give at least one concurrency level")
    return levels


@main.command()
@click.option("--url", required=True, help="Server base URL, e.g. http://127.0.0.1:8000.")
@click.option("--model", help="Model name to request (default: the first in /v1/models).")
@click.option("--scenario", type=click.Choice(SCENARIOS), default="decode", show_default=True,
              help="decode: one stream 128 in/256 out; prefill: one stream, 4096-token prompt, "
                   "1 output token; throughput: each --concurrency level, 512 in/256 out; "
                   "capacity: the highest load meeting --slo, 512 in/256 out, --num-prompts "
                   "(default 100) per probe.")
@click.option("--concurrency", callback=_concurrency,
              help="Comma-separated concurrency levels, e.g. 1,4,16.")
@click.option("--input-len", type=int, help="Prompt length in tokens.")
@click.option("--output-len", type=int, help="Output length in tokens (ignore_eos).")
@click.option("--num-prompts", type=int, help="Measured requests per concurrency level.")
@click.option("--seed", type=int, default=0, show_default=True, help="Seed of the random prompts.")
@click.option("--warmup", type=int, default=1, show_default=True,
              help="Warm-up requests before measuring (not counted).")
@click.option("--goodput", multiple=True, metavar="KEY:MS",
              help="Service-level objectives for goodput, e.g. --goodput ttft:500 "
                   f"--goodput tpot:50 (keys {', '.join(GOODPUT_LATENCIES)}).")
@click.option("--slo", "slo_text", metavar="KEY:MS,...",
              help="capacity: limits such as ttft_ms_p99:1000,tpot_ms_p99:50 "
                   f"({'/'.join(LATENCIES)} at {'/'.join(PERCENTILE_KEYS)}), and "
                   "min_goodput:0.95.")
@click.option("--search", type=click.Choice(["concurrency", "request_rate"]),
              default="concurrency", show_default=True,
              help="capacity: vary the concurrency (closed loop) or the request rate (Poisson "
                   "arrivals).")
@click.option("--start", type=float, default=1.0, show_default=True,
              help="capacity: the first load probed.")
@click.option("--growth", type=float, default=2.0, show_default=True,
              help="capacity: factor between loads while bracketing.")
@click.option("--precision", type=float, default=0.1, show_default=True,
              help="capacity: stop when first fail / last pass <= 1 + PRECISION.")
@click.option("--min-load", type=float, help="capacity: lowest load (default: 1, or 0.1 req/s).")
@click.option("--max-load", type=float, default=1024.0, show_default=True,
              help="capacity: highest load probed.")
@click.option("--max-probes", type=int, default=16, show_default=True,
              help="capacity: most probes.")
@click.option("--method", type=click.Choice(["interpolate", "bisect"]), default="interpolate",
              show_default=True, help="capacity: how the bracket is narrowed.")
@click.option("--allow-preemptions", is_flag=True,
              help="capacity: a probe during which the server preempted requests may pass.")
@click.option("--input-range", type=float, default=0.0, show_default=True,
              help="Prompt lengths uniform in input-len x (1 -+ RANGE), as vLLM's "
                   "--random-range-ratio.")
@click.option("--output-range", type=float, default=0.0, show_default=True,
              help="Output lengths uniform in output-len x (1 -+ RANGE).")
@click.option("--lengths-file", type=click.Path(dir_okay=False),
              help="input_len,output_len pairs (CSV or JSON lines) to draw request lengths from.")
@click.option("--prompt-mode", type=click.Choice(PROMPT_MODES), default="token-ids",
              show_default=True,
              help="token-ids: random ids (engine only); text: random text the server "
                   "tokenizes, as vllm bench serve sends.")
@click.option("--tokenizer", help="text prompts: the tokenizer folder (default: the served "
                                  "model's root).")
@click.option("--store", "store_path", type=click.Path(dir_okay=False),
              help="Also store the metrics (capacity: every probe and the capacity) as evidence "
                   "in this store, for --candidate.")
@click.option("--candidate", help="The decision's candidate this server runs (with --store).")
@click.option("--gpu", "gpu_name", help="GPU name the records carry (with --store), e.g. "
                                        "'NVIDIA H200'.")
@click.option("--gpus", type=click.IntRange(1), default=1, show_default=True,
              help="GPUs the server uses (for the record and the cost).")
@click.option("--price-per-gpu-hour", type=click.FloatRange(min=0, min_open=True),
              help="capacity: also store cost_per_mtok_out at SLO capacity.")
@click.option("--request-timeout", type=float, default=3600.0, show_default=True,
              help="Seconds one request may take.")
@click.option("--stall-timeout", type=float, default=120.0, show_default=True,
              help="Seconds a stream may stay silent before the run stops.")
@click.option("--token-id-limit", type=int, default=4096, show_default=True,
              help="Prompt token ids are drawn from [0, LIMIT).")
@click.option("--metrics-interval", type=float, default=5.0, show_default=True,
              help="Seconds between /metrics scrapes during a run, for KV-cache and queue "
                   "peaks (0: before and after only).")
@click.option("--no-server-metrics", is_flag=True, help="Do not read the server's /metrics.")
@click.option("--json", "json_out", type=click.Path(dir_okay=False),
              help="Write the full result (per-request records included) to this file, also "
                   "when the run stops early.")
@click.option("--format", "fmt", type=click.Choice(FORMATS), default="table", show_default=True,
              help="Output format (csv: metric rows).")
@click.option("--no-progress", is_flag=True, help="No progress bar.")
@handle_errors
def bench(url: str, model: str | None, scenario: str, concurrency: tuple[int, ...] | None,
          input_len: int | None, output_len: int | None, num_prompts: int | None, seed: int,
          warmup: int, goodput: tuple[str, ...], request_timeout: float, stall_timeout: float,
          token_id_limit: int, metrics_interval: float, no_server_metrics: bool,
          json_out: str | None, fmt: str, no_progress: bool, slo_text: str | None, search: str,
          start: float, growth: float, precision: float, min_load: float | None,
          max_load: float, max_probes: int, method: str, allow_preemptions: bool,
          input_range: float, output_range: float, lengths_file: str | None, prompt_mode: str,
          tokenizer: str | None, store_path: str | None, candidate: str | None,
          gpu_name: str | None, gpus: int, price_per_gpu_hour: float | None) -> None:
    """Benchmark the OpenAI-compatible server at --url with streaming /v1/completions.

    Metrics are those of `vllm bench serve` (TTFT, TPOT, ITL, E2E latency, throughput, goodput);
    the server's /metrics counters are read before and after each level and compared with the
    client's token counts. Exit status: 0 measured, 1 the run failed or some requests failed
    (results so far are still printed and written), 2 bad options.
    """
    try:
        slo = parse_slo(goodput)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="--goodput") from None
    if store_path and not candidate:
        raise click.BadParameter("--store needs --candidate", param_hint="--candidate")
    capacity = None
    try:
        if scenario == "capacity":
            capacity = capacity_plan_from_options(
                slo_text, search=search, start=start, growth=growth, precision=precision,
                min_load=min_load, max_load=max_load, max_probes=max_probes, method=method,
                allow_preemptions=allow_preemptions)
        lengths = lengths_from_options(input_len, output_len, scenario, input_range,
                                       output_range, lengths_file)
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint="capacity and length options") from None
    config = BenchConfig(
        url=url, scenario=scenario, model=model, concurrency=concurrency, input_len=input_len,
        output_len=output_len, num_prompts=num_prompts, seed=seed, warmup=warmup, slo=slo,
        timeouts=Timeouts(request_s=request_timeout, stall_s=stall_timeout),
        token_id_limit=token_id_limit, metrics_interval_s=metrics_interval,
        server_metrics=not no_server_metrics, prompt_mode=prompt_mode,  # type: ignore[arg-type]
        tokenizer=tokenizer, lengths=lengths, capacity=capacity)
    runner = runner_for(config, TqdmProgress(enabled=not no_progress))
    try:
        result = runner.run()
    except (BenchError, KeyboardInterrupt):
        _keep_partial(runner.result, json_out, fmt)
        if store_path and candidate:
            _store(runner.result, store_path, candidate, gpu_name, gpus, price_per_gpu_hour)
        raise
    if json_out:
        result.write_json(json_out)
    if store_path and candidate:
        _store(result, store_path, candidate, gpu_name, gpus, price_per_gpu_hour)
    click.echo(render(result, fmt), nl=False)
    failed = result.failed_requests
    if failed:
        total = sum(len(level.records) for level in result.levels)
        raise BenchError(f"{len(failed)} of {total} requests failed; first: request "
                         f"{failed[0].index}: {failed[0].error}")


def _store(result: BenchResult, store_path: str, candidate: str, gpu_name: str | None,
           gpus: int, price: float | None) -> None:
    hardware = HardwareInfo(gpu=gpu_name, count=gpus) if gpu_name else None
    records = result_records(result, candidate, hardware=hardware, price_per_gpu_hour=price,
                             gpus=gpus)
    with EvidenceStore(store_path) as store:
        ids = store.add(records)
    click.echo(f"stored {len(ids)} records for {candidate} in {store_path}", err=True)


def _keep_partial(partial: BenchResult, json_out: str | None, fmt: str) -> None:
    if any(level.records for level in partial.levels):
        click.echo(render(partial, fmt), nl=False)
    if json_out:
        partial.write_json(json_out)
        click.echo(f"partial results written to {json_out}", err=True)
