"""Audit: what a decision claims, checked against what follows from it (totals, AHP, targets,
whether each candidate can start)."""

from stackdecide.audit.checks import CHECKS, audit, cannot_start, judged_wsm_totals
from stackdecide.audit.engine_config import check_launchability
from stackdecide.model.findings import Finding, Severity

__all__ = ["CHECKS", "Finding", "Severity", "audit", "cannot_start", "check_launchability",
           "judged_wsm_totals"]
