"""Running and printing the feedback loop and the certified race, for `launch --bench` and `demo`."""

from __future__ import annotations

from collections.abc import Sequence

import click

from stackdecide.bench.progress import TqdmProgress
from stackdecide.cli._app import echo_step
from stackdecide.decision import Decision
from stackdecide.evidence.records import EvidenceSet
from stackdecide.evidence.store import EvidenceStore
from stackdecide.launch.plan import LaunchOptions
from stackdecide.loop import LoopResult, Measurement, until_stable
from stackdecide.model.ranking import Ranking
from stackdecide.race import RaceLimits, RaceResult, until_certain
from stackdecide.report import text as report
from stackdecide.report.launch import memory_check_lines
from stackdecide.robustness.certainty import Certainty
from stackdecide.robustness.certainty import certainty as certainty_of


def echo_after(measurements: Sequence[Measurement], before: Ranking, after: Ranking,
               title: str, certainty: Certainty | None = None,
               evidence: EvidenceSet | None = None) -> None:
    """What was measured, the ranking after it, and before -> after. The ranking says how sure
    it is as `score --evidence` does (from ``evidence``, what ``after`` rests on): a lead inside
    the noise is a statistical tie, not a winner."""
    if certainty is None and evidence is not None:
        certainty = certainty_of(after, evidence)
    if measurements:
        click.echo("\nmeasurements:")
        click.echo(report.render_measurements(measurements), nl=False)
        echo_memory(measurements)
    click.echo(f"\nranking {title}:\n")
    click.echo(report.render(after, certainty=certainty), nl=False)
    click.echo("\nbefore -> after:")
    click.echo(report.render_before_after(before, after), nl=False)


def run_loop(decision: Decision, store_path: str, options: LaunchOptions, *, stable: bool,
             max_launches: int, first: str | None = None, any_hardware: bool = False
             ) -> LoopResult:
    """Run the loop with progress on stderr, then print measurements and before/after."""
    progress = TqdmProgress(enabled=True)
    with EvidenceStore(store_path) as store:
        result = until_stable(decision, store, options, max_launches=max_launches,
                              stable=stable, first=first, any_hardware=any_hardware,
                              notify=echo_step,
                              bench_progress=progress)
    progress.finish()
    echo_after(result.measurements, result.before, result.after,
               f"after measurement ({store_path})", evidence=result.evidence)
    click.echo(f"stopped: {result.stopped_because}")
    return result


def run_race(decision: Decision, store_path: str, options: LaunchOptions, *, limits: RaceLimits,
             seed: int, any_hardware: bool = False) -> RaceResult:
    """Run the certified race with progress on stderr, then print what it measured and decided."""
    progress = TqdmProgress(enabled=True)
    with EvidenceStore(store_path) as store:
        result = until_certain(decision, store, options, limits=limits, seed=seed,
                               any_hardware=any_hardware,
                               notify=echo_step,
                               bench_progress=progress)
    progress.finish()
    echo_after(result.measurements, result.before, result.after,
               f"after the race ({store_path})", result.certainty)
    click.echo(report.render_race_end(result))
    return result


def echo_memory(measurements: Sequence[Measurement]) -> None:
    """Per-GPU memory planned vs logged, for each launch that started (on stderr)."""
    for measurement in measurements:
        if measurement.memory is not None:
            click.echo(f"{measurement.candidate_id}: " + "\n".join(
                memory_check_lines(measurement.memory)), err=True)
