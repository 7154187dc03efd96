"""Running and printing the feedback loop and the certified race, for `launch --bench` and `demo`."""

from __future__ import annotations

from collections.abc import Sequence

import click

from stackdecide.bench.progress import TqdmProgress
from stackdecide.cli._app import echo_step
from stackdecide.decision import Decision
from stackdecide.evidence.store import EvidenceStore
from stackdecide.launch.plan import LaunchOptions
from stackdecide.loop import Measurement
from stackdecide.model.ranking import Ranking
from stackdecide.orchestrate import Runner, RunResult
from stackdecide.race import RaceLimits, until_certain
from stackdecide.report import text as report
from stackdecide.report.launch import memory_check_lines
from stackdecide.search import Calibrations, SearchLimits, never_launched, search
from stackdecide.stable import until_stable


def echo_after(measurements: Sequence[Measurement], before: Ranking, after: Ranking,
               title: str) -> None:
    """What was measured, the ranking after it, and before -> after. The ranking says how sure
    it is as `score --evidence` does (its certainty, scored with the evidence it rests on): a
    lead inside the noise is a statistical tie, not a winner."""
    if measurements:
        click.echo("\nmeasurements:")
        click.echo(report.render_measurements(measurements), nl=False)
        echo_memory(measurements)
    click.echo(f"\nranking {title}:\n")
    click.echo(report.render(after), nl=False)
    click.echo("\nbefore -> after:")
    click.echo(report.render_before_after(before, after), nl=False)


def run_loop(decision: Decision, store_path: str, options: LaunchOptions, *, stable: bool,
             max_launches: int, first: str | None = None, any_hardware: bool = False
             ) -> RunResult:
    """Run the loop with progress on stderr, then print measurements and before/after."""
    progress = TqdmProgress(enabled=True)
    with EvidenceStore(store_path) as store:
        result = until_stable(decision, store, options, max_launches=max_launches,
                              stable=stable, first=first, any_hardware=any_hardware,
                              notify=echo_step,
                              bench_progress=progress)
    progress.finish()
    echo_after(result.measurements, result.before, result.after,
               f"after measurement ({store_path})")
    click.echo(f"stopped: {result.stop.reason}")
    return result


def run_race(decision: Decision, store_path: str, options: LaunchOptions, *, limits: RaceLimits,
             seed: int, any_hardware: bool = False) -> RunResult:
    """Run the certified race with progress on stderr, then print what it measured and decided."""
    progress = TqdmProgress(enabled=True)
    with EvidenceStore(store_path) as store:
        result = until_certain(decision, store, options, limits=limits, seed=seed,
                               any_hardware=any_hardware,
                               notify=echo_step,
                               bench_progress=progress)
    progress.finish()
    echo_after(result.measurements, result.before, result.after,
               f"after the race ({store_path})")
    click.echo(report.render_race_end(result))
    return result


def run_search_cli(decision: Decision, store_path: str, options: LaunchOptions,
                   limits: SearchLimits, *, seed: int, any_hardware: bool = False,
                   runner: Runner | None = None, also: Calibrations = ()) -> RunResult:
    """Run the race over a space (``stackdecide.search``), then print what it measured, the
    configurations it never launched and why, and its certificate."""
    progress = TqdmProgress(enabled=True)
    with EvidenceStore(store_path) as store:
        result = search(decision, store, options, limits=limits, seed=seed,
                        any_hardware=any_hardware, notify=echo_step, runner=runner,
                        bench_progress=progress, also=also)
    progress.finish()
    echo_after(result.measurements, result.before, result.after,
               f"after the race ({store_path})")
    click.echo(report.render_search_end(result, never_launched(result)))
    return result


def echo_memory(measurements: Sequence[Measurement]) -> None:
    """Per-GPU memory planned vs logged, for each launch that started (on stderr)."""
    for measurement in measurements:
        if measurement.memory is not None:
            click.echo(f"{measurement.candidate_id}: " + "\n".join(
                memory_check_lines(measurement.memory)), err=True)
