"""A benchmark result as a table, markdown, CSV of metric rows, or JSON. Pure: returns text."""

from __future__ import annotations

import json

from tabulate import tabulate

from stackdecide.bench.runner import BenchResult
from stackdecide.bench.stats import Distribution


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
        return json.dumps(result.to_dict(), indent=1, allow_nan=False) + "\n"
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
