"""What scoring returns: the ranking and every intermediate needed to explain it."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import numpy as np

from stackdecide.errors import StackdecideError
from stackdecide.mcda.methods import METHODS, to_points
from stackdecide.model.cells import Cell
from stackdecide.model.certainty import Certainty
from stackdecide.model.findings import Finding
from stackdecide.model.space import elsewhere

if TYPE_CHECKING:
    import pandas

    from stackdecide.model.decision import DecisionMatrix

JSON_VERSION = 1


class NoFeasibleCandidate(StackdecideError):
    """Every candidate is infeasible, so there is no winner to launch or to analyse (exit 1).

    ``reasons`` maps each candidate id to why it is infeasible (``Ranking.why_infeasible``).
    """

    exit_code = 1

    def __init__(self, reasons: Mapping[str, str], what: str) -> None:
        super().__init__(f"no candidate is feasible, so there is no winner {what}: "
                         + "; ".join(f"{cid}: {why}" for cid, why in reasons.items()))
        self.reasons = dict(reasons)


@dataclass(frozen=True)
class Ranking:
    """Scores of every candidate under one method, with their intermediates.

    ``scores`` are the method's totals on 0..1, the scale every computation uses; ``totals`` shows
    them as points on 0..100, the scale every view prints. With evidence, ``certainty`` says how
    sure the ranking is (P(best), the verdict), computed once where it was scored.

    ``terms`` are the per-criterion pieces of each total, in the unit the method's registry entry
    names (``terms_unit``): additive contributions in points for the weighted sum (they add up to
    the total), factors for the weighted product, and weighted normalised values for TOPSIS.
    ``extra`` keeps the method's other intermediates by name (TOPSIS: ``ideal``, ``anti_ideal``,
    ``distance_to_ideal``, ``distance_to_anti_ideal``), as scikit-criteria's ``extra_`` does.

    A candidate is infeasible when it breaks a constraint (``violations``) or when a static launch
    check says its configuration cannot start as written (``cannot_start``: the error-level
    findings, also among ``findings``). It has no rank, is never the winner and comes after every
    feasible candidate in ``order`` (infeasible ones by total among themselves).
    """

    decision: DecisionMatrix
    method: str
    scores: np.ndarray  # (candidates,) totals on 0..1
    ranks: np.ndarray  # (candidates,) competition ranks among feasible candidates; 0 = infeasible
    order: np.ndarray  # candidate indices, best first, infeasible last
    normalized: np.ndarray  # (candidates, criteria) benefit form on 0..1
    terms: np.ndarray  # (candidates, criteria)
    cells: tuple[tuple[Cell, ...], ...]  # (candidates, criteria)
    violations: Mapping[str, tuple[str, ...]] = field(default_factory=dict)  # constraints broken
    cannot_start: Mapping[str, tuple[Finding, ...]] = field(default_factory=dict)  # launch errors
    findings: tuple[Finding, ...] = ()
    notes: tuple[str, ...] = ()
    extra: Mapping[str, np.ndarray] = field(default_factory=dict)
    certainty: Certainty | None = None  # with evidence: P(best) and the verdict

    def __repr__(self) -> str:
        shown = ", ".join(f"{self.candidate_ids[i]}={self.totals[i]:.2f}" for i in self.order[:4])
        more = f", +{len(self.order) - 4} more" if len(self.order) > 4 else ""
        return f"<Ranking {self.method}: winner={self.winner!r}; {shown}{more}>"

    @property
    def infeasible(self) -> dict[str, tuple[str, ...]]:
        """Why each infeasible candidate is, in file order: the constraints it breaks, then each
        launch finding that says it cannot start (its message and ``[code]``)."""
        reasons = {}
        for cid in self.candidate_ids:
            found = (*self.violations.get(cid, ()),
                     *(refusal_reason(f) for f in self.cannot_start.get(cid, ())))
            if found:
                reasons[cid] = found
        return reasons

    def why_infeasible(self, candidate_id: str) -> str:
        """One line for views: the constraints broken, and the codes of the launch findings that
        say the candidate cannot start (their messages are in the audit); "" when feasible."""
        parts = list(self.violations.get(candidate_id, ()))
        refused = self.cannot_start.get(candidate_id, ())
        if refused:
            parts.append(f"cannot start as written ({', '.join(f.code for f in refused)})")
        return "; ".join(parts)

    @property
    def totals(self) -> np.ndarray:
        """Totals as points on 0..100, for display (``scores`` on 0..1 for computing)."""
        return to_points(self.scores)

    @property
    def terms_unit(self) -> str:
        return METHODS[self.method].terms_unit

    @property
    def candidate_ids(self) -> tuple[str, ...]:
        return self.decision.candidate_ids

    @property
    def choosable(self) -> tuple[str, ...]:
        """Ids of the feasible candidates that can run on the decision's hardware, best first
        (file order among ties). A space's configuration for other hardware is ranked by its
        prediction, but is never chosen here (``model.space.elsewhere``)."""
        away = elsewhere(self.decision.model)
        return tuple(self.candidate_ids[i] for i in self.order
                     if self.ranks[i] > 0 and self.candidate_ids[i] not in away)

    @property
    def winner(self) -> str | None:
        """Id of the best choosable candidate (``choosable``), or None."""
        return next(iter(self.choosable), None)

    @property
    def tied_winners(self) -> tuple[str, ...]:
        return tuple(cid for cid, r in zip(self.candidate_ids, self.ranks, strict=True) if r == 1)

    def total(self, candidate_id: str) -> float:
        return float(self.totals[self.decision.candidate_index(candidate_id)])

    @property
    def measured_cells(self) -> int:
        return sum(cell.measured for row in self.cells for cell in row)

    @property
    def totals_by_candidate(self) -> dict[str, float]:
        """Totals (0..100) by candidate id, in file order."""
        return {cid: float(total) for cid, total in zip(self.candidate_ids, self.totals, strict=True)}

    @property
    def terms_by_candidate(self) -> dict[str, dict[str, float]]:
        """``terms_by_candidate[candidate][criterion]``, in ``terms_unit``."""
        criteria = self.decision.criterion_ids
        return {cid: {crit: float(self.terms[i, j]) for j, crit in enumerate(criteria)}
                for i, cid in enumerate(self.candidate_ids)}

    def to_frame(self) -> pandas.DataFrame:
        """Ranks, totals and terms as a pandas DataFrame indexed by candidate id, best first.

        pandas is an optional extra (``pip install 'stackdecide[frames]'``).
        """
        try:
            import pandas
        except ImportError:
            raise ImportError("to_frame() needs pandas: pip install 'stackdecide[frames]'") from None
        rows = []
        for index in self.order:
            row: dict[str, Any] = {"rank": int(self.ranks[index]) or None,
                                   "total": float(self.totals[index]),
                                   "feasible": bool(self.ranks[index] > 0)}
            row.update({crit: float(self.terms[index, j])
                        for j, crit in enumerate(self.decision.criterion_ids)})
            rows.append(row)
        frame = pandas.DataFrame(rows, index=pandas.Index(
            [self.candidate_ids[i] for i in self.order], name="candidate"))
        frame.attrs.update(method=self.method, terms_unit=self.terms_unit)
        return frame

    def to_dict(self) -> dict[str, Any]:
        """A stable, versioned, JSON-ready view (see docs/file-format.md, 'JSON output')."""
        return ranking_to_dict(self)


def refusal_reason(finding: Finding) -> str:
    """A launch finding as a reason its candidate is infeasible: its message, then its code."""
    return f"{finding.message} [{finding.code}]"


def _cell_dict(cell: Cell) -> dict[str, Any]:
    data: dict[str, Any] = {"score": cell.score, "source": cell.source, "judged": cell.judged}
    if cell.measured:
        data.update(raw=cell.raw, unit=cell.unit, metric=cell.metric, samples=cell.samples,
                    spread=cell.spread, flags=list(cell.flags), record_ids=list(cell.record_ids),
                    replicates=[{"launch": launch, "value": value}
                                for launch, value in cell.replicates])
    elif cell.predicted:
        assert cell.interval is not None
        data.update(raw=cell.raw, unit=cell.unit, metric=cell.metric,
                    interval=list(cell.interval), log_sd=cell.log_sd)
    return data


def ranking_to_dict(ranking: Ranking) -> dict[str, Any]:
    """Stable JSON view; ``version`` changes only when a key changes meaning or goes away."""
    decision = ranking.decision
    infeasible = ranking.infeasible
    candidates = []
    for index in ranking.order:
        candidate = decision.candidates[index]
        candidates.append({
            "id": candidate.id,
            "name": candidate.label,
            "rank": int(ranking.ranks[index]) or None,
            "total": round(float(ranking.totals[index]), 6),
            "feasible": candidate.id not in infeasible,
            "infeasible_reasons": list(infeasible.get(candidate.id, ())),
            "reported_total": candidate.reported_total,
            "terms": {c.id: round(float(ranking.terms[index, j]), 6)
                      for j, c in enumerate(decision.criteria)},
            "cells": {c.id: _cell_dict(ranking.cells[index][j])
                      for j, c in enumerate(decision.criteria)},
        })
    data: dict[str, Any] = {
        "version": JSON_VERSION,
        "decision": {"title": decision.title, "source": decision.model.decision.source,
                     "file": decision.source_file},
        "method": ranking.method,
        "terms_unit": ranking.terms_unit,
        "weights": {k: round(v, 9) for k, v in decision.weights_by_id.items()},
        "winner": ranking.winner,
        "candidates": candidates,
        "findings": [f.to_dict() for f in ranking.findings],
        "notes": list(ranking.notes),
    }
    if ranking.extra:
        data["extra"] = {name: np.round(np.asarray(value, dtype=float), 9).tolist()
                         for name, value in ranking.extra.items()}
    return data
