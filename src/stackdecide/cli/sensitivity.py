"""`stackdecide sensitivity`: how far weights must move to change the winner, and SMAA-2."""

from __future__ import annotations

import click

import stackdecide
from stackdecide.cli._app import (
    any_hardware_option,
    decision_argument,
    handle_errors,
    main,
    method_option,
)
from stackdecide.evidence.store import load_evidence
from stackdecide.robustness.report import render


@main.command()
@decision_argument()
@click.option("--samples", type=click.IntRange(min=1), default=None,
              help="Weight vectors to sample (default: the file's sensitivity.samples, 10,000).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Random seed; the same file, samples and seed give the same numbers.")
@click.option("--format", "fmt", type=click.Choice(("table", "markdown", "json")),
              default="table", show_default=True, help="Output format.")
@click.option("--evidence", "evidence_path", type=click.Path(dir_okay=False),
              help="Evidence database: analyse the measured ranking `score --evidence` prints "
                   "(measured cells in place of judged ones), as the HTML report does.")
@any_hardware_option()
@method_option()
@handle_errors
def sensitivity(file: str, samples: int | None, seed: int, fmt: str, evidence_path: str | None,
                any_hardware: bool, method: str) -> None:
    """How robust the winner of decision FILE is under --method (default: weighted sum).

    For each criterion: the weight at which the winner changes, raising or lowering it while the
    other weights keep their proportions (exact for wsm; for wpm and topsis a 2,000-step scan and
    bisection to 1e-12). Then the winner's lead over the runner-up per criterion, and SMAA-2: the
    share of uniformly sampled weights (within the file's sensitivity limits, with scores drawn
    within their stated uncertainty) that give each candidate each rank.
    """
    decision = stackdecide.load(file)
    evidence = load_evidence(evidence_path) if evidence_path else None
    result = stackdecide.sensitivity(decision, evidence=evidence, method=method, samples=samples,
                                     seed=seed, any_hardware=any_hardware)
    click.echo(render(result, fmt), nl=False)
