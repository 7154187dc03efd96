"""The launcher's side of the supervisor (``launch.supervisor``): start it, and release it."""

from __future__ import annotations

import contextlib
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

from stackdecide.launch.leftovers import process_of


@dataclass
class Supervisor:
    process: subprocess.Popen[bytes]
    pipe: int | None  # our write end; the supervisor's stdin

    def release(self, word: str) -> None:
        """Tell the supervisor the launcher is done (``done``) or leaves the server (``detach``)."""
        if self.pipe is None:
            return
        with contextlib.suppress(OSError):
            os.write(self.pipe, f"{word}\n".encode())
        with contextlib.suppress(OSError):
            os.close(self.pipe)
        self.pipe = None
        with contextlib.suppress(subprocess.TimeoutExpired):
            self.process.wait(timeout=10)


def start_supervisor(pgid: int, run_dir: Path, grace_s: float) -> Supervisor:
    """Start the watchdog of process group ``pgid``; it acts if our end of its pipe closes unsaid,
    and only on the group whose leader started when ours did (the leader's start time, read now
    while it is our child, is passed on: a group that took its number later is not ours)."""
    leader = process_of(pgid)
    read_end, write_end = os.pipe()
    os.set_inheritable(write_end, False)  # only we may hold it, or EOF would never come
    try:
        process = subprocess.Popen(
            [sys.executable, "-m", "stackdecide.launch.supervisor", str(pgid), str(run_dir),
             str(grace_s), repr(leader.started) if leader is not None else "-"],
            stdin=read_end, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
            start_new_session=True, close_fds=True)
    finally:
        os.close(read_end)
    return Supervisor(process, write_end)
