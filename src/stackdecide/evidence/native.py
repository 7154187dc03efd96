"""stackdecide's own files as evidence: evidence exports (``evidence export``) and the results
``stackdecide bench --json`` writes.

* An export is ``{"format": "stackdecide-evidence/v1", "records": [...]}``, one record object per
  line (JSON lines), a list of records, or one record. Its records say their own candidate,
  hardware and software, and keep every field as stored.
* A benchmark result (``"schema": "stackdecide/bench-v1"``, ``bench.results.BenchResult.to_dict``)
  holds, besides its per-request data, the metric rows its levels gave (``metrics``: metric,
  value, unit, scenario). Each row becomes the record ``stackdecide bench --store`` would have
  stored: its scenario with the benchmark's ``scenario`` and ``seed`` (and ``complete: false`` for
  a run cut short, with the reason in the note); the capacity rows' note holds the search's
  bracket. It names no candidate or machine, so the import says them, as for ``vllm bench serve``
  results.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from stackdecide.errors import EvidenceError, Location
from stackdecide.evidence.import_base import (
    Documents,
    ImportResult,
    RunContext,
    check_record_count,
)
from stackdecide.evidence.records import EXPORT_FORMAT, EvidenceRecord

BENCH_RESULT_SCHEMA = "stackdecide/bench-v1"
_BENCH_SCHEMA_PREFIX = "stackdecide/bench-"
_EXPORT_KEYS = {"format", "tool_version", "records"}


# -- evidence exports ----------------------------------------------------------------------------
def looks_like_export(document: Mapping[str, Any]) -> bool:
    return "format" in document


def looks_like_record(document: Mapping[str, Any]) -> bool:
    return "metric" in document or "candidate" in document


def read_export(documents: Documents, file: str, context: RunContext) -> ImportResult:
    """``{"format": ..., "records": [...]}``: every record of the list."""
    items: list[tuple[Any, Location]] = []
    for document, where in documents:
        if document["format"] != EXPORT_FORMAT:
            raise EvidenceError(f"unknown format '{document['format']}'; this version reads "
                                f"'{EXPORT_FORMAT}'", where)
        if set(document) - _EXPORT_KEYS:
            extra = sorted(set(document) - _EXPORT_KEYS)
            raise EvidenceError(f"unknown key '{extra[0]}' in a {EXPORT_FORMAT} file", where)
        records = document.get("records")
        if not isinstance(records, list):
            raise EvidenceError("'records' must be a list of evidence records",
                                Location(where.file, where.line, None, "records"))
        items += [(item, Location(file, None, None, f"records[{i}]"))
                  for i, item in enumerate(records)]
    return read_records(items, file, context)


def read_records(documents: Documents, file: str, context: RunContext) -> ImportResult:
    """Evidence records, each one object (of a list, or one per line)."""
    if context.given:
        raise EvidenceError(f"{', '.join(context.given)} only apply to vllm bench serve results; "
                            "this file holds stackdecide evidence, whose records say their own",
                            Location(file))
    check_record_count(len(documents), Location(file))
    records = tuple(EvidenceRecord.from_dict(item, where) for item, where in documents)
    return ImportResult(file, "stackdecide", records)


# -- stackdecide bench results -------------------------------------------------------------------
def looks_like_bench_result(document: Mapping[str, Any]) -> bool:
    schema = document.get("schema")
    return isinstance(schema, str) and schema.startswith(_BENCH_SCHEMA_PREFIX)


def search_note(kind: str, last_pass: float | None, first_fail: float | None, probes: int,
                stopped_because: str) -> str:
    """The note of a capacity record: the search's bracket, its probes and why it stopped."""
    return (f"{kind} bracket [{_load(last_pass)}, {_load(first_fail)}] after {probes} probes; "
            f"{stopped_because}")


def _load(load: float | None) -> str:
    return "-" if load is None else f"{load:g}"


def read_bench_results(documents: Documents, file: str, context: RunContext) -> ImportResult:
    """A ``stackdecide bench --json`` result: one record per metric row."""
    if not context.candidate:
        raise EvidenceError("a stackdecide bench result names no candidate; import it with "
                            "'stackdecide evidence import FILE --candidate ID'", Location(file))
    records: list[EvidenceRecord] = []
    for result, where in documents:
        records += bench_result_records(result, context, where)
        check_record_count(len(records), where)
    return ImportResult(file, "stackdecide-bench", tuple(records))


