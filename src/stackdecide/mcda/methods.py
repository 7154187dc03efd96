"""Pure scoring functions: arrays in, arrays out, no printing.

Every function takes a matrix already turned into benefit form on 0..1 (see ``scale_normalize``) and
broadcasts over leading axes, so the same code scores one decision or a batch of sampled weights:
``matrix`` has shape (..., candidates, criteria) and ``weights`` shape (..., criteria).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import numpy as np
from numpy.typing import ArrayLike


def scale_normalize(matrix: np.ndarray, lows: np.ndarray, highs: np.ndarray,
                    benefit: np.ndarray) -> np.ndarray:
    """Map each criterion's fixed scale onto 0..1, best end at 1.

    A fixed scale (rather than the candidates' min and max) means adding or removing a candidate
    never changes another candidate's normalised values, so it cannot reorder the others.
    """
    unit = (np.asarray(matrix, dtype=float) - lows) / (highs - lows)
    return np.where(benefit, unit, 1.0 - unit)


POINTS = 100.0  # totals are computed on 0..1; views show them as points on 0..100


def to_points(totals: ArrayLike) -> np.ndarray:
    """Totals on 0..1 as the points a reader sees (0..100): the one place the scale changes."""
    return np.asarray(totals, dtype=float) * POINTS


def weighted_sum(matrix: ArrayLike, weights: ArrayLike) -> np.ndarray:
    """Weighted-sum totals (..., candidates) of benefit-form scores (..., candidates, criteria).

    ``weights`` is (criteria,) or (..., criteria), one vector per leading index (sampled weights).
    A matrix product, which never builds the (..., candidates, criteria) contributions: for
    10,000 sampled weight vectors over 1,000 candidates that array alone is 1.6 GB.
    """
    matrix, weights = np.asarray(matrix, dtype=float), np.asarray(weights, dtype=float)
    return np.matmul(matrix, weights[..., :, None])[..., 0]


def wsm(matrix: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted sum: totals (..., candidates) and additive contributions (..., candidates, criteria)."""
    return weighted_sum(matrix, weights), matrix * weights[..., None, :]


def wpm(matrix: np.ndarray, weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Weighted product: prod(x_j ** w_j), and each criterion's factor x_j ** w_j.

    With weights summing to 1 this is the weighted geometric mean, on the same 0..1 range as the
    weighted sum. A zero on any criterion makes the total zero, which is the method's intent.
    """
    factors = np.power(matrix, weights[..., None, :])
    return factors.prod(axis=-1), factors


def topsis(matrix: np.ndarray, weights: np.ndarray, ideal: np.ndarray | None = None,
           anti_ideal: np.ndarray | None = None) -> tuple[np.ndarray, np.ndarray]:
    """TOPSIS closeness d- / (d+ + d-) and the weighted matrix it was computed from.

    ``ideal`` and ``anti_ideal`` default to the best and worst weighted value among the candidates
    (Hwang & Yoon, 1981). Pass the scale's ends (``weights`` and zeros) for an absolute reference
    that, like the fixed-scale normalisation, cannot be moved by adding a candidate.
    """
    weighted = matrix * weights[..., None, :]
    best = weighted.max(axis=-2, keepdims=True) if ideal is None else ideal[..., None, :]
    worst = weighted.min(axis=-2, keepdims=True) if anti_ideal is None else anti_ideal[..., None, :]
    d_best = np.sqrt(((weighted - best) ** 2).sum(axis=-1))
    d_worst = np.sqrt(((weighted - worst) ** 2).sum(axis=-1))
    denominator = d_best + d_worst
    with np.errstate(invalid="ignore", divide="ignore"):
        closeness = np.where(denominator > 0, d_worst / denominator, 0.5)
    return closeness, weighted


@dataclass(frozen=True)
class MethodResult:
    """Totals on 0..1, per-criterion terms, and the method's own intermediates under names."""

    totals: np.ndarray  # (..., candidates)
    terms: np.ndarray  # (..., candidates, criteria), in the method's ``terms_unit``
    extra: Mapping[str, np.ndarray] = field(default_factory=dict)


@dataclass(frozen=True)
class Method:
    """One aggregation method: what it is called, what its terms mean, and the function.

    ``function(normalized, weights)`` takes benefit-form scores on 0..1 and returns totals on 0..1.
    ``terms_scale`` converts its terms to the unit shown (x100 makes weighted-sum terms points that
    add up to the 0..100 total).
    """

    name: str
    label: str
    terms_label: str
    terms_unit: str
    function: Callable[[np.ndarray, np.ndarray], MethodResult]
    terms_scale: float = 1.0

    def __call__(self, normalized: np.ndarray, weights: np.ndarray) -> MethodResult:
        result = self.function(normalized, weights)
        if self.terms_scale != 1.0:
            result = MethodResult(result.totals, result.terms * self.terms_scale, result.extra)
        return result


def _wsm(normalized: np.ndarray, weights: np.ndarray) -> MethodResult:
    totals, terms = wsm(normalized, weights)
    return MethodResult(totals, terms)


def _wpm(normalized: np.ndarray, weights: np.ndarray) -> MethodResult:
    totals, terms = wpm(normalized, weights)
    return MethodResult(totals, terms)


def _topsis(normalized: np.ndarray, weights: np.ndarray) -> MethodResult:
    # the scale's ends as ideal and anti-ideal: like the fixed-scale normalisation, adding a
    # candidate cannot move them
    ideal, anti_ideal = np.asarray(weights, dtype=float), np.zeros_like(weights, dtype=float)
    closeness, weighted = topsis(normalized, weights, ideal=ideal, anti_ideal=anti_ideal)
    d_best = np.sqrt(((weighted - ideal[..., None, :]) ** 2).sum(axis=-1))
    d_worst = np.sqrt(((weighted - anti_ideal[..., None, :]) ** 2).sum(axis=-1))
    return MethodResult(closeness, weighted, {"ideal": ideal, "anti_ideal": anti_ideal,
                                              "distance_to_ideal": d_best,
                                              "distance_to_anti_ideal": d_worst})


METHODS: dict[str, Method] = {method.name: method for method in (
    Method("wsm", "weighted sum", "contribution in points (adds up to the total)", "points",
           _wsm, terms_scale=100.0),
    Method("wpm", "weighted product", "factor x^w (multiplies to the total / 100)", "factor",
           _wpm),
    Method("topsis", "TOPSIS (scale ends as ideal and anti-ideal)", "weighted normalised score",
           "weighted score", _topsis),
)}


def get_method(name: str) -> Method:
    """The registered method called ``name``; ValueError naming the known ones otherwise."""
    try:
        return METHODS[name]
    except KeyError:
        raise ValueError(f"unknown method '{name}'; choose one of {', '.join(METHODS)}") from None


# -- ties: one rule for every ranking, on the 0..1 scale ------------------------------------------
TIE_TOLERANCE = 1e-9  # totals (0..1) this close tie; the first in the file wins them


def rank(totals: ArrayLike, tolerance: float = TIE_TOLERANCE) -> tuple[np.ndarray, np.ndarray]:
    """Order (best first) and competition ranks ("1, 1, 3") of one vector of totals on 0..1.

    Totals within ``tolerance`` tie: they share a rank and keep their order in the file, so the
    same input always prints the same table.
    """
    totals = np.asarray(totals, dtype=float)
    ranks = 1 + (totals[None, :] > totals[:, None] + tolerance).sum(axis=1)
    order = np.lexsort((np.arange(totals.size), ranks))
    return order, ranks


def winner_index(totals: ArrayLike) -> int:
    """The winner under ``rank``: best total, ties within tolerance to the first in the file."""
    return int(rank(totals)[0][0])


def winners(totals: np.ndarray, axis: int = -1) -> np.ndarray:
    """Index of the winner along ``axis``: the first within tolerance of the best total (the same
    rule as ``winner_index``, for a batch)."""
    best = totals.max(axis=axis, keepdims=True)
    return np.argmax(totals >= best - TIE_TOLERANCE, axis=axis)


def rank_order(totals: np.ndarray) -> np.ndarray:
    """Candidate indices best first for each row of totals (samples, candidates).

    Totals within ``TIE_TOLERANCE`` of each other tie and go in file order, as in ``rank``. A fast
    unstable sort handles all rows; only rows that contain a tie are re-sorted.
    """
    order = np.argsort(-totals, axis=1)
    ordered = np.take_along_axis(totals, order, axis=1)
    gaps = ordered[:, :-1] - ordered[:, 1:]
    tie_rows = np.flatnonzero(np.any(gaps <= TIE_TOLERANCE, axis=1))
    if tie_rows.size:
        # group runs of near-equal totals, then sort by (group, candidate index)
        groups = np.concatenate([np.zeros((tie_rows.size, 1), dtype=np.int64),
                                 np.cumsum(gaps[tie_rows] > TIE_TOLERANCE, axis=1)], axis=1)
        sub = order[tie_rows]
        order[tie_rows] = np.take_along_axis(sub, np.lexsort((sub, groups), axis=1), axis=1)
    return order


def above_and_tied(totals: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Per row of totals (samples, candidates) and candidate: how many are above it beyond the
    tolerance, and how many tie with it within the tolerance (itself included). Equal infinite
    totals (infeasible candidates at -inf) tie too."""
    mine, theirs = totals[:, :, None], totals[:, None, :]
    above = (theirs > mine + TIE_TOLERANCE).sum(axis=2)
    with np.errstate(invalid="ignore"):
        tied = ((theirs == mine) | (np.abs(theirs - mine) <= TIE_TOLERANCE)).sum(axis=2)
    return above, tied
