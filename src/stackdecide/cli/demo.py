"""`stackdecide demo`: the whole loop on the CPU engine, on any machine."""

from __future__ import annotations

import sys
from datetime import UTC, datetime
from importlib import resources
from pathlib import Path

import click

import stackdecide
from stackdecide.cli._app import handle_errors, main
from stackdecide.cli._loop import run_loop
from stackdecide.cli.launch import echo_progress
from stackdecide.launch.launcher import LaunchOptions
from stackdecide.report import text as report
from stackdecide.state import state_dir


def embedded_cpu_decision() -> Path:
    """The CPU decision shipped inside the package (also at criteria/cpu.yaml in the source)."""
    return Path(str(resources.files("stackdecide") / "data" / "cpu.yaml"))


@main.command()
@click.option("--decision", "decision_file", type=click.Path(dir_okay=False),
              help="Decision file (default: the embedded CPU decision, criteria/cpu.yaml).")
@click.option("--max-launches", type=click.IntRange(1, 20), default=4, show_default=True,
              help="Most servers to start before stopping.")
@click.option("--timeout", "timeout_s", type=click.FloatRange(min=1), default=600.0,
              show_default=True, help="Seconds to wait for each server to become ready.")
@handle_errors
def demo(decision_file: str | None, max_launches: int, timeout_s: float) -> None:
    """Score a decision, launch its winner on the real engine, benchmark, feed back, re-score.

    With no options this runs on vLLM's CPU engine with a scaffolded tiny model (no GPU, no
    download): the judged ranking, then launches until the leader rests on measurements, then the
    ranking before and after. Evidence goes to a fresh database under .stackdecide/demo-*/.
    """
    path = Path(decision_file) if decision_file else embedded_cpu_decision()
    decision = stackdecide.load(path)
    click.echo(f"decision: {path}\n\nranking from judged scores:\n")
    click.echo(report.render(decision.score()), nl=False)
    folder = state_dir() / f"demo-{datetime.now(UTC).strftime('%Y%m%dT%H%M%SZ')}"
    folder.mkdir(parents=True, exist_ok=True)
    options = LaunchOptions(port=None, timeout_s=timeout_s, dummy_weights=True,
                            runs_dir=folder / "runs", on_progress=echo_progress)
    click.echo("", err=True)
    result = run_loop(decision, str(folder / "evidence.db"), options, stable=True,
                      max_launches=max_launches)
    if not any(m.launched for m in result.measurements):
        sys.exit(1)
