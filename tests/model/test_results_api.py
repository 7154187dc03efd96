"""Results a script author can use without indexing by position."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import stackdecide
from stackdecide.mcda.methods import METHODS

ROOT = Path(__file__).resolve().parents[2]
H200 = ROOT / "docs/results/hopper-h200-certified/evidence.db"


def test_totals_and_terms_are_labelled(rtx4090_table_path: Path) -> None:
    ranking = stackdecide.load(rtx4090_table_path).score()
    assert ranking.totals_by_candidate == pytest.approx({
        "vllm-cuda-torch271": 72.5, "vllm-flashinfer-torch271": 89.75,
        "vllm-flashinfer-torch262": 85.0})
    assert ranking.terms_by_candidate["vllm-flashinfer-torch271"] == pytest.approx({
        "fp8_performance": 33.25, "rtx4090_optimization": 22.5, "installation_stability": 16.0,
        "performance_targets": 18.0})
    assert ranking.terms_unit == "points"
    assert repr(ranking) == ("<Ranking wsm: winner='vllm-flashinfer-torch271'; "
                             "vllm-flashinfer-torch271=89.75, vllm-flashinfer-torch262=85.00, "
                             "vllm-cuda-torch271=72.50>")


def test_to_frame_is_best_first_with_the_method_in_attrs(rtx4090_table_path: Path) -> None:
    frame = stackdecide.load(rtx4090_table_path).score(method="topsis").to_frame()
    assert list(frame.index) == ["vllm-flashinfer-torch271", "vllm-flashinfer-torch262",
                                 "vllm-cuda-torch271"]
    assert list(frame.columns) == ["rank", "total", "feasible", "fp8_performance",
                                   "rtx4090_optimization", "installation_stability",
                                   "performance_targets"]
    assert frame.attrs == {"method": "topsis", "terms_unit": "weighted score"}


def test_topsis_keeps_its_intermediates(rtx4090_path: Path) -> None:
    decision = stackdecide.load(rtx4090_path)
    ranking = decision.score(method="topsis")
    extra = ranking.extra
    assert set(extra) == {"ideal", "anti_ideal", "distance_to_ideal", "distance_to_anti_ideal"}
    np.testing.assert_allclose(extra["ideal"], decision.weights)
    np.testing.assert_allclose(extra["anti_ideal"], 0.0)
    closeness = extra["distance_to_anti_ideal"] / (extra["distance_to_ideal"]
                                                   + extra["distance_to_anti_ideal"])
    np.testing.assert_allclose(closeness * 100, ranking.totals)
    assert ranking.to_dict()["extra"]["ideal"] == pytest.approx(list(decision.weights))


def test_the_method_registry_says_what_terms_mean() -> None:
    assert {name: (m.label, m.terms_unit) for name, m in METHODS.items()} == {
        "wsm": ("weighted sum", "points"), "wpm": ("weighted product", "factor"),
        "topsis": ("TOPSIS (scale ends as ideal and anti-ideal)", "weighted score")}


def test_sensitivity_with_evidence_analyses_the_measured_ranking() -> None:
    decision = stackdecide.load(ROOT / "criteria" / "hopper.yaml")
    evidence = stackdecide.evidence.load_evidence(H200)
    judged = stackdecide.sensitivity(decision, samples=500)
    measured = stackdecide.sensitivity(decision, evidence=evidence, samples=500)
    assert judged.winner == decision.score().winner == "fp8-flashinfer-fp8kv"
    assert measured.winner == decision.score(evidence=evidence).winner == "bf16-flash-attn"
    assert measured.basis.startswith("scores ranked with evidence (20 measured")
    assert decision.sensitivity(evidence=evidence, samples=500).winner == "bf16-flash-attn"
    topsis = stackdecide.sensitivity(decision, evidence=evidence, method="topsis", samples=500)
    assert topsis.method == "topsis"
    assert topsis.winner == decision.score(method="topsis", evidence=evidence).winner
