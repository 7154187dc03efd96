"""`stackdecide report`: the decision as one self-contained HTML page, or as markdown."""

from __future__ import annotations

from pathlib import Path

import click

import stackdecide
from stackdecide.cli._app import (
    any_hardware_option,
    calibrate_option,
    decision_argument,
    handle_errors,
    main,
    method_option,
)
from stackdecide.cli.score import predict_option, tolerance_option
from stackdecide.errors import StackdecideError
from stackdecide.model.certainty import DEFAULT_CONFIDENCE, CertaintySettings
from stackdecide.report.text import NOT_CERTIFIED


@main.command()
@decision_argument()
@click.option("--html", "html_path", type=click.Path(dir_okay=False, path_type=Path),
              help="Write the HTML report to this file (same as --format html --output FILE).")
@click.option("--format", "fmt", type=click.Choice(("html", "markdown")), default=None,
              help="html (default; needs the html extra) or markdown.")
@click.option("--output", "-o", "output", type=click.Path(dir_okay=False, path_type=Path),
              help="File to write; markdown goes to standard output without it.")
@click.option("--evidence", "evidence_path", type=click.Path(dir_okay=False),
              help="Evidence database (SQLite) or export file; adds measured scores, the "
                   "before/after ranking and roofline shares.")
@any_hardware_option()
@method_option()
@click.option("--samples", type=click.IntRange(min=1), default=None,
              help="SMAA weight vectors (default: the file's sensitivity.samples, 10,000).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="Seed of SMAA and, with --evidence, of the P(best) draws; the same inputs and "
                   "seed give the same report.")
@click.option("--confidence", type=click.FloatRange(0.5, 0.999), default=DEFAULT_CONFIDENCE,
              show_default=True, help="With --evidence: the P(best) a winner needs to be certified "
                                      "(as score --confidence).")
@click.option("--sample-weights", is_flag=True,
              help="With --evidence: also draw weights from the decision's weight region for "
                   "P(best) (as score --sample-weights).")
@tolerance_option()
@predict_option()
@calibrate_option()
@click.option("--engine-command/--no-engine-command", default=True, show_default=True,
              help="Render the winner's engine config to the exact command for the installed "
                   "vLLM (the first run for a vLLM version imports it once: slow).")
@click.option("--python", "python", metavar="PATH",
              help="Interpreter that runs vLLM (default: $STACKDECIDE_VLLM_PYTHON or this one).")
@handle_errors
def report(file: str, html_path: Path | None, fmt: str | None, output: Path | None,
           evidence_path: str | None, any_hardware: bool, method: str, samples: int | None,
           seed: int, confidence: float, sample_weights: bool, tolerance: str | None,
           predicted: bool | None, calibrate_with: tuple[str, ...], engine_command: bool,
           python: str | None) -> None:
    """Write decision FILE as one self-contained HTML page with charts, or as markdown.

    The report holds the ranking and each criterion's contribution, judged and measured scores
    with their provenance, the audit, flip distances and SMAA-2, the ranking before and after
    the evidence, measurements as a share of the roofline, and the winner's exact engine command.
    --predict, --tolerance and --calibrate-with as for `score`: predicted cells are marked P
    (their interval on hover).

    \b
    stackdecide report criteria/rtx4090.yaml --html report.html
    stackdecide report criteria/rtx4090.yaml --format markdown > report.md
    """
    from stackdecide.report import (
        build_report,
        find_engine_spec,
        render_html,
        render_markdown,
        scoring_inputs,
    )
    from stackdecide.search import calibrations_from

    if html_path is not None:
        if fmt == "markdown":
            raise click.UsageError("--html writes HTML; drop it or --format markdown")
        if output is not None:
            raise click.UsageError("give the HTML file once: --html FILE or --output FILE")
        fmt, output = "html", html_path
    fmt = fmt or "html"
    if fmt == "html" and output is None:
        raise click.UsageError("the HTML report goes to a file: --html report.html")
    evidence = None
    if evidence_path is not None:
        from stackdecide.evidence import load_evidence

        evidence = load_evidence(evidence_path)
    decision = stackdecide.load(file)
    inputs = scoring_inputs(decision, evidence, CertaintySettings(
        confidence=confidence, seed=seed, sample_weights=sample_weights),
        predicted=predicted, tolerance=tolerance, also=calibrations_from(calibrate_with))
    spec, why = (find_engine_spec(python) if engine_command
                 else (None, "--no-engine-command"))
    built = build_report(decision, inputs.evidence, method=method, any_hardware=any_hardware,
                         samples=samples, seed=seed, engine_spec=spec, engine_note=why,
                         certainty=inputs.certainty, prediction=inputs.prediction)
    text = render_html(built) if fmt == "html" else render_markdown(built)
    if output is None:
        click.echo(text, nl=False)
        return
    try:
        output.write_text(text, encoding="utf-8")
    except OSError as exc:
        raise StackdecideError(f"cannot write {output}: {exc.strerror or exc}") from None
    winner = built.ranking.winner or "none (no candidate is feasible)"
    sure = built.certainty
    verdict = f"; {sure.verdict.text}" if sure is not None else ""
    role = "leader" if sure is not None and sure.verdict.kind in NOT_CERTIFIED else "winner"
    click.echo(f"wrote {output} ({len(text.encode()) / 1024:.0f} KiB); {role}: {winner}{verdict}")
