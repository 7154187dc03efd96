"""One interface for every scheduler: candidates in, one outcome per candidate out.

A ``Scheduler`` runs each ``CandidateTask`` (launch the candidate, benchmark it, stop it: see
``loop.run_candidate``) somewhere it fits and returns a ``TaskOutcome`` for every task, whatever
happened: a measurement, or why there is none. A failure of the candidate (refused, did not start)
is inside the measurement (``launch_ok = 0``); a failure of the run (a worker process killed, a
Ray node lost, an interrupt) is ``failure`` with no measurement, and says nothing about the
candidate. Which GPUs a task used and when it ran are kept, so each measurement can say who ran
beside it (``neighbours``).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from typing import Protocol

from stackdecide.loop import Measurement


@dataclass(frozen=True)
class CandidateTask:
    candidate_id: str
    gpus: int  # GPUs it needs (tensor x pipeline x data parallel; 0 on a CPU)
    seed: int  # prompt seed of this launch (loop.derive_seed derives each scenario's from it)


@dataclass(frozen=True)
class Event:
    """A progress event of one task: a start-up phase, a benchmark step, its end."""

    candidate_id: str
    phase: str
    elapsed_s: float  # since the task started
    gpus: tuple[int, ...] = ()
    where: str = ""  # host (and Ray node) it runs on


OnEvent = Callable[[Event], None]


@dataclass(frozen=True)
class TaskOutcome:
    """What became of one task. ``started_s``/``finished_s`` count from the scheduler's start."""

    candidate_id: str
    gpus: tuple[int, ...]
    where: str
    started_s: float
    finished_s: float
    measurement: Measurement | None = None
    failure: str | None = None  # a failure of the run, not of the candidate
    neighbours: tuple[str, ...] = ()  # candidates that ran at the same time (set afterwards)

    @property
    def seconds(self) -> float:
        return self.finished_s - self.started_s

    def end_event(self) -> Event:
        """The progress event that closes this task's line: finished, or why the run failed."""
        phase = "finished" if self.failure is None else f"run failed: {self.failure}"
        return Event(self.candidate_id, phase, self.seconds, self.gpus, self.where)


@dataclass(frozen=True)
class Round:
    """One round of tasks: their outcomes (neighbours set), wall time and the limit it ran under."""

    outcomes: tuple[TaskOutcome, ...]
    wall_s: float
    limit: int | None

    @property
    def measurements(self) -> tuple[Measurement, ...]:
        return tuple(o.measurement for o in self.outcomes if o.measurement is not None)

    @property
    def slowest_s(self) -> float:
        return max((o.seconds for o in self.outcomes), default=0.0)

    @property
    def ratio_to_slowest(self) -> float | None:
        """Wall time over the slowest single candidate's own time (1.0: perfect overlap)."""
        return self.wall_s / self.slowest_s if self.slowest_s else None


class Scheduler(Protocol):
    """Runs candidate tasks and returns one outcome per task, in the order given."""

    name: str

    def gpu_count(self) -> int:
        """GPUs the scheduler can hand out (on one host: that host's; on Ray: the largest node's
        for one task)."""
        ...

    def run(self, tasks: Sequence[CandidateTask], limit: int | None,
            on_event: OnEvent | None = None) -> list[TaskOutcome]:
        """Run ``tasks``, at most ``limit`` at once (None: as many as fit)."""
        ...


def with_neighbours(outcomes: Sequence[TaskOutcome]) -> list[TaskOutcome]:
    """Each outcome with the candidates whose run overlapped its own in time (on the same host
    for a local scheduler; anywhere in the cluster for Ray, where ``where`` tells them apart)."""
    found = []
    for outcome in outcomes:
        beside = tuple(other.candidate_id for other in outcomes if other is not outcome
                       and other.where == outcome.where
                       and other.started_s < outcome.finished_s
                       and outcome.started_s < other.finished_s)
        found.append(replace(outcome, neighbours=beside))
    return found
