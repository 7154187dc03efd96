"""`stackdecide score` and `stackdecide check`."""

from __future__ import annotations

import json
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

import stackdecide
from stackdecide.audit.space import prune_space
from stackdecide.cli._app import (
    any_hardware_option,
    calibrate_option,
    decision_argument,
    format_option,
    handle_errors,
    main,
    method_option,
)
from stackdecide.cli.env import base_env_option, env_options, source_options, target_options
from stackdecide.envs.decision import resolve_candidates
from stackdecide.launch.checks import check_decision
from stackdecide.model.certainty import DEFAULT_CONFIDENCE, DEFAULT_SAMPLES, CertaintySettings
from stackdecide.model.ranking import JSON_VERSION
from stackdecide.report import text as report
from stackdecide.report.data import scoring_inputs
from stackdecide.report.envs import render_resolutions, render_stack_marks, stack_dict
from stackdecide.report.launch import capacity_table
from stackdecide.report.space import counts, summary_line
from stackdecide.search import calibrations_from
from stackdecide.state import record_last_decision

F = TypeVar("F", bound=Callable[..., Any])


def tolerance_option() -> Callable[[F], F]:
    return click.option(
        "--tolerance", metavar="POINTS|PCT%CRITERION", default=None,
        help="Certify a candidate within this much of the best (points of total, or e.g. "
             "3%decode_speed: 3% of that criterion's metric) and name every candidate equivalent "
             "within it. Default: none (the best itself; a tie when the noise hides it).")


def predict_option() -> Callable[[F], F]:
    return click.option(
        "--predict/--no-predict", "predicted", default=None,
        help="Rank the cells no launch measured on their predicted values (marked ~), calibrated "
             "by --evidence, with their intervals in the certainty. Default: on for a decision "
             "with a space, off for a list of candidates.")


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
@click.option("--confidence", type=click.FloatRange(0.5, 0.999), default=DEFAULT_CONFIDENCE,
              show_default=True, help="With --evidence: the P(best) a winner needs to be certified.")
@click.option("--samples", type=click.IntRange(100, 1_000_000), default=DEFAULT_SAMPLES,
              show_default=True, help="With --evidence: Monte Carlo draws for P(best).")
@click.option("--seed", type=click.IntRange(min=0), default=0, show_default=True,
              help="With --evidence: seed of the draws (same inputs and seed, same numbers).")
@click.option("--include-partial", is_flag=True,
              help="With --evidence: also rank with measurements of benchmarks cut short.")
@click.option("--sample-weights", is_flag=True,
              help="With --evidence: also draw weights from the decision's weight region (SMAA).")
@tolerance_option()
@predict_option()
@calibrate_option()
@click.option("--stacks", is_flag=True,
              help="Also resolve each candidate's stack pins with uv and mark those that cannot "
                   "be installed as pinned (asks the package index).")
@handle_errors
def score(file: str, method: str, fmt: str, evidence_path: str | None, any_hardware: bool,
          confidence: float, samples: int, seed: int, include_partial: bool,
          sample_weights: bool, tolerance: str | None, predicted: bool | None,
          calibrate_with: tuple[str, ...], stacks: bool) -> None:
    """Rank the candidates of decision FILE and audit its reported totals.

    With --evidence, measured cells replace judged ones, each with its launches and interval, and
    the ranking says how sure it is: P(best) of each candidate under measurement noise, and either
    a certified winner or a statistical tie. With --predict (default for a space) the cells no
    launch measured are predicted (marked ~) and weighed with their intervals; with --tolerance the
    verdict is a certificate within it.
    Exit status: 0 when scored (audit findings are shown, use `check` to fail on them), 2 for a
    file that is not a valid decision.
    """
    decision = stackdecide.load(file)
    inputs = scoring_inputs(decision, _load_evidence(evidence_path),
                            CertaintySettings(confidence, samples, seed, sample_weights),
                            predicted=predicted, tolerance=tolerance,
                            also=calibrations_from(calibrate_with))
    ranking = decision.score(method=method, evidence=inputs.evidence, any_hardware=any_hardware,
                             include_partial=include_partial, certainty=inputs.certainty,
                             prediction=inputs.prediction)
    try:
        record_last_decision(file)
    except OSError as exc:  # a read-only folder: the ranking stands, only the memory is lost
        click.echo(f"note: cannot remember {file} as the decision last scored here "
                   f"({exc.strerror or exc}); pass FILE to launch explicitly", err=True)
    rendered = report.render(ranking, fmt)
    if not stacks:
        click.echo(rendered, nl=False)
        return
    resolutions = resolve_candidates(decision, None, env_options({}))
    if fmt == "json":
        data = json.loads(rendered)
        data["stacks"] = [stack_dict(r) for r in resolutions]
        click.echo(json.dumps(data, indent=2, allow_nan=False))
    elif fmt == "csv":
        raise click.UsageError("--stacks adds a section that CSV cannot hold; use another format")
    else:
        click.echo(rendered, nl=False)
        click.echo("\nstacks (each candidate's pins resolved with uv):")
        click.echo(render_stack_marks(resolutions), nl=False)


@main.command()
@decision_argument()
@format_option()
@click.option("--python", "python", default=None, metavar="PATH",
              help="Interpreter whose vLLM the engine keys are checked against (default: as "
                   "launch picks it).")
@click.option("--no-engine-keys", is_flag=True,
              help="Skip checking engine keys against vLLM's own arguments.")
@click.option("--no-stacks", is_flag=True,
              help="Skip asking the package index whether each candidate's stack pins install.")
@target_options
@source_options
@base_env_option
@handle_errors
def check(file: str, fmt: str, python: str | None, no_engine_keys: bool, no_stacks: bool,
          **env_kwargs: Any) -> None:
    """Validate decision FILE and audit it; exit 1 when the audit finds an error or warning.

    The audit covers published totals, AHP consistency, targets against the roofline, and every
    static launch check of `launch --dry-run` on every candidate (FP8 KV cache and backend, memory,
    context length), plus each engine key against the installed vLLM's arguments.
    """
    decision = stackdecide.load(file)
    result = check_decision(decision, python, engine_keys=not no_engine_keys,
                            stacks=None if no_stacks else env_options(env_kwargs))
    pruning = prune_space(decision) if decision.model.space is not None else None
    if fmt == "json":
        space = {"space": counts(pruning)} if pruning else {}
        click.echo(json.dumps({"version": JSON_VERSION, "file": file, "note": result.note,
                               "findings": [f.to_dict() for f in result.findings],
                               "capacity": [c.to_dict() for c in result.capacity],
                               "stacks": [stack_dict(r) for r in result.stacks], **space},
                              indent=2, allow_nan=False))
    else:
        click.echo(f"{file}: valid decision, {len(decision.candidates)} candidates x "
                   f"{len(decision.criteria)} criteria")
        if pruning:
            click.echo(f"{summary_line(pruning)}; `stackdecide space {file}` lists them")
        click.echo(report.render_findings(result.findings), nl=False)
        if result.capacity:
            click.echo("capacity on the decision's hardware (estimates; vLLM logs the real "
                       "numbers at start-up):")
            click.echo(capacity_table(result.capacity), nl=False)
        if any(r.status != "no-pins" for r in result.stacks):
            click.echo("stacks (each candidate's pins resolved with uv):")
            click.echo(render_resolutions(result.stacks), nl=False)
        click.echo(f"note: {result.note}")
    if any(f.severity in ("error", "warning") for f in result.findings):
        sys.exit(1)
