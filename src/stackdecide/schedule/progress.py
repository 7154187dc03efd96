"""Progress of candidates running at once: one line per candidate, its GPUs, phase and time.

On a terminal the block of lines is redrawn in place as events arrive; elsewhere (a log file, CI)
each change is printed as its own line, so the record reads top to bottom.
"""

from __future__ import annotations

import sys
import time
from dataclasses import dataclass
from typing import TextIO

from stackdecide.schedule.base import Event


@dataclass
class _Row:
    gpus: str
    phase: str
    since: float  # monotonic time the task started
    done_s: float | None = None


def status_line(candidate_id: str, gpus: str, phase: str, elapsed_s: float,
                width: int = 24) -> str:
    return f"{candidate_id:<{width}} {gpus:<10} {elapsed_s:7.1f} s  {phase}"


class ParallelProgress:
    """Receives scheduler events (``on_event``) and shows one line per candidate."""

    def __init__(self, stream: TextIO | None = None, live: bool | None = None) -> None:
        self.stream = stream or sys.stderr
        self.live = self.stream.isatty() if live is None else live
        self.rows: dict[str, _Row] = {}
        self.drawn = 0

    def __call__(self, event: Event) -> None:
        now = time.monotonic()
        gpus = ("GPU " + ",".join(map(str, event.gpus))) if event.gpus else "cpu"
        row = self.rows.get(event.candidate_id)
        if row is None or event.phase == "worker started":
            row = self.rows[event.candidate_id] = _Row(gpus, event.phase, now)
        row.phase = event.phase
        if event.phase == "finished" or event.phase.startswith("run failed"):
            row.done_s = now - row.since
        if self.live:
            self._redraw(now)
        else:
            self.stream.write(status_line(event.candidate_id, gpus, event.phase,
                                          now - row.since) + "\n")
            self.stream.flush()

    def _redraw(self, now: float) -> None:
        width = max((len(c) for c in self.rows), default=10)
        if self.drawn:
            self.stream.write(f"\x1b[{self.drawn}F")
        for candidate_id, row in self.rows.items():
            elapsed = row.done_s if row.done_s is not None else now - row.since
            self.stream.write("\x1b[2K" + status_line(candidate_id, row.gpus, row.phase, elapsed,
                                                      width) + "\n")
        self.drawn = len(self.rows)
        self.stream.flush()
