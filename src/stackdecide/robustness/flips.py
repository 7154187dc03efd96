"""How far one weight must move before the winner changes, under any registered method.

**Weighted sum: exact.** When criterion j's weight becomes t and the other weights keep their
proportions (each scaled by (1 - t) / (1 - w_j), so the sum stays 1), every total is linear in t:

    T_i(t) = t * x_ij + (1 - t) * R_ij,   R_ij = (T_i - w_j * x_ij) / (1 - w_j)

where x are the normalised scores (0..1, benefit form) and R_ij is candidate i's weighted mean over
the other criteria. The winner a's lead over b, D_b(t) = T_a(t) - T_b(t), is a line, so the weight at
which b catches up is the root of D_b: no search, no step size, exact up to rounding. The threshold
is the smallest such root in the direction of travel; beyond it the candidate that gains fastest
leads. Weights must stay inside (0, 1); a root at or beyond either end means no change of this
weight alone flips the winner.

**Weighted product, TOPSIS: numeric.** Their totals are not linear in t, so the winner is found on
``GRID_POINTS`` steps from the current weight towards 0 or 1 (the method's own function on the
whole batch of weight vectors at once). The first step where another candidate b wins brackets the
change, and bisection narrows the root of D_b to ``BISECT_WIDTH``. The rules are the weighted
sum's: the threshold is the tie (a root of D_b, not the edge of the tie tolerance); a winner
already tied that loses at the first step has threshold = its current weight; a tie only at 0 or 1
is no flip; the new winner is the candidate in first place just beyond.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from stackdecide.mcda import methods

if TYPE_CHECKING:
    from stackdecide.model.decision import DecisionMatrix

Direction = Literal["increase", "decrease"]
Totals = Callable[[np.ndarray, np.ndarray], np.ndarray]

GRID_POINTS = 2000  # steps scanned per criterion and direction before bisecting (numeric methods)
BISECT_WIDTH = 1e-12  # the bisection stops once the bracket is this narrow (weight, 0..1)
# The scan stops this far inside (0, 1): at exactly 0 or 1 the other weights (or this one) vanish,
# and WPM's x ** 0 = 1 turns a zero score into a perfect factor, a jump the open interval never has.
EDGE = 1e-12
# largest (weights, candidates, criteria) array one method call builds: small enough that the
# method's temporaries stay in cache (TOPSIS on 1000 x 20 runs 30% faster than with 32 MiB slices)
SCAN_BYTES = 2**20


def method_totals(method: str) -> Totals:
    """``totals(normalized, weights)`` of a registered method, broadcasting like the methods.

    The weighted sum goes through ``methods.weighted_sum`` (a matrix product); the others
    through their function in ``methods.METHODS``. ValueError for an unknown name.
    """
    if method == "wsm":
        return methods.weighted_sum
    aggregate = methods.get_method(method)

    def totals(normalized: np.ndarray, weights: np.ndarray) -> np.ndarray:
        return aggregate(normalized, weights).totals

    return totals


def flip_points(normalized: np.ndarray, weights: np.ndarray,
                winner: int) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Per criterion: weight at which the winner changes going up and going down, and to whom.

    Returns ``(up_weight, up_candidate, down_weight, down_candidate)``, each of shape (criteria,);
    a weight is NaN and a candidate -1 where no weight in (0, 1) in that direction flips the winner.
    """
    x = np.asarray(normalized, dtype=float)
    w = np.asarray(weights, dtype=float)
    n, m = x.shape
    up_weight = np.full(m, np.nan)
    down_weight = np.full(m, np.nan)
    up_who = np.full(m, -1)
    down_who = np.full(m, -1)
    if n < 2 or m < 2:  # nobody to flip to, or a single weight that cannot move
        return up_weight, up_who, down_weight, down_who
    totals = x @ w
    rest = (totals[:, None] - w[None, :] * x) / (1.0 - w[None, :])  # R (candidates, criteria)
    others = np.arange(n) != winner
    lead = totals[winner] - totals[others]  # D_b(w_j), same for every j: (n-1,)
    # slope of D_b in t: (x_aj - x_bj) - (R_aj - R_bj)
    slope = (x[winner] - rest[winner])[None, :] - (x[others] - rest[others])
    lead = np.maximum(lead, 0.0)[:, None]  # a tie within tolerance counts as no lead
    tied = lead <= methods.TIE_TOLERANCE
    candidates = np.flatnonzero(others)
    with np.errstate(divide="ignore", invalid="ignore"):
        # raising the weight: b catches up where slope < 0, at w + lead / -slope
        up = np.where(slope < 0, np.where(tied, w, w + lead / -slope), np.inf)
        # lowering the weight: b catches up where slope > 0, at w - lead / slope
        down = np.where(slope > 0, np.where(tied, w, w - lead / slope), -np.inf)
    for j in range(m):
        first_up = float(up[:, j].min())
        if first_up < 1.0:
            up_weight[j] = first_up
            up_who[j] = _overtaker(candidates, up[:, j], -slope[:, j], first_up)
        first_down = float(down[:, j].max())
        if first_down > 0.0:
            down_weight[j] = first_down
            down_who[j] = _overtaker(candidates, -down[:, j], slope[:, j], -first_down)
    return up_weight, up_who, down_weight, down_who


