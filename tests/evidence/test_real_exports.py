"""Exports written by the tools themselves, found in public repositories (tests/data/exports/README.md
says where): each imports with every stored number equal to the file's, its load read from where
that version of the tool keeps it, and what it cannot hold named in a note."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from stackdecide.errors import EvidenceError
from stackdecide.evidence.import_base import ImportResult
from stackdecide.evidence.importers import RunContext, parse_evidence_text, read_evidence_file

EXPORTS = Path(__file__).resolve().parents[1] / "data" / "exports"
CONTEXT = RunContext(candidate="a")

# Which key of each tool's file is which metric, written out here rather than read from the
# catalogue, so that a wrong map in the catalogue fails these tests: (metric, factor to ours).
GUIDELLM_LATENCIES = {"time_to_first_token_ms": ("ttft", 1.0), "inter_token_latency_ms": ("tpot", 1.0),
                      "request_latency": ("e2el", 1000.0)}
GUIDELLM_RATES = {"requests_per_second": "request_per_s", "output_tokens_per_second": "output_tok_s"}
AIPERF_LATENCIES = {"time_to_first_token": "ttft", "ttft": "ttft", "inter_token_latency": "tpot",
                    "request_latency": "e2el"}
AIPERF_RATES = {"request_throughput": "request_per_s", "output_token_throughput": "output_tok_s"}
VLLM_RATES = {"output_throughput": "output_tok_s", "total_token_throughput": "total_tok_s",
              "request_throughput": "request_per_s"}
PERCENTILES = ("p50", "p90", "p95", "p99")


def load(name: str) -> dict[str, Any]:
    data: dict[str, Any] = json.loads((EXPORTS / name).read_text(encoding="utf-8"))
    return data


def values(result: ImportResult, source: str | None = None) -> dict[str, float]:
    return {r.metric: r.value for r in result.records if source is None or r.source == source}


def guidellm_expected(benchmark: dict[str, Any]) -> dict[str, float]:
    expected: dict[str, float] = {}
    for key, (latency, scale) in GUIDELLM_LATENCIES.items():
        summary = benchmark["metrics"][key]["successful"]
        expected[f"{latency}_ms_mean"] = summary["mean"] * scale
        percentiles = {"p50": summary["median"], **summary["percentiles"]}
        expected |= {f"{latency}_ms_{p}": percentiles[p] * scale for p in PERCENTILES}
    for key, metric in GUIDELLM_RATES.items():
        expected[metric] = benchmark["metrics"][key]["successful"]["mean"]
    return expected


def aiperf_expected(export: dict[str, Any]) -> dict[str, float]:
    metrics = export.get("records", export)
    expected: dict[str, float] = {}
    for key, latency in AIPERF_LATENCIES.items():
        if key in metrics:
            assert metrics[key]["unit"] == "ms"
            expected[f"{latency}_ms_mean"] = metrics[key]["avg"]
            expected |= {f"{latency}_ms_{p}": metrics[key][p] for p in PERCENTILES}
    for key, metric in AIPERF_RATES.items():
        assert metrics[key]["unit"].endswith("/sec")
        expected[metric] = metrics[key]["avg"]
    return expected


def vllm_expected(run: dict[str, Any]) -> dict[str, float]:
    expected = {metric: run[key] for key, metric in VLLM_RATES.items() if key in run}
    for latency in ("ttft", "tpot", "itl", "e2el"):
        for statistic, ours in (("mean", "mean"), ("median", "p50"), ("p99", "p99")):
            if f"{statistic}_{latency}_ms" in run:
                expected[f"{latency}_ms_{ours}"] = run[f"{statistic}_{latency}_ms"]
    expected["decode_tok_s"] = 1000 / run["median_tpot_ms"]
    return expected


@pytest.mark.parametrize(("name", "load_expected"), [
    ("guidellm-0.2-benchmarks.json", {"strategy": "synchronous", "concurrency": 1}),
    ("guidellm-0.5-benchmarks.json", {"strategy": "concurrent", "concurrency": 4}),
])
def test_guidellm_reports(name: str, load_expected: dict[str, Any]) -> None:
    report = load(name)
    result = read_evidence_file(EXPORTS / name, CONTEXT)
    assert result.kind == "guidellm"
    assert values(result) == guidellm_expected(report["benchmarks"][0])
    record = result.records[0]
    assert {k: record.scenario[k] for k in load_expected} == load_expected
    assert record.timestamp.timestamp() == pytest.approx(
        report["benchmarks"][0].get("scheduler_state", report["benchmarks"][0].get("run_stats"))
        ["start_time"])


def test_guidellm_0_2_says_its_p50_is_the_median() -> None:
    """GuideLLM 0.2 writes the median beside the percentiles, which have no p50."""
    result = read_evidence_file(EXPORTS / "guidellm-0.2-benchmarks.json", CONTEXT)
    assert all("p50 from median" in (r.note or "") for r in result.records)
    newer = read_evidence_file(EXPORTS / "guidellm-0.5-benchmarks.json", CONTEXT)
    assert not any("median" in (r.note or "") for r in newer.records)


@pytest.mark.parametrize(("name", "load_expected"), [
    ("aiperf-0.1-profile_export_aiperf.json", {"concurrency": 100}),
    ("aiperf-0.10-concurrency-profile_export_aiperf.json", {"concurrency": 8}),
    ("aiperf-0.10-rate-profile_export_aiperf.json", {"request_rate": 1.0}),
])
def test_aiperf_exports(name: str, load_expected: dict[str, Any]) -> None:
    export = load(name)
    result = read_evidence_file(EXPORTS / name, CONTEXT)
    assert result.kind == "aiperf"
    assert values(result) == aiperf_expected(export)
    scenario = result.records[0].scenario
    assert {k: v for k, v in scenario.items() if k in ("concurrency", "request_rate")} == \
        load_expected


def test_aiperf_notes_say_what_no_record_holds() -> None:
    old = read_evidence_file(EXPORTS / "aiperf-0.1-profile_export_aiperf.json", CONTEXT)
    assert all("11 requests failed" in (r.note or "") for r in old.records)
    new = read_evidence_file(EXPORTS / "aiperf-0.10-rate-profile_export_aiperf.json", CONTEXT)
    assert any("total_token_throughput not imported" in note for note in new.notes)
    export = load("aiperf-0.10-rate-profile_export_aiperf.json")
    export["goodput"] = {"unit": "requests/sec", "avg": 0.8}
    with_goodput = parse_evidence_text(json.dumps(export), "g.json", CONTEXT)
    assert any(note.startswith("g.json: goodput 0.8 requests/sec not imported")
               for note in with_goodput.notes)


def test_the_warm_up_phase_is_not_the_measured_load() -> None:
    export = load("aiperf-0.10-concurrency-profile_export_aiperf.json")
    warmup, profiling = export["input_config"]["phases"]
    warmup["concurrency"], profiling["concurrency"] = 2, 16
    result = parse_evidence_text(json.dumps(export), "w.json", CONTEXT)
    assert {r.scenario["concurrency"] for r in result.records} == {16}


def test_phases_by_name_and_a_loadgen_are_read_too() -> None:
    export = load("aiperf-0.10-concurrency-profile_export_aiperf.json")
    export["input_config"]["phases"] = {"warmup": {"concurrency": 2},
                                        "profiling": {"concurrency": 32}}
    assert parse_evidence_text(json.dumps(export), "p.json", CONTEXT).records[0] \
        .scenario["concurrency"] == 32
    del export["input_config"]["phases"]
    export["input_config"]["loadgen"] = {"request_rate": 2.5}
    assert parse_evidence_text(json.dumps(export), "p.json", CONTEXT).records[0] \
        .scenario["request_rate"] == 2.5


@pytest.mark.parametrize("name", ["vllm-0.25.1-bench-serve.json",
                                  "vllm-2024-08-benchmark-serving.json"])
def test_vllm_bench_serve_results(name: str) -> None:
    result = read_evidence_file(EXPORTS / name, CONTEXT)
    assert result.kind == "vllm-bench-serve"
    assert values(result) == vllm_expected(load(name))


def test_a_run_where_every_request_failed_is_refused() -> None:
    with pytest.raises(EvidenceError, match="completed: no request completed in this run"):
        read_evidence_file(EXPORTS / "vllm-0.25.1-bench-serve-all-failed.json", CONTEXT)


def test_a_vllm_sweep_folder() -> None:
    folder = EXPORTS / "vllm-0.25.1-sweep"
    result = read_evidence_file(folder, CONTEXT)
    assert result.kind == "vllm-bench-sweep"
    runs = sorted(folder.rglob("run=*.json"))
    assert len(runs) == 4
    for run in runs:
        assert values(result, str(run)) == vllm_expected(json.loads(run.read_text()))
        point = {r.scenario["sweep_point"] for r in result.records if r.source == str(run)}
        assert point == {run.parent.name}


def test_a_results_copy_without_the_setup_keys_is_read() -> None:
    """Tools that tabulate vLLM results (vLLM's own nightly benchmarks) keep the metrics and drop
    the setup keys (date, backend, model_id): such a file is still a vllm bench serve result."""
    run = load("vllm-0.25.1-bench-serve.json")
    subset = {key: value for key, value in run.items()
              if key not in ("date", "backend", "endpoint_type", "model_id", "tokenizer_id",
                             "label")}
    result = parse_evidence_text(json.dumps(subset), "nightly.json", CONTEXT)
    assert result.kind == "vllm-bench-serve"
    assert values(result) == vllm_expected(run)
