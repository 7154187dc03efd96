"""Audit: what a decision claims, checked against what follows from it (totals, AHP, targets)."""

from stackdecide.audit.checks import CHECKS, audit, judged_wsm_totals
from stackdecide.model.findings import Finding, Severity

__all__ = ["CHECKS", "Finding", "Severity", "audit", "judged_wsm_totals"]
