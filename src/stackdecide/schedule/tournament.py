"""Measure several candidates at once, then re-measure the top contenders alone.

Candidates running beside each other share the host's CPU cores, PCIe and NVLink switches, power
and cooling, and the benchmark client's CPU: a measurement taken beside a neighbour can be lower
than one taken alone. So the tournament (1) measures every candidate, several at a time, on
disjoint GPUs; (2) re-scores; (3) re-measures the top contenders one at a time, with nothing
beside them, before it names a winner, and says so. Every record carries the GPUs it ran on
(``gpus``) and who ran beside it (``beside``; ``none`` when alone), as provenance.
"""

from __future__ import annotations

import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace

from stackdecide.audit.engine_config import file_hardware
from stackdecide.decision import Decision
from stackdecide.evidence.records import EvidenceRecord, EvidenceSet
from stackdecide.evidence.store import EvidenceStore
from stackdecide.facts.parallel import layout_of
from stackdecide.loop import Measurement, is_measured, store_measurement
from stackdecide.model.ranking import Ranking
from stackdecide.schedule.base import CandidateTask, OnEvent, Scheduler, TaskOutcome, with_neighbours
from stackdecide.schedule.placement import Request, unplaceable

Notify = Callable[[str], None]
DEFAULT_CONFIRM_TOP = 2


@dataclass(frozen=True)
class Round:
    """One round of tasks: their outcomes (neighbours set), wall time and the limit it ran under."""

    outcomes: tuple[TaskOutcome, ...]
    wall_s: float
    limit: int | None

    @property
    def slowest_s(self) -> float:
        return max((o.seconds for o in self.outcomes), default=0.0)

    @property
    def ratio_to_slowest(self) -> float | None:
        """Wall time over the slowest single candidate's own time (1.0: perfect overlap)."""
        return self.wall_s / self.slowest_s if self.slowest_s else None


@dataclass(frozen=True)
class TournamentResult:
    before: Ranking
    after: Ranking
    measured: Round  # every candidate, several at a time
    confirmed: Round | None  # the top contenders again, one at a time
    skipped: tuple[tuple[str, str], ...]  # candidates that cannot run here, and why
    stopped_because: str
    evidence: EvidenceSet | None = None  # what ``after`` rests on (how sure it is: certainty)

    @property
    def measurements(self) -> tuple[Measurement, ...]:
        rounds = [self.measured] + ([self.confirmed] if self.confirmed else [])
        return tuple(o.measurement for r in rounds for o in r.outcomes if o.measurement)


def gpus_needed(decision: Decision, candidate_id: str) -> int:
    """GPUs a candidate occupies: its parallel layout's, or none on a CPU decision."""
    target = file_hardware(decision.model.decision.hardware)
    if target is not None and target.device == "cpu":
        return 0
    return layout_of(decision.candidate(candidate_id).engine).gpus


def placement_scenario(outcome: TaskOutcome) -> dict[str, str]:
    """The provenance keys a record of this outcome gets."""
    return {"gpus": ",".join(map(str, outcome.gpus)) or "cpu",
            "beside": ",".join(outcome.neighbours) or "none"}


def tagged(outcome: TaskOutcome) -> Measurement | None:
    """The outcome's measurement with each record tagged with its placement."""
    if outcome.measurement is None:
        return None
    keys = placement_scenario(outcome)
    records: tuple[EvidenceRecord, ...] = tuple(
        record.model_copy(update={"scenario": {**record.scenario, **keys}})
        for record in outcome.measurement.records)
    return replace(outcome.measurement, records=records)


def run_round(scheduler: Scheduler, store: EvidenceStore, tasks: Sequence[CandidateTask],
              limit: int | None, on_event: OnEvent | None) -> Round:
    """Run tasks, then store each measurement tagged with its GPUs and neighbours."""
    start = time.monotonic()
    outcomes = with_neighbours(scheduler.run(tasks, limit, on_event))
    wall = time.monotonic() - start
    stored = []
    for outcome in outcomes:
        measurement = tagged(outcome)
        if measurement is not None:
            measurement = store_measurement(store, measurement)
        stored.append(replace(outcome, measurement=measurement))
    return Round(tuple(stored), wall, limit)