def _overtaker(candidates: np.ndarray, distance: np.ndarray, gain: np.ndarray,
               nearest: float) -> int:
    """Among candidates that catch up first, the one that gains fastest leads just beyond; then
    the first in the file."""
    first = np.abs(distance - nearest) <= 1e-12
    best_gain = gain[first].max()
    pick = first & (gain >= best_gain - 1e-12)
    return int(candidates[np.flatnonzero(pick)[0]])


def numeric_flip_points(normalized: np.ndarray, weights: np.ndarray, winner: int,
                        method: str = "wsm", grid: int = GRID_POINTS
                        ) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """``flip_points`` for any method, by a grid scan of each weight and bisection.

    Same return values and rules as ``flip_points``. The first grid point where another candidate
    wins (``methods.rank``'s rule) brackets the change; the threshold is then the weight at which
    that candidate ties the winner, to ``BISECT_WIDTH``. A change of winner that reverses between
    two grid points (steps of |end - weight| / ``grid``) is not seen.
    """
    x = np.asarray(normalized, dtype=float)
    w = np.asarray(weights, dtype=float)
    n, m = x.shape
    up_weight, down_weight = np.full(m, np.nan), np.full(m, np.nan)
    up_who, down_who = np.full(m, -1), np.full(m, -1)
    # (criterion, direction) with room to move; a weight of (nearly) 1 leaves the others no
    # proportions to keep, so it moves in neither direction
    pairs = [(j, sign) for j in range(m) for sign in (1.0, -1.0)
             if w[j] < 1.0 - 2 * EDGE and (sign > 0 or w[j] > 2 * EDGE)]
    if n < 2 or m < 2 or not pairs:
        return up_weight, up_who, down_weight, down_who
    totals_of = method_totals(method)
    js = np.array([j for j, _ in pairs])
    signs = np.array([sign for _, sign in pairs])
    ends = np.where(signs > 0, 1.0 - EDGE, EDGE)
    t = w[js, None] + (ends - w[js])[:, None] * np.linspace(0.0, 1.0, grid + 1)[None, :]
    # the tie rule, not the sign of a lead, decides who wins on the grid: two candidates that stay
    # exactly tied (equal scores on the moving criterion) differ only by rounding, and must not flip
    won = methods.winners(_evaluate(totals_of, x, _moved(w, np.repeat(js, grid + 1), t.ravel()))
                  ).reshape(t.shape)
    changed = won[:, 1:] != winner
    keep = np.flatnonzero(changed.any(axis=1))
    at = 1 + np.argmax(changed[keep], axis=1)
    rivals = won[keep, at]  # who holds first place at the first grid point past the change
    threshold = _thresholds(totals_of, x, w, winner, js[keep], t[keep], at, rivals)
    for k, pair in enumerate(keep):
        j = js[pair]
        if np.isnan(threshold[k]):
            continue
        if signs[pair] > 0:
            up_weight[j], up_who[j] = threshold[k], rivals[k]
        else:
            down_weight[j], down_who[j] = threshold[k], rivals[k]
    return up_weight, up_who, down_weight, down_who