def bench_result_records(result: Mapping[str, Any], context: RunContext,
                         where: Location) -> list[EvidenceRecord]:
    """The records of one benchmark result's metric rows, as ``bench --store`` makes them."""
    schema = result["schema"]
    if schema != BENCH_RESULT_SCHEMA:
        raise EvidenceError(f"unknown benchmark result schema '{schema}'; this version reads "
                            f"'{BENCH_RESULT_SCHEMA}'", _at(where, "schema"))
    config = _mapping(result, "config", where)
    seed = config.get("seed")
    if not isinstance(seed, int) or isinstance(seed, bool):
        raise EvidenceError(f"expected the prompts' seed, a whole number, got {seed!r}",
                            _at(where, "config.seed"))
    scenario_name = config.get("scenario")
    if not isinstance(scenario_name, str):
        raise EvidenceError(f"expected a scenario name, got {scenario_name!r}",
                            _at(where, "config.scenario"))
    rows = result.get("metrics")
    if not isinstance(rows, list):
        raise EvidenceError("'metrics' must be a list of metric rows", _at(where, "metrics"))
    if not rows:
        raise EvidenceError("no metric rows: no level of this run completed a request, so it "
                            "measured nothing", _at(where, "metrics"))
    check_record_count(len(rows), _at(where, "metrics"))
    complete = result.get("complete") is True
    extra: dict[str, Any] = {"seed": seed} if complete else {"seed": seed, "complete": False}
    partial = None if complete else f"partial run: {result.get('error') or 'incomplete'}"
    search = _search_note(result, config, where)
    common: dict[str, Any] = {
        "candidate": context.candidate, "hardware": context.hardware,
        "software": dict(context.software), "config_sha256": context.config_sha256,
        "source": f"stackdecide bench {result.get('started_at')}",
        **_started(result, where)}
    records = []
    for index, row in enumerate(rows):
        at = _at(where, f"metrics[{index}]")
        if not isinstance(row, Mapping) or not isinstance(row.get("scenario"), Mapping):
            raise EvidenceError("expected a metric row with metric, value, unit and scenario", at)
        metric = row.get("metric")
        capacity = isinstance(metric, str) and metric.startswith("capacity_")
        note = "; ".join(part for part in (partial, search if capacity else None) if part)
        records.append(EvidenceRecord.from_dict({
            **common, "metric": metric, "value": row.get("value"), "unit": row.get("unit"),
            "scenario": {"scenario": scenario_name, **row["scenario"], **extra,
                         **context.scenario},
            "note": note[:2000] or None}, at))
    return records


def _search_note(result: Mapping[str, Any], config: Mapping[str, Any],
                 where: Location) -> str | None:
    """The capacity search's note, from the result's ``capacity`` and its plan's search kind."""
    capacity = result.get("capacity")
    if capacity is None:
        return None
    if not isinstance(capacity, Mapping):
        raise EvidenceError("expected the capacity search's result", _at(where, "capacity"))
    plan = config.get("capacity")
    search = plan.get("search") if isinstance(plan, Mapping) else None
    kind = search.get("kind") if isinstance(search, Mapping) else None
    bracket = capacity.get("bracket")
    probes = capacity.get("probes")
    if not (isinstance(kind, str) and isinstance(bracket, list) and len(bracket) == 2
            and all(_load_or_none(load) for load in bracket) and isinstance(probes, list)):
        raise EvidenceError("expected the capacity search's bracket and probes, and the plan's "
                            "search kind", _at(where, "capacity"))
    return search_note(kind, bracket[0], bracket[1], len(probes),
                       str(capacity.get("stopped_because")))


def _load_or_none(value: Any) -> bool:
    return value is None or (isinstance(value, int | float) and not isinstance(value, bool))


def _started(result: Mapping[str, Any], where: Location) -> dict[str, datetime]:
    """The run's start as the records' timestamp (``started_at``, ISO 8601; UTC without a
    zone)."""
    text = result.get("started_at")
    if text is None:
        return {}
    try:
        started = datetime.fromisoformat(text) if isinstance(text, str) else None
    except ValueError:
        started = None
    if started is None:
        raise EvidenceError(f"{text!r} is not an ISO 8601 time", _at(where, "started_at"))
    return {"timestamp": started if started.tzinfo else started.replace(tzinfo=UTC)}


def _mapping(result: Mapping[str, Any], key: str, where: Location) -> Mapping[str, Any]:
    value = result.get(key)
    if not isinstance(value, Mapping):
        raise EvidenceError(f"expected an object, got {type(value).__name__}", _at(where, key))
    return value


def _at(where: Location, field: str) -> Location:
    return Location(where.file, where.line, None, field)
