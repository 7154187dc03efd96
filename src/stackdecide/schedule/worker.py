"""The body of one task, wherever it runs (a local worker process, a Ray worker): launch the
candidate on the GPUs given, benchmark it, stop it, and report progress as events.

The engine runs with the interpreter ``LaunchOptions.python`` names (``--python``): the seam for
per-candidate environments, which a scheduler can point at an environment built for the
candidate (Ray's ``runtime_env`` on a cluster) without this code changing.
"""

from __future__ import annotations

import socket
import time
from collections.abc import Callable
from dataclasses import replace

from stackdecide.decision import Decision
from stackdecide.launch.plan import LaunchOptions, Progress
from stackdecide.loop import Measurement, run_candidate
from stackdecide.schedule.base import CandidateTask

Emit = Callable[[str, float], None]  # (phase, seconds since the task started)


def host_name() -> str:
    return socket.gethostname()


def run_task(decision: Decision, task: CandidateTask, options: LaunchOptions,
             gpus: tuple[int, ...] | None, emit: Emit) -> Measurement:
    """Launch and benchmark one candidate on ``gpus`` (None: whatever CUDA_VISIBLE_DEVICES of this
    process exposes, as on a Ray worker); the server is stopped before this returns."""
    started = time.monotonic()

    def on_progress(event: Progress) -> None:
        emit(event.phase, time.monotonic() - started)

    def notify(message: str) -> None:
        if message.startswith("benchmark "):
            emit(message.split(" on ")[0], time.monotonic() - started)

    options = replace(options, gpus=gpus or None, on_progress=on_progress, port=None)
    measurement = run_candidate(decision, task.candidate_id, options, notify=notify,
                                seed=task.seed)
    emit("done" if measurement.launched else f"failed: {measurement.outcome.failure}",
         time.monotonic() - started)
    return measurement
