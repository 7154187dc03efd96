"""What scoring returns: the ranking and every intermediate needed to explain it."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from stackdecide.cells import Cell

if TYPE_CHECKING:
    from stackdecide.audit import Finding
    from stackdecide.decision import Decision


@dataclass(frozen=True)
class Ranking:
    """Scores of every candidate under one method, on 0..100, with their intermediates.

    ``terms`` are the per-criterion pieces of each total: additive contributions in points for the
    weighted sum (they add up to the total), factors for the weighted product, and weighted
    normalised values for TOPSIS.
    """

    decision: Decision
    method: str
    totals: np.ndarray  # (candidates,) on 0..100
    ranks: np.ndarray  # (candidates,) competition ranks among feasible candidates; 0 = infeasible
    order: np.ndarray  # candidate indices, best first, infeasible last
    normalized: np.ndarray  # (candidates, criteria) benefit form on 0..1
    terms: np.ndarray  # (candidates, criteria)
    cells: tuple[tuple[Cell, ...], ...]  # (candidates, criteria)
    infeasible: dict[str, tuple[str, ...]] = field(default_factory=dict)
    findings: tuple[Finding, ...] = ()
    notes: tuple[str, ...] = ()

    @property
    def candidate_ids(self) -> tuple[str, ...]:
        return self.decision.candidate_ids

    @property
    def winner(self) -> str | None:
        """Id of the best feasible candidate (first in file order among ties), or None."""
        for index in self.order:
            if self.ranks[index] > 0:
                return self.candidate_ids[index]
        return None

    @property
    def tied_winners(self) -> tuple[str, ...]:
        return tuple(cid for cid, r in zip(self.candidate_ids, self.ranks, strict=True) if r == 1)

    def total(self, candidate_id: str) -> float:
        return float(self.totals[self.decision.candidate_index(candidate_id)])

    def rank_of(self, candidate_id: str) -> int | None:
        value = int(self.ranks[self.decision.candidate_index(candidate_id)])
        return value or None

    @property
    def measured_cells(self) -> int:
        return sum(cell.measured for row in self.cells for cell in row)

    def to_dict(self) -> dict:
        """A stable, versioned, JSON-ready view (see docs/file-format.md, 'JSON output')."""
        from stackdecide.report import ranking_to_dict

        return ranking_to_dict(self)
