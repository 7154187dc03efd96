"""The decision file's capacity scenario, SLO and workload become the benchmark's config."""

from __future__ import annotations

from pathlib import Path

import pytest

import stackdecide
from engine_support import CPU_DECISION
from stackdecide.bench.capacity import SearchSettings, SloLimits
from stackdecide.bench.capacity_plan import CapacityPlan
from stackdecide.errors import DecisionFileError
from stackdecide.evidence.records import EvidenceRecord
from stackdecide.loop import bench_configs, cost_records


def decision_with(benchmark: str, tmp_path: Path, hardware_extra: str = ""):
    text = CPU_DECISION.read_text()
    text = text[:text.index("\nbenchmark:")] + benchmark
    if hardware_extra:
        text = text.replace("    gpu: cpu\n", f"    gpu: cpu\n{hardware_extra}", 1)
    path = tmp_path / "d.yaml"
    path.write_text(text)
    return stackdecide.load(path)


def test_capacity_scenario_config(tmp_path: Path) -> None:
    (tmp_path / "lengths.csv").write_text("input_len,output_len\n100,20\n300,60\n")
    decision = decision_with("""
benchmark:
  slo: {ttft_ms_p99: 500, tpot_ms_p90: 40, min_goodput: 0.95}
  workload: {lengths_file: lengths.csv}
  scenarios:
    - {scenario: capacity, search: request_rate, start: 2, precision: 0.05}
    - {scenario: capacity, num_prompts: 50}
""", tmp_path)
    rate, conc = bench_configs("http://h:1", "m", decision.model.benchmark.scenarios, 0,
                               decision.model.benchmark, tmp_path)
    slo = SloLimits({"ttft_ms_p99": 500.0, "tpot_ms_p90": 40.0}, 0.95)
    assert rate.capacity == CapacityPlan(SearchSettings(
        kind="request_rate", start=2.0, precision=0.05, min_load=0.1), slo)
    assert rate.lengths is not None and rate.lengths.pairs == ((100, 20), (300, 60))
    assert conc.capacity == CapacityPlan(SearchSettings(), slo)
    assert (conc.num_prompts, conc.input_len, conc.output_len) == (50, 512, 256)
    resolved = conc.resolved()
    assert resolved.percentiles == (50.0, 90.0, 99.0)
    assert (resolved.slo.ttft_ms, resolved.slo.tpot_ms) == (500.0, 40.0)


@pytest.mark.parametrize(("benchmark", "message"), [
    ("benchmark:\n  scenarios: [{scenario: capacity}]\n",
     "d.yaml:112:26 benchmark.scenarios[0].scenario: the capacity scenario needs benchmark.slo"),
    ("benchmark:\n  slo: {ttft_ms_p98: 5}\n  scenarios: [{scenario: capacity}]\n",
     "unknown key 'ttft_ms_p98'"),
    ("benchmark:\n  slo: {min_goodput: 2}\n  scenarios: [{scenario: capacity}]\n",
     "benchmark.slo.min_goodput"),
    ("benchmark:\n  scenarios: [{scenario: decode, precision: 0.1}]\n",
     "'precision' belongs to the capacity scenario only"),
    ("benchmark:\n  slo: {ttft_ms_p99: 5}\n  scenarios: [{scenario: capacity, concurrency: [4]}]\n",
     "leave out 'concurrency'"),
    ("benchmark:\n  slo: {ttft_ms_p99: 5}\n  scenarios: [{scenario: capacity, start: 0.5}]\n",
     "whole-number start and max_load"),
    ("benchmark:\n  slo: {ttft_ms_p99: 5}\n  scenarios: [{scenario: capacity, start: 64, "
     "max_load: 32}]\n", "start 64 is above max_load 32"),
])
def test_capacity_settings_errors_name_file_and_line(benchmark: str, message: str,
                                                     tmp_path: Path) -> None:
    with pytest.raises(DecisionFileError) as caught:
        decision_with("\n" + benchmark, tmp_path)
    assert message in str(caught.value)
    assert "d.yaml:" in str(caught.value)


def test_lengths_file_is_checked_when_the_decision_loads(tmp_path: Path) -> None:
    benchmark = ("\nbenchmark:\n  slo: {ttft_ms_p99: 5}\n  workload: {lengths_file: pairs.csv}\n"
                 "  scenarios: [{scenario: capacity}]\n")
    with pytest.raises(DecisionFileError, match=r"d.yaml:\d+:\d+ benchmark.workload.lengths_file: "
                                                "no such file"):
        decision_with(benchmark, tmp_path)
    (tmp_path / "pairs.csv").write_text("input_len,output_len\n100,20\n5,x\n")
    with pytest.raises(DecisionFileError, match=r"pairs.csv:3.*whole numbers"):
        decision_with(benchmark, tmp_path)


def test_cost_from_the_price_and_the_engines_gpus(tmp_path: Path) -> None:
    decision = decision_with("\nbenchmark:\n  slo: {ttft_ms_p99: 5}\n  scenarios: "
                             "[{scenario: capacity}]\n", tmp_path,
                             "    price_per_gpu_hour: 2.5\n")
    rate = EvidenceRecord(candidate="cpu-bf16", metric="capacity_output_tok_s", value=5000.0,
                          scenario={"scenario": "capacity"})
    [cost] = cost_records(decision, [rate])
    assert cost.metric == "cost_per_mtok_out" and cost.scenario == {"scenario": "capacity"}
    assert cost.value == pytest.approx(2.5 / 3600 / 0.005)
    assert cost.note == "2.5 per GPU hour x 1 GPU(s) at 5000 output tok/s at SLO capacity"
