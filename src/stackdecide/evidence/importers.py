"""Reading evidence files: our own JSON/JSONL export, and ``vllm bench serve`` result files.

``vllm bench serve --save-result`` writes one JSON object per run (``--append-result`` appends more,
one per line). Its keys, as built by ``main_async`` and ``benchmark`` in vLLM's
``vllm/benchmarks/serve.py`` (read at commit 009e6d4a1cd6; the same keys as the 0.10 series):

* setup: ``date`` (``%Y%m%d-%H%M%S``, local time), ``backend``, ``endpoint_type``, ``label``,
  ``model_id``, ``tokenizer_id``, ``num_prompts``, ``request_rate`` (a number or ``"inf"``),
  ``burstiness``, ``max_concurrency`` (null when unlimited), and ``--metadata KEY=VALUE`` pairs as
  extra top-level text values;
* totals: ``duration``, ``completed``, ``failed``, ``total_input_tokens``, ``total_output_tokens``,
  ``request_throughput``, ``request_goodput`` (null without goodput SLOs), ``output_throughput``,
  ``total_token_throughput``, ``max_output_tokens_per_s``, ``max_concurrent_requests``;
* per latency ``ttft``, ``tpot``, ``itl``, ``e2el`` (milliseconds): ``mean_X_ms``, ``median_X_ms``,
  ``std_X_ms`` and ``pP_X_ms`` for each of ``--metric-percentiles`` (default 99).

Each run becomes one record per metric we know, with the run's load as scenario parameters
(``concurrency``, ``request_rate``, ``num_prompts``, ``input_len``, ``output_len``, ``backend``,
``model``). Two metrics are derived and say so in their note: ``decode_tok_s`` = 1000 / median TPOT
(one request's decode rate at that concurrency) and, for runs at concurrency 1 only,
``prefill_tok_s`` = mean prompt tokens / median TTFT (it includes HTTP and scheduling time, so it
understates the kernels' rate).
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from stackdecide.errors import EvidenceError, Location
from stackdecide.evidence.records import EXPORT_FORMAT, EvidenceRecord, HardwareInfo, ScenarioValue
from stackdecide.model.metrics import LATENCY_STATISTICS, METRICS

MAX_FILE_BYTES = 512 * 1024 * 1024  # detailed vLLM results hold every generated text

FileKind = Literal["stackdecide", "vllm-bench-serve"]


@dataclass(frozen=True)
class ImportResult:
    """Records read from one file, what kind of file it was, and what was skipped and why."""

    file: str
    kind: FileKind
    records: tuple[EvidenceRecord, ...]
    notes: tuple[str, ...] = field(default=())


@dataclass(frozen=True)
class RunContext:
    """What a ``vllm bench serve`` file cannot say about itself, given by whoever imports it."""

    candidate: str | None = None
    hardware: HardwareInfo | None = None
    software: Mapping[str, str] = field(default_factory=dict)
    scenario: Mapping[str, ScenarioValue] = field(default_factory=dict)
    config_sha256: str | None = None

    @property
    def given(self) -> list[str]:
        """Names of the options set, for messages."""
        names = {"candidate": self.candidate, "hardware": self.hardware, "software": self.software,
                 "scenario": self.scenario, "config_sha256": self.config_sha256}
        return [name for name, value in names.items() if value]


def parse_scenario_value(text: str) -> ScenarioValue:
    """``"8"`` -> 8, ``"0.5"`` -> 0.5, ``"true"`` -> True, anything else stays text."""
    lowered = text.strip().lower()
    if lowered in ("true", "false"):
        return lowered == "true"
    for kind in (int, float):
        try:
            number = kind(text)
        except ValueError:
            continue
        if isinstance(number, float) and not math.isfinite(number):
            return text.strip()
        return number
    return text.strip()


# -- files ---------------------------------------------------------------------------------------
def read_evidence_file(path: str | Path, context: RunContext | None = None) -> ImportResult:
    """Read one evidence file of either kind; errors name the file and, where known, the line."""
    path = Path(path)
    where = Location(str(path))
    if not path.exists():
        raise EvidenceError("no such file", where)
    if path.is_dir():
        raise EvidenceError("is a directory, not an evidence file", where)
    size = path.stat().st_size
    if size > MAX_FILE_BYTES:
        raise EvidenceError(f"file is {size} bytes; evidence files are at most {MAX_FILE_BYTES}",
                            where)
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise EvidenceError("not UTF-8 text (is this a binary file?)",
                            Location(str(path), line)) from None
    return parse_evidence_text(text, str(path), context)


def parse_evidence_text(text: str, file: str = "<input>",
                        context: RunContext | None = None) -> ImportResult:
    """Detect the format of ``text`` (one JSON document, or JSON lines) and read its records."""
    context = context or RunContext()
    if not text.strip():
        raise EvidenceError("empty file, expected JSON evidence or a vllm bench serve result",
                            Location(file))
    try:
        document = json.loads(text)
    except json.JSONDecodeError as exc:
        if not exc.msg.startswith("Extra data"):
            raise EvidenceError(f"invalid JSON: {exc.msg} (column {exc.colno})",
                                Location(file, exc.lineno)) from None
        return _parse_lines(text, file, context)
    line = _first_content_line(text)
    if isinstance(document, list):
        return _ours(file, [(item, Location(file, None, None, f"[{i}]"))
                            for i, item in enumerate(document)], context)
    if not isinstance(document, dict):
        raise EvidenceError(f"expected a JSON object or list, got {type(document).__name__}",
                            Location(file, line))
    kind = _kind(document, Location(file, line))
    if kind == "vllm-bench-serve":
        return _vllm(file, [(document, line)], context)
    if "format" in document:
        if set(document) - {"format", "tool_version", "records"}:
            extra = sorted(set(document) - {"format", "tool_version", "records"})
            raise EvidenceError(f"unknown key '{extra[0]}' in a {EXPORT_FORMAT} file",
                                Location(file, line))
        records = document.get("records")
        if not isinstance(records, list):
            raise EvidenceError("'records' must be a list of evidence records",
                                Location(file, line, None, "records"))
        return _ours(file, [(item, Location(file, None, None, f"records[{i}]"))
                            for i, item in enumerate(records)], context)
    return _ours(file, [(document, Location(file, line))], context)


def _first_content_line(text: str) -> int:
    stripped = text.lstrip()
    return text[: len(text) - len(stripped)].count("\n") + 1


def _parse_lines(text: str, file: str, context: RunContext) -> ImportResult:
    items: list[tuple[dict[str, Any], int]] = []
    kinds: set[FileKind] = set()
    for number, line in enumerate(text.splitlines(), start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as exc:
            raise EvidenceError(f"invalid JSON: {exc.msg} (column {exc.colno})",
                                Location(file, number)) from None
        if not isinstance(item, dict):
            raise EvidenceError(f"each line must be a JSON object, got {type(item).__name__}",
                                Location(file, number))
        kind = _kind(item, Location(file, number))
        if kinds and kind not in kinds:
            raise EvidenceError("this line is a different kind of record from the lines above "
                                "(stackdecide evidence and vllm bench serve results are mixed)",
                                Location(file, number))
        kinds.add(kind)
        items.append((item, number))
    if kinds == {"vllm-bench-serve"}:
        return _vllm(file, items, context)
    return _ours(file, [(item, Location(file, number)) for item, number in items], context)


def _kind(document: Mapping[str, Any], where: Location) -> FileKind:
    if "format" in document:
        if document["format"] != EXPORT_FORMAT:
            raise EvidenceError(f"unknown format '{document['format']}'; this version reads "
                                f"'{EXPORT_FORMAT}'", where)
        return "stackdecide"
    if looks_like_vllm_result(document):
        return "vllm-bench-serve"
    if "metric" in document or "candidate" in document:
        return "stackdecide"
    keys = ", ".join(sorted(document)[:8]) or "none"
    raise EvidenceError("neither stackdecide evidence (records with 'candidate', 'metric', "
                        "'value') nor a vllm bench serve result (with 'completed', "
                        f"'request_throughput', 'backend'); its keys: {keys}", where)


def looks_like_vllm_result(document: Mapping[str, Any]) -> bool:
    return ("completed" in document and "request_throughput" in document
            and any(key in document for key in ("backend", "endpoint_type", "model_id", "date")))


def _ours(file: str, items: list[tuple[Any, Location]], context: RunContext) -> ImportResult:
    if context.given:
        raise EvidenceError(f"{', '.join(context.given)} only apply to vllm bench serve results; "
                            "this file holds stackdecide evidence, whose records say their own",
                            Location(file))
    records = tuple(EvidenceRecord.from_dict(item, where) for item, where in items)
    return ImportResult(file, "stackdecide", records)


# -- vllm bench serve ------------------------------------------------------------------------------
_LATENCY_KEYS = {"ttft", "tpot", "itl", "e2el"}
_THROUGHPUTS = {
    "output_throughput": "output_tok_s",
    "total_token_throughput": "total_tok_s",
    "request_throughput": "request_per_s",
    "request_goodput": "goodput_req_s",
}
_LATENCY_PATTERN = re.compile(r"^(mean|median|std|p[0-9.]+)_([a-z0-9_]+)_ms$")
# Top-level text values that vLLM writes itself; any other text value came from --metadata.
_VLLM_TEXT_KEYS = {"date", "endpoint_type", "backend", "label", "model_id", "tokenizer_id",
                   "request_rate", "ramp_up_strategy"}
_VLLM_DATE_FORMAT = "%Y%m%d-%H%M%S"


def _vllm(file: str, items: list[tuple[dict[str, Any], int]], context: RunContext) -> ImportResult:
    if not context.candidate:
        raise EvidenceError("a vllm bench serve result names no candidate; import it with "
                            "'stackdecide evidence import FILE --candidate ID'", Location(file))
    records: list[EvidenceRecord] = []
    notes: list[str] = []
    for result, line in items:
        source = file if len(items) == 1 else f"{file}:{line}"
        run_records, run_notes = vllm_result_records(result, context, source,
                                                     Location(file, line))
        records.extend(run_records)
        notes.extend(run_notes)
    return ImportResult(file, "vllm-bench-serve", tuple(records), tuple(notes))


def vllm_result_records(result: Mapping[str, Any], context: RunContext, source: str,
                        where: Location) -> tuple[list[EvidenceRecord], list[str]]:
    """One ``vllm bench serve`` result -> one record per known metric, and notes on what was
    skipped."""
    assert context.candidate is not None
    notes: list[str] = []
    completed = _integer(result, "completed", where)
    if not completed:
        raise EvidenceError("no request completed in this run, so it measured nothing",
                            Location(where.file, where.line, None, "completed"))
    failed = _integer(result, "failed", where) or 0
    scenario = _vllm_scenario(result, completed, where)
    scenario.update(context.scenario)
    base_note = f"vllm bench serve ({result.get('backend') or result.get('endpoint_type')})"
    if result.get("label"):
        base_note += f", label {result['label']}"
    if failed:
        base_note += f"; {failed} of {completed + failed} requests failed"
    common: dict[str, Any] = {
        "candidate": context.candidate, "scenario": scenario, "hardware": context.hardware,
        "software": dict(context.software), "config_sha256": context.config_sha256,
        "timestamp": _vllm_date(result, where), "source": source,
    }

    def record(metric: str, value: float, note: str = "") -> EvidenceRecord:
        text = f"{base_note}; {note}" if note else base_note
        return EvidenceRecord.from_dict({**common, "metric": metric, "value": value, "note": text},
                                        where)

    records: list[EvidenceRecord] = []
    for key, metric in _THROUGHPUTS.items():
        value = _number(result, key, where)
        if value is not None:
            records.append(record(metric, value, f"from {key}"))
    latencies: dict[str, tuple[str, float]] = {}
    for key in result:
        match = _LATENCY_PATTERN.match(key)
        if not match or match.group(2) not in _LATENCY_KEYS:
            continue
        statistic, name = match.groups()
        if statistic == "std":
            continue  # a spread of requests, not a quantity to score
        value = _number(result, key, where)
        if value is None:
            notes.append(f"{source}: {key} is not a finite number; skipped")
            continue
        metric = f"{name}_ms_{'p50' if statistic == 'median' else statistic}"
        if metric not in METRICS:
            notes.append(f"{source}: {key} has no metric (percentiles kept: "
                         f"{', '.join(s for s in LATENCY_STATISTICS if s != 'mean')}); skipped")
            continue
        if metric not in latencies or statistic == "median":  # p50_X_ms repeats median_X_ms
            latencies[metric] = (key, value)
    for metric, (key, value) in latencies.items():
        records.append(record(metric, value, f"from {key}"))
    median_tpot = latencies.get("tpot_ms_p50", ("", 0.0))[1]
    if median_tpot and median_tpot > 0:
        records.append(record("decode_tok_s", 1000.0 / median_tpot,
                              "derived: 1000 / median_tpot_ms"))
    median_ttft = latencies.get("ttft_ms_p50", ("", 0.0))[1]
    input_tokens = _number(result, "total_input_tokens", where)
    if scenario.get("concurrency") == 1 and median_ttft and median_ttft > 0 and input_tokens:
        mean_input = input_tokens / completed
        records.append(record("prefill_tok_s", mean_input / (median_ttft / 1000.0),
                              "derived: mean prompt tokens / median_ttft_ms; includes HTTP and "
                              "scheduling time"))
    if not records:
        raise EvidenceError("this vllm bench serve result holds no metric that stackdecide knows",
                            where)
    return records, notes


def _vllm_scenario(result: Mapping[str, Any], completed: int,
                   where: Location) -> dict[str, ScenarioValue]:
    scenario: dict[str, ScenarioValue] = {}
    concurrency = _integer(result, "max_concurrency", where)
    if concurrency is not None:
        scenario["concurrency"] = concurrency
    rate = result.get("request_rate")
    if rate is not None:
        if rate == "inf" or (isinstance(rate, float) and math.isinf(rate)):
            scenario["request_rate"] = "inf"
        else:
            scenario["request_rate"] = _number(result, "request_rate", where) or 0.0
            burstiness = _number(result, "burstiness", where)
            if burstiness is not None:
                scenario["burstiness"] = burstiness
    prompts = _integer(result, "num_prompts", where)
    if prompts is not None:
        scenario["num_prompts"] = prompts
    # Per-request lengths are not saved unless --save-detailed; the means per completed request
    # equal the --input-len/--output-len of a random dataset run with ignore_eos.
    for key, name in (("total_input_tokens", "input_len"), ("total_output_tokens", "output_len")):
        total = _number(result, key, where)
        if total is not None:
            scenario[name] = round(total / completed)
    for key, name in (("backend", "backend"), ("model_id", "model")):
        if isinstance(result.get(key), str):
            scenario[name] = result[key]
    for key, value in result.items():
        if isinstance(value, str) and key not in _VLLM_TEXT_KEYS and key not in scenario:
            scenario[key] = parse_scenario_value(value)  # from --metadata KEY=VALUE
    return scenario


def _vllm_date(result: Mapping[str, Any], where: Location) -> datetime:
    text = result.get("date")
    if text is None:
        return datetime.now(UTC)
    try:
        # vLLM writes the local time of the machine that ran the benchmark, without a zone;
        # it is read as this machine's local time.
        return datetime.strptime(str(text), _VLLM_DATE_FORMAT).astimezone(UTC)
    except ValueError:
        raise EvidenceError(f"date '{text}' is not vLLM's {_VLLM_DATE_FORMAT}",
                            Location(where.file, where.line, None, "date")) from None


def _number(result: Mapping[str, Any], key: str, where: Location) -> float | None:
    value = result.get(key)
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise EvidenceError(f"expected a number, got {value!r}",
                            Location(where.file, where.line, None, key))
    return float(value) if math.isfinite(value) else None


def _integer(result: Mapping[str, Any], key: str, where: Location) -> int | None:
    value = _number(result, key, where)
    if value is None:
        return None
    if value != int(value) or value < 0:
        raise EvidenceError(f"expected a whole number, got {result[key]!r}",
                            Location(where.file, where.line, None, key))
    return int(value)
