"""How far each judged score may be off: the decision's stated ``uncertainty``, as draws.

SMAA-2 perturbs judged scores with it, and the certainty of a measured ranking keeps judged
cells within it while measured cells move by their measurement error.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    from stackdecide.model.decision import DecisionMatrix


@dataclass(frozen=True)
class ScoreUncertainty:
    """Judged scores and how far each may be off (± in the criterion's scale units)."""

    matrix: np.ndarray  # (candidates, criteria), scale units
    spread: np.ndarray  # (candidates, criteria), >= 0
    lows: np.ndarray  # (criteria,) scale ends: perturbed scores are clipped to them
    highs: np.ndarray

    @property
    def any(self) -> bool:
        return bool(np.any(self.spread > 0))

    def sample(self, rng: np.random.Generator, n: int) -> np.ndarray:
        """n perturbed matrices (n, candidates, criteria): uniform within ± spread, clipped."""
        cells = np.flatnonzero(self.spread > 0)  # draw only for uncertain cells
        out = np.repeat(self.matrix[None], n, axis=0)
        flat = out.reshape(n, -1)
        noise = rng.uniform(-1.0, 1.0, size=(n, cells.size)) * self.spread.ravel()[cells]
        columns = cells % self.matrix.shape[1]
        flat[:, cells] = np.clip(flat[:, cells] + noise, self.lows[columns], self.highs[columns])
        return out


def score_uncertainty(decision: DecisionMatrix) -> ScoreUncertainty:
    """Spread per cell: the candidate's own ``uncertainty`` entry, else the criterion's, else 0."""
    spread = np.zeros(decision.matrix.shape)
    for j, criterion in enumerate(decision.criteria):
        if criterion.uncertainty:
            spread[:, j] = criterion.uncertainty
    for i, candidate in enumerate(decision.candidates):
        for cid, value in candidate.uncertainty.items():
            spread[i, decision.criterion_index(cid)] = value
    return ScoreUncertainty(np.asarray(decision.matrix, dtype=float), spread, decision.lows,
                            decision.highs)


