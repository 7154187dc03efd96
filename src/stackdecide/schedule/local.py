"""Candidates on disjoint GPU sets of this host, at the same time, each in its own worker process.

Each task runs in a fresh process (``spawn``, in a process group of its own) that is a complete
launcher: it starts the engine in a process group of its own, with a supervisor that stops it if
the worker dies, and stops it when the task ends, fails, or is interrupted. The driver places
tasks (``placement.place``), starts the next one as soon as GPUs free up, and relays progress. On
Ctrl-C or SIGTERM the driver sends SIGTERM to every worker (which stops its engine's group), waits
for them, kills any that remain (their supervisors then stop the engines) and re-raises the
interrupt.
"""

from __future__ import annotations

import contextlib
import multiprocessing
import os
import queue
import signal
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from multiprocessing.process import BaseProcess
from typing import Any

from stackdecide.decision import Decision
from stackdecide.errors import StackdecideError
from stackdecide.launch.plan import LaunchOptions
from stackdecide.launch.process import DEFAULT_GRACE_S, die_with_parent, signals_interrupt
from stackdecide.schedule.base import CandidateTask, Event, OnEvent, TaskOutcome
from stackdecide.schedule.placement import Request, place
from stackdecide.schedule.worker import host_name, run_task


def _child(decision: Decision, task: CandidateTask, options: LaunchOptions,
           gpus: tuple[int, ...], events: Any) -> None:
    """A worker process: one task; SIGTERM and SIGHUP stop its engine like Ctrl-C does.

    It leaves the driver's process group, so a Ctrl-C at the terminal (or a signal to the whole
    group) reaches the driver only, which then sends each worker exactly one SIGTERM: a second
    signal would interrupt the cleanup that stops the engine. If the driver dies, the worker
    gets SIGTERM too."""
    os.setpgid(0, 0)
    die_with_parent()

    def emit(phase: str, elapsed_s: float) -> None:
        events.put(("event", task.candidate_id, phase, elapsed_s))

    with signals_interrupt():
        try:
            events.put(("done", task.candidate_id, run_task(decision, task, options, gpus, emit)))
        except KeyboardInterrupt:
            events.put(("failed", task.candidate_id, "interrupted; its engine was stopped"))
        except StackdecideError as exc:
            events.put(("failed", task.candidate_id, exc.message))
        except Exception as exc:  # anything else still comes back as the run's failure
            events.put(("failed", task.candidate_id, f"the worker failed: {exc!r}"))


@dataclass
class _Running:
    task: CandidateTask
    gpus: tuple[int, ...]
    process: BaseProcess
    started_s: float
    result: tuple[str, Any] | None = field(default=None)


class LocalScheduler:
    """Runs tasks as worker processes on this host, on the GPUs ``gpus`` (NVML indices)."""

    name = "local"

    def __init__(self, decision: Decision, options: LaunchOptions, gpus: Sequence[int],
                 grace_s: float = DEFAULT_GRACE_S) -> None:
        self.decision, self.options, self.gpus = decision, options, tuple(gpus)
        self.grace_s = grace_s
        self.context = multiprocessing.get_context("spawn")

    def gpu_count(self) -> int:
        return len(self.gpus)

    def run(self, tasks: Sequence[CandidateTask], limit: int | None,
            on_event: OnEvent | None = None) -> list[TaskOutcome]:
        report = on_event or (lambda event: None)
        events = self.context.Queue()
        pending = list(tasks)
        running: dict[str, _Running] = {}
        outcomes: dict[str, TaskOutcome] = {}
        start = time.monotonic()
        where = host_name()
        try:
            with signals_interrupt():
                while pending or running:
                    self._start_placed(pending, running, limit, events, start, report, where)
                    self._collect(events, running, outcomes, start, report, where)
        except KeyboardInterrupt:
            self._stop_all(running)
            raise
        return [outcomes[t.candidate_id] for t in tasks if t.candidate_id in outcomes]

    def _start_placed(self, pending: list[CandidateTask], running: dict[str, _Running],
                      limit: int | None, events: Any, start: float, report: OnEvent,
                      where: str) -> None:
        busy = {gpu for item in running.values() for gpu in item.gpus}
        free = [gpu for gpu in self.gpus if gpu not in busy]
        by_id = {t.candidate_id: t for t in pending}
        for placed in place([Request(t.candidate_id, t.gpus) for t in pending], free,
                            len(running), limit):
            task = by_id[placed.candidate_id]
            pending.remove(task)
            process = self.context.Process(
                target=_child, args=(self.decision, task, self.options, placed.gpus, events),
                name=f"stackdecide-{task.candidate_id}", daemon=False)
            process.start()
            running[task.candidate_id] = _Running(task, placed.gpus, process,
                                                  time.monotonic() - start)
            report(Event(task.candidate_id, "worker started", 0.0, placed.gpus, where))

    def _collect(self, events: Any, running: dict[str, _Running],
                 outcomes: dict[str, TaskOutcome], start: float, report: OnEvent,
                 where: str) -> None:
        with contextlib.suppress(queue.Empty):
            message = events.get(timeout=0.5)
            kind, candidate_id = message[0], message[1]
            item = running.get(candidate_id)
            if item is not None and kind == "event":
                report(Event(candidate_id, message[2], message[3], item.gpus, where))
            elif item is not None:
                item.result = (kind, message[2])
        for candidate_id, item in list(running.items()):
            if item.result is None and item.process.is_alive():
                continue
            item.process.join(timeout=5 if item.result is not None else 0.1)
            if item.result is None:  # died without a word: killed, or crashed in Python itself
                item.result = ("failed", f"the worker process ended with exit code "
                               f"{item.process.exitcode} before reporting")
            kind, value = item.result
            outcome = outcomes[candidate_id] = TaskOutcome(
                candidate_id, item.gpus, where, item.started_s, time.monotonic() - start,
                measurement=value if kind == "done" else None,
                failure=None if kind == "done" else str(value))
            del running[candidate_id]
            report(outcome.end_event())

    def _stop_all(self, running: dict[str, _Running]) -> None:
        """SIGTERM every worker once (each stops its engine), wait, then kill what is left (the
        supervisor of each engine stops it then)."""
        for item in running.values():
            if item.process.pid is not None:
                with contextlib.suppress(ProcessLookupError):
                    os.kill(item.process.pid, signal.SIGTERM)
        deadline = time.monotonic() + self.grace_s + 15
        for item in running.values():
            item.process.join(timeout=max(0.1, deadline - time.monotonic()))
            if item.process.is_alive():
                item.process.kill()  # its supervisor stops the engine's group
                item.process.join(timeout=5)
