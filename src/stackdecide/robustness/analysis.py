"""Flip distances, the winner's trade-off with the runner-up, and SMAA-2, for one decision."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from stackdecide.errors import StackdecideError
from stackdecide.mcda import methods
from stackdecide.robustness.flips import FlipDistances, Tradeoff, flip_distances, tradeoff
from stackdecide.robustness.smaa import SmaaResult, run_smaa

if TYPE_CHECKING:
    from stackdecide.model.decision import DecisionMatrix


@dataclass(frozen=True)
class Sensitivity:
    """Everything ``stackdecide sensitivity`` reports, under ``method`` (a name in
    ``methods.METHODS``) applied to ``basis``: the judged scores, or the measured ranking's scores
    when evidence was given."""

    decision: DecisionMatrix
    flips: FlipDistances
    tradeoff: Tradeoff | None
    smaa: SmaaResult
    basis: str = "judged scores"
    method: str = "wsm"

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
            method: str = "wsm") -> Sensitivity:
    """Flip distances, trade-off and SMAA-2 of a decision under ``method`` (``wsm``, ``wpm`` or
    ``topsis``; flip distances are exact for ``wsm``, found by scan and bisection otherwise).
    ``samples`` defaults to the file's ``sensitivity.samples``; ``seed=None`` draws fresh entropy
    (recorded in the result)."""
    if method not in methods.METHODS:  # one clear error before any of the three parts runs
        raise StackdecideError(f"unknown method '{method}'; choose one of "
                               f"{', '.join(methods.METHODS)}")
    return Sensitivity(decision, flip_distances(decision, method), tradeoff(decision, method),
                       run_smaa(decision, samples=samples, seed=seed, chunk=chunk, method=method),
                       basis, method)
