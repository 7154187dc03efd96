"""Scoring methods checked against published worked examples and against pymcdm."""

from __future__ import annotations

import numpy as np
import pytest
from pymcdm import helpers
from pymcdm.methods import TOPSIS, WPM, WSM
from pymcdm.normalizations import minmax_normalization

from stackdecide.mcda import methods

# Triantaphyllou, E. (2000). Multi-Criteria Decision Making Methods: A Comparative Study. Kluwer,
# ch. 2; reproduced in Wikipedia's "Weighted sum model" and "Weighted product model" articles:
# 3 alternatives x 4 benefit criteria.
TRIANTAPHYLLOU_WEIGHTS = np.array([0.20, 0.15, 0.40, 0.25])
TRIANTAPHYLLOU_MATRIX = np.array([[25.0, 20, 15, 30], [10, 30, 20, 30], [30, 10, 30, 10]])


def test_wsm_matches_triantaphyllou_example() -> None:
    # Current versions of the article print 21.50 / 22.00 / 22.00; older copies printed 20.00 for
    # A3, a total that does not follow from its own row (30*0.2 + 10*0.15 + 30*0.4 + 10*0.25 = 22).
    totals, contributions = methods.wsm(TRIANTAPHYLLOU_MATRIX, TRIANTAPHYLLOU_WEIGHTS)
    np.testing.assert_allclose(totals, [21.50, 22.00, 22.00])
    np.testing.assert_allclose(contributions.sum(axis=1), totals)


def test_wpm_matches_triantaphyllou_ratios() -> None:
    # The published ratios P(A1/A2) = 1.007, P(A1/A3) = 1.067, P(A2/A3) = 1.059 (3 decimals).
    totals, factors = methods.wpm(TRIANTAPHYLLOU_MATRIX, TRIANTAPHYLLOU_WEIGHTS)
    assert round(totals[0] / totals[1], 3) == 1.007
    assert round(totals[0] / totals[2], 3) == 1.067
    assert round(totals[1] / totals[2], 3) == 1.059
    np.testing.assert_allclose(factors.prod(axis=1), totals)


def test_topsis_matches_yoon_hwang_example() -> None:
    # Yoon & Hwang (1995), Multiple Attribute Decision Making: An Introduction, Sage; worked in
    # B. Sennaroglu's Decision Analysis course notes (2009): weights 0.714 / 0.286, vector
    # normalisation, weighted matrix V published to 4 decimals.
    raw = np.array([[17.0, 12], [10, 9], [8, 6]])
    vector_normalized = raw / np.sqrt((raw**2).sum(axis=0))
    closeness, weighted = methods.topsis(vector_normalized, np.array([0.714, 0.286]))
    np.testing.assert_allclose(weighted, [[0.5703, 0.2124], [0.3355, 0.1593], [0.2684, 0.1062]],
                               atol=5e-5)
    # A+ = row 1, A- = row 3, so C1 = 1, C3 = 0 and C2 = d- / (d+ + d-) from V.
    d_plus = np.hypot(0.5703 - 0.3355, 0.2124 - 0.1593)
    d_minus = np.hypot(0.3355 - 0.2684, 0.1593 - 0.1062)
    np.testing.assert_allclose(closeness, [1.0, d_minus / (d_plus + d_minus), 0.0], atol=1e-3)


def _random_problem(seed: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    n_alternatives, n_criteria = rng.integers(3, 12), rng.integers(2, 9)
    matrix = rng.uniform(1, 100, size=(n_alternatives, n_criteria))
    weights = rng.dirichlet(np.ones(n_criteria))
    types = rng.choice([1, -1], size=n_criteria)
    types[0] = 1  # at least one benefit criterion
    return matrix, weights, types


@pytest.mark.parametrize("seed", range(25))
@pytest.mark.parametrize("name", ["wsm", "wpm", "topsis"])
def test_methods_agree_with_pymcdm_on_random_matrices(seed: int, name: str) -> None:
    matrix, weights, types = _random_problem(seed)
    reference = {"wsm": WSM, "wpm": WPM, "topsis": TOPSIS}[name](minmax_normalization)
    expected = reference(matrix, weights, types)
    normalized = helpers.normalize_matrix(matrix, minmax_normalization, types)
    ours, _ = getattr(methods, name)(normalized, weights)
    np.testing.assert_allclose(ours, expected, rtol=1e-12, atol=1e-12)


def test_methods_broadcast_over_batches_of_weights() -> None:
    matrix, _, _ = _random_problem(3)
    batch = np.random.default_rng(0).dirichlet(np.ones(matrix.shape[1]), size=7)
    for name in ("wsm", "wpm", "topsis"):
        function = getattr(methods, name)
        batched, _ = function(matrix / 100, batch)
        one_by_one = np.stack([function(matrix / 100, w)[0] for w in batch])
        np.testing.assert_allclose(batched, one_by_one)


def test_scale_normalisation_is_fixed_and_turns_costs_around() -> None:
    normalized = methods.scale_normalize(np.array([[2.0, 2.0]]), np.array([0.0, 0.0]),
                                         np.array([10.0, 4.0]), np.array([True, False]))
    np.testing.assert_allclose(normalized, [[0.2, 0.5]])


def test_rank_is_competition_ranking_with_file_order_for_ties() -> None:
    order, ranks = methods.rank(np.array([0.5, 0.9, 0.5, 0.1]))
    assert list(ranks) == [2, 1, 2, 4]
    assert list(order) == [1, 0, 2, 3]
