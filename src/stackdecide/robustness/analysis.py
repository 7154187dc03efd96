"""Flip distances, the winner's trade-off with the runner-up, and SMAA-2, for one decision.

They are about the feasible candidates only: one that cannot start or breaks a constraint is never
the winner, so it is no flip target, no runner-up and takes no share of SMAA's first places.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, TypeVar

from stackdecide.errors import StackdecideError
from stackdecide.mcda import methods
from stackdecide.model.ranking import NoFeasibleCandidate
from stackdecide.robustness.flips import FlipDistances, Tradeoff, flip_distances, tradeoff
from stackdecide.robustness.smaa import SmaaResult, run_smaa

if TYPE_CHECKING:
    from stackdecide.model.decision import DecisionMatrix

D = TypeVar("D", bound="DecisionMatrix")


@dataclass(frozen=True)
class Sensitivity:
    """Everything ``stackdecide sensitivity`` reports, under ``method`` (a name in
    ``methods.METHODS``) applied to ``basis``: the judged scores, or the measured ranking's scores
    when evidence was given. ``decision`` holds the feasible candidates analysed; ``left_out``
    names the infeasible ones, with why."""

    decision: DecisionMatrix
    flips: FlipDistances
    tradeoff: Tradeoff | None
    smaa: SmaaResult
    basis: str = "judged scores"
    method: str = "wsm"
    left_out: Mapping[str, str] = field(default_factory=dict)

    @property
    def winner(self) -> str:
        return self.flips.winner

    @property
    def method_label(self) -> str:
        """What the method is called in reports, e.g. 'weighted product'."""
        return methods.METHODS[self.method].label

    def to_dict(self) -> dict[str, Any]:
        """Stable, versioned, JSON-ready view (see docs/sensitivity.md)."""
        from stackdecide.robustness.report import sensitivity_to_dict

        return sensitivity_to_dict(self)


def analyze(decision: DecisionMatrix, samples: int | None = None, seed: int | None = None,
            chunk: int | None = None, basis: str = "judged scores",
            method: str = "wsm", left_out: Mapping[str, str] | None = None) -> Sensitivity:
    """Flip distances, trade-off and SMAA-2 of a decision under ``method`` (``wsm``, ``wpm`` or
    ``topsis``; flip distances are exact for ``wsm``, found by scan and bisection otherwise).
    ``samples`` defaults to the file's ``sensitivity.samples``; ``seed=None`` draws fresh entropy
    (recorded in the result).

    ``left_out`` maps infeasible candidates to why they are (``stackdecide.sensitivity`` passes
    those its ranking found): they take no part. ``NoFeasibleCandidate`` when none is left.
    """
    if method not in methods.METHODS:  # one clear error before any of the three parts runs
        raise StackdecideError(f"unknown method '{method}'; choose one of "
                               f"{', '.join(methods.METHODS)}")
    left_out = {cid: left_out[cid] for cid in decision.candidate_ids if cid in (left_out or {})}
    kept = [cid for cid in decision.candidate_ids if cid not in left_out]
    if not kept:
        raise NoFeasibleCandidate(left_out, "whose robustness to analyse (flip distances, the "
                                  "trade-off and SMAA-2 are about feasible candidates)")
    feasible = only(decision, kept) if left_out else decision
    return Sensitivity(feasible, flip_distances(feasible, method), tradeoff(feasible, method),
                       run_smaa(feasible, samples=samples, seed=seed, chunk=chunk, method=method),
                       basis, method, left_out)


def only(decision: D, candidate_ids: list[str]) -> D:
    """The decision with only the candidates named (in file order): same criteria, weights and
    scales, so each candidate's normalised scores and totals are unchanged. Its ``positions``
    still locate the file as written (the sensitivity settings, not candidates, by index)."""
    rows = [decision.candidate_index(cid) for cid in candidate_ids]
    model = decision.model.model_copy(update={
        "candidates": [decision.model.candidates[i] for i in rows]})
    matrix = decision.matrix[rows]
    matrix.setflags(write=False)
    return dataclasses.replace(decision, model=model, matrix=matrix)
