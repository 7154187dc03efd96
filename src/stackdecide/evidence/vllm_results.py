"""``vllm bench serve`` result files as evidence.

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

Which keys become which metrics is the metric catalogue's (``model.metrics``, the ``vllm`` names
of ``known_as``). Each run becomes one record per metric we know, with the run's load as scenario
parameters (``concurrency``, ``request_rate``, ``num_prompts``, ``input_len``, ``output_len``,
``backend``, ``model``). Two metrics are derived, by the definitions of
``stackdecide.model.derived`` that ``stackdecide bench`` uses too, and say so in their note:

* ``decode_tok_s`` = 1000 / median TPOT (one request's decode rate at that concurrency), left out
  when the stream was bursty: more than 4 output tokens per arrival (a chunk, or chunks that
  reached the client under 50 µs apart), counted per request from ``output_lens`` and ``itls``
  when the file has them (``--save-detailed``), else estimated
  as mean ITL / mean TPOT;
* ``prefill_tok_s``, for runs at concurrency 1 only: the median over requests of prompt tokens /
  TTFT from ``input_lens`` and ``ttfts`` (``--save-detailed``), else mean prompt tokens / median
  TTFT, which is the same number when the prompts have one length and the count is odd. Either
  way it includes HTTP and scheduling time, so it understates the kernels' rate.
"""

from __future__ import annotations

import math
import re
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any, NamedTuple

from stackdecide.errors import EvidenceError, Location
from stackdecide.evidence._json_values import (
    check_counts,
    check_percentiles,
    read_integer,
    read_measured,
    read_number,
)
from stackdecide.evidence.import_base import (
    Documents,
    ImportResult,
    RunContext,
    check_record_count,
)
from stackdecide.evidence.records import EvidenceRecord, ScenarioValue, parse_scenario_value
from stackdecide.model import derived
from stackdecide.model.metrics import (
    LATENCIES,
    METRICS,
    PERCENTILE_KEYS,
    latency_statistic,
    percentile_of,
    tool_latencies,
    tool_metrics,
)

# vLLM writes our units (milliseconds, per second), so no key needs a factor.
_RATES = {key: metric for key, (metric, _) in tool_metrics("vllm").items()}
_LATENCIES = {key: latency for key, (latency, _) in tool_latencies("vllm").items()}
_LATENCY_PATTERN = re.compile(r"^(mean|median|std|p[0-9.]+)_([a-z0-9_]+)_ms$")
# Top-level text values that vLLM writes itself; any other text value came from --metadata.
_VLLM_TEXT_KEYS = {"date", "endpoint_type", "backend", "label", "model_id", "tokenizer_id",
                   "request_rate", "ramp_up_strategy"}
_VLLM_DATE_FORMAT = "%Y%m%d-%H%M%S"
_SETUP_KEYS = ("backend", "endpoint_type", "model_id", "date")


def looks_like_vllm_result(document: Mapping[str, Any]) -> bool:
    """The totals of a run, with its setup or its latencies (results copied by other tools, such
    as vLLM's nightly benchmarks, keep the metrics and drop the setup)."""
    return ("completed" in document and "request_throughput" in document
            and (any(key in document for key in _SETUP_KEYS)
                 or any(isinstance(key, str) and _LATENCY_PATTERN.match(key) for key in document)))


def read_vllm_results(documents: Documents, file: str, context: RunContext) -> ImportResult:
    """Every run of a ``vllm bench serve`` result file (one object, or one per line)."""
    if not context.candidate:
        raise EvidenceError("a vllm bench serve result names no candidate; import it with "
                            "'stackdecide evidence import FILE --candidate ID'", Location(file))
    records: list[EvidenceRecord] = []
    notes: list[str] = []
    for result, where in documents:
        source = file if len(documents) == 1 else f"{file}:{where.line}"
        run_records, run_notes = vllm_result_records(result, context, source, where)
        records.extend(run_records)
        notes.extend(run_notes)
        check_record_count(len(records), where)
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
    for key, metric in _RATES.items():
        value = read_measured(result, key, metric, where)
        if value is not None:
            records.append(record(metric, value, f"from {key}"))
    latencies: dict[str, tuple[str, float]] = {}
    for key in result:
        match = _LATENCY_PATTERN.match(key)
        if not match or match.group(2) not in _LATENCIES:
            continue
        statistic, name = match.groups()
        if statistic == "std":
            continue  # a spread of requests, not a quantity to score
        metric = LATENCIES[_LATENCIES[name]].metric("p50" if statistic == "median" else statistic)
        value = read_measured(result, key, metric, where)
        if value is None:
            notes.append(f"{source}: {key} is null; skipped")
            continue
        if metric not in METRICS:
            notes.append(f"{source}: {key} has no metric (percentiles kept: "
                         f"{', '.join(PERCENTILE_KEYS)}); skipped")
            continue
        if metric not in latencies or statistic == "median":  # p50_X_ms repeats median_X_ms
            latencies[metric] = (key, value)
    _check_percentiles(latencies, where)
    for metric, (key, value) in latencies.items():
        records.append(record(metric, value, f"from {key}"))
    derived_records, derived_notes = _derived(result, latencies, scenario, completed, where)
    records.extend(record(metric, value, note) for metric, value, note in derived_records)
    notes.extend(f"{source}: {note}" for note in derived_notes)
    if not records:
        raise EvidenceError("this vllm bench serve result holds no metric that stackdecide knows",
                            where)
    return records, notes


def _check_percentiles(latencies: Mapping[str, tuple[str, float]], where: Location) -> None:
    """Each latency's percentiles rise with the percentile (``_json_values.check_percentiles``)."""
    by_latency: dict[str, list[tuple[float, float, Location]]] = {}
    for metric, (key, value) in latencies.items():
        name, statistic = latency_statistic(metric)
        if statistic != "mean":
            by_latency.setdefault(name, []).append(
                (percentile_of(statistic), value, Location(where.file, where.line, None, key)))
    for percentiles in by_latency.values():
        check_percentiles(percentiles)


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
                                             [r.arrivals for r in requests])
        how_bursty = "median request's output tokens per arrival"
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
    arrivals: int  # chunks, those that reached the client together counted once


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
        gaps = [gap for gap in itls[i] if _finite(gap)]
        requests.append(_Request(float(inputs[i]), float(ttfts[i]), float(outputs[i]),
                                 derived.arrivals(len(itls[i]) + 1, gaps)))
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
