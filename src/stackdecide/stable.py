"""The feedback loop of ``launch --bench``: measure the leader, re-score, and measure the new leader
while the ranking keeps changing hands, so the final winner rests on measurements rather than
judgements (``--until-stable``); without it, one candidate is measured once.
"""

from __future__ import annotations

from dataclasses import dataclass

from stackdecide.bench.runner import Progress
from stackdecide.decision import Decision
from stackdecide.evidence.store import EvidenceStore
from stackdecide.launch.plan import LaunchOptions
from stackdecide.loop import Notify, is_measured
from stackdecide.mcda.methods import to_points
from stackdecide.model.ranking import Ranking
from stackdecide.orchestrate import InProcess, Launch, Policy, RunResult, RunState, Stop, run
from stackdecide.race import optimistic_totals


def next_to_measure(ranking: Ranking) -> tuple[str | None, str]:
    """The candidate to launch next, and why (or None and why the ranking is settled)."""
    leader = ranking.winner
    if leader is None:
        return None, "no candidate is feasible"
    if not is_measured(ranking, leader):
        return leader, f"{leader} leads on judged scores"
    leader_score = ranking.scores[ranking.decision.candidate_index(leader)]
    optimistic = optimistic_totals(ranking)
    for index in ranking.order:
        candidate_id = ranking.candidate_ids[index]
        if ranking.ranks[index] == 0 or is_measured(ranking, candidate_id):
            continue
        if optimistic[index] > leader_score:
            return candidate_id, (f"{candidate_id} could still overtake {leader} "
                                  f"({to_points(optimistic[index]):.2f} at best vs "
                                  f"{ranking.total(leader):.2f})")
    return None, (f"the leader {leader} rests on measurements and no unmeasured candidate could "
                  "overtake it")


@dataclass(frozen=True)
class StablePolicy(Policy):
    """Measure the leader and every candidate that could still overtake it, re-scoring each time.

    ``first`` is measured before anything else (default: the leader). With ``stable=False`` only
    that first candidate is measured, once. Otherwise the run stops when the leader rests on
    measurements and no unmeasured candidate could beat it even with the best possible
    measurements (``race.optimistic_totals``), or after ``max_launches`` launches.
    """

    max_launches: int = 4
    stable: bool = True
    first: str | None = None
    seed: int = 0

    def next(self, state: RunState) -> Launch | Stop:
        measured = state.measurements
        ranking = state.ranking
        heard = (f"re-scored: leader is now {ranking.winner}",) if measured else ()
        if not self.stable and measured:
            return Stop("measured", f"measured {measured[0].candidate_id}", heard)
        if self.first is not None and not measured:
            candidate_id, why = self.first, f"{self.first} was asked for"
        elif self.stable:
            candidate_id, why = next_to_measure(ranking)
        else:
            candidate_id, why = ranking.winner, (
                "the leader" if ranking.winner else "no candidate is feasible")
        if candidate_id is None:
            return Stop("settled", why, heard)
        if len(measured) >= self.max_launches:
            return Stop("budget", f"stopped after {self.max_launches} launches; next would be "
                        f"{candidate_id} ({why})", heard)
        return Launch((candidate_id,), (*heard, f"next: {why}"))


def until_stable(decision: Decision, store: EvidenceStore, options: LaunchOptions | None = None,
                 *, max_launches: int = 4, stable: bool = True, first: str | None = None,
                 any_hardware: bool = False, notify: Notify | None = None,
                 bench_progress: Progress | None = None) -> RunResult:
    """Run ``StablePolicy`` in this process (see there)."""
    return run(decision, store, StablePolicy(max_launches, stable, first),
               InProcess(options, notify, bench_progress), any_hardware=any_hardware,
               notify=notify)
