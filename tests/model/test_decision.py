"""Scoring a decision: the seed table reproduced from its own weights and scores, and audited."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import stackdecide
from stackdecide import StackdecideError


def test_seed_table_reproduced_from_its_weights_and_scores(rtx4090_table_path: Path) -> None:
    ranking = stackdecide.load(rtx4090_table_path).score()
    # 0.35*7 + 0.25*6 + 0.2*9.5 + 0.2*7 = 7.25; 0.35*9.5 + 0.25*9 + 0.2*8 + 0.2*9 = 8.975;
    # 0.35*8.5 + 0.25*8.5 + 0.2*9 + 0.2*8 = 8.5
    np.testing.assert_allclose(ranking.totals, [72.5, 89.75, 85.0])
    assert ranking.winner == "vllm-flashinfer-torch271"
    assert list(ranking.ranks) == [3, 1, 2]
    np.testing.assert_allclose(ranking.terms.sum(axis=1), ranking.totals)
    np.testing.assert_allclose(ranking.terms[1], [33.25, 22.5, 16.0, 18.0])


def test_audit_flags_published_totals_that_do_not_follow(rtx4090_path: Path) -> None:
    ranking = stackdecide.load(rtx4090_path).score()
    flagged = {f.subject: f for f in ranking.findings if f.code == "reported-total-mismatch"}
    assert set(flagged) == {"vllm-flashinfer-torch271", "vllm-flashinfer-torch262"}
    assert flagged["vllm-flashinfer-torch271"].reported == 89.25
    assert flagged["vllm-flashinfer-torch271"].computed == pytest.approx(89.75)
    assert flagged["vllm-flashinfer-torch262"].difference == pytest.approx(-1.5)
    assert flagged["vllm-flashinfer-torch262"].where.startswith(
        f"{rtx4090_path}:108:21 candidates[2].reported_total")
    # Published numbers are compared, never copied into results.
    assert 89.25 not in ranking.totals and 83.5 not in ranking.totals


def test_audit_is_quiet_when_totals_follow(small_text: str) -> None:
    text = small_text.replace("scores: {speed: 7, stability: 9}",
                              "scores: {speed: 7, stability: 9}\n    reported_total: 78")
    ranking = stackdecide.parse(text, "ok.yaml").score()
    assert ranking.findings == ()


def test_reported_winner_that_differs_is_an_error(small_text: str) -> None:
    text = (small_text.replace("scores: {speed: 7, stability: 9}",
                               "scores: {speed: 7, stability: 9}\n    reported_total: 70")
            .replace("scores: {speed: 9, stability: 5}",
                     "scores: {speed: 9, stability: 5}\n    reported_total: 74"))
    codes = [f.code for f in stackdecide.parse(text, "w.yaml").score().findings]
    assert "reported-winner-differs" in codes


def test_adding_a_candidate_cannot_reorder_the_others(rtx4090_path: Path) -> None:
    text = rtx4090_path.read_text() + """\
  - id: extreme
    scores: {fp8_performance: 10, rtx4090_optimization: 0, installation_stability: 0,
             performance_targets: 10}
"""
    text = text.replace("constraints:\n  - vram_gb <= 16\n", "") + "constraints: [vram_gb <= 16]\n"
    bigger = stackdecide.parse(text, "bigger.yaml")
    original = stackdecide.load(rtx4090_path)
    for method in ("wsm", "wpm", "topsis"):
        before = original.score(method).totals
        after = bigger.score(method).totals[:3]
        np.testing.assert_allclose(after, before)


def test_ties_share_a_rank_and_keep_file_order(small_text: str) -> None:
    text = small_text.replace("{speed: 9, stability: 5}", "{speed: 7, stability: 9}")
    ranking = stackdecide.parse(text, "tie.yaml").score()
    assert list(ranking.ranks) == [1, 1]
    assert ranking.winner == "a"
    assert ranking.tied_winners == ("a", "b")
    assert [f.code for f in ranking.findings] == ["tied-winner"]


def test_replace_returns_a_new_decision(rtx4090_table_path: Path) -> None:
    decision = stackdecide.load(rtx4090_table_path)
    heavier = decision.replace(weights={"installation_stability": 0.45})
    assert heavier is not decision
    # the named weight becomes 45%; the others keep their proportions in the remaining 55%
    assert heavier.weights_by_id == pytest.approx({
        "fp8_performance": 0.35 / 0.8 * 0.55, "rtx4090_optimization": 0.25 / 0.8 * 0.55,
        "installation_stability": 0.45, "performance_targets": 0.20 / 0.8 * 0.55})
    assert decision.weights_by_id["installation_stability"] == pytest.approx(0.2)
    # the same convention as the flip distances: past 27/59 = 45.8% the winner changes
    assert decision.replace(weights={"installation_stability": 0.457}).score().winner == \
        "vllm-flashinfer-torch271"
    assert decision.replace(weights={"installation_stability": 0.459}).score().winner == \
        "vllm-flashinfer-torch262"
    with pytest.raises(StackdecideError, match="between 0 and 1"):
        decision.replace(weights={"installation_stability": 2.0})
    changed = decision.replace(scores={("vllm-cuda-torch271", "fp8_performance"): 10.0})
    assert changed.score().total("vllm-cuda-torch271") == pytest.approx(72.5 + 0.35 * 30)
    with pytest.raises(StackdecideError, match="outside the scale"):
        decision.replace(scores={("vllm-cuda-torch271", "fp8_performance"): 11.0})
    with pytest.raises(ValueError):
        decision.matrix[0, 0] = 1.0  # read-only


def test_unknown_method_is_refused(rtx4090_path: Path) -> None:
    with pytest.raises(StackdecideError, match="unknown method 'ahp'"):
        stackdecide.load(rtx4090_path).score("ahp")


def test_cost_criterion_prefers_lower_values(small_text: str) -> None:
    text = small_text.replace("{id: stability, weight: 0.4}",
                              "{id: latency_ms, weight: 0.4, direction: cost, scale: [0, 100]}")
    text = text.replace("stability: 9", "latency_ms: 90").replace("stability: 5", "latency_ms: 10")
    ranking = stackdecide.parse(text, "cost.yaml").score()
    np.testing.assert_allclose(ranking.totals, [0.6 * 70 + 0.4 * 10, 0.6 * 90 + 0.4 * 90])