def alone_where_measured(records: Sequence[EvidenceRecord],
                         alone: set[str]) -> list[EvidenceRecord]:
    """The evidence with the neighbour-run records left out for candidates measured alone: the
    re-measured contenders are compared on what they did with nothing beside them. (The store
    keeps every record; ``stackdecide score`` later uses them all.)"""
    return [r for r in records if r.candidate not in alone
            or r.scenario.get("beside", "none") == "none"]


def contenders(ranking: Ranking, top: int) -> list[str]:
    """The ``top`` best-ranked candidates that rest on measurements (feasible ones first)."""
    ordered = [ranking.candidate_ids[i] for i in ranking.order]
    return [c for c in ordered if is_measured(ranking, c)][:top]


def run_tournament(decision: Decision, store: EvidenceStore, scheduler: Scheduler,
                   candidates: Sequence[str], *, limit: int | None, seed: int = 0,
                   confirm_top: int = DEFAULT_CONFIRM_TOP, any_hardware: bool = False,
                   notify: Notify | None = None, on_event: OnEvent | None = None
                   ) -> TournamentResult:
    """Measure ``candidates`` at most ``limit`` at a time, then the top ``confirm_top`` alone."""
    say = notify or (lambda message: None)
    before = decision.score(evidence=store.load(), any_hardware=any_hardware)
    requests = [Request(c, gpus_needed(decision, c)) for c in candidates]
    skipped = tuple((r.candidate_id, why) for r, why in
                    unplaceable(requests, scheduler.gpu_count()) if r.gpus)
    for candidate_id, why in skipped:
        say(f"{candidate_id} cannot run here: {why}")
    runnable = [r for r in requests if r.candidate_id not in dict(skipped)]
    tasks = [CandidateTask(r.candidate_id, r.gpus, seed * 1000 + index)
             for index, r in enumerate(runnable)]
    say(f"measuring {len(tasks)} candidates on {scheduler.name}, "
        f"{'as many at once as fit' if limit is None else f'at most {limit} at once'}")
    measured = run_round(scheduler, store, tasks, limit, on_event)
    evidence = store.load()
    ranking = decision.score(evidence=evidence, any_hardware=any_hardware)
    shared = any(o.neighbours for o in measured.outcomes)
    confirmed = None
    top = contenders(ranking, confirm_top) if shared and confirm_top > 0 else []
    if top:
        say(f"re-measuring the top contenders alone before naming a winner: {', '.join(top)} "
            "(they were measured beside other candidates)")
        again = [CandidateTask(c, gpus_needed(decision, c), seed * 1000 + 500 + index)
                 for index, c in enumerate(top)]
        confirmed = run_round(scheduler, store, again, 1, on_event)
        alone = {o.candidate_id for o in confirmed.outcomes
                 if o.measurement is not None and o.measurement.launched}
        evidence = alone_where_measured(store.load(), alone)
        ranking = decision.score(evidence=evidence, any_hardware=any_hardware)
    if confirmed is not None:
        why = (f"measured {len(tasks)} candidates, up to {_peak(measured)} at once; re-measured "
               f"{', '.join(top)} alone, and ranked them on those measurements only (the "
               f"others on measurements beside neighbours); leader {ranking.winner}")
    elif shared:
        why = "measured beside neighbours; nothing measured to re-measure alone"
    else:
        why = f"measured {len(tasks)} candidates, one at a time (no neighbours)"
    return TournamentResult(before, ranking, measured, confirmed, skipped, why, evidence)


def _peak(round_: Round) -> int:
    return max((len(o.neighbours) + 1 for o in round_.outcomes), default=0)
