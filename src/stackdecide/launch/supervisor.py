"""A watchdog that stops the engine's process group when the launcher dies, SIGKILL included.

The launcher starts ``python -m stackdecide.launch.supervisor PGID RUN_DIR GRACE_S STARTED`` in a
session of its own (``STARTED``: the group leader's start time, ``-`` when it could not be read),
with a pipe whose only writer is the launcher. The supervisor blocks on that pipe:

* ``done`` — the launcher stopped the server itself; exit.
* ``detach`` — ``--keep``: the server is meant to outlive the launcher; exit.
* end of file without either — the launcher died without cleaning up (the kernel closes a killed
  process's pipes, so this works after SIGKILL, where no signal handler runs). Stop the whole group
  (SIGTERM, grace, SIGKILL) and record in the run's ``outcome.json`` what happened; unless the
  group's leader is a process that started at another time than ``STARTED`` (the group ended and
  its number went to another process group, which is not ours to stop).

Parent-death signals alone are not enough: vLLM's engine and worker processes ignore them during
start-up, and they only reach the direct child.
"""

from __future__ import annotations

import os
import signal
import sys
from pathlib import Path

from stackdecide.launch.leftovers import group_started_as
from stackdecide.launch.process import group_members, kill_group
from stackdecide.launch.runs import record_stop
from stackdecide.vllm import logs as failures


def _record(run_dir: Path, pgid: int, report: dict[str, object]) -> None:
    """Mark the run as ended by the supervisor, keeping whatever the launcher already wrote."""
    record_stop(run_dir, report, "supervisor", overwrite=False, ok=False,
                failure=failures.LAUNCHER_DIED,
                reason="the launcher ended without stopping the server (killed?); its supervisor "
                       f"stopped process group {pgid}")


def supervise(pgid: int, run_dir: Path, grace_s: float, pipe: int = 0,
              started: float | None = None) -> str:
    """Wait for the launcher's word on ``pipe``; stop the group on end of file if it is still the
    one whose leader started at ``started``. Returns the word."""
    received = b""
    while True:
        try:
            chunk = os.read(pipe, 64)
        except InterruptedError:
            continue
        if not chunk:
            break
        received += chunk
    word = received.decode(errors="replace").strip().splitlines()[-1:] or [""]
    if word[0] in ("done", "detach"):
        return word[0]
    if group_members(pgid) and group_started_as(pgid, started):
        _record(run_dir, pgid, kill_group(pgid, grace_s).to_dict())
    return "eof"


def main(argv: list[str]) -> int:
    # Ctrl-C in the launcher's terminal must not stop the watchdog before the launcher cleans up
    for sig in (signal.SIGINT, signal.SIGHUP, signal.SIGTERM):
        signal.signal(sig, signal.SIG_IGN)
    pgid, run_dir, grace_s = int(argv[0]), Path(argv[1]), float(argv[2])
    started = float(argv[3]) if len(argv) > 3 and argv[3] != "-" else None
    supervise(pgid, run_dir, grace_s, started=started)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
