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
``model``). Two metrics are derived, by the definitions of ``stackdecide.model.derived`` that
``stackdecide bench`` uses too, and say so in their note:

* ``decode_tok_s`` = 1000 / median TPOT (one request's decode rate at that concurrency), left out
  when the stream was bursty: more than 4 output tokens per streamed chunk, counted per request
  from ``output_lens`` and ``itls`` when the file has them (``--save-detailed``), else estimated
  as mean ITL / mean TPOT;
* ``prefill_tok_s``, for runs at concurrency 1 only: the median over requests of prompt tokens /
  TTFT from ``input_lens`` and ``ttfts`` (``--save-detailed``), else mean prompt tokens / median
  TTFT, which is the same number when the prompts have one length and the count is odd. Either
  way it includes HTTP and scheduling time, so it understates the kernels' rate.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal, NamedTuple

from stackdecide._files import read_user_text
from stackdecide.errors import EvidenceError, Location
from stackdecide.evidence._json_values import (
    check_counts,
    loads,
    read_integer,
    read_measured,
    read_number,
)
from stackdecide.evidence.records import EXPORT_FORMAT, EvidenceRecord, HardwareInfo, ScenarioValue
from stackdecide.model import derived
from stackdecide.model.metrics import LATENCY_STATISTICS, METRICS

MAX_FILE_BYTES = 512 * 1024 * 1024  # detailed vLLM results hold every generated text

FileKind = Literal["stackdecide", "vllm-bench-serve", "vllm-bench-sweep", "guidellm", "aiperf"]


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
    """Read one evidence file of any kind (a folder: a ``vllm bench sweep`` experiment); errors
    name the file and, where known, the line."""
    path = Path(path)
    if path.is_dir() and next(path.rglob("run=*.json"), None) is not None:
        from stackdecide.evidence.foreign import read_sweep_folder  # it builds on this module

        return read_sweep_folder(path, context or RunContext())
    text = read_user_text(path, kind="evidence file", content="JSON", limit=MAX_FILE_BYTES,
                          error=EvidenceError)
    return parse_evidence_text(text, str(path), context)


def parse_evidence_text(text: str, file: str = "<input>",
                        context: RunContext | None = None) -> ImportResult:
    """Detect the format of ``text`` (one JSON document, or JSON lines) and read its records."""
    context = context or RunContext()
    if not text.strip():
        raise EvidenceError("empty file, expected JSON evidence or a vllm bench serve result",
                            Location(file))
    try:
        document = loads(text, Location(file))
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
    from stackdecide.evidence import foreign  # GuideLLM and AIPerf readers build on this module

    if foreign.looks_like_guidellm(document):
        return foreign.guidellm_records(document, file, context)
    if foreign.looks_like_aiperf(document):
        return foreign.aiperf_records(document, file, context)
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
            item = loads(line, Location(file, number))
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
    completed = read_integer(result, "completed", where)
    if not completed:
        raise EvidenceError("no request completed in this run, so it measured nothing",
                            Location(where.file, where.line, None, "completed"))
    failed = read_integer(result, "failed", where) or 0
    check_counts(result, completed, failed, where)
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
        value = read_measured(result, key, metric, where)
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
        metric = f"{name}_ms_{'p50' if statistic == 'median' else statistic}"
        value = read_measured(result, key, metric, where)
        if value is None:
            notes.append(f"{source}: {key} is null; skipped")
            continue
        if metric not in METRICS:
            notes.append(f"{source}: {key} has no metric (percentiles kept: "
                         f"{', '.join(s for s in LATENCY_STATISTICS if s != 'mean')}); skipped")
            continue
        if metric not in latencies or statistic == "median":  # p50_X_ms repeats median_X_ms
            latencies[metric] = (key, value)
    for metric, (key, value) in latencies.items():
        records.append(record(metric, value, f"from {key}"))
    derived_records, derived_notes = _derived(result, latencies, scenario, completed, where)
    records.extend(record(metric, value, note) for metric, value, note in derived_records)
    notes.extend(f"{source}: {note}" for note in derived_notes)
    if not records:
        raise EvidenceError("this vllm bench serve result holds no metric that stackdecide knows",
                            where)
    return records, notes


def _derived(result: Mapping[str, Any], latencies: Mapping[str, tuple[str, float]],
             scenario: Mapping[str, ScenarioValue], completed: int, where: Location
             ) -> tuple[list[tuple[str, float, str]], list[str]]:
    """``decode_tok_s`` and ``prefill_tok_s`` by the definitions of ``model.derived``, from the
    file's per-request lists when it has them (``--save-detailed``), else from its summary."""
    found: list[tuple[str, float, str]] = []
    notes: list[str] = []
    requests = _detailed(result)
    median_tpot = latencies.get("tpot_ms_p50", ("", 0.0))[1]
    if requests is not None:
        per_chunk = derived.tokens_per_chunk([r.output_tokens for r in requests],
                                             [r.chunks for r in requests])
        how_bursty = "median request's output tokens per streamed chunk"
    else:
        per_chunk = derived.tokens_per_chunk_from_means(
            latencies.get("itl_ms_mean", ("", 0.0))[1], latencies.get("tpot_ms_mean", ("", 0.0))[1])
        how_bursty = "mean_itl_ms / mean_tpot_ms, the tokens per streamed chunk"
    decode = derived.decode_tok_s(median_tpot, per_chunk)
    if decode is not None:
        found.append(("decode_tok_s", decode, "derived: 1000 / median_tpot_ms"))
    elif median_tpot and per_chunk is not None:
        notes.append(f"no decode_tok_s: the stream was bursty ({how_bursty} is {per_chunk:.1f}, "
                     f"above {derived.BURSTY_TOKENS_PER_CHUNK:g}), so its TPOT times the HTTP "
                     "path, not decoding")
    # TTFT at higher concurrency waits behind other requests' prefills: not a prefill rate
    if scenario.get("concurrency") != 1:
        return found, notes
    if requests is not None:
        prefill = derived.prefill_tok_s([r.prompt_tokens for r in requests],
                                        [r.ttft_s for r in requests])
        how = ("derived: median over requests of prompt tokens / TTFT (per-request input_lens "
               "and ttfts)")
    else:
        input_tokens = read_number(result, "total_input_tokens", where)
        prefill = derived.prefill_tok_s_from_summary(
            input_tokens / completed if input_tokens else None,
            latencies.get("ttft_ms_p50", ("", 0.0))[1])
        how = ("derived: mean prompt tokens / median_ttft_ms (no per-request data; the median "
               "request's rate when prompts have one length and the count is odd)")
    if prefill is not None:
        found.append(("prefill_tok_s", prefill, f"{how}; includes HTTP and scheduling time"))
    return found, notes


class _Request(NamedTuple):
    """One successful request of a ``--save-detailed`` file."""

    prompt_tokens: float
    ttft_s: float
    output_tokens: float
    chunks: int


def _detailed(result: Mapping[str, Any]) -> list[_Request] | None:
    """Each successful request, from the per-request lists ``--save-detailed`` adds; None when
    the file has none or they do not line up."""
    lists = [result.get(key) for key in ("input_lens", "ttfts", "output_lens", "itls")]
    if not all(isinstance(item, list) for item in lists):
        return None
    inputs, ttfts, outputs, itls = lists
    errors = result.get("errors")
    count = len(inputs)
    if any(len(item) != count for item in lists) or \
            (isinstance(errors, list) and len(errors) != count):
        return None
    requests = []
    for i in range(count):
        failed = isinstance(errors, list) and bool(errors[i])
        values = (inputs[i], ttfts[i], outputs[i])
        if failed or not all(_finite(v) for v in values) or not isinstance(itls[i], list):
            continue
        # vLLM's client records a gap for every streamed chunk after the first
        requests.append(_Request(float(inputs[i]), float(ttfts[i]), float(outputs[i]),
                                 len(itls[i]) + 1))
    return requests or None


def _finite(value: Any) -> bool:
    return isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)


def _vllm_scenario(result: Mapping[str, Any], completed: int,
                   where: Location) -> dict[str, ScenarioValue]:
    scenario: dict[str, ScenarioValue] = {}
    concurrency = read_integer(result, "max_concurrency", where)
    if concurrency is not None:
        scenario["concurrency"] = concurrency
    rate = result.get("request_rate")
    if rate is not None:
        if rate == "inf" or (isinstance(rate, float) and math.isinf(rate)):
            scenario["request_rate"] = "inf"
        else:
            scenario["request_rate"] = read_number(result, "request_rate", where) or 0.0
            burstiness = read_number(result, "burstiness", where)
            if burstiness is not None:
                scenario["burstiness"] = burstiness
    prompts = read_integer(result, "num_prompts", where)
    if prompts is not None:
        scenario["num_prompts"] = prompts
    # Per-request lengths are not saved unless --save-detailed; the means per completed request
    # equal the --input-len/--output-len of a random dataset run with ignore_eos.
    for key, name in (("total_input_tokens", "input_len"), ("total_output_tokens", "output_len")):
        total = read_number(result, key, where)
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
