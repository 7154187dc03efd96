"""The immutable decision matrix: judged scores, weights and directions, named by the file's ids.

Scoring lives above this layer (``stackdecide.scoring``); ``stackdecide.Decision`` adds ``score()``
and ``sensitivity()`` to this class.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Self

import numpy as np

from stackdecide.errors import StackdecideError
from stackdecide.mcda import methods
from stackdecide.model._yaml import PathKey, Positions, format_path
from stackdecide.model.cells import Cell
from stackdecide.model.constraints import Constraint, parse_constraint
from stackdecide.model.schema import Candidate, Criterion, DecisionFile, ModelSpec


def _frozen(array: np.ndarray) -> np.ndarray:
    array = np.array(array, dtype=float)
    array.setflags(write=False)
    return array


@dataclass(frozen=True, eq=False)
class DecisionMatrix:
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
                   positions: Positions | None = None) -> Self:
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

    def model_of(self, candidate_id: str) -> ModelSpec | None:
        """The model a candidate serves: its own ``model:`` over the decision's. A candidate that
        names a model (id, shape or config) takes nothing else from the decision's; one that gives
        only ``weights`` serves the decision's model in that format."""
        base = self.model.decision.model
        candidate = self.candidate(candidate_id)
        own = candidate.model
        if own is None:
            return base
        fields = base.model_dump() if base is not None else {}
        if own.id or own.shape or own.config:
            fields = {"id": fields.get("id")}
        fields.update(own.model_dump(exclude_none=True))
        if not fields.get("id"):
            fields["id"] = str(candidate.engine.get("model") or candidate.id)
        return ModelSpec(**fields)

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
                scores: Mapping[tuple[str, str], float] | None = None) -> Self:
        """A new decision with some weights or judged scores changed.

        ``weights={"x": 0.45}`` sets criterion x to 45% of the total weight and rescales the other
        weights proportionally so that all still add up to 1: the convention of the flip distances
        in ``stackdecide sensitivity`` ("raise x to 45.8%"). A full array of weights is normalised
        to add up to 1 instead.
        """
        new_weights = np.array(self.weights)
        if isinstance(weights, Mapping):
            new_weights = _set_shares(self, new_weights, weights)
        elif weights is not None:
            new_weights = np.asarray(weights, dtype=float)
            if new_weights.shape != self.weights.shape or not np.all(np.isfinite(new_weights)) \
                    or np.any(new_weights <= 0):
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

    def judged_cells(self) -> tuple[tuple[Cell, ...], ...]:
        return tuple(tuple(Cell(score=float(v), judged=float(v)) for v in row)
                     for row in self.matrix)


def _set_shares(decision: DecisionMatrix, weights: np.ndarray,
                shares: Mapping[str, float]) -> np.ndarray:
    """Fix the named weights at the given shares; the others keep their proportions in the rest."""
    fixed = np.zeros(weights.shape, dtype=bool)
    result = np.array(weights, dtype=float)
    for key, value in shares.items():
        if not (isinstance(value, int | float) and 0.0 < float(value) < 1.0):
            raise StackdecideError(f"weight of '{key}' must be a share between 0 and 1 "
                                   f"(0.45 for 45%), got {value!r}")
        index = decision.criterion_index(key)
        result[index], fixed[index] = float(value), True
    given = result[fixed].sum()
    rest = weights[~fixed].sum()
    if fixed.all():
        if not np.isclose(given, 1.0):
            raise StackdecideError(f"weights given for every criterion must add up to 1, got {given:g}")
        return result
    if given >= 1.0:
        raise StackdecideError(f"the weights given add up to {given:g}; they must leave room for "
                               "the other criteria (less than 1)")
    result[~fixed] = weights[~fixed] / rest * (1.0 - given)
    return result
