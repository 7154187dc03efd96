"""Scoring: evidence -> method -> constraints -> audit -> certainty, the one path every ranking takes.

A candidate is infeasible when it breaks a constraint or when a static launch check (run once,
before ranking) finds an error in its configuration: it cannot start as written. Infeasible
candidates have no rank and are never the winner.

``score`` is pure apart from reading the evidence set it is given: the same decision, evidence,
method and certainty settings always give the same ranking. With evidence, the ranking carries its
certainty (``scoring.certainty``), computed once here with the settings given here, so every view
of it (table, JSON, HTML, the race) shows the same P(best) and verdict.
"""

from __future__ import annotations

import dataclasses
from typing import TypeVar

import numpy as np

from stackdecide.audit import audit, cannot_start, check_launchability
from stackdecide.errors import StackdecideError
from stackdecide.evidence.apply import apply_evidence
from stackdecide.evidence.records import EvidenceSet
from stackdecide.mcda import methods
from stackdecide.model.certainty import CertaintySettings
from stackdecide.model.constraints import violations
from stackdecide.model.decision import DecisionMatrix
from stackdecide.model.ranking import Ranking
from stackdecide.predict.predictions import Prediction
from stackdecide.scoring.certainty import certainty as assess
from stackdecide.scoring.predicted import with_predictions

D = TypeVar("D", bound=DecisionMatrix)


def score(decision: DecisionMatrix, method: str = "wsm", evidence: EvidenceSet | None = None,
          any_hardware: bool = False, include_partial: bool = False,
          certainty: CertaintySettings | None = None,
          prediction: Prediction | None = None) -> Ranking:
    """Rank the candidates; with ``evidence``, measured scores replace judged ones.

    ``method`` is a name in ``stackdecide.mcda.methods.METHODS``: ``wsm`` (weighted sum, default),
    ``wpm`` (weighted product) or ``topsis`` (with the scale's ends as ideal and anti-ideal).
    Measurements of a benchmark cut short (``complete: false``) count only with ``include_partial``.
    With ``evidence``, ``Ranking.certainty`` says how sure the ranking is under measurement noise,
    computed with ``certainty`` (default settings when not given). A candidate whose configuration
    cannot start as written (an error of the static launch checks) is infeasible, as is one that
    breaks a constraint. With ``prediction``, cells no launch measured take their predicted value
    (``scoring.predicted``) and the certainty draws them from the prediction model's mixture
    over its error scales (``scoring.certainty``).
    """
    ranking = rank(decision, method, evidence, any_hardware, include_partial, prediction)
    if evidence is None and prediction is None:
        return ranking
    return dataclasses.replace(ranking, certainty=assess(ranking, certainty or CertaintySettings()))


def rank(decision: DecisionMatrix, method: str = "wsm", evidence: EvidenceSet | None = None,
         any_hardware: bool = False, include_partial: bool = False,
         prediction: Prediction | None = None) -> Ranking:
    """``score`` without the certainty: for callers that read the ranking's cells and places
    only (sensitivity analyses the scores ranked), not how sure it is."""
    try:
        aggregate = methods.get_method(method)
    except ValueError as exc:
        raise StackdecideError(str(exc)) from None
    cells = decision.judged_cells()
    metric_values: dict[str, dict[str, float]] = {}
    notes = list(decision.notes)
    if evidence is not None:
        applied = apply_evidence(decision, evidence, any_hardware=any_hardware,
                                 include_partial=include_partial)
        cells, metric_values = applied.cells, applied.metric_values
        notes.extend(applied.notes)
    if prediction is not None:
        cells = with_predictions(decision, cells, prediction)
    launch = check_launchability(decision)
    refused = cannot_start(launch)
    matrix = np.array([[cell.score for cell in row] for row in cells])
    normalized = decision.normalize(matrix)
    result = aggregate(normalized, decision.weights)
    broken = {cid: tuple(reasons) for cid in decision.candidate_ids
              if (reasons := violations(decision.constraints, metric_values.get(cid, {})))}
    feasible = np.array([cid not in broken and cid not in refused
                         for cid in decision.candidate_ids])
    totals = result.totals
    _require_finite(decision, totals)
    # places among the feasible candidates are their ranks; infeasible ones come after them, in
    # the places they take among themselves, and have no rank
    places = np.zeros(len(totals), dtype=int)
    for group in (feasible, ~feasible):
        if group.any():
            places[group] = methods.rank(totals[group])[1]
    ranks = np.where(feasible, places, 0)
    order = np.lexsort((np.arange(len(totals)), places, ~feasible))
    ranking = Ranking(decision, method, totals, ranks, order, normalized, result.terms, cells,
                      broken, refused, (), tuple(notes), dict(result.extra))
    return dataclasses.replace(ranking, findings=tuple(audit(decision, ranking, launch)))


def _require_finite(decision: DecisionMatrix, totals: np.ndarray) -> None:
    """No ranking rests on NaN or inf: such a total compares false with everything, so it could
    be ranked first and printed as the winner (and JSON has no NaN). The loader bounds every
    number so this cannot happen; should a path be missed, refuse here instead of ranking."""
    bad = [cid for cid, total in zip(decision.candidate_ids, totals, strict=True)
           if not np.isfinite(total)]
    if bad:
        raise StackdecideError(f"the totals of {', '.join(bad)} are not finite numbers, so no "
                               "ranking can be given; a number in the decision file or the "
                               "evidence is beyond what can be scored (please report this file: "
                               "it should have been refused where it is read)")


def measured_decision(decision: D, ranking: Ranking) -> D:
    """The decision with each measured (or predicted) cell of ``ranking`` written in as if it
    were judged.

    Sensitivity analyses the weights of this matrix, so the CLI, the library and the HTML report
    judge the robustness of the same ranking that ``score`` printed.
    """
    scores = {(cand.id, crit.id): ranking.cells[i][j].score
              for i, cand in enumerate(decision.candidates)
              for j, crit in enumerate(decision.criteria)
              if ranking.cells[i][j].measured or ranking.cells[i][j].predicted}
    return decision.replace(scores=scores) if scores else decision
