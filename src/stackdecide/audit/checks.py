"""Audit: what a decision claims, checked against what follows from it.

Each check is a function ``(decision, ranking) -> list[Finding]``; ``audit`` runs them all. The
static launch checks (``engine_config.check_launchability``) need no ranking: scoring runs them
once before it ranks, since an error among them makes a candidate infeasible (``cannot_start``),
and hands them to ``audit``.
Published numbers are only compared, never copied into results.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING

import numpy as np

from stackdecide.audit.engine_config import check_hardware_facts
from stackdecide.audit.targets import check_roofline_targets
from stackdecide.mcda import methods
from stackdecide.mcda.ahp import CONSISTENCY_LIMIT, ahp_weights, matrix_from_rows
from stackdecide.model.findings import Finding
from stackdecide.model.space import configuration_of

if TYPE_CHECKING:
    from stackdecide.model.decision import DecisionMatrix
    from stackdecide.model.ranking import Ranking


def judged_wsm_totals(decision: DecisionMatrix) -> np.ndarray:
    """Weighted-sum totals of the judged scores in points (0..100), as a published table shows
    them: the audit compares them with the reported totals, which are points."""
    return methods.to_points(methods.weighted_sum(decision.normalize(), decision.weights))


def check_reported_totals(decision: DecisionMatrix, ranking: Ranking) -> list[Finding]:
    tolerance = decision.model.audit.tolerance
    computed = judged_wsm_totals(decision)
    findings = []
    for index, candidate in enumerate(decision.candidates):
        if candidate.reported_total is None:
            continue
        reported, total = candidate.reported_total, float(computed[index])
        if abs(reported - total) > tolerance:
            findings.append(Finding(
                "reported-total-mismatch", "error", candidate.id,
                f"reported total {reported:g} does not follow from the weights and scores: they "
                f"give {total:.2f} (difference {reported - total:+.2f})",
                decision.locate(("candidates", index, "reported_total")), reported,
                round(total, 6)))
    reported_all = [c.reported_total for c in decision.candidates]
    if findings and all(r is not None for r in reported_all):
        reported_order = methods.rank(np.array(reported_all) / methods.POINTS)[0]
        computed_order = methods.rank(computed / methods.POINTS)[0]
        if reported_order[0] != computed_order[0]:
            ids = decision.candidate_ids
            findings.append(Finding(
                "reported-winner-differs", "error", "decision",
                f"the reported totals make '{ids[reported_order[0]]}' the winner, the weights and "
                f"scores make '{ids[computed_order[0]]}' the winner"))
        elif list(reported_order) != list(computed_order):
            findings.append(Finding(
                "reported-order-differs", "warning", "decision",
                "the reported totals order the candidates differently from the weights and scores "
                "(same winner)"))
    return findings


def check_ahp_consistency(decision: DecisionMatrix, ranking: Ranking) -> list[Finding]:
    ahp = decision.model.weighting.ahp
    if decision.model.weighting.method != "ahp" or ahp is None:
        return []
    result = ahp_weights(matrix_from_rows(ahp.matrix))
    if result.consistent:
        return []
    return [Finding("ahp-inconsistent", "warning", "decision",
                    f"AHP consistency ratio {result.consistency_ratio:.3f} is above "
                    f"{CONSISTENCY_LIMIT}: the pairwise comparisons contradict each other; revise "
                    "them before trusting the weights",
                    decision.locate(("weighting", "ahp", "matrix")))]


def check_tied_winner(decision: DecisionMatrix, ranking: Ranking) -> list[Finding]:
    """A tie for first place is a warning, except among configurations of a space that all still
    have the base's judged scores: the space makes them equal by design (docs/space.md), and
    measurements or predictions tell them apart, so that tie is an info."""
    tied = ranking.tied_winners
    if len(tied) < 2:
        return []
    if _share_the_base_scores(decision, ranking, tied):
        return [Finding("tied-winner", "info", "decision",
                        f"{len(tied)} configurations of the space tie for first place on the "
                        f"base's judged scores ({tied[0]} is shown first); measurements or "
                        "predictions tell them apart")]
    return [Finding("tied-winner", "warning", "decision",
                    f"{', '.join(tied)} tie for first place; the first in the file is shown first")]


def _share_the_base_scores(decision: DecisionMatrix, ranking: Ranking,
                           candidate_ids: Sequence[str]) -> bool:
    """Whether every one of ``candidate_ids`` is a configuration of the decision's space with no
    measured cell: its scores are then the base's, as every configuration's are."""
    for candidate_id in candidate_ids:
        if configuration_of(decision.model, candidate_id) is None:
            return False
        if any(cell.measured for cell in ranking.cells[decision.candidate_index(candidate_id)]):
            return False
    return True


Check = Callable[["DecisionMatrix", "Ranking"], list[Finding]]
CHECKS: list[Check] = [check_reported_totals, check_ahp_consistency, check_tied_winner,
                       check_hardware_facts, check_roofline_targets]


def cannot_start(launch: Sequence[Finding]) -> dict[str, tuple[Finding, ...]]:
    """The launch findings that make each candidate infeasible: the errors, which say that its
    configuration cannot start or cannot run as written. Warnings and infos leave it feasible."""
    refused: dict[str, list[Finding]] = {}
    for finding in launch:
        if finding.severity == "error":
            refused.setdefault(finding.subject, []).append(finding)
    return {subject: tuple(found) for subject, found in refused.items()}


def audit(decision: DecisionMatrix, ranking: Ranking,
          launch: Sequence[Finding]) -> list[Finding]:
    """Every registered check, then the ``launch`` findings computed before ranking."""
    findings: list[Finding] = []
    for check in CHECKS:
        findings.extend(check(decision, ranking))
    return [*findings, *launch]
