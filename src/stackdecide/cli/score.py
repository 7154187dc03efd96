"""`stackdecide score` and `stackdecide check`."""

from __future__ import annotations

import json
import sys

import click

import stackdecide
from stackdecide.cli._app import (
    any_hardware_option,
    decision_argument,
    format_option,
    handle_errors,
    main,
    method_option,
)
from stackdecide.model.ranking import JSON_VERSION
from stackdecide.report import text as report
from stackdecide.state import record_last_decision


def _load_evidence(path: str | None):
    if path is None:
        return None
    from stackdecide.evidence import load_evidence

    return load_evidence(path)


@main.command()
@decision_argument()
@method_option()
@format_option()
@click.option("--evidence", "evidence_path", type=click.Path(dir_okay=False),
              help="Evidence database (SQLite); measured scores replace judged ones.")
@any_hardware_option()
@handle_errors
def score(file: str, method: str, fmt: str, evidence_path: str | None, any_hardware: bool) -> None:
    """Rank the candidates of decision FILE and audit its reported totals.

    Exit status: 0 when scored (audit findings are shown, use `check` to fail on them), 2 for a
    file that is not a valid decision.
    """
    decision = stackdecide.load(file)
    ranking = decision.score(method=method, evidence=_load_evidence(evidence_path),
                             any_hardware=any_hardware)
    record_last_decision(file)
    click.echo(report.render(ranking, fmt), nl=False)


@main.command()
@decision_argument()
@format_option()
@handle_errors
def check(file: str, fmt: str) -> None:
    """Validate decision FILE and audit it; exit 1 when the audit finds an error or warning."""
    decision = stackdecide.load(file)
    findings = decision.score().findings
    if fmt == "json":
        click.echo(json.dumps({"version": JSON_VERSION, "file": file,
                               "findings": [f.to_dict() for f in findings]},
                              indent=2))
    else:
        click.echo(f"{file}: valid decision, {len(decision.candidates)} candidates x "
                   f"{len(decision.criteria)} criteria")
        click.echo(report.render_findings(findings), nl=False)
    if any(f.severity in ("error", "warning") for f in findings):
        sys.exit(1)
