"""Measurement uncertainty through the ranking: estimates per cell, P(best), the verdict."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

import stackdecide
from decode_pair import decode_launches, decode_pair
from stackdecide.certify import normal_p_greater
from stackdecide.evidence import EvidenceSet
from stackdecide.robustness.certainty import certainty, replicate_values

H100 = "NVIDIA H100 80GB HBM3"
TWO = decode_pair("a", "b", H100)


def _evidence(values: dict[str, list[float]], *, per_launch: int = 1) -> EvidenceSet:
    return decode_launches(values, H100, per_launch=per_launch)


def test_two_normal_cells_match_the_closed_form(tmp_path: Path) -> None:
    """With many launches the t errors of the means are nearly normal: P(a best) = Phi(d / s)."""
    decision = stackdecide.parse(TWO)
    rng = np.random.default_rng(7)
    a = list(200.0 * (1 + 0.03 * rng.standard_normal(40)))
    b = list(198.0 * (1 + 0.03 * rng.standard_normal(40)))
    evidence = _evidence({"a": a, "b": b})
    ranking = decision.score(evidence=evidence)
    sure = certainty(ranking, evidence, samples=40_000, seed=1)
    cell_a, cell_b = sure.cells[("a", "decode")].estimate, sure.cells[("b", "decode")].estimate
    assert cell_a.n == 40 and cell_b.n == 40
    # the Monte Carlo draws move each measured value (the median that scoring uses) by its error
    median_a, median_b = float(np.median(a)), float(np.median(b))
    expected = normal_p_greater(median_a, cell_a.standard_error / cell_a.center * median_a,
                                median_b, cell_b.standard_error / cell_b.center * median_b)
    assert sure.p_best["a"] == pytest.approx(expected, abs=0.015)
    assert sure.p_best["a"] + sure.p_best["b"] == pytest.approx(1.0)
    assert sure.probabilities is not None
    assert sure.probabilities.pairwise[0, 1] == pytest.approx(expected, abs=0.015)


def test_one_launch_each_is_a_tie_however_large_the_point_lead() -> None:
    """Single runs 2% apart: the prior noise (3% per launch for decode) cannot tell them apart."""
    decision = stackdecide.parse(TWO)
    evidence = _evidence({"a": [204.0], "b": [200.0]})
    ranking = decision.score(evidence=evidence)
    assert ranking.winner == "a" and ranking.total("a") > ranking.total("b")
    sure = certainty(ranking, evidence)
    assert sure.verdict.kind == "tie"
    assert sure.verdict.text.startswith("statistical tie between a and b (P 0.")
    assert "smaller than the noise" in sure.verdict.text
    assert sure.cells[("a", "decode")].estimate.method == "prior"


def test_separated_replicated_candidates_are_certified() -> None:
    decision = stackdecide.parse(TWO)
    evidence = _evidence({"a": [250.0, 251.0, 249.0], "b": [200.0, 201.0, 199.0]})
    sure = certainty(decision.score(evidence=evidence), evidence)
    assert sure.verdict.kind == "certified" and sure.verdict.winner == "a"
    assert sure.verdict.text.startswith("certified: a (P = 1.00)")
    assert sure.launches() == {"a": 3, "b": 3}


def test_a_sure_lead_on_one_launch_is_not_yet_certified() -> None:
    decision = stackdecide.parse(TWO)
    evidence = _evidence({"a": [300.0], "b": [150.0]})
    sure = certainty(decision.score(evidence=evidence), evidence)
    assert sure.verdict.kind == "tie" and sure.p_best["a"] > 0.99
    assert sure.verdict.text == ("a leads (P = 1.00) on too few launches: a rests on 1 launch; a "
                                 "certificate needs 2 launches of the leader (launch "
                                 "--until-certain)")
    # the ranking's leader line says "not certified" once
    from stackdecide.report.text import render_text
    line = next(ln for ln in render_text(sure.ranking, certainty=sure).splitlines()
                if ln.startswith("leader:"))
    assert line.count("not certified") == 1


def test_records_of_one_launch_are_one_replicate() -> None:
    """Two benchmarks on one server are one replicate: the noise lives in restarts."""
    evidence = _evidence({"a": [200.0, 210.0]}, per_launch=3)
    values, sources = replicate_values(list(evidence))
    assert values == (200.0, 210.0) and sources == ("run a-0", "run a-1")


def test_judged_only_ranking_has_no_measurement_uncertainty(rtx4090_path: Path) -> None:
    decision = stackdecide.load(rtx4090_path)
    sure = certainty(decision.score(), None)
    assert sure.verdict.kind == "judged" and sure.probabilities is None
    assert sure.p_best["vllm-flashinfer-torch271"] == 1.0


def test_hopper_single_runs_are_not_presented_as_settled() -> None:
    """The committed H200 results: a 1.65-point lead from one launch each is a tie."""
    root = Path(__file__).resolve().parents[2]
    decision = stackdecide.load(root / "criteria" / "hopper.yaml")
    evidence = stackdecide.evidence.load_evidence(root / "docs/results/hopper-h200/evidence.db")
    ranking = decision.score(evidence=evidence)
    sure = certainty(ranking, evidence)
    assert sure.verdict.kind == "tie"
    assert {name for name, _ in sure.verdict.tied} >= {"bf16-flash-attn", "fp8-flash-attn"}
    assert not math.isclose(sure.p_best["bf16-flash-attn"], 1.0)
