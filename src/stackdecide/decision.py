"""The immutable decision: a named matrix of judged scores, weights and directions."""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

import numpy as np

from stackdecide import methods
from stackdecide._yaml import PathKey, Positions, format_path
from stackdecide.cells import Cell
from stackdecide.constraints import Constraint, parse_constraint, violations
from stackdecide.errors import StackdecideError
from stackdecide.result import Ranking
from stackdecide.schema import Candidate, Criterion, DecisionFile

if TYPE_CHECKING:
    from stackdecide.evidence.records import EvidenceSet


def _frozen(array: np.ndarray) -> np.ndarray:
    array = np.array(array, dtype=float)
    array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False)
class Decision:
    """Criteria x candidates with weights; build one with ``stackdecide.load``.

    ``matrix[i, j]`` is candidate i's judged score on criterion j, on that criterion's own scale.
    ``weights`` always add up to 1. Arrays are read-only: use ``replace`` to change anything.
    """

    model: DecisionFile
    matrix: np.ndarray
    weights: np.ndarray
    notes: tuple[str, ...] = ()
    source_file: str | None = None
    _constraints: tuple[Constraint, ...] = field(default=(), repr=False)
    positions: Positions | None = field(default=None, repr=False)

    @classmethod
    def from_model(cls, model: DecisionFile, weights: np.ndarray, notes: Sequence[str] = (),
                   positions: Positions | None = None) -> Decision:
        matrix = [[cand.scores[crit.id] for crit in model.criteria] for cand in model.candidates]
        return cls(model, _frozen(matrix), _frozen(weights), tuple(notes),
                   positions.file if positions else None,
                   tuple(parse_constraint(text) for text in model.constraints), positions)

    def locate(self, path: PathKey) -> str:
        """``file:line:col field.path`` of a part of the decision file, for messages."""
        return str(self.positions.locate(path)) if self.positions else format_path(path)

    def __post_init__(self) -> None:
        shape = (len(self.model.candidates), len(self.model.criteria))
        if self.matrix.shape != shape:
            raise ValueError(f"matrix must have shape {shape}, got {self.matrix.shape}")
        if self.weights.shape != (shape[1],) or not np.isclose(self.weights.sum(), 1.0):
            raise ValueError("weights need one positive value per criterion, adding up to 1")

    # -- names -------------------------------------------------------------------------------
    @property
    def title(self) -> str:
        return self.model.decision.title

    @property
    def criteria(self) -> tuple[Criterion, ...]:
        return tuple(self.model.criteria)

    @property
    def candidates(self) -> tuple[Candidate, ...]:
        return tuple(self.model.candidates)

    @property
    def criterion_ids(self) -> tuple[str, ...]:
        return tuple(c.id for c in self.model.criteria)

    @property
    def candidate_ids(self) -> tuple[str, ...]:
        return tuple(c.id for c in self.model.candidates)

    def candidate(self, candidate_id: str) -> Candidate:
        return self.model.candidates[self.candidate_index(candidate_id)]

    def candidate_index(self, candidate_id: str) -> int:
        try:
            return self.candidate_ids.index(candidate_id)
        except ValueError:
            raise StackdecideError(f"no candidate '{candidate_id}'; candidates: "
                                   f"{', '.join(self.candidate_ids)}") from None

    def criterion_index(self, criterion_id: str) -> int:
        try:
            return self.criterion_ids.index(criterion_id)
        except ValueError:
            raise StackdecideError(f"no criterion '{criterion_id}'; criteria: "
                                   f"{', '.join(self.criterion_ids)}") from None

    @property
    def weights_by_id(self) -> dict[str, float]:
        return {cid: float(w) for cid, w in zip(self.criterion_ids, self.weights, strict=True)}

    @property
    def constraints(self) -> tuple[Constraint, ...]:
        return self._constraints

    # -- scales --------------------------------------------------------------------------------
    @property
    def lows(self) -> np.ndarray:
        return np.array([c.scale.low for c in self.model.criteria])

    @property
    def highs(self) -> np.ndarray:
        return np.array([c.scale.high for c in self.model.criteria])

    @property
    def benefit(self) -> np.ndarray:
        return np.array([c.direction == "benefit" for c in self.model.criteria])

    def normalize(self, matrix: np.ndarray | None = None) -> np.ndarray:
        """Scores (default: the judged matrix) on 0..1 in benefit form, by each fixed scale."""
        source = self.matrix if matrix is None else matrix
        return methods.scale_normalize(source, self.lows, self.highs, self.benefit)

    # -- changes -------------------------------------------------------------------------------
    def replace(self, *, weights: Mapping[str, float] | np.ndarray | None = None,
                scores: Mapping[tuple[str, str], float] | None = None) -> Decision:
        """A new decision with some weights (renormalised to 1) or judged scores changed."""
        new_weights = np.array(self.weights)
        if weights is not None:
            if isinstance(weights, Mapping):
                for key, value in weights.items():
                    new_weights[self.criterion_index(key)] = value
            else:
                new_weights = np.asarray(weights, dtype=float)
            if new_weights.shape != self.weights.shape or np.any(new_weights <= 0):
                raise StackdecideError("weights must be positive, one per criterion")
            new_weights = new_weights / new_weights.sum()
        new_matrix = np.array(self.matrix)
        for (candidate_id, criterion_id), value in (scores or {}).items():
            j = self.criterion_index(criterion_id)
            scale = self.model.criteria[j].scale
            if not scale.low <= value <= scale.high:
                raise StackdecideError(f"{value:g} is outside the scale {scale} of '{criterion_id}'")
            new_matrix[self.candidate_index(candidate_id), j] = value
        return dataclasses.replace(self, matrix=_frozen(new_matrix), weights=_frozen(new_weights))

    # -- scoring -------------------------------------------------------------------------------
    def judged_cells(self) -> tuple[tuple[Cell, ...], ...]:
        return tuple(tuple(Cell(score=float(v), judged=float(v)) for v in row)
                     for row in self.matrix)

    def score(self, method: str = "wsm", evidence: EvidenceSet | None = None,
              any_hardware: bool = False) -> Ranking:
        """Rank the candidates; with ``evidence``, measured scores replace judged ones.

        ``method`` is one of ``wsm`` (weighted sum, default), ``wpm`` (weighted product) or
        ``topsis`` (with the scale's ends as ideal and anti-ideal).
        """
        if method not in methods.METHODS:
            raise StackdecideError(f"unknown method '{method}'; choose one of "
                                   f"{', '.join(methods.METHODS)}")
        cells = self.judged_cells()
        metric_values: dict[str, dict[str, float]] = {}
        notes = list(self.notes)
        if evidence is not None:
            from stackdecide.evidence.apply import apply_evidence

            applied = apply_evidence(self, evidence, any_hardware=any_hardware)
            cells, metric_values = applied.cells, applied.metric_values
            notes.extend(applied.notes)
        matrix = np.array([[cell.score for cell in row] for row in cells])
        normalized = self.normalize(matrix)
        totals, terms = _apply_method(method, normalized, self.weights)
        infeasible = {cid: tuple(reasons) for cid in self.candidate_ids
                      if (reasons := violations(self._constraints, metric_values.get(cid, {})))}
        feasible = np.array([cid not in infeasible for cid in self.candidate_ids])
        ranks = np.zeros(len(totals), dtype=int)
        if feasible.any():
            _, feasible_ranks = methods.rank(totals[feasible])
            ranks[feasible] = feasible_ranks
        order = np.lexsort((np.arange(len(totals)), np.where(feasible, ranks, len(totals) + 1)))
        if method == "wsm":
            terms = terms * 100.0
        ranking = Ranking(self, method, totals * 100.0, ranks, order, normalized, terms, cells,
                          infeasible, (), tuple(notes))
        from stackdecide.audit import audit

        return dataclasses.replace(ranking, findings=tuple(audit(self, ranking)))


def _apply_method(method: str, normalized: np.ndarray,
                  weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    if method == "wsm":
        return methods.wsm(normalized, weights)
    if method == "wpm":
        return methods.wpm(normalized, weights)
    return methods.topsis(normalized, weights, ideal=weights, anti_ideal=np.zeros_like(weights))

