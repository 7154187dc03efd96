"""Measure several candidates at once, then re-measure the top contenders alone.

Candidates running beside each other share the host's CPU cores, PCIe and NVLink switches, power
and cooling, and the benchmark client's CPU: a measurement taken beside a neighbour can be lower
than one taken alone. So the tournament (1) measures every candidate, several at a time, on
disjoint GPUs; (2) re-scores; (3) re-measures the top contenders one at a time, with nothing
beside them, before it names a winner, and says so (``TournamentPolicy``, run by
``orchestrate.run`` with the ``OnScheduler`` runner). Every record carries the GPUs it ran on
(``gpus``) and who ran beside it (``beside``; ``none`` when alone), as provenance.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import dataclass, replace

from stackdecide.decision import Decision
from stackdecide.evidence.records import EvidenceRecord, EvidenceSet
from stackdecide.evidence.store import EvidenceStore
from stackdecide.loop import Notify, is_measured, store_measurement
from stackdecide.model.ranking import Ranking
from stackdecide.model.stack import engine_gpus, is_cpu_target
from stackdecide.orchestrate import Batch, Launch, Policy, RunResult, RunState, Stop, run
from stackdecide.schedule.base import (
    CandidateTask,
    OnEvent,
    Round,
    Scheduler,
    TaskOutcome,
    with_neighbours,
)
from stackdecide.schedule.placement import Request, unplaceable

DEFAULT_CONFIRM_TOP = 2


def gpus_needed(decision: Decision, candidate_id: str) -> int:
    """GPUs a candidate occupies: its engine config's, or none on a CPU decision."""
    if is_cpu_target(decision.model.decision.hardware):
        return 0
    return engine_gpus(decision.candidate(candidate_id).engine)


def placement_scenario(outcome: TaskOutcome) -> dict[str, str]:
    """The provenance keys a record of this outcome gets."""
    return {"gpus": ",".join(map(str, outcome.gpus)) or "cpu",
            "beside": ",".join(outcome.neighbours) or "none"}


def run_round(decision: Decision, scheduler: Scheduler, store: EvidenceStore,
              tasks: Sequence[CandidateTask], limit: int | None, on_event: OnEvent | None) -> Round:
    """Run tasks, then store each measurement with its GPUs and neighbours."""
    start = time.monotonic()
    outcomes = with_neighbours(scheduler.run(tasks, limit, on_event))
    wall = time.monotonic() - start
    stored = [replace(outcome, measurement=store_measurement(
                  store, decision, outcome.measurement, placement_scenario(outcome)))
              if outcome.measurement is not None else outcome for outcome in outcomes]
    return Round(tuple(stored), wall, limit)


@dataclass(frozen=True)
class OnScheduler:
    """Launches on a scheduler's workers, each with the GPUs its candidate needs."""

    scheduler: Scheduler
    on_event: OnEvent | None = None

    def __call__(self, decision: Decision, store: EvidenceStore, seeds: dict[str, int],
                 limit: int | None) -> Batch:
        tasks = [CandidateTask(candidate_id, gpus_needed(decision, candidate_id), seed)
                 for candidate_id, seed in seeds.items()]
        round_ = run_round(decision, self.scheduler, store, tasks, limit, self.on_event)
        return Batch(round_.measurements, round_)


def alone_where_measured(records: EvidenceSet, alone: set[str]) -> EvidenceSet:
    """The evidence with the neighbour-run records left out for candidates measured alone: the
    re-measured contenders are compared on what they did with nothing beside them. (The store
    keeps every record; ``stackdecide score`` later uses them all.)"""
    kept: list[EvidenceRecord] = [r for r in records if r.candidate not in alone
                                  or r.scenario.get("beside", "none") == "none"]
    return EvidenceSet.of(kept)


def contenders(ranking: Ranking, top: int) -> list[str]:
    """The ``top`` best-ranked candidates that rest on measurements (feasible ones first)."""
    ordered = [ranking.candidate_ids[i] for i in ranking.order]
    return [c for c in ordered if is_measured(ranking, c)][:top]


@dataclass(frozen=True)
class TournamentPolicy(Policy):
    """Measure ``candidates`` at most ``limit`` at a time (on the scheduler named ``where``), then,
    when some ran beside others, the top ``confirm_top`` again one at a time, ranked on those."""

    candidates: tuple[str, ...]  # those that can run here
    limit: int | None
    where: str
    confirm_top: int = DEFAULT_CONFIRM_TOP
    skipped: tuple[tuple[str, str], ...] = ()
    seed: int = 0

    def evidence(self, stored: EvidenceSet, rounds: Sequence[Round]) -> EvidenceSet:
        if len(rounds) < 2:
            return stored
        alone = {o.candidate_id for o in rounds[1].outcomes
                 if o.measurement is not None and o.measurement.launched}
        return alone_where_measured(stored, alone)

    def next(self, state: RunState) -> Launch | Stop:
        count = len(self.candidates)
        if not state.rounds:
            at_once = "as many at once as fit" if self.limit is None else \
                f"at most {self.limit} at once"
            return Launch(self.candidates, (
                *(f"{candidate_id} cannot run here: {why}" for candidate_id, why in self.skipped),
                f"measuring {count} candidates on {self.where}, {at_once}"), self.limit)
        measured = state.rounds[0]
        shared = any(o.neighbours for o in measured.outcomes)
        if len(state.rounds) == 1:
            top = contenders(state.ranking, self.confirm_top) if shared and self.confirm_top > 0 \
                else []
            if top:
                return Launch(tuple(top), (
                    "re-measuring the top contenders alone before naming a winner: "
                    f"{', '.join(top)} (they were measured beside other candidates)",), 1)
            if shared:
                return Stop("measured", "measured beside neighbours; nothing measured to "
                            "re-measure alone")
            return Stop("measured", f"measured {count} candidates, one at a time (no neighbours)")
        again = ", ".join(o.candidate_id for o in state.rounds[1].outcomes)
        return Stop("measured", f"measured {count} candidates, up to {_peak(measured)} at once; "
                    f"re-measured {again} alone, and ranked them on those measurements only (the "
                    f"others on measurements beside neighbours); leader {state.ranking.winner}")


def _peak(round_: Round) -> int:
    return max((len(o.neighbours) + 1 for o in round_.outcomes), default=0)


def run_tournament(decision: Decision, store: EvidenceStore, scheduler: Scheduler,
                   candidates: Sequence[str], *, limit: int | None, seed: int = 0,
                   confirm_top: int = DEFAULT_CONFIRM_TOP, any_hardware: bool = False,
                   notify: Notify | None = None, on_event: OnEvent | None = None) -> RunResult:
    """Measure ``candidates`` at most ``limit`` at a time, then the top ``confirm_top`` alone;
    candidates that need more GPUs than the scheduler has are skipped, said at once."""
    requests = [Request(c, gpus_needed(decision, c)) for c in candidates]
    skipped = tuple((r.candidate_id, why) for r, why in
                    unplaceable(requests, scheduler.gpu_count()) if r.gpus)
    runnable = tuple(r.candidate_id for r in requests if r.candidate_id not in dict(skipped))
    policy = TournamentPolicy(runnable, limit, scheduler.name, confirm_top, skipped, seed)
    return run(decision, store, policy, OnScheduler(scheduler, on_event),
               any_hardware=any_hardware, notify=notify)
