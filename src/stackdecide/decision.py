"""The public decision: a decision matrix that can score itself and say how robust its winner is.

>>> decision = stackdecide.load("criteria/hopper.yaml")
>>> decision.score().winner
'fp8-flashinfer-fp8kv'
>>> decision.sensitivity(samples=1_000).flips.nearest
"""

from __future__ import annotations

from pathlib import Path

from stackdecide import scoring
from stackdecide.evidence.records import EvidenceSet
from stackdecide.model import loader
from stackdecide.model.certainty import CertaintySettings
from stackdecide.model.decision import DecisionMatrix
from stackdecide.model.ranking import Ranking
from stackdecide.predict.predictions import Prediction
from stackdecide.robustness import Sensitivity, analyze


class Decision(DecisionMatrix):
    """Criteria x candidates with weights; build one with ``stackdecide.load``.

    ``matrix[i, j]`` is candidate i's judged score on criterion j, on that criterion's own scale.
    ``weights`` always add up to 1. Arrays are read-only: use ``replace`` to change anything.
    """

    def score(self, method: str = "wsm", evidence: EvidenceSet | None = None,
              any_hardware: bool = False, include_partial: bool = False,
              certainty: CertaintySettings | None = None,
              prediction: Prediction | None = None) -> Ranking:
        """Rank the candidates; with ``evidence``, measured scores replace judged ones.

        ``method`` is one of ``wsm`` (weighted sum, default), ``wpm`` (weighted product) or
        ``topsis`` (with the scale's ends as ideal and anti-ideal). Measurements of a benchmark
        cut short count only with ``include_partial``. With ``evidence`` the ranking carries its
        ``certainty`` (P(best), the verdict), computed with the ``certainty`` settings given. With
        ``prediction`` (``stackdecide.predict``), cells no launch measured are predicted.
        """
        return scoring.score(self, method, evidence, any_hardware, include_partial, certainty,
                             prediction)

    def sensitivity(self, *, evidence: EvidenceSet | None = None, method: str = "wsm",
                    samples: int | None = None, seed: int | None = 0,
                    any_hardware: bool = False) -> Sensitivity:
        """See ``stackdecide.sensitivity``."""
        return sensitivity(self, evidence=evidence, method=method, samples=samples, seed=seed,
                           any_hardware=any_hardware)


def sensitivity(decision: DecisionMatrix, *, evidence: EvidenceSet | None = None,
                method: str = "wsm", samples: int | None = None, seed: int | None = 0,
                any_hardware: bool = False) -> Sensitivity:
    """Flip distances, the winner's trade-off and SMAA-2 of the ranking ``score`` gives.

    ``method`` is the one ``score`` uses (``wsm``, ``wpm`` or ``topsis``): every part is computed
    with that method's totals. Flip distances are exact for the weighted sum (its totals are linear
    in each weight) and found numerically for the others: a 2,000-step scan of each weight, then
    bisection to 1e-12. With ``evidence``, measured cells are analysed as measured (the same matrix
    ``score`` ranks), so the CLI and the HTML report never disagree about robustness.
    Candidates the ranking finds infeasible (they cannot start as written, or break a constraint)
    are left out (``Sensitivity.left_out``); ``NoFeasibleCandidate`` when that leaves none.
    """
    ranking = scoring.rank(decision, method, evidence, any_hardware)
    basis = "judged scores" if evidence is None else \
        f"scores ranked with evidence ({ranking.measured_cells} measured, the rest judged)"
    return analyze(scoring.measured_decision(decision, ranking), samples=samples, seed=seed,
                   basis=basis, method=method, left_out=left_out_of(ranking))


def left_out_of(ranking: Ranking) -> dict[str, str]:
    """The candidates robustness leaves out: the infeasible ones, with why (one line each)."""
    return {cid: ranking.why_infeasible(cid) for cid in ranking.infeasible}


def load(path: str | Path) -> Decision:
    """Read, validate and build a decision from a YAML file."""
    return loader.load(path, Decision)


def parse(text: str, file: str = "<string>") -> Decision:
    """Validate a decision given as YAML text; ``file`` names it in error messages."""
    return loader.parse(text, file, Decision)
