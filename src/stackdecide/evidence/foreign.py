"""Results of other benchmark tools as evidence: ``vllm bench sweep`` folders, GuideLLM reports and
AIPerf exports, each run with its load (concurrency or request rate) as scenario parameters.
Which of their metrics become which of ours is the metric catalogue's (``model.metrics``: each
metric's and latency's ``known_as``).

Every value read is checked for its type and its domain, and refused with its JSON path when
wrong: a text where a number belongs (``"streams": "16"``) would otherwise drop the run's load
and let it stand for another.

* ``vllm bench sweep serve`` / ``serve_workload`` write, under the experiment folder, one folder per
  parameter combination holding ``run=N.json`` (a ``vllm bench serve`` result with the serve and
  bench overrides and ``run_number`` added), ``summary.json`` (the runs again, as a list),
  ``warmup.json`` and ``run=N.failure.json`` (``vllm/benchmarks/sweep/serve.py``, vLLM 0.25 to
  0.32). Each ``run=N.json`` is read as a ``vllm bench serve`` result; its folder's name becomes
  the ``sweep_point`` scenario value; failures become notes.
* GuideLLM (``guidellm benchmark --output-path benchmarks.json``): ``benchmarks[i].metrics.<name>
  .successful`` holds ``mean``, ``median`` and ``percentiles``; ``time_to_first_token_ms``,
  ``inter_token_latency_ms`` (per request (last - first token) / (output tokens - 1): vLLM's
  TPOT) and ``request_latency`` (seconds: E2EL) become latencies, ``requests_per_second`` and
  ``output_tokens_per_second`` (their means) throughputs; the strategy (``concurrent`` streams,
  ``constant``/``poisson`` rate, ``synchronous``) the load. GuideLLM 0.5 and later keep the
  strategy in ``config.strategy``; 0.2 to 0.4 keep it in ``args.strategy`` and write no
  ``percentiles.p50``, so the p50 is their ``median``.
* AIPerf (``profile_export_aiperf.json``): ``time_to_first_token``, ``inter_token_latency`` (per
  request (latency - TTFT) / (output - 1): vLLM's TPOT), ``request_latency`` (E2EL) with ``unit``,
  ``avg`` and ``p50..p99``; ``request_throughput`` and ``output_token_throughput`` (``avg``, in
  the unit they state: ``requests/min`` is divided by 60). AIPerf 0.1 keeps these under
  ``records``, TTFT as ``ttft``. The load is the measured phase's: ``input_config.phases`` (0.10
  and later; the warm-up phase, ``exclude_from_results``, is not the measured one) or
  ``input_config.loadgen``; ``rate`` is requests per second.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from stackdecide._files import read_user_text
from stackdecide.errors import EvidenceError, Location
from stackdecide.evidence._json_values import JsonBudget, Node, check_percentiles, loads
from stackdecide.evidence.import_base import (
    MAX_FILE_BYTES,
    Documents,
    FileKind,
    ImportResult,
    RunContext,
    check_record_count,
)
from stackdecide.evidence.records import EvidenceRecord, ScenarioValue
from stackdecide.evidence.vllm_results import vllm_result_records
from stackdecide.model.metrics import (
    LATENCIES,
    METRICS,
    PERCENTILE_KEYS,
    percentile_of,
    tool_latencies,
    tool_metrics,
)

_RUN_FILE = re.compile(r"^run=(\d+)\.json$")
_FAILURE_BYTES = 64 * 1024  # a failure file holds an error message
_UNIT_TO_MS = {"ms": 1.0, "s": 1000.0, "sec": 1000.0, "us": 1e-3, "ns": 1e-6}
_SECONDS = {"s": 1.0, "sec": 1.0, "second": 1.0, "seconds": 1.0, "min": 60.0, "minute": 60.0,
            "minutes": 60.0, "h": 3600.0, "hour": 3600.0, "hours": 3600.0, "ms": 1e-3}
_COUNTED = {"requests": "req", "request": "req", "req": "req", "tokens": "tok", "token": "tok",
            "tok": "tok"}


def looks_like_sweep_folder(path: Path) -> bool:
    return next(path.rglob("run=*.json"), None) is not None


def looks_like_guidellm(document: Mapping[str, Any]) -> bool:
    benchmarks = document.get("benchmarks")
    return isinstance(benchmarks, list) and bool(benchmarks) and all(
        isinstance(b, dict) and isinstance(b.get("metrics"), dict) for b in benchmarks)


def looks_like_aiperf(document: Mapping[str, Any]) -> bool:
    records = document.get("records")
    by_metric = isinstance(records, dict) and any(  # AIPerf 0.1
        isinstance(r, dict) and "unit" in r for r in records.values())
    return "aiperf_version" in document or by_metric or (
        isinstance(document.get("time_to_first_token"), dict)
        and ("input_config" in document or isinstance(document.get("request_throughput"), dict)))


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
    budget = JsonBudget()  # the whole folder is one import
    for path in runs:
        where = Location(str(path))
        text = read_user_text(path, kind="vllm bench sweep result", content="JSON",
                              limit=MAX_FILE_BYTES, error=EvidenceError)
        result = loads(text, where, budget)
        if not isinstance(result, dict):
            raise EvidenceError("expected a vllm bench serve result object", where)
        point = str(path.parent.relative_to(folder)) if path.parent != folder else "."
        run_context = RunContext(context.candidate, context.hardware, context.software,
                                 {"sweep_point": point, **context.scenario},
                                 context.config_sha256)
        run_records, run_notes = vllm_result_records(result, run_context, str(path), where)
        records += run_records
        notes += run_notes
        check_record_count(len(records), where)
    return ImportResult(str(folder), "vllm-bench-sweep", tuple(records), tuple(notes))


def _failure(path: Path) -> str:
    try:
        text = read_user_text(path, kind="failure file", content="JSON", limit=_FAILURE_BYTES,
                              error=EvidenceError)
        data = loads(text, Location(str(path)))
        return f"{data.get('error_type')}: {data.get('error')}"
    except (EvidenceError, ValueError, AttributeError):
        return "unreadable failure file"


# -- GuideLLM --------------------------------------------------------------------------------------
_GUIDELLM_LATENCIES = tool_latencies("guidellm")
_GUIDELLM_RATES = tool_metrics("guidellm")


def read_guidellm(documents: Documents, file: str, context: RunContext) -> ImportResult:
    """A GuideLLM report: each of its benchmarks is one run."""
    return _merged(file, "guidellm", [guidellm_records(document, where, file, context)
                                      for document, where in documents])


def guidellm_records(document: Mapping[str, Any], where: Location, file: str,
                     context: RunContext) -> ImportResult:
    if not context.candidate:
        raise EvidenceError("a GuideLLM report names no candidate; import it with --candidate ID",
                            Location(file))
    records: list[EvidenceRecord] = []
    notes: list[str] = []
    for index, benchmark in enumerate(Node(document, where).get("benchmarks").elements()):
        metrics = benchmark.get("metrics")
        scenario = {**_guidellm_load(benchmark), **_lengths(
            _successful(metrics.get("prompt_token_count"), "mean"),
            _successful(metrics.get("output_token_count"), "mean")), **context.scenario}
        values: list[tuple[str, float]] = []
        from_median = False
        for key, (name, scale) in _GUIDELLM_LATENCIES.items():
            found, median = _guidellm_statistics(metrics.get(key).get("successful"))
            from_median |= median
            values += _latency_values(name, found, scale)
        for key, (metric, scale) in _GUIDELLM_RATES.items():
            value = metrics.get(key).get("successful").get("mean").measured(metric, scale)
            if value is not None:
                values.append((metric, value))
        if not values:
            notes.append(f"{file}: benchmarks[{index}] holds no metric stackdecide knows")
        tool = "GuideLLM" + ("; p50 from median (this GuideLLM writes no percentiles.p50)"
                             if from_median else "") + _guidellm_failures(benchmark)
        records += _records(values, context, scenario, f"{file}#benchmarks[{index}]", tool,
                            benchmark.location, _guidellm_time(benchmark))
        check_record_count(len(records), benchmark.location)
    return ImportResult(file, "guidellm", tuple(records), tuple(notes))


def _guidellm_statistics(summary: Node) -> tuple[dict[str, Node], bool]:
    """The mean and the percentiles we keep of one GuideLLM distribution, by statistic, and
    whether the p50 is its ``median`` (``percentiles`` has none before GuideLLM 0.5)."""
    percentiles = summary.get("percentiles")
    found = {"mean": summary.get("mean"), **{key: percentiles.get(key) for key in PERCENTILE_KEYS}}
    from_median = not found["p50"].present and summary.get("median").present
    if from_median:
        found["p50"] = summary.get("median")
    return {statistic: node for statistic, node in found.items() if node.present}, from_median


def _successful(metric: Node, key: str) -> float | None:
    return metric.get("successful").get(key).number()


def _guidellm_strategy(benchmark: Node) -> Node:
    """The scheduling strategy: ``config.strategy`` (GuideLLM 0.5 and later) or
    ``args.strategy`` (0.2 to 0.4)."""
    strategy = benchmark.get("config").get("strategy")
    return strategy if strategy.present else benchmark.get("args").get("strategy")


def _guidellm_load(benchmark: Node) -> dict[str, ScenarioValue]:
    strategy = _guidellm_strategy(benchmark)
    kind_node = strategy.get("type_") if strategy.get("type_").present else strategy.get("type")
    kind = kind_node.text()
    load: dict[str, ScenarioValue] = {"strategy": kind} if kind else {}
    if kind == "synchronous":
        load["concurrency"] = 1
    elif kind == "concurrent":
        streams = strategy.get("streams").integer(minimum=1)
        if streams is None:
            raise strategy.fail("a concurrent strategy without its number of streams: the load "
                                "of this benchmark is unknown")
        load["concurrency"] = streams
    elif kind in ("constant", "poisson"):
        rate = strategy.get("rate")
        value = rate.number()
        if value is None or value <= 0:
            raise rate.fail(f"a {kind} strategy needs a request rate above 0, got {value}")
        load["request_rate"] = value
    return load


def _guidellm_failures(benchmark: Node) -> str:
    """Failed requests, for the records' note: ``metrics.request_totals`` (GuideLLM 0.5 and
    later) or ``run_stats.requests_made`` (0.2 to 0.4)."""
    totals = benchmark.get("metrics").get("request_totals")
    if not totals.present:
        totals = benchmark.get("run_stats").get("requests_made")
    errored = totals.get("errored").integer() or 0
    incomplete = totals.get("incomplete").integer() or 0
    total = totals.get("total").integer()
    if not errored and not incomplete:
        return ""
    of = f" of {total}" if total is not None else ""
    return f"; {errored}{of} requests errored, {incomplete} incomplete (not in these numbers)"


def _guidellm_time(benchmark: Node) -> datetime | None:
    for node in (benchmark.get("scheduler_state").get("start_time"),
                 benchmark.get("scheduler_metrics").get("start_time"),
                 benchmark.get("run_stats").get("start_time"), benchmark.get("start_time")):
        start = node.number()
        if start is not None and start > 0:
            return _from_epoch(start, node)
    return None


def _from_epoch(seconds: float, node: Node) -> datetime:
    try:
        return datetime.fromtimestamp(seconds, UTC)
    except (OverflowError, OSError, ValueError):
        raise node.fail(f"{seconds:g} is not a time (seconds since 1970)") from None


# -- AIPerf ----------------------------------------------------------------------------------------
_AIPERF_LATENCIES = tool_latencies("aiperf")  # each carries its unit, read as it says
_AIPERF_RATES = tool_metrics("aiperf")
_AIPERF_0_1_TAGS = {"time_to_first_token": "ttft"}


def read_aiperf(documents: Documents, file: str, context: RunContext) -> ImportResult:
    """An AIPerf export: one run."""
    return _merged(file, "aiperf", [aiperf_records(document, where, file, context)
                                    for document, where in documents])


def aiperf_records(document: Mapping[str, Any], where: Location, file: str,
                   context: RunContext) -> ImportResult:
    if not context.candidate:
        raise EvidenceError("an AIPerf export names no candidate; import it with --candidate ID",
                            Location(file))
    root = Node(document, where)
    records = root.get("records")
    metrics = records if records.is_object() else root  # AIPerf 0.1 keeps them under records
    values: list[tuple[str, float]] = []
    notes: list[str] = []
    for key, (name, _) in _AIPERF_LATENCIES.items():
        metric = _aiperf_metric(metrics, key)
        if not metric.present:
            continue
        scale = _latency_scale(metric.get("unit"))
        if scale is None:
            notes.append(f"{file}: {metric.path} has unit {metric.get('unit').value!r}, not a unit "
                         "of time; skipped")
            continue
        found = {statistic: metric.get(written) for statistic, written in
                 (("mean", "avg"), *((p, p) for p in PERCENTILE_KEYS))}
        values += _latency_values(name, {s: n for s, n in found.items() if n.present}, scale)
    for key, (name, _) in _AIPERF_RATES.items():
        metric = _aiperf_metric(metrics, key)
        if not metric.present:
            continue
        factor = _per_second(metric.get("unit"), METRICS[name].unit)
        if factor is None:
            notes.append(f"{file}: {metric.path} has unit {metric.get('unit').value!r}, not the "
                         f"{METRICS[name].unit} of {name}; skipped")
            continue
        value = metric.get("avg").measured(name, factor)
        if value is not None:
            values.append((name, value))
    notes += _aiperf_unread(metrics, file)
    scenario = {**_aiperf_load(root.get("input_config"), file, notes), **_lengths(
        metrics.get("input_sequence_length").get("avg").number(),
        metrics.get("output_sequence_length").get("avg").number()), **context.scenario}
    failures = _aiperf_failures(metrics, root)
    if not values:
        raise EvidenceError(f"this AIPerf export holds no metric stackdecide knows{failures}",
                            where)
    timestamp = _aiperf_time(root, file, notes)
    return ImportResult(file, "aiperf", tuple(_records(
        values, context, scenario, file, f"AIPerf{failures}", where, timestamp)), tuple(notes))


def _aiperf_metric(metrics: Node, key: str) -> Node:
    """The metric called ``key``, or what AIPerf 0.1 called it (``ttft``)."""
    metric = metrics.get(key)
    return metric if metric.present or key not in _AIPERF_0_1_TAGS else \
        metrics.get(_AIPERF_0_1_TAGS[key])


def _latency_scale(unit: Node) -> float | None:
    text = unit.text()
    return None if text is None else _UNIT_TO_MS.get(text.strip().lower())


def _per_second(unit: Node, ours: str) -> float | None:
    """The factor from a rate in ``unit`` (``requests/sec``, ``requests/min``,
    ``tokens/sec``) to ``ours`` (``req/s``, ``tok/s``); None when it counts something else or
    per something that is not a time."""
    text = unit.text()
    if text is None:
        return None
    counted, _, per = text.strip().lower().partition("/")
    if _COUNTED.get(counted) != ours.partition("/")[0] or per not in _SECONDS:
        return None
    return 1.0 / _SECONDS[per]


def _aiperf_unread(metrics: Node, file: str) -> list[str]:
    """Notes on what the export measured that no record holds."""
    notes: list[str] = []
    goodput = metrics.get("goodput")
    if goodput.present:
        value = goodput.get("avg").number()
        measured = "" if value is None else f" {value:g} {goodput.get('unit').text() or ''}"
        notes.append(f"{file}: goodput{measured.rstrip()} not imported: it counts the requests "
                     "that met the objectives AIPerf was given (--goodput), which the file does "
                     "not tie to a decision's SLO")
    total = metrics.get("total_token_throughput")
    if total.present:
        notes.append(f"{file}: total_token_throughput not imported (its tokens are prompt and "
                     "output tokens together; output_token_throughput is imported)")
    return notes


def _aiperf_failures(metrics: Node, root: Node) -> str:
    """Failed requests and a cancelled run, for the records' note and the refusal of an export
    that measured nothing."""
    failed = metrics.get("error_request_count").get("avg").integer()
    parts = [f"{failed} requests failed (not in these numbers)"] if failed else []
    if root.get("was_cancelled").value is True:
        parts.append("the run was cancelled before its end")
    return "".join(f"; {part}" for part in parts)


def _aiperf_load(config: Node, file: str, notes: list[str]) -> dict[str, ScenarioValue]:
    """The load of the measured phase: ``phases`` (a list, or an object by name) without the
    warm-up, else ``loadgen``."""
    measured = [phase for name, phase in _phases(config.get("phases"))
                if phase.get("exclude_from_results").value is not True
                and (name or "").lower() != "warmup"]
    loads = {tuple(sorted(_phase_load(phase).items())): phase for phase in measured}
    if len(loads) > 1:
        described = "; ".join(f"{phase.path}: {dict(load) or 'no load'}"
                              for load, phase in loads.items())
        raise config.get("phases").fail(
            f"several measured phases with different loads ({described}); stackdecide reads "
            "one load per export: export each phase's run on its own")
    if loads:
        return dict(next(iter(loads)))
    load = _phase_load(config.get("loadgen"))
    if not load:
        notes.append(f"{file}: no concurrency or request rate in input_config (phases or loadgen): "
                     "the records name no load")
    return load


def _phases(phases: Node) -> list[tuple[str | None, Node]]:
    """Each phase with its name: the items of a list, or the values of an object by name."""
    if phases.is_object():
        return [(name, phases.get(name)) for name in phases.names()]
    return [(phase.get("name").text(), phase) for phase in phases.elements()]


def _phase_load(phase: Node) -> dict[str, ScenarioValue]:
    load: dict[str, ScenarioValue] = {}
    concurrency = phase.get("concurrency").integer(minimum=1)
    if concurrency is not None:
        load["concurrency"] = concurrency
    for key in ("rate", "request_rate"):
        rate = phase.get(key)
        value = rate.number()
        if value is not None:
            if value <= 0:
                raise rate.fail(f"a request rate must be above 0, got {value:g}")
            load["request_rate"] = value
    return load


def _aiperf_time(root: Node, file: str, notes: list[str]) -> datetime | None:
    started = root.get("start_time").text()
    if started is None:
        return None
    try:
        # AIPerf writes the local time of the machine that ran it, without a zone: read as ours
        return datetime.fromisoformat(started).astimezone(UTC)
    except ValueError:
        notes.append(f"{file}: start_time {started!r} is not ISO 8601; import time used")
        return None


# -- shared ----------------------------------------------------------------------------------------
def _latency_values(name: str, found: Mapping[str, Node], scale: float) -> list[tuple[str, float]]:
    """``(metric, value in ms)`` of one latency's statistics, each a possible value of its metric
    and the percentiles rising with the percentile."""
    latency = LATENCIES[name]
    read: list[tuple[str, float, Location]] = []
    for statistic, node in found.items():
        value = node.measured(latency.metric(statistic), scale)
        if value is not None:
            read.append((statistic, value, node.location))
    check_percentiles([(percentile_of(statistic), value, at)
                       for statistic, value, at in read if statistic != "mean"])
    return [(latency.metric(statistic), value) for statistic, value, _ in read]


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
    return [EvidenceRecord.from_dict({**common, "metric": metric, "value": value, "note": tool},
                                     where) for metric, value in values]
