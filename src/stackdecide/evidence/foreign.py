"""Results of other benchmark tools as evidence: ``vllm bench sweep`` folders, GuideLLM reports and
AIPerf exports, each run with its load (concurrency or request rate) as scenario parameters.
Which of their metrics become which of ours is the metric catalogue's (``model.metrics``: each
metric's and latency's ``known_as``).

* ``vllm bench sweep serve`` / ``serve_workload`` write, under the experiment folder, one folder per
  parameter combination holding ``run=N.json`` (a ``vllm bench serve`` result with the serve and
  bench overrides and ``run_number`` added), ``summary.json`` (the runs again, as a list),
  ``warmup.json`` and ``run=N.failure.json`` (``vllm/benchmarks/sweep/serve.py``, vLLM 0.32). Each
  ``run=N.json`` is read as a ``vllm bench serve`` result; its folder's name becomes the
  ``sweep_point`` scenario value; failures become notes.
* GuideLLM (``guidellm benchmark --output-path benchmarks.json``, schema of guidellm 0.8
  ``GenerativeBenchmarksReport``): ``benchmarks[i].metrics.<name>.successful`` holds ``mean``,
  ``median`` and ``percentiles.p50..p99``; ``time_to_first_token_ms``, ``inter_token_latency_ms``
  (per request (last - first token) / (output tokens - 1): vLLM's TPOT) and ``request_latency``
  (seconds: E2EL) become latencies, ``requests_per_second`` and ``output_tokens_per_second`` (their
  means) throughputs; the strategy (``concurrent`` streams, ``constant``/``poisson`` rate,
  ``synchronous``) the load.
* AIPerf (``profile_export_aiperf.json``, ``JsonExportData`` schema 1.x of aiperf 0.13):
  ``time_to_first_token``, ``inter_token_latency`` (per request (latency - TTFT) / (output - 1):
  vLLM's TPOT), ``request_latency`` (E2EL) with ``unit``, ``avg`` and ``p50..p99``;
  ``request_throughput`` and ``output_token_throughput`` (``avg``); the load from
  ``input_config`` (``concurrency`` / ``request_rate`` wherever the config nests them).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stackdecide._files import read_user_text
from stackdecide.errors import EvidenceError, Location
from stackdecide.evidence.import_base import (
    MAX_FILE_BYTES,
    Documents,
    FileKind,
    ImportResult,
    RunContext,
)
from stackdecide.evidence.records import EvidenceRecord, ScenarioValue
from stackdecide.evidence.vllm_results import vllm_result_records
from stackdecide.model.metrics import LATENCIES, PERCENTILE_KEYS, tool_latencies, tool_metrics

_RUN_FILE = re.compile(r"^run=(\d+)\.json$")
_UNIT_TO_MS = {"ms": 1.0, "s": 1000.0, "sec": 1000.0, "us": 1e-3, "ns": 1e-6}


def looks_like_sweep_folder(path: Path) -> bool:
    return next(path.rglob("run=*.json"), None) is not None


def looks_like_guidellm(document: Mapping[str, Any]) -> bool:
    benchmarks = document.get("benchmarks")
    return isinstance(benchmarks, list) and bool(benchmarks) and all(
        isinstance(b, dict) and isinstance(b.get("metrics"), dict) for b in benchmarks)


def looks_like_aiperf(document: Mapping[str, Any]) -> bool:
    return isinstance(document.get("time_to_first_token"), dict) and (
        "aiperf_version" in document or "input_config" in document
        or isinstance(document.get("request_throughput"), dict))


# -- vllm bench sweep ----------------------------------------------------------------------------
def read_sweep_folder(folder: Path, context: RunContext) -> ImportResult:
    """Every ``run=N.json`` under a ``vllm bench sweep`` experiment folder."""
    if not context.candidate:
        raise EvidenceError("a vllm bench sweep folder names no candidate; import it with "
                            "--candidate ID", Location(str(folder)))
    runs = sorted(p for p in folder.rglob("run=*.json") if _RUN_FILE.match(p.name))
    notes = [f"{p}: failed run: {_failure(p)}" for p in sorted(folder.rglob("run=*.failure.json"))]
    if not runs:
        raise EvidenceError("no run=N.json results in this folder; is it a vllm bench sweep "
                            "experiment folder?", Location(str(folder)))
    records: list[EvidenceRecord] = []
    for path in runs:
        text = read_user_text(path, kind="vllm bench sweep result", content="JSON",
                              limit=MAX_FILE_BYTES, error=EvidenceError)
        try:
            result = json.loads(text)
        except ValueError as exc:
            raise EvidenceError(f"invalid JSON: {exc}", Location(str(path))) from None
        if not isinstance(result, dict):
            raise EvidenceError("expected a vllm bench serve result object", Location(str(path)))
        point = str(path.parent.relative_to(folder)) if path.parent != folder else "."
        run_context = RunContext(context.candidate, context.hardware, context.software,
                                 {"sweep_point": point, **context.scenario},
                                 context.config_sha256)
        run_records, run_notes = vllm_result_records(result, run_context, str(path),
                                                     Location(str(path)))
        records += run_records
        notes += run_notes
    return ImportResult(str(folder), "vllm-bench-sweep", tuple(records), tuple(notes))


def _failure(path: Path) -> str:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
        return f"{data.get('error_type')}: {data.get('error')}"
    except (OSError, ValueError, AttributeError):
        return "unreadable failure file"


# -- GuideLLM --------------------------------------------------------------------------------------
_GUIDELLM_LATENCIES = tool_latencies("guidellm")
_GUIDELLM_RATES = tool_metrics("guidellm")


def read_guidellm(documents: Documents, file: str, context: RunContext) -> ImportResult:
    """A GuideLLM report: each of its benchmarks is one run."""
    return _merged(file, "guidellm", [guidellm_records(document, file, context)
                                      for document, _ in documents])


def guidellm_records(document: Mapping[str, Any], file: str,
                     context: RunContext) -> ImportResult:
    if not context.candidate:
        raise EvidenceError("a GuideLLM report names no candidate; import it with --candidate ID",
                            Location(file))
    records: list[EvidenceRecord] = []
    notes: list[str] = []
    for index, benchmark in enumerate(document["benchmarks"]):
        where = Location(file, None, None, f"benchmarks[{index}]")
        metrics = benchmark["metrics"]
        scenario = {**_guidellm_load(benchmark), **_lengths(
            _successful(metrics.get("prompt_token_count"), "mean"),
            _successful(metrics.get("output_token_count"), "mean")), **context.scenario}
        values: list[tuple[str, float]] = []
        for key, (name, scale) in _GUIDELLM_LATENCIES.items():
            latency = LATENCIES[name]
            summary = (metrics.get(key) or {}).get("successful") or {}
            if summary.get("mean") is not None:
                values.append((latency.metric("mean"), float(summary["mean"]) * scale))
            for p in PERCENTILE_KEYS:
                value = (summary.get("percentiles") or {}).get(p)
                if value is not None:
                    values.append((latency.metric(p), float(value) * scale))
        for key, (metric, scale) in _GUIDELLM_RATES.items():
            value = _successful(metrics.get(key), "mean")
            if value is not None:
                values.append((metric, value * scale))
        if not values:
            notes.append(f"{file}: benchmarks[{index}] holds no metric stackdecide knows")
        records += _records(values, context, scenario, f"{file}#benchmarks[{index}]",
                            "GuideLLM", where, _guidellm_time(benchmark))
    return ImportResult(file, "guidellm", tuple(records), tuple(notes))


def _successful(summary: Any, key: str) -> float | None:
    if not isinstance(summary, dict):
        return None
    value = (summary.get("successful") or {}).get(key)
    return float(value) if isinstance(value, int | float) else None


def _guidellm_load(benchmark: Mapping[str, Any]) -> dict[str, ScenarioValue]:
    strategy = (benchmark.get("config") or {}).get("strategy") or {}
    kind = strategy.get("type_") or strategy.get("type")
    load: dict[str, ScenarioValue] = {"strategy": str(kind)} if kind else {}
    if kind == "synchronous":
        load["concurrency"] = 1
    elif kind == "concurrent" and isinstance(strategy.get("streams"), int):
        load["concurrency"] = strategy["streams"]
    elif kind in ("constant", "poisson") and isinstance(strategy.get("rate"), int | float):
        load["request_rate"] = float(strategy["rate"])
    return load


def _guidellm_time(benchmark: Mapping[str, Any]) -> datetime | None:
    start = (benchmark.get("scheduler_state") or {}).get("start_time") or \
        (benchmark.get("scheduler_metrics") or {}).get("start_time")
    if isinstance(start, int | float) and start > 0:
        return datetime.fromtimestamp(start, UTC)
    return None


# -- AIPerf ----------------------------------------------------------------------------------------
_AIPERF_LATENCIES = tool_latencies("aiperf")  # each carries its unit, read as it says
_AIPERF_RATES = tool_metrics("aiperf")


def read_aiperf(documents: Documents, file: str, context: RunContext) -> ImportResult:
    """An AIPerf export: one run."""
    return _merged(file, "aiperf", [aiperf_records(document, file, context)
                                    for document, _ in documents])


def aiperf_records(document: Mapping[str, Any], file: str, context: RunContext) -> ImportResult:
    if not context.candidate:
        raise EvidenceError("an AIPerf export names no candidate; import it with --candidate ID",
                            Location(file))
    where = Location(file)
    values: list[tuple[str, float]] = []
    notes: list[str] = []
    for key, (name, _) in _AIPERF_LATENCIES.items():
        metric = document.get(key)
        if not isinstance(metric, dict):
            continue
        scale = _UNIT_TO_MS.get(str(metric.get("unit", "ms")).strip().lower())
        if scale is None:
            notes.append(f"{file}: {key} has unit {metric.get('unit')!r}; skipped")
            continue
        for stat, suffix in (("avg", "mean"), *((p, p) for p in PERCENTILE_KEYS)):
            if isinstance(metric.get(stat), int | float):
                values.append((LATENCIES[name].metric(suffix), float(metric[stat]) * scale))
    for key, (name, rate_scale) in _AIPERF_RATES.items():
        metric = document.get(key)
        if isinstance(metric, dict) and isinstance(metric.get("avg"), int | float):
            values.append((name, float(metric["avg"]) * rate_scale))
    config = document.get("input_config") or {}
    scenario: dict[str, ScenarioValue] = {}
    concurrency = _find(config, "concurrency")
    rate = _find(config, "request_rate")
    if isinstance(concurrency, int) and not isinstance(concurrency, bool) and concurrency >= 1:
        scenario["concurrency"] = concurrency
    if isinstance(rate, int | float) and not isinstance(rate, bool) and rate > 0:
        scenario["request_rate"] = float(rate)
    scenario.update(_lengths(_avg(document.get("input_sequence_length")),
                             _avg(document.get("output_sequence_length"))))
    scenario.update(context.scenario)
    started = document.get("start_time")
    timestamp = None
    if isinstance(started, str):
        try:
            timestamp = datetime.fromisoformat(started).astimezone(UTC)
        except ValueError:
            notes.append(f"{file}: start_time {started!r} is not ISO 8601; import time used")
    if not values:
        raise EvidenceError("this AIPerf export holds no metric stackdecide knows", where)
    records = _records(values, context, scenario, file, "AIPerf", where, timestamp)
    return ImportResult(file, "aiperf", tuple(records), tuple(notes))


def _avg(metric: Any) -> float | None:
    return float(metric["avg"]) if isinstance(metric, dict) and \
        isinstance(metric.get("avg"), int | float) else None


def _find(data: Any, key: str) -> Any:
    """The first value of ``key`` anywhere in nested dicts and lists (depth first)."""
    for found in _walk(data, key):
        if found is not None:
            return found
    return None


def _walk(data: Any, key: str) -> Iterator[Any]:
    if isinstance(data, dict):
        if key in data:
            yield data[key]
        for value in data.values():
            yield from _walk(value, key)
    elif isinstance(data, list):
        for value in data:
            yield from _walk(value, key)


# -- shared ----------------------------------------------------------------------------------------
def _merged(file: str, kind: FileKind, results: list[ImportResult]) -> ImportResult:
    return ImportResult(file, kind, tuple(r for result in results for r in result.records),
                        tuple(n for result in results for n in result.notes))


def _lengths(prompt: float | None, output: float | None) -> dict[str, ScenarioValue]:
    out: dict[str, ScenarioValue] = {}
    if prompt is not None and prompt >= 1:
        out["input_len"] = round(prompt)
    if output is not None and output >= 1:
        out["output_len"] = round(output)
    return out


def _records(values: list[tuple[str, float]], context: RunContext,
             scenario: dict[str, ScenarioValue], source: str, tool: str, where: Location,
             timestamp: datetime | None) -> list[EvidenceRecord]:
    common: dict[str, Any] = {"candidate": context.candidate, "scenario": scenario,
                              "hardware": context.hardware, "software": dict(context.software),
                              "config_sha256": context.config_sha256, "source": source}
    if timestamp is not None:
        common["timestamp"] = timestamp
    return [EvidenceRecord.from_dict({**common, "metric": metric, "value": value,
                                      "note": f"{tool}"}, where)
            for metric, value in values if math.isfinite(value)]
