"""`stackdecide bench`: benchmark a running OpenAI-compatible server."""

from __future__ import annotations

import click

from stackdecide.bench.progress import TqdmProgress
from stackdecide.bench.runner import SCENARIOS, BenchConfig, BenchError, BenchResult, BenchRunner
from stackdecide.bench.stats import parse_slo
from stackdecide.bench.stream import Timeouts
from stackdecide.cli._app import FORMATS, handle_errors, main
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
                   "1 output token; throughput: each --concurrency level, 512 in/256 out.")
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
                   "--goodput tpot:50 (keys ttft, tpot, e2el).")
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
          json_out: str | None, fmt: str, no_progress: bool) -> None:
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
    config = BenchConfig(
        url=url, scenario=scenario, model=model, concurrency=concurrency, input_len=input_len,
        output_len=output_len, num_prompts=num_prompts, seed=seed, warmup=warmup, slo=slo,
        timeouts=Timeouts(request_s=request_timeout, stall_s=stall_timeout),
        token_id_limit=token_id_limit, metrics_interval_s=metrics_interval,
        server_metrics=not no_server_metrics)
    runner = BenchRunner(config, TqdmProgress(enabled=not no_progress))
    try:
        result = runner.run()
    except (BenchError, KeyboardInterrupt):
        _keep_partial(runner.result, json_out, fmt)
        raise
    if json_out:
        result.write_json(json_out)
    click.echo(render(result, fmt), nl=False)
    failed = result.failed_requests
    if failed:
        total = sum(len(level.records) for level in result.levels)
        raise BenchError(f"{len(failed)} of {total} requests failed; first: request "
                         f"{failed[0].index}: {failed[0].error}")


def _keep_partial(partial: BenchResult, json_out: str | None, fmt: str) -> None:
    if any(level.records for level in partial.levels):
        click.echo(render(partial, fmt), nl=False)
    if json_out:
        partial.write_json(json_out)
        click.echo(f"partial results written to {json_out}", err=True)