def _thresholds(totals_of: Totals, x: np.ndarray, w: np.ndarray, winner: int,
                criteria: np.ndarray, t: np.ndarray, at: np.ndarray,
                rivals: np.ndarray) -> np.ndarray:
    """Per bracket (the winner wins at grid point at - 1, ``rivals`` at ``at``): the weight at which
    the rival ties the winner; NaN where that tie lies at or beyond the end of the interval.

    The tie is the root of gap = T_winner - T_rival, as in ``flip_points``. Within the tie
    tolerance the grid's winner and the sign of the gap can disagree (file order decides near-ties),
    so the root is looked for one step either side; a winner already tied at its current weight
    and beaten at the first step flips at once (threshold = weight). Only where the gap has no sign
    change in reach (a rival gaining by less than the tolerance per step) is the edge of the tie
    rule bisected instead.
    """
    rows = np.arange(at.size)
    last = t.shape[1] - 1
    steps = np.stack([np.zeros_like(at), np.maximum(at - 2, 0), at - 1, at,
                      np.minimum(at + 1, last)], axis=1)
    where = t[rows[:, None], steps]  # (brackets, 5): the current weight, then four grid points
    totals = _evaluate(totals_of, x, _moved(w, np.repeat(criteria, 5), where.ravel()))
    gap = (totals[:, winner] - totals[np.arange(totals.shape[0]), np.repeat(rivals, 5)]
           ).reshape(where.shape)
    tied = (at == 1) & (gap[:, 0] <= methods.TIE_TOLERANCE)
    before = gap[:, 2] > 0  # the root lies after grid point at - 1, else after at - 2
    lo = np.where(before, where[:, 2], where[:, 1])
    after = gap[:, 3] <= 0  # the root lies before grid point at, else before at + 1
    hi = np.where(after, where[:, 3], where[:, 4])
    strict = (before | (gap[:, 1] > 0)) & (after | (gap[:, 4] <= 0))
    lo = np.where(strict, lo, where[:, 2])
    hi = np.where(strict, hi, where[:, 3])
    lo, hi = _bisect(totals_of, x, w, winner, criteria, rivals, strict, lo, hi)
    # a rival that wins only by file order in the last step has its root at or beyond the end of
    # the interval (equal scores on this criterion): as in flip_points, that is no flip
    beyond = ~strict & (at == last)
    return np.where(tied, where[:, 0], np.where(beyond, np.nan, 0.5 * (lo + hi)))


def _moved(weights: np.ndarray, criteria: np.ndarray, t: np.ndarray) -> np.ndarray:
    """Weight vectors (k, criteria): row k has weight t[k] on criterion criteria[k], the other
    weights scaled by (1 - t) / (1 - w_j) so that they keep their proportions and the sum stays 1."""
    out = weights[None, :] * ((1.0 - t) / (1.0 - weights[criteria]))[:, None]
    out[np.arange(t.size), criteria] = t
    return out


