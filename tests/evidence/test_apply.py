"""apply_evidence: measured scores replace judged ones, with provenance, flags and notes."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import stackdecide
from stackdecide.errors import DecisionFileError, EvidenceError
from stackdecide.evidence.apply import (
    apply_evidence,
    gpu_matches,
    scenario_matches,
    version_problems,
)
from stackdecide.evidence.records import EvidenceSet, HardwareInfo
from stackdecide.evidence.store import EvidenceStore
from stackdecide.facts.pins import pin_specifier

from .conftest import make_record

CUDA, FI271, FI262 = "vllm-cuda-torch271", "vllm-flashinfer-torch271", "vllm-flashinfer-torch262"
FP8, OPT, STABILITY, TARGETS = ("fp8_performance", "rtx4090_optimization",
                                "installation_stability", "performance_targets")


def test_rtx4090_decode_measurements_replace_judged_scores_and_change_the_winner(
        rtx4090_table_path: Path, tmp_path: Path) -> None:
    decision = stackdecide.load(rtx4090_table_path)
    judged = decision.score()
    assert judged.winner == FI271
    assert judged.totals == pytest.approx([72.5, 89.75, 85.0])

    with EvidenceStore(tmp_path / "e.db") as store:
        store.add([make_record(CUDA, "decode_tok_s", v) for v in (148.0, 150.0, 153.0)]
                  + [make_record(FI271, "decode_tok_s", 120.0)])
        evidence = store.load()
    ranking = decision.score(evidence=evidence)

    cuda = ranking.cells[0][decision.criterion_index(FP8)]
    assert cuda.measured and cuda.source == "measured"
    assert cuda.judged == 7.0 and cuda.raw == 150.0 and cuda.unit == "tok/s"
    assert cuda.metric == "decode_tok_s" and cuda.samples == 3 and cuda.spread == 5.0
    assert cuda.score == 10.0  # the best measured candidate
    assert cuda.record_ids == (1, 2, 3) and cuda.flags == ()
    fi271 = ranking.cells[1][decision.criterion_index(FP8)]
    assert fi271.score == pytest.approx(8.0)  # relative_to_best: 120 / 150 * 10
    assert fi271.judged == 9.5 and fi271.samples == 1 and fi271.spread is None
    assert fi271.record_ids == (4,)
    fi262 = ranking.cells[2][decision.criterion_index(FP8)]
    assert not fi262.measured and fi262.score == 8.5
    # performance_targets uses the same decode rates: target 100..160 -> both inside, full score
    targets = [row[decision.criterion_index(TARGETS)] for row in ranking.cells]
    assert [c.score for c in targets] == [10.0, 10.0, 8.0]
    assert [c.measured for c in targets] == [True, True, False]
    # unmeasured criteria keep the judged scores
    assert all(not row[decision.criterion_index(OPT)].measured for row in ranking.cells)

    # 0.35*10 + 0.25*6 + 0.2*9.5 + 0.2*10 = 8.9; 0.35*8 + 0.25*9 + 0.2*8 + 0.2*10 = 8.65
    assert ranking.totals == pytest.approx([89.0, 86.5, 85.0])
    assert ranking.winner == CUDA
    assert ranking.measured_cells == 4
    notes = "\n".join(ranking.notes)
    assert "evidence: 4 of 4 evidence records used" in notes
    assert (f"fp8_performance: measured for 2 of 3 candidates (decode_tok_s, relative_to_best); "
            f"{FI262} keeps its judged score, which is not on the same footing") in notes
    assert "installation_stability: no matching launch_ok evidence; judged scores kept" in notes


def test_no_evidence_changes_nothing(rtx4090_path: Path) -> None:
    decision = stackdecide.load(rtx4090_path)
    applied = apply_evidence(decision, EvidenceSet())
    assert applied.cells == decision.judged_cells()
    assert applied.metric_values == {}
    assert np.allclose(decision.score(evidence=EvidenceSet()).totals, decision.score().totals)


def test_other_hardware_is_ignored_unless_asked_and_then_flagged(rtx4090_path: Path) -> None:
    decision = stackdecide.load(rtx4090_path)
    evidence = EvidenceSet.of([
        make_record(CUDA, "decode_tok_s", 150.0, id=1),
        make_record(FI271, "decode_tok_s", 300.0, id=2, hardware=HardwareInfo(gpu="NVIDIA H100 80GB HBM3")),
        make_record(FI271, "decode_tok_s", 290.0, id=3, hardware=None),
        make_record("someone-else", "decode_tok_s", 10.0, id=4),
    ])
    strict = apply_evidence(decision, evidence)
    j = decision.criterion_index(FP8)
    assert strict.cells[0][j].measured and not strict.cells[1][j].measured
    assert strict.ignored == {"other-hardware": 1, "unknown-hardware": 1, "unknown-candidate": 1}
    notes = "\n".join(strict.notes)
    assert ("ignored 1 evidence record measured on other hardware (NVIDIA H100 80GB HBM3), not "
            "the decision's NVIDIA GeForce RTX 4090 Laptop GPU") in notes
    assert "ignored 1 evidence record that name no GPU" in notes
    assert "ignored 1 evidence record of candidates not in this decision: someone-else" in notes

    loose = apply_evidence(decision, evidence, any_hardware=True)
    cell = loose.cells[1][j]
    assert cell.measured and cell.raw == 295.0 and cell.record_ids == (2, 3)
    assert cell.flags == ("other-hardware", "unknown-hardware")
    assert loose.cells[0][j].score == pytest.approx(150 / 295 * 10)
    assert loose.ignored == {"unknown-candidate": 1}


@pytest.mark.parametrize(("wanted", "measured", "same"), [
    ("H100", "NVIDIA H100 80GB HBM3", True),
    ("h100", "NVIDIA H100 PCIe", True),
    ("NVIDIA H100 PCIe", "NVIDIA H100 80GB HBM3", False),
    ("H200", "NVIDIA H200", True),
    ("NVIDIA GeForce RTX 4090 Laptop GPU", "RTX 4090 Laptop GPU", True),
    ("NVIDIA GeForce RTX 4090 Laptop GPU", "NVIDIA GeForce RTX 4090", False),
    ("RTX 3080 Max-Q", "NVIDIA GeForce RTX 3080 Laptop GPU", False),
    ("RTX 4090 Max-Q", "NVIDIA GeForce RTX 4090 Laptop GPU Max-Q", True),
    ("RTX 4090 Mobile", "NVIDIA GeForce RTX 4090 Laptop GPU", True),
    ("H100 Tensor Core GPU", "NVIDIA H100 80GB HBM3", True),
    ("A100", "NVIDIA A100-SXM4-80GB", True),
    ("A10", "NVIDIA A100-SXM4-80GB", False),
    ("L4", "NVIDIA L40S", False),
    ("NVIDIA", "NVIDIA H100", False),
])
def test_gpu_names_match_case_insensitively_by_their_words(wanted: str, measured: str,
                                                            same: bool) -> None:
    assert gpu_matches(wanted, measured) is same


def test_version_pins_are_checked_with_pep440() -> None:
    assert str(pin_specifier("12.8")) == "==12.8"  # as pip reads torch==12.8: not 12.8.1
    assert str(pin_specifier("12.*")) == "==12.*"
    assert str(pin_specifier(">=0.10.1")) == ">=0.10.1"
    assert pin_specifier("latest") is None
    pins = {"vllm": ">=0.10.1", "torch": "==2.7.1", "cuda": "12.8", "flashinfer": "0.2.11"}
    ok = {"vllm": "0.10.2.dev12+g1234abc", "torch": "2.7.1+cu128", "cuda": "12.8",
          "flashinfer-python": "0.2.11"}
    assert version_problems(pins, ok) == {}
    assert version_problems(pins, {**ok, "torch": "2.6.0", "cuda": "12.9"}) == {
        "torch": "mismatch", "cuda": "mismatch"}
    assert version_problems(pins, {"vllm": "0.9.2", "torch": "unknown"}) == {
        "vllm": "mismatch", "torch": "unknown", "cuda": "unknown", "flashinfer": "unknown"}


def test_version_mismatches_are_used_but_flagged(rtx4090_path: Path) -> None:
    decision = stackdecide.load(rtx4090_path)
    evidence = EvidenceSet.of([
        make_record(CUDA, "decode_tok_s", 150.0, software={"vllm": "0.9.2", "torch": "2.7.1",
                                                         "cuda": "12.8", "transformers": "4.55.0"}),
        make_record(FI271, "decode_tok_s", 140.0, software={"vllm": "0.10.1.1", "torch": "2.7.1",
                                                          "cuda": "12.8"}),
    ])
    applied = apply_evidence(decision, evidence)
    j = decision.criterion_index(FP8)
    assert applied.cells[0][j].flags == ("version-mismatch",)
    assert applied.cells[1][j].flags == ("version-unknown",)
    notes = "\n".join(applied.notes)
    assert f"flagged version-mismatch: {CUDA}: vllm 0.9.2 is outside '>=0.10.1'" in notes
    assert f"flagged version-unknown (no recorded version, or a pin that is not PEP 440): {FI271}: " \
           "transformers (pinned '==4.55.0')" in notes


DECISION = """\
schema: stackdecide/v1
decision:
  title: Scenario and constraint test
  hardware: {gpu: H100}
