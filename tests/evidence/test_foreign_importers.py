"""vllm bench sweep folders, GuideLLM reports and AIPerf exports as evidence."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from evidence.test_importers import vllm_bench_serve_result
from stackdecide.cli import main
from stackdecide.errors import EvidenceError
from stackdecide.evidence.importers import RunContext, read_evidence_file
from stackdecide.evidence.store import EvidenceStore

CONTEXT = RunContext(candidate="fp8")


def sweep_folder(root: Path) -> Path:
    """As ``vllm bench sweep serve_workload`` lays it out: one folder per point, runs inside."""
    for concurrency in (1, 8):
        point = root / f"SERVE--BENCH--WL-max_concurrency={concurrency}"
        point.mkdir(parents=True)
        runs = []
        for run in range(2):
            data = {**vllm_bench_serve_result(max_concurrency=concurrency),
                    "run_number": run, "max_num_seqs": 256}
            (point / f"run={run}.json").write_text(json.dumps(data))
            runs.append(data)
        (point / "summary.json").write_text(json.dumps(runs))
        (point / "warmup.json").write_text(json.dumps(runs[0]))
    (root / "SERVE--BENCH--WL-max_concurrency=64").mkdir()
    (root / "SERVE--BENCH--WL-max_concurrency=64" / "run=0.failure.json").write_text(
        json.dumps({"run_number": 0, "error_type": "CalledProcessError", "error": "exit 1"}))
    return root


def test_sweep_folder_reads_every_run_with_its_point(tmp_path: Path) -> None:
    result = read_evidence_file(sweep_folder(tmp_path / "exp"), CONTEXT)
    assert result.kind == "vllm-bench-sweep"
    points = {(r.scenario["sweep_point"], r.scenario["concurrency"]) for r in result.records}
    assert points == {("SERVE--BENCH--WL-max_concurrency=1", 1),
                      ("SERVE--BENCH--WL-max_concurrency=8", 8)}
    per_run = sum(len(read_evidence_file(_one_run(tmp_path, c), CONTEXT).records) for c in (1, 8))
    assert len(result.records) == 2 * per_run  # warmup.json and summary.json not read again
    assert any("failed run: CalledProcessError: exit 1" in n for n in result.notes)


def _one_run(tmp_path: Path, concurrency: int) -> Path:
    path = tmp_path / f"one-{concurrency}.json"
    path.write_text(json.dumps(vllm_bench_serve_result(max_concurrency=concurrency)))
    return path


def guidellm_report() -> dict[str, Any]:
    def dist(mean: float, p: dict[str, float]) -> dict[str, Any]:
        return {"successful": {"mean": mean, "median": p["p50"], "percentiles": p},
                "errored": None, "incomplete": None, "total": None}
    return {"args": {}, "benchmarks": [{
        "type_": "generative_benchmark",
        "config": {"strategy": {"type_": "concurrent", "streams": 16}},
        "scheduler_state": {"start_time": 1764316800.0},
        "metrics": {
            "time_to_first_token_ms": dist(120.0, {"p50": 110.0, "p90": 150.0, "p95": 170.0,
                                                   "p99": 210.0, "p999": 300.0}),
            "inter_token_latency_ms": dist(9.5, {"p50": 9.4, "p90": 10.0, "p95": 10.5,
                                                 "p99": 11.0}),
            "time_per_output_token_ms": dist(10.0, {"p50": 10.0, "p90": 11.0, "p95": 11.0,
                                                    "p99": 12.0}),
            "request_latency": dist(2.5, {"p50": 2.4, "p90": 2.8, "p95": 2.9, "p99": 3.1}),
            "requests_per_second": {"successful": {"mean": 6.2}},
            "output_tokens_per_second": {"successful": {"mean": 1587.0}},
            "prompt_token_count": {"successful": {"mean": 512.0}},
            "output_token_count": {"successful": {"mean": 256.0}},
        }}, {
        "config": {"strategy": {"type_": "poisson", "rate": 4.0}},
        "metrics": {"requests_per_second": {"successful": {"mean": 3.9}}}}]}


def test_guidellm_report(tmp_path: Path) -> None:
    path = tmp_path / "benchmarks.json"
    path.write_text(json.dumps(guidellm_report()))
    result = read_evidence_file(path, CONTEXT)
    assert result.kind == "guidellm"
    first = {r.metric: r.value for r in result.records if r.scenario.get("concurrency") == 16}
    assert first == {"ttft_ms_mean": 120.0, "ttft_ms_p50": 110.0, "ttft_ms_p90": 150.0,
                     "ttft_ms_p95": 170.0, "ttft_ms_p99": 210.0, "tpot_ms_mean": 9.5,
                     "tpot_ms_p50": 9.4, "tpot_ms_p90": 10.0, "tpot_ms_p95": 10.5,
                     "tpot_ms_p99": 11.0, "e2el_ms_mean": 2500.0, "e2el_ms_p50": 2400.0,
                     "e2el_ms_p90": 2800.0, "e2el_ms_p95": 2900.0, "e2el_ms_p99": 3100.0,
                     "request_per_s": 6.2, "output_tok_s": 1587.0}
    record = next(r for r in result.records if r.scenario.get("concurrency") == 16)
    assert record.scenario == {"strategy": "concurrent", "concurrency": 16, "input_len": 512,
                               "output_len": 256}
    assert record.timestamp.year == 2025
    [rate] = [r for r in result.records if "request_rate" in r.scenario]
    assert (rate.metric, rate.value, rate.scenario) == (
        "request_per_s", 3.9, {"strategy": "poisson", "request_rate": 4.0})


def aiperf_export() -> dict[str, Any]:
    def metric(unit: str, avg: float, **p: float) -> dict[str, Any]:
        return {"unit": unit, "avg": avg, **p, "min": 1, "max": 2, "std": 0.1}
    return {
        "schema_version": "1.4", "aiperf_version": "0.13.0", "benchmark_id": "b1",
        "input_config": {"phases": {"profiling": {"concurrency": 32}}},
        "start_time": "2026-11-28T09:00:00+00:00",
        "time_to_first_token": metric("ms", 200.0, p50=180.0, p90=260.0, p99=400.0),
        "inter_token_latency": metric("ms", 12.0, p50=11.5, p99=15.0),
        "request_latency": metric("ms", 3300.0, p50=3200.0, p99=4100.0),
        "request_throughput": {"unit": "requests/sec", "avg": 9.1},
        "output_token_throughput": {"unit": "tokens/sec", "avg": 2330.0},
        "input_sequence_length": {"unit": "tokens", "avg": 512.0},
        "output_sequence_length": {"unit": "tokens", "avg": 256.0},
    }


def test_aiperf_export(tmp_path: Path) -> None:
    path = tmp_path / "profile_export_aiperf.json"
    path.write_text(json.dumps(aiperf_export()))
    result = read_evidence_file(path, CONTEXT)
    assert result.kind == "aiperf"
    assert {r.metric: r.value for r in result.records} == {
        "ttft_ms_mean": 200.0, "ttft_ms_p50": 180.0, "ttft_ms_p90": 260.0, "ttft_ms_p99": 400.0,
        "tpot_ms_mean": 12.0, "tpot_ms_p50": 11.5, "tpot_ms_p99": 15.0, "e2el_ms_mean": 3300.0,
        "e2el_ms_p50": 3200.0, "e2el_ms_p99": 4100.0, "request_per_s": 9.1,
        "output_tok_s": 2330.0}
    assert result.records[0].scenario == {"concurrency": 32, "input_len": 512, "output_len": 256}
    assert result.records[0].timestamp.hour == 9


def test_foreign_files_need_a_candidate(tmp_path: Path) -> None:
    path = tmp_path / "b.json"
    path.write_text(json.dumps(guidellm_report()))
    with pytest.raises(EvidenceError, match="GuideLLM report names no candidate"):
        read_evidence_file(path)


def test_cli_imports_a_sweep_folder_once(tmp_path: Path) -> None:
    folder = sweep_folder(tmp_path / "exp")
    store = tmp_path / "e.db"
    args = ["evidence", "import", str(folder), "--evidence", str(store), "--candidate", "fp8"]
    first = CliRunner().invoke(main, args)
    assert first.exit_code == 0, first.output
    assert "vllm bench sweep folder" in first.output
    again = CliRunner().invoke(main, args)
    assert "skipped, the same content" in again.output
    with EvidenceStore(store) as s:
        assert s.count(candidate="fp8") > 0
