"""Servers that outlived their launch: found from their run folders, named, and stopped.

A run folder's ``outcome.json`` records the server's PID and process group, the command it ran
(``argv``) and when it started. A run is **live** when its server is still the process that was
started and leads its group, and no stop was recorded. The server is the process that was started
only when the live process's command line is the recorded ``argv`` *and* it started when the run
says it did (``process_started``, the process's own start time, else the launch's ``started_at``):
a reused PID, or a run file that names some other process group, is never signalled. A run file
without ``argv`` or a start time is never live, and a group whose server has exited (orphaned
workers) is left to be stopped by hand. ``stackdecide ps`` lists live runs, ``stackdecide stop
RUN|--all`` stops them, and preflight names the run behind a busy port or busy GPU memory.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import psutil

from stackdecide.launch.process import DEFAULT_GRACE_S, StopReport, group_members, kill_group
from stackdecide.launch.runs import OUTCOME_FILE, read_outcome, record_stop
from stackdecide.state import state_dir

# psutil reads a start time in clock ticks from boot: the same process reads the same within this
START_TOLERANCE_S = 1.0
# ``started_at`` is taken before the run folder is made and the process spawned (to the second)
STARTED_AT_WINDOW_S = 120.0
# ... and psutil counts a start from the boot time, which /proc/stat gives in whole seconds: a
# process started in the second ``started_at`` names may read up to two seconds before it
STARTED_AT_SLACK_S = 2.0


@dataclass(frozen=True)
class LiveRun:
    run_dir: Path
    candidate_id: str
    pid: int
    pgid: int
    url: str | None
    members: tuple[int, ...]

    @property
    def name(self) -> str:
        return self.run_dir.name


@dataclass(frozen=True)
class Process:
    """What identifies a running process: its command line, start time and owner."""

    argv: tuple[str, ...]
    started: float  # seconds since the epoch
    uid: int


def process_of(pid: int) -> Process | None:
    """The process ``pid`` as it runs now; None when it is gone or cannot be read."""
    try:
        process = psutil.Process(pid)
        with process.oneshot():
            return Process(tuple(process.cmdline()), process.create_time(), process.uids().real)
    except (psutil.Error, OSError):
        return None


def _start_span(outcome: Mapping[str, Any]) -> tuple[float, float] | None:
    """When the run's server process must have started, from its run file; None when it says
    nothing that reads as a time."""
    exact = outcome.get("process_started")
    if isinstance(exact, int | float) and not isinstance(exact, bool):
        return exact - START_TOLERANCE_S, exact + START_TOLERANCE_S
    written = outcome.get("started_at")
    try:
        launched = datetime.fromisoformat(str(written).replace("Z", "+00:00"))
    except ValueError:
        return None
    if launched.tzinfo is None:
        return None
    start = launched.timestamp()
    return start - STARTED_AT_SLACK_S, start + STARTED_AT_WINDOW_S


def check_run(run_dir: Path) -> LiveRun | str:
    """The run's server if it is still running and is the process the run started, else why
    not (a sentence)."""
    try:
        outcome = read_outcome(run_dir)
    except (OSError, ValueError):
        return "its run file (outcome.json) cannot be read"
    if not isinstance(outcome, dict):
        return "its run file (outcome.json) is not a launch outcome"
    pgid, pid = outcome.get("pgid"), outcome.get("pid")
    if outcome.get("stop"):
        return "its server was stopped already (the run file records it)"
    if not isinstance(pgid, int) or not isinstance(pid, int) or isinstance(pid, bool) \
            or pid <= 1 or pid != pgid:
        return "its run file records no server that leads its own process group"
    argv = outcome.get("argv")
    if not isinstance(argv, list) or not argv:
        return (f"its run file records no command (argv), so nothing confirms that process {pid} "
                "is its server")
    span = _start_span(outcome)
    if span is None:
        return f"its run file records no start time, so nothing confirms that process {pid} is its server"
    process = process_of(pid)
    if process is None:
        return f"its server (process {pid}) is not running"
    if list(process.argv) != [str(word) for word in argv]:
        return f"process {pid} is not the command the run started (its PID was reused?)"
    if not span[0] <= process.started <= span[1]:
        return f"process {pid} did not start when the run did (its PID was reused?)"
    if process.uid != os.getuid():
        return f"process {pid} belongs to another user"
    try:
        if os.getpgid(pid) != pgid:
            return f"process {pid} no longer leads process group {pgid}"
    except OSError:
        return f"its server (process {pid}) is not running"
    members = group_members(pgid)
    if not members:
        return f"process group {pgid} has no process left"
    return LiveRun(run_dir, str(outcome.get("candidate_id")), pid, pgid, outcome.get("url"),
                   tuple(members))


def live_run(run_dir: Path) -> LiveRun | None:
    """The run's server if it is still running (``check_run``), else None."""
    checked = check_run(run_dir)
    return checked if isinstance(checked, LiveRun) else None


def run_folders(base: Path | None = None) -> list[Path]:
    """Every run folder under ``.stackdecide/`` here (``runs/`` and the demos' ``*/runs/``)."""
    root = state_dir(base)
    found = {path.parent for path in root.glob("runs/*/" + OUTCOME_FILE)}
    found |= {path.parent for path in root.glob("*/runs/*/" + OUTCOME_FILE)}
    return sorted(found)


def live_runs(folders: Iterable[Path] | None = None) -> list[LiveRun]:
    return [run for folder in (run_folders() if folders is None else folders)
            if (run := live_run(folder)) is not None]


def stop_run(run: LiveRun, grace_s: float = DEFAULT_GRACE_S) -> StopReport:
    """Stop a leftover server's whole group and record the stop in its run folder; a server that
    is no longer the one ``run`` found (checked again just before) is left alone."""
    again = live_run(run.run_dir)
    if again is None or (again.pid, again.pgid) != (run.pid, run.pgid):
        return StopReport(None, 0.0)
    report = kill_group(run.pgid, grace_s)
    record_stop(run.run_dir, report.to_dict(), "stackdecide stop")
    return report


def run_of_pid(pid: int, runs: Iterable[LiveRun]) -> LiveRun | None:
    """The live run whose process group holds ``pid``."""
    return next((run for run in runs if pid in run.members), None)


def group_started_as(pgid: int, started: float | None) -> bool:
    """Whether process group ``pgid`` is still the one whose leader started at ``started``: its
    leader is that process, or has exited (a group's number is not given to a new process while
    any member of the group lives, so its members are the group's own)."""
    leader = process_of(pgid)
    if started is None or leader is None:
        return True
    return abs(leader.started - started) <= START_TOLERANCE_S