def _evaluate(totals_of: Totals, normalized: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Totals (k, candidates) for k weight vectors, in slices that bound the method's memory."""
    n, m = normalized.shape
    step = max(1, SCAN_BYTES // (n * m * 8))
    parts = [totals_of(normalized, weights[s:s + step]) for s in range(0, len(weights), step)]
    return np.concatenate(parts) if parts else np.empty((0, n))


def _bisect(totals_of: Totals, x: np.ndarray, w: np.ndarray, winner: int, criteria: np.ndarray,
            rivals: np.ndarray, strict: np.ndarray, lo: np.ndarray,
            hi: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Narrow every bracket at once, one batch of weight vectors per halving, until each is
    ``BISECT_WIDTH`` wide. ``lo`` keeps the side where the winner still leads the rival (``strict``)
    or still wins under the tie rule (otherwise)."""
    rows = np.arange(lo.size)
    for _ in range(100):  # 2000 grid steps to 1e-12 takes about 30; the cap only guards rounding
        if lo.size == 0 or np.max(np.abs(hi - lo)) <= BISECT_WIDTH:
            break
        mid = 0.5 * (lo + hi)
        totals = _evaluate(totals_of, x, _moved(w, criteria, mid))
        ahead = np.where(strict, totals[:, winner] - totals[rows, rivals] > 0,
                         methods.winners(totals) == winner)
        lo, hi = np.where(ahead, mid, lo), np.where(ahead, hi, mid)
    return lo, hi


@dataclass(frozen=True)
class WeightFlip:
    """Moving one criterion's weight in one direction: where the winner changes, and to whom."""

    criterion: str
    direction: Direction
    weight: float  # current weight
    threshold: float | None  # weight at which new_winner ties the winner; None: no flip in (0, 1)
    new_winner: str | None

    @property
    def flips(self) -> bool:
        return self.threshold is not None

    @property
    def change(self) -> float | None:
        """Signed change of the weight (fraction of 1) that reaches the threshold."""
        return None if self.threshold is None else self.threshold - self.weight

    @property
    def relative_change(self) -> float | None:
        """The change as a fraction of the current weight (0.5 means 'half as much again')."""
        return None if self.threshold is None else (self.threshold - self.weight) / self.weight


@dataclass(frozen=True)
class CriterionFlips:
    criterion: str
    weight: float
    increase: WeightFlip
    decrease: WeightFlip

    @property
    def nearest(self) -> WeightFlip | None:
        """The direction that needs the smaller change, if either flips."""
        moves = [f for f in (self.increase, self.decrease) if f.flips]
        return min(moves, key=lambda f: abs(f.change or 0.0)) if moves else None


@dataclass(frozen=True)
class FlipDistances:
    """Flip thresholds of every criterion's weight, with the numbers they were computed from."""

    candidate_ids: tuple[str, ...]
    criterion_ids: tuple[str, ...]
    weights: np.ndarray  # (criteria,)
    normalized: np.ndarray  # (candidates, criteria), 0..1 benefit form
    totals: np.ndarray  # (candidates,), 0..1, under ``method``
    winner: str
    criteria: tuple[CriterionFlips, ...]
    method: str = "wsm"
    grid: int | None = None  # steps of the numeric scan; None: solved exactly (weighted sum)

    def of(self, criterion_id: str) -> CriterionFlips:
        return self.criteria[self.criterion_ids.index(criterion_id)]

    @property
    def nearest(self) -> WeightFlip | None:
        """The single weight change, over all criteria, that flips the winner soonest."""
        moves = [c.nearest for c in self.criteria if c.nearest is not None]
        return min(moves, key=lambda f: abs(f.change or 0.0)) if moves else None


def flip_distances(decision: DecisionMatrix, method: str = "wsm",
                   grid: int = GRID_POINTS) -> FlipDistances:
    """Flip thresholds for each criterion's weight of a decision, scored by ``method``: exact for
    the weighted sum, a ``grid``-step scan and bisection (``numeric_flip_points``) otherwise."""
    normalized = decision.normalize()
    weights = np.asarray(decision.weights, dtype=float)
    totals = method_totals(method)(normalized, weights)
    winner = methods.winner_index(totals)
    exact = method == "wsm"
    up_w, up_who, down_w, down_who = (
        flip_points(normalized, weights, winner) if exact
        else numeric_flip_points(normalized, weights, winner, method, grid))
    ids = decision.candidate_ids
    rows = []
    for j, cid in enumerate(decision.criterion_ids):
        w = float(weights[j])
        rows.append(CriterionFlips(
            cid, w,
            WeightFlip(cid, "increase", w, _value(up_w[j]), ids[up_who[j]] if up_who[j] >= 0
                       else None),
            WeightFlip(cid, "decrease", w, _value(down_w[j]),
                       ids[down_who[j]] if down_who[j] >= 0 else None)))
    return FlipDistances(ids, decision.criterion_ids, weights, normalized, totals, ids[winner],
                         tuple(rows), method, None if exact else grid)


def _value(x: float) -> float | None:
    return None if np.isnan(x) else float(x)


@dataclass(frozen=True)
class Tradeoff:
    """What separates the winner from the runner-up, criterion by criterion.

    ``winner_points`` and ``runner_up_points`` are the method's per-criterion terms
    (``methods.METHODS[method].terms_unit``). Under the weighted sum they are points of 100 and the
    ``differences`` add up to ``margin``; under WPM they are factors x^w (they multiply to the
    total), under TOPSIS weighted scores, and their differences are not shares of the margin.
    ``margin`` is the difference of the totals in points of 100. ``runner_up_change`` is how far
    the runner-up's score on that criterion alone (in the criterion's own scale units, signed: +
    raises the judged score) would have to move to tie, or None where the scale does not leave
    that much room.
    """

    winner: str
    runner_up: str
    margin: float  # points of 100
    criterion_ids: tuple[str, ...]
    winner_points: np.ndarray  # (criteria,)
    runner_up_points: np.ndarray  # (criteria,)
    runner_up_change: tuple[float | None, ...]
    method: str = "wsm"

    @property
    def differences(self) -> np.ndarray:
        return self.winner_points - self.runner_up_points


def tradeoff(decision: DecisionMatrix, method: str = "wsm") -> Tradeoff | None:
    """Winner versus runner-up under ``method``; None with a single candidate."""
    if len(decision.candidates) < 2:
        return None
    if method != "wsm":
        return _method_tradeoff(decision, method)
    normalized = decision.normalize()
    weights = np.asarray(decision.weights, dtype=float)
    totals, contributions = methods.wsm(normalized, weights)
    order, _ = methods.rank(totals)
    a, b = int(order[0]), int(order[1])
    points = methods.to_points(contributions)
    margin = float(totals[a] - totals[b])
    span = decision.highs - decision.lows
    changes: list[float | None] = []
    for j in range(len(weights)):
        needed = margin / weights[j]  # normalised units the runner-up must gain
        sign = 1.0 if decision.benefit[j] else -1.0
        fits = normalized[b, j] + needed <= 1.0 + 1e-12
        changes.append(float(sign * needed * span[j]) if fits else None)
    return Tradeoff(decision.candidate_ids[a], decision.candidate_ids[b],
                    float(methods.to_points(margin)), decision.criterion_ids, points[a], points[b],
                    tuple(changes))


def _method_tradeoff(decision: DecisionMatrix, method: str) -> Tradeoff:
    """``tradeoff`` for a method whose total is not linear in the scores: the terms come from the
    method, the runner-up's score that ties from bisection (``_tying_scores``)."""
    normalized = decision.normalize()
    weights = np.asarray(decision.weights, dtype=float)
    result = methods.get_method(method)(normalized, weights)
    order, _ = methods.rank(result.totals)
    a, b = int(order[0]), int(order[1])
    tying = _tying_scores(method_totals(method), normalized, weights, a, b)
    span = decision.highs - decision.lows
    sign = np.where(decision.benefit, 1.0, -1.0)
    changes = tuple(None if np.isnan(s) else float(sign[j] * (s - normalized[b, j]) * span[j])
                    for j, s in enumerate(tying))
    return Tradeoff(decision.candidate_ids[a], decision.candidate_ids[b],
                    float(methods.to_points(result.totals[a] - result.totals[b])), decision.criterion_ids,
                    np.asarray(result.terms[a]), np.asarray(result.terms[b]), changes, method)


def _tying_scores(totals_of: Totals, x: np.ndarray, w: np.ndarray, a: int, b: int) -> np.ndarray:
    """Per criterion j: the normalised score of b on j alone (others unchanged) at which b ties a;
    NaN where even 1 is not enough. Relies on b's total rising with its own score, which holds
    for the weighted sum, the weighted product and TOPSIS with fixed ideal and anti-ideal."""
    m = x.shape[1]
    cells = np.arange(m)

    def gap(scores: np.ndarray) -> np.ndarray:  # a's total minus b's, one row per criterion
        batch = np.repeat(x[None], m, axis=0)
        batch[cells, b, cells] = scores
        totals = totals_of(batch, w)
        return totals[:, a] - totals[:, b]

    lo, hi = x[b].astype(float), np.ones(m)
    reachable = gap(hi) <= 1e-12  # the weighted sum's rule: the scale's end may just tie
    for _ in range(60):  # halving [0, 1] 60 times is below rounding
        mid = 0.5 * (lo + hi)
        ahead = gap(mid) > 0
        lo, hi = np.where(ahead, mid, lo), np.where(ahead, hi, mid)
    return np.where(reachable, hi, np.nan)
