"""`stackdecide predict`: each candidate's measured criteria predicted before launching."""

from __future__ import annotations

import click

import stackdecide
from stackdecide.cli._app import calibrate_option, decision_argument, handle_errors, main
from stackdecide.evidence import EvidenceSet, load_evidence
from stackdecide.predict import DEFAULT_LEVEL
from stackdecide.report.predict import prediction_json, prediction_text
from stackdecide.search import calibrations_from, prediction_for, start_predictions


@main.command("predict")
@decision_argument()
@click.option("--evidence", "evidence_path", type=click.Path(dir_okay=False),
              help="Evidence database (SQLite) whose launches calibrate the prediction.")
@calibrate_option()
@click.option("--level", type=click.FloatRange(0.5, 0.99), default=DEFAULT_LEVEL, show_default=True,
              help="Share of launches each interval holds.")
@click.option("--no-judged", is_flag=True, help="Leave the candidates' judged scores out.")
@click.option("--format", "fmt", type=click.Choice(("table", "markdown", "json")), default="table",
              show_default=True, help="Output format.")
@handle_errors
def predict_command(file: str, evidence_path: str | None, calibrate_with: tuple[str, ...],
                    level: float, no_judged: bool, fmt: str) -> None:
    """Predict each candidate's measured criteria of decision FILE before launching it: its
    roofline ceiling times the efficiency that launches in --evidence reached (pooled over
    configurations that share a GPU, model, weight format, attention backend, KV dtype, layout
    or vLLM), with an interval for one launch. Every value is marked predicted; `score` shows
    measurements. docs/prediction.md states the model and its measured coverage."""
    decision = stackdecide.load(file)
    evidence = load_evidence(evidence_path) if evidence_path else EvidenceSet()
    prediction = prediction_for(decision, evidence, level, calibrations_from(calibrate_with),
                                judged=not no_judged)
    starts = start_predictions(decision, evidence, prediction)
    if fmt == "json":
        click.echo(prediction_json(prediction, starts), nl=False)
    else:
        click.echo(prediction_text(prediction, decision.title,
                                   "github" if fmt == "markdown" else "simple", starts), nl=False)
