"""Ranking probabilities: closed forms, tie splitting, infeasible candidates, samplers."""

from __future__ import annotations

import math

import numpy as np
import pytest

from stackdecide.certify.probability import (
    RankProbabilities,
    normal_p_greater,
    rank_probabilities,
    sample_normal_cells,
    sample_t_cells,
)
from stackdecide.mcda.methods import weighted_sum


def two_normal_cells(samples: int, seed: int) -> RankProbabilities:
    rng = np.random.default_rng(seed)
    cells = sample_normal_cells(np.array([[0.60], [0.55]]), np.array([[0.03], [0.04]]), samples, rng)
    return rank_probabilities(weighted_sum(cells, np.array([1.0])), seed=seed)


def test_two_normal_cells_match_the_closed_form() -> None:
    exact = normal_p_greater(0.60, 0.03, 0.55, 0.04)
    assert exact == pytest.approx(0.841344746, abs=1e-9)  # Phi(0.05 / 0.05) = Phi(1)
    p = two_normal_cells(20_000, seed=1)
    tolerance = 3 * math.sqrt(exact * (1 - exact) / p.samples)
    assert abs(p.pairwise[0, 1] - exact) < tolerance
    # with two candidates, winning is beating the other one
    assert p.p_best[0] == p.pairwise[0, 1]
    assert abs(p.p_best[0] - exact) < tolerance
    assert p.mc_standard_error == pytest.approx(math.sqrt(p.p_best[0] * p.p_best[1] / p.samples))
    assert (p.samples, p.seed, p.leader()) == (20_000, 1, 0)


def test_normal_p_greater_edge_cases() -> None:
    assert [normal_p_greater(2, 0, 1, 0), normal_p_greater(1, 0, 2, 0), normal_p_greater(1, 0, 1, 0),
            normal_p_greater(1, 1, 1, 1)] == [1.0, 0.0, 0.5, 0.5]


def test_ties_are_split_equally() -> None:
    p = rank_probabilities(np.array([[1.0, 1.0, 0.0], [2.0, 1.0, 1.0]]))
    # draw 1: a and b share ranks 1-2, c is third; draw 2: a first, b and c share ranks 2-3
    np.testing.assert_allclose(p.p_best, [0.75, 0.25, 0.0])
    np.testing.assert_allclose(p.rank_matrix, [[0.75, 0.25, 0.0], [0.25, 0.5, 0.25], [0.0, 0.25, 0.75]])
    np.testing.assert_allclose(p.pairwise, [[0.0, 0.75, 1.0], [0.25, 0.0, 0.75], [0.0, 0.25, 0.0]])
    np.testing.assert_allclose(p.expected_totals, [1.5, 1.0, 0.5])
    assert p.mc_standard_error == pytest.approx(math.sqrt(0.75 * 0.25 / 2))


def test_rank_matrix_rows_and_columns_sum_to_one() -> None:
    rng = np.random.default_rng(7)
    totals = rng.integers(0, 4, size=(500, 5)).astype(float)  # many ties
    p = rank_probabilities(totals, feasible=np.array([True, True, False, True, True]))
    np.testing.assert_allclose(p.rank_matrix.sum(axis=0), 1.0)
    np.testing.assert_allclose(p.rank_matrix.sum(axis=1), 1.0)
    assert p.p_best.sum() == pytest.approx(1.0)
    off_diagonal = ~np.eye(5, dtype=bool)
    np.testing.assert_allclose((p.pairwise + p.pairwise.T)[off_diagonal], 1.0)


def test_infeasible_candidate_never_wins_and_ranks_last() -> None:
    totals = np.array([[9.0, 1.0, 2.0], [9.0, 3.0, 2.0]])
    p = rank_probabilities(totals, feasible=[False, True, True])
    np.testing.assert_allclose(p.p_best, [0.0, 0.5, 0.5])
    np.testing.assert_allclose(p.rank_matrix[0], [0.0, 0.0, 1.0])
    np.testing.assert_allclose(p.pairwise[:, 0], [0.0, 1.0, 1.0])
    np.testing.assert_allclose(p.expected_totals, [9.0, 2.0, 2.0])  # raw totals, for reporting


def test_no_feasible_candidate_means_no_winner() -> None:
    p = rank_probabilities(np.ones((3, 2)), feasible=[False, False])
    np.testing.assert_allclose(p.p_best, [0.0, 0.0])
    assert p.contenders(0.01) == []


def test_leader_and_contenders() -> None:
    p = rank_probabilities(np.array([[3.0, 2.0, 1.0, 0.0]] * 3 + [[1.0, 3.0, 2.0, 0.0]]))
    assert p.leader() == 0
    assert p.contenders(0.2) == [0, 1]
    assert p.contenders(0.0) == [0, 1]  # zero probability is never a contender


def test_leader_ties_break_on_expected_total() -> None:
    p = rank_probabilities(np.array([[1.0, 2.0], [5.0, 0.0]]))
    assert (p.p_best.tolist(), p.leader()) == ([0.5, 0.5], 0)


def test_rank_probabilities_rejects_bad_input() -> None:
    with pytest.raises(ValueError, match="shape"):
        rank_probabilities(np.ones(3))
    with pytest.raises(ValueError, match="NaN"):
        rank_probabilities(np.array([[1.0, np.nan]]))
    with pytest.raises(ValueError, match="feasible"):
        rank_probabilities(np.ones((2, 2)), feasible=[True])


def test_sample_normal_cells_fixed_and_clipped() -> None:
    rng = np.random.default_rng(0)
    means, sds = np.array([[0.5, 0.98]]), np.array([[0.0, 0.1]])
    draws = sample_normal_cells(means, sds, 1000, rng, lows=0.0, highs=1.0)
    assert draws.shape == (1000, 1, 2)
    assert np.all(draws[:, 0, 0] == 0.5)
    assert draws.max() == 1.0 and (draws[:, 0, 1] == 1.0).mean() > 0.4
    with pytest.raises(ValueError):
        sample_normal_cells(np.zeros(2), np.array([0.1, -0.1]), 10, rng)


def test_sample_t_cells_has_student_spread() -> None:
    rng = np.random.default_rng(0)
    draws = sample_t_cells(np.array([10.0]), np.array([2.0]), np.array([5.0]), 200_000, rng)
    # Var(scale * T_5) = 4 * 5 / 3
    assert draws.shape == (200_000, 1)
    assert draws.var() == pytest.approx(20 / 3, rel=0.05)
    with pytest.raises(ValueError):
        sample_t_cells(np.zeros(1), np.ones(1), np.zeros(1), 10, rng)


def test_weighted_sum_fixed_and_sampled_weights() -> None:
    x = np.array([[[1.0, 0.0], [0.5, 0.5]], [[0.0, 1.0], [1.0, 1.0]]])  # (S=2, m=2, n=2)
    np.testing.assert_allclose(weighted_sum(x, np.array([0.75, 0.25])), [[0.75, 0.5], [0.25, 1.0]])
    per_draw = np.array([[1.0, 0.0], [0.0, 1.0]])
    np.testing.assert_allclose(weighted_sum(x, per_draw), [[1.0, 0.5], [1.0, 1.0]])
    with pytest.raises(ValueError):
        weighted_sum(x, np.ones(3))
