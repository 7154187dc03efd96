"""A benchmark result as a table, markdown, CSV of metric rows, or JSON. Pure: returns text."""

from __future__ import annotations

import json

from tabulate import tabulate

from stackdecide._text import csv_cell
from stackdecide.bench.capacity import CapacityResult
from stackdecide.bench.runner import BenchResult
from stackdecide.bench.stats import Distribution


def _fmt(value: float | None, digits: int = 2) -> str:
    return "-" if value is None else f"{value:,.{digits}f}"


def _pct(dist: Distribution | None, key: str) -> float | None:
    return None if dist is None else dist.percentiles.get(key)


def summary_rows(result: BenchResult) -> tuple[list[str], list[list[str]]]:
    slo = result.config.slo
    headers = ["conc/rate" if result.capacity else "conc", "ok/failed", "duration s",
               "out tok/s", "total tok/s", "req/s",
               "TTFT p50 ms", "TTFT p99 ms", "TPOT p50 ms", "TPOT p99 ms", "ITL p50 ms",
               "E2EL p50 ms"]
    if slo:
        headers.append("goodput req/s")
    rows = []
    for level in result.levels:
        s = level.summary(slo, result.config.percentiles)
        load = (f"{level.request_rate:.3g}/s" if level.request_rate is not None
                else str(level.concurrency))
        row = [load, f"{s.completed}/{s.failed}", _fmt(s.duration_s),
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


def _csv(value: object) -> str:
    text = str(csv_cell("" if value is None else str(value)))
    return '"' + text.replace('"', '""') + '"' if any(c in text for c in ',"\n\r') else text


def capacity_lines(capacity: CapacityResult, table_format: str = "simple") -> list[str]:
    """The search's probes with their verdicts, then the capacity and its bracket."""
    kind = capacity.settings.kind
    rows = [[str(p.index), p.phase, f"{p.load:.4g}", "pass" if p.verdict.passed else "FAIL",
             _fmt(p.verdict.margin if p.verdict.margin != float("inf") else None, 3),
             _fmt(p.measurement.request_per_s, 3), _fmt(p.measurement.output_tok_s, 1),
             "; ".join(p.verdict.reasons) or "-"] for p in capacity.probes]
    headers = ["probe", "phase", "concurrency" if kind == "concurrency" else "rate req/s",
               "SLO", "margin", "req/s", "out tok/s", "why not"]
    out = [f"capacity search over {kind}, SLO {capacity.slo.text()}, precision "
           f"{capacity.settings.precision:.0%}:",
           tabulate(rows, headers, tablefmt=table_format, disable_numparse=True)]
    low = capacity.last_pass.load if capacity.last_pass else None
    high = capacity.first_fail.load if capacity.first_fail else None
    if capacity.capacity_req_s is None:
        out.append(f"capacity: none found ({capacity.stopped_because})")
        return out
    conc = (f", concurrency {capacity.capacity_concurrency}"
            if capacity.capacity_concurrency is not None else "")
    gap = f" ({capacity.relative_gap:.1%} wide)" if capacity.relative_gap is not None else ""
    out.append(f"capacity: {capacity.capacity_req_s:,.3f} req/s{conc}, "
               f"{_fmt(capacity.capacity_output_tok_s, 1)} out tok/s; bracket "
               f"[{_fmt(low, 3)}, {_fmt(high, 3)}]{gap} after {len(capacity.probes)} probes; "
               f"{capacity.stopped_because}")
    return out


def render(result: BenchResult, fmt: str) -> str:
    if fmt == "json":
        return json.dumps(result.to_dict(), indent=1, allow_nan=False) + "\n"
    if fmt == "csv":
        keys = ["concurrency", "input_len", "output_len", "num_prompts"]
        if result.capacity is not None:
            keys += ["request_rate", "probe", "passed", "search", "slo"]
        lines = [",".join(["metric", "value", "unit", *keys])]
        for row in result.metric_rows():
            sc = row.scenario
            lines.append(",".join([row.metric, f"{row.value:.6g}", row.unit,
                                   *(_csv(sc.get(key)) for key in keys)]))
        return "\n".join(lines) + "\n"
    table_format = "github" if fmt == "markdown" else "simple"
    config = result.config
    lengths = (config.lengths.describe() if config.lengths
               else f"{config.input_len} in / {config.output_len} out tokens")
    per = "prompts per level"
    if result.capacity is not None:
        per = ("prompts per probe (at least 2 x its concurrency)"
               if result.capacity.settings.kind == "concurrency" else "prompts per probe")
    out = [f"{result.scenario}: {lengths}, {config.num_prompts} {per}, "
           f"{config.prompt_mode} prompts, model {result.model} at {config.url}"]
    headline = [row for row in result.metric_rows()
                if row.metric in ("decode_tok_s", "prefill_tok_s")]
    for row in headline:
        out.append(f"{row.metric}: {row.value:,.1f} {row.unit} "
                   f"(concurrency {row.scenario['concurrency']})")
    headers, rows = summary_rows(result)
    out += ["", tabulate(rows, headers, tablefmt=table_format, disable_numparse=True)]
    if result.capacity is not None:
        out += ["", *capacity_lines(result.capacity, table_format)]
    headers, rows = server_rows(result)
    if rows:
        out += ["", "server /metrics over the same runs:",
                tabulate(rows, headers, tablefmt=table_format, disable_numparse=True)]
    notes = sorted({note for level in result.levels if level.server
                    for note in level.server.notes} |
                   {note for level in result.levels for note in level.server_notes})
    out += [f"note: {note}" for note in notes]
    return "\n".join(out) + "\n"
