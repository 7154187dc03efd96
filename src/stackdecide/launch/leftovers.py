"""Servers that outlived their launch: found from their run folders, named, and stopped.

A run folder's ``outcome.json`` records the server's PID and process group. A run is **live** when
its group still has members and no stop was recorded, and the group leader is still the server that
was started (its command line matches the run's ``argv``, so a reused PID is not mistaken for it).
``stackdecide ps`` lists them, ``stackdecide stop RUN|--all`` stops them, and preflight names the
run behind a busy port or busy GPU memory.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from stackdecide.launch.process import DEFAULT_GRACE_S, StopReport, group_members, kill_group
from stackdecide.launch.runs import OUTCOME_FILE, read_outcome, record_stop
from stackdecide.state import state_dir


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


def _command_line(pid: int) -> list[str] | None:
    try:
        import psutil

        return psutil.Process(pid).cmdline()
    except Exception:  # gone, no permission or no psutil: cannot confirm it is ours
        return None


def live_run(run_dir: Path) -> LiveRun | None:
    """The run's server if it is still running, else None."""
    try:
        outcome = read_outcome(run_dir)
    except (OSError, ValueError):
        return None
    pgid, pid = outcome.get("pgid"), outcome.get("pid")
    if not isinstance(pgid, int) or not isinstance(pid, int) or outcome.get("stop"):
        return None
    members = group_members(pgid)
    argv = [str(word) for word in outcome.get("argv") or []]
    command = _command_line(pid)
    if not members or (command is not None and argv and command[: len(argv)] != argv):
        return None
    return LiveRun(run_dir, str(outcome.get("candidate_id")), pid, pgid, outcome.get("url"),
                   tuple(members))


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
    """Stop a leftover server's whole group and record the stop in its run folder."""
    report = kill_group(run.pgid, grace_s)
    record_stop(run.run_dir, report.to_dict(), "stackdecide stop")
    return report


def run_of_pid(pid: int, runs: Iterable[LiveRun]) -> LiveRun | None:
    """The live run whose process group holds ``pid``."""
    return next((run for run in runs if pid in run.members), None)