criteria:
  - id: speed
    weight: 0.5
    measure: {metric: decode_tok_s, value: linear, worst: 50, best: 150, scenario: {concurrency: 1}}
  - id: stability
    weight: 0.3
    measure: {metric: launch_ok, value: pass_fail}
  - id: latency
    weight: 0.2
    direction: cost
    scale: [1, 5]
    measure: {metric: ttft_ms_p99, value: relative_to_best}
candidates:
  - {id: a, scores: {speed: 5, stability: 5, latency: 3}}
  - {id: b, scores: {speed: 5, stability: 5, latency: 3}}
constraints: ["vram_gb <= 76", "decode_tok_s >= 20"]
"""


def _h100(candidate: str, metric: str, value: float, **fields: object):  # type: ignore[no-untyped-def]
    return make_record(candidate, metric, value, hardware=HardwareInfo(gpu="NVIDIA H100 80GB HBM3"),
                       software={}, **fields)


def test_scenario_filter_aggregation_and_value_functions() -> None:
    decision = stackdecide.parse(DECISION, "scenario.yaml")
    evidence = EvidenceSet.of([
        _h100("a", "decode_tok_s", 120.0, scenario={"concurrency": 1, "input_len": 1024}),
        _h100("a", "decode_tok_s", 110.0, scenario={"concurrency": 1, "input_len": 2048}),
        _h100("a", "decode_tok_s", 40.0, scenario={"concurrency": 64}),
        _h100("b", "decode_tok_s", 95.0, scenario={"concurrency": "1"}),
        _h100("a", "launch_ok", 1.0), _h100("a", "launch_ok", 1.0),
        _h100("b", "launch_ok", 0.0, note="CUDA out of memory"), _h100("b", "launch_ok", 1.0),
        _h100("a", "ttft_ms_p99", 80.0), _h100("b", "ttft_ms_p99", 200.0),
    ])
    applied = apply_evidence(decision, evidence)
    speed_a, stability_a, latency_a = applied.cells[0]
    speed_b, stability_b, latency_b = applied.cells[1]
    assert speed_a.raw == 115.0 and speed_a.samples == 2 and speed_a.spread == 10.0
    assert speed_a.score == pytest.approx(6.5)  # (115 - 50) / 100 * 10
    assert speed_b.raw == 95.0 and speed_b.score == pytest.approx(4.5)
    assert stability_a.score == 10.0
    assert stability_b.raw == 0.5 and stability_b.score == 0.0  # half the launches failed
    # cost scale 1..5, best end 1: a is the best (1); b: goodness 80/200 -> 5 - 0.4 * 4 = 3.4
    assert latency_a.score == 1.0 and latency_b.score == pytest.approx(3.4)
    assert any("'a' aggregates decode_tok_s over 2 different scenarios" in n for n in applied.notes)
    # constraints see the least favourable scenario: the slowest decode, the largest memory
    assert applied.metric_values["a"]["decode_tok_s"] == 40.0
    ranking = decision.score(evidence=EvidenceSet.of([*evidence, _h100("b", "vram_gb", 70.0),
                                                      _h100("b", "vram_gb", 77.5,
                                                            scenario={"concurrency": 64})]))
    assert ranking.infeasible == {"b": ("vram_gb = 77.5 breaks 'vram_gb <= 76'",)}
    assert ranking.winner == "a"


def test_evidence_of_an_earlier_engine_configuration_is_left_out() -> None:
    """A launch that failed before the engine block was fixed does not count against the fix
    (TP 2 on the H200s: died with the all-reduce fusion on, started with it off)."""
    decision = stackdecide.parse(DECISION.replace(
        "  - {id: b, scores: {speed: 5, stability: 5, latency: 3}}",
        "  - {id: b, scores: {speed: 5, stability: 5, latency: 3},\n"
        "     engine: {tensor_parallel_size: 2}}").replace(
        "hardware: {gpu: H100}", "hardware: {gpu: H100, count: 2}"), "scenario.yaml")
    now = decision.candidate("b").config_sha256
    before_fix = stackdecide.parse(DECISION, "scenario.yaml").candidate("b").config_sha256
    assert now != before_fix
    evidence = EvidenceSet.of([
        _h100("b", "launch_ok", 0.0, config_sha256=before_fix, note="illegal memory access"),
        _h100("b", "launch_ok", 1.0, config_sha256=now),
        _h100("b", "decode_tok_s", 120.0, config_sha256=now),
        _h100("a", "launch_ok", 1.0),  # no configuration recorded (typed in): used
    ])
    applied = apply_evidence(decision, evidence)
    stability_b = applied.cells[1][1]
    assert stability_b.raw == 1.0 and stability_b.samples == 1 and stability_b.score == 10.0
    assert applied.cells[0][1].raw == 1.0
    assert ("ignored 1 evidence record measured with an earlier engine configuration of b (its "
            "engine or env block changed since; kept in the store)") in applied.notes
    assert decision.score(evidence=evidence).infeasible == {}


def test_relative_to_best_with_one_measured_candidate_says_so() -> None:
    decision = stackdecide.parse(DECISION, "scenario.yaml")
    applied = apply_evidence(decision, EvidenceSet.of([_h100("b", "ttft_ms_p99", 300.0)]))
    assert applied.cells[1][2].score == 1.0
    assert any("relative_to_best rests on one measured candidate ('b')" in n for n in applied.notes)


def test_decision_measure_errors_point_into_the_decision_file() -> None:
    bad_metric = DECISION.replace("metric: ttft_ms_p99", "metric: ttft_p99")
    with pytest.raises(DecisionFileError) as info:  # refused on load, before any evidence
        stackdecide.parse(bad_metric, "bad.yaml")
    assert str(info.value).startswith("bad.yaml:16:23 ")
    assert "criteria[2].measure.metric: unknown metric 'ttft_p99'; did you mean 'ttft_ms_p99'?" \
        in str(info.value)
    no_threshold = DECISION.replace("{metric: launch_ok, value: pass_fail}",
                                    "{metric: vram_gb, value: pass_fail}")
    with pytest.raises(EvidenceError, match=r"^threshold.yaml:\d+:\d+ criteria\[1\].measure: "
                                            r"pass_fail on 'vram_gb' needs 'best'"):
        apply_evidence(stackdecide.parse(no_threshold, "threshold.yaml"), EvidenceSet())


def test_scenario_values_compare_by_meaning() -> None:
    assert scenario_matches({}, {"concurrency": 4})
    assert scenario_matches({"concurrency": 1}, {"concurrency": 1.0, "input_len": 8})
    assert scenario_matches({"concurrency": "1"}, {"concurrency": 1})
    assert scenario_matches({"request_rate": float("inf")}, {"request_rate": "inf"})
    assert not scenario_matches({"concurrency": 1}, {"input_len": 1})
    assert not scenario_matches({"concurrency": 1}, {"concurrency": 2})
    assert not scenario_matches({"warm": True}, {"warm": 1.5})
