"""How far one weight must move before the weighted-sum winner changes.

When criterion j's weight becomes t and the other weights keep their proportions (each scaled by
(1 - t) / (1 - w_j), so the sum stays 1), every total is linear in t:

    T_i(t) = t * x_ij + (1 - t) * R_ij,   R_ij = (T_i - w_j * x_ij) / (1 - w_j)

where x are the normalised scores (0..1, benefit form) and R_ij is candidate i's weighted mean over
the other criteria. The winner a's lead over b, D_b(t) = T_a(t) - T_b(t), is a line, so the weight at
which b catches up is the root of D_b: no search, no step size, exact up to rounding. The threshold
is the smallest such root in the direction of travel; beyond it the candidate that gains fastest
leads. Weights must stay inside (0, 1); a root at or beyond either end means no change of this
weight alone flips the winner.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np

from stackdecide.mcda import methods

if TYPE_CHECKING:
    from stackdecide.model.decision import DecisionMatrix

TIE_TOLERANCE = 1e-9  # totals this close tie, as in methods.rank; the first in the file wins them
Direction = Literal["increase", "decrease"]


def weighted_totals(normalized: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Weighted sums (..., candidates) of normalised scores (..., candidates, criteria).

    The same numbers as ``methods.wsm(...)[0]`` (tests hold them to 1e-12) computed as a matrix
    product, which does not build the (..., candidates, criteria) contributions: for 10,000 sampled
    weight vectors over 1,000 candidates that array alone is 1.6 GB and most of the time.
    """
    return np.matmul(normalized, weights[..., :, None])[..., 0]


def winner_index(totals: np.ndarray) -> int:
    """The winner under ``methods.rank``: best total, ties within tolerance to the first in file."""
    return int(methods.rank(totals, TIE_TOLERANCE)[0][0])


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
    tied = lead <= TIE_TOLERANCE
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
    totals: np.ndarray  # (candidates,), 0..1
    winner: str
    criteria: tuple[CriterionFlips, ...]

    def of(self, criterion_id: str) -> CriterionFlips:
        return self.criteria[self.criterion_ids.index(criterion_id)]

    @property
    def nearest(self) -> WeightFlip | None:
        """The single weight change, over all criteria, that flips the winner soonest."""
        moves = [c.nearest for c in self.criteria if c.nearest is not None]
        return min(moves, key=lambda f: abs(f.change or 0.0)) if moves else None


def flip_distances(decision: DecisionMatrix) -> FlipDistances:
    """Flip thresholds for each criterion's weight of a decision, scored by weighted sum."""
    normalized = decision.normalize()
    weights = np.asarray(decision.weights, dtype=float)
    totals = weighted_totals(normalized, weights)
    winner = winner_index(totals)
    up_w, up_who, down_w, down_who = flip_points(normalized, weights, winner)
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
                         tuple(rows))


def _value(x: float) -> float | None:
    return None if np.isnan(x) else float(x)


@dataclass(frozen=True)
class Tradeoff:
    """What separates the winner from the runner-up, criterion by criterion (weighted sum).

    ``differences`` are the winner's contribution minus the runner-up's, in points of 100; they add
    up to ``margin``. ``runner_up_change`` is how far the runner-up's score on that criterion alone
    (in the criterion's own scale units, signed: + raises the judged score) would have to move to
    tie, or None where the scale does not leave that much room.
    """

    winner: str
    runner_up: str
    margin: float  # points of 100
    criterion_ids: tuple[str, ...]
    winner_points: np.ndarray  # (criteria,)
    runner_up_points: np.ndarray  # (criteria,)
    runner_up_change: tuple[float | None, ...]

    @property
    def differences(self) -> np.ndarray:
        return self.winner_points - self.runner_up_points


def tradeoff(decision: DecisionMatrix) -> Tradeoff | None:
    """Winner versus runner-up under the weighted sum; None with a single candidate."""
    if len(decision.candidates) < 2:
        return None
    normalized = decision.normalize()
    weights = np.asarray(decision.weights, dtype=float)
    totals = weighted_totals(normalized, weights)
    order, _ = methods.rank(totals, TIE_TOLERANCE)
    a, b = int(order[0]), int(order[1])
    points = normalized * weights * 100.0
    margin = float(totals[a] - totals[b]) * 100.0
    span = decision.highs - decision.lows
    changes: list[float | None] = []
    for j in range(len(weights)):
        needed = margin / 100.0 / weights[j]  # normalised units the runner-up must gain
        sign = 1.0 if decision.benefit[j] else -1.0
        fits = normalized[b, j] + needed <= 1.0 + 1e-12
        changes.append(float(sign * needed * span[j]) if fits else None)
    return Tradeoff(decision.candidate_ids[a], decision.candidate_ids[b], margin,
                    decision.criterion_ids, points[a], points[b], tuple(changes))
