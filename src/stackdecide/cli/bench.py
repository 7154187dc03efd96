"""`stackdecide bench`: benchmark a running OpenAI-compatible server."""

from __future__ import annotations

import json
from typing import Any

import click
from tabulate import tabulate

from stackdecide.bench.runner import SCENARIOS, BenchConfig, BenchError, BenchResult, BenchRunner
from stackdecide.bench.stats import Distribution, parse_slo
from stackdecide.bench.stream import Timeouts
from stackdecide.cli._app import FORMATS, handle_errors, main


class _TqdmProgress:
    """A tqdm bar per phase on stderr (hidden when stderr is not a terminal or when disabled)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar: Any = None

    def start(self, label: str, total: int) -> None:
        from tqdm import tqdm

        self.finish()
        self.bar = tqdm(total=total, desc=label, unit="req", leave=False,
                        disable=None if self.enabled else True)

    def advance(self, n: int = 1) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def finish(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None


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


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _pct(dist: Distribution | None, key: str) -> float | None:
    return None if dist is None else dist.percentiles.get(key)


def summary_rows(result: BenchResult) -> tuple[list[str], list[list[str]]]:
    slo = result.config.slo
    headers = ["conc", "ok/failed", "duration s", "out tok/s", "total tok/s", "req/s",
               "TTFT p50 ms", "TTFT p99 ms", "TPOT p50 ms", "TPOT p99 ms", "ITL p50 ms",
               "E2EL p50 ms"]
    if slo:
        headers.append("goodput req/s")
    rows = []
    for level in result.levels:
        s = level.summary(slo, result.config.percentiles)
        row = [str(level.concurrency), f"{s.completed}/{s.failed}", _fmt(s.duration_s),
               _fmt(s.output_tok_s, 1), _fmt(s.total_tok_s, 1), _fmt(s.request_per_s, 3),
               _fmt(_pct(s.ttft, "p50")), _fmt(_pct(s.ttft, "p99")),
               _fmt(_pct(s.tpot, "p50"), 3), _fmt(_pct(s.tpot, "p99"), 3),
               _fmt(_pct(s.itl, "p50"), 3), _fmt(_pct(s.e2el, "p50"))]
        if slo:
            row.append(_fmt(s.goodput_req_s, 3))
        rows.append(row)
    return headers, rows


def server_rows(result: BenchResult) -> tuple[list[str], list[list[str]]]:
    headers = ["conc", "gen tok server/client", "diff", "prompt tok server/client", "diff",
               "preemptions", "KV usage peak", "TTFT mean ms server/client",
               "E2EL mean ms server/client"]
    rows = []
    for level in result.levels:
        check = level.server
        if check is None:
            continue
        summary = level.summary()
        rows.append([
            str(level.concurrency),
            f"{_fmt(check.generation_tokens, 0)} / {_fmt(check.client_output_tokens, 0)}",
            _fmt(check.output_tokens_difference, 0),
            f"{_fmt(check.prompt_tokens, 0)} / {_fmt(check.client_prompt_tokens, 0)}",
            _fmt(check.prompt_tokens_difference, 0), _fmt(check.preemptions, 0),
            "-" if check.kv_cache_usage_peak is None else f"{check.kv_cache_usage_peak:.1%}",
            f"{_fmt(check.server_ttft_ms_mean)} / {_fmt(summary.ttft and summary.ttft.mean)}",
            f"{_fmt(check.server_e2el_ms_mean)} / {_fmt(summary.e2el and summary.e2el.mean)}"])
    return headers, rows


def render(result: BenchResult, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(result.to_dict(), indent=1) + "\n"
    if fmt == "csv":
        lines = ["metric,value,unit,concurrency,input_len,output_len,num_prompts"]
        for row in result.metric_rows():
            sc = row.scenario
            lines.append(f"{row.metric},{row.value:.6g},{row.unit},{sc['concurrency']},"
                         f"{sc['input_len']},{sc['output_len']},{sc['num_prompts']}")
        return "\n".join(lines) + "\n"
    table_format = "github" if fmt == "markdown" else "simple"
    config = result.config
    out = [f"{result.scenario}: {config.input_len} in / {config.output_len} out tokens, "
           f"{config.num_prompts} prompts per level, model {result.model} at {config.url}"]
    headline = [row for row in result.metric_rows()
                if row.metric in ("decode_tok_s", "prefill_tok_s")]
    for row in headline:
        out.append(f"{row.metric}: {row.value:,.1f} {row.unit} "
                   f"(concurrency {row.scenario['concurrency']})")
    headers, rows = summary_rows(result)
    out += ["", tabulate(rows, headers, tablefmt=table_format, disable_numparse=True)]
    headers, rows = server_rows(result)
    if rows:
        out += ["", "server /metrics over the same runs:",
                tabulate(rows, headers, tablefmt=table_format, disable_numparse=True)]
    notes = sorted({note for level in result.levels if level.server
                    for note in level.server.notes} |
                   {note for level in result.levels for note in level.server_notes})
    out += [f"note: {note}" for note in notes]
    return "\n".join(out) + "\n"


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
    runner = BenchRunner(config, _TqdmProgress(enabled=not no_progress))
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
