"""`stackdecide ps` and `stackdecide stop`: servers of earlier runs that are still running."""

from __future__ import annotations

import sys

import click
from tabulate import tabulate

from stackdecide._text import shown
from stackdecide.cli._app import handle_errors, main
from stackdecide.launch.leftovers import LiveRun, check_run, live_runs, run_folders, stop_run


@main.command()
@handle_errors
def ps() -> None:
    """List servers started from this directory (.stackdecide/) that are still running."""
    runs = live_runs()
    if not runs:
        click.echo("no server of a run here is running")
        return
    # run files are written by launches, but anyone can edit them: their text is shown escaped
    rows = [[shown(run.name), shown(run.candidate_id), run.pgid, len(run.members),
             shown(str(run.url or ""))] for run in runs]
    click.echo(tabulate(rows, headers=["run", "candidate", "process group", "processes", "url"],
                        disable_numparse=True))


@main.command()
@click.argument("runs", nargs=-1, metavar="RUN...")
@click.option("--all", "stop_all", is_flag=True, help="Stop every running server listed by ps.")
@handle_errors
def stop(runs: tuple[str, ...], stop_all: bool) -> None:
    """Stop the servers of runs listed by `stackdecide ps` (whole process group, then recorded).

    A server is stopped only while it is the process its run started: the run file's command
    (argv) and start time must match the running process.
    """
    if bool(runs) == stop_all:
        raise click.UsageError("pass RUN names (see `stackdecide ps`) or --all")
    live = {run.name: run for run in live_runs()}
    unknown = [name for name in runs if name not in live]
    if unknown:
        folders = {folder.name: folder for folder in run_folders()}
        named = []
        for name in unknown:
            checked = check_run(folders[name]) if name in folders else None
            named.append(shown(name) + (f" ({checked})" if isinstance(checked, str) else ""))
        click.echo(f"error: not a running server of a run here: {', '.join(named)} "
                   f"(running: {', '.join(map(shown, live)) or 'none'})", err=True)
        sys.exit(2)
    chosen: list[LiveRun] = list(live.values()) if stop_all else [live[name] for name in runs]
    not_stopped = 0
    for run in chosen:
        report = stop_run(run)
        left = f"; still alive: {list(report.left)}" if report.left else ""
        not_stopped += bool(report.left)
        click.echo(f"stopped {shown(run.name)} (process group {run.pgid}, "
                   f"{report.signal or 'already gone'}, {report.waited_s:.1f} s){left}")
    if not_stopped:
        click.echo(f"error: {not_stopped} server(s) could not be stopped", err=True)
        sys.exit(1)
