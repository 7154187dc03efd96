"""The certified race: launch whatever most reduces the doubt about the winner, until it is certain.

Each step re-scores the decision from the evidence store, with P(best) under measurement noise
(``Ranking.certainty``) and asks the racing policy (``certify.racing``) what to do:

* launch an unmeasured candidate whose best possible total could still beat the leader (the first
  pass goes in a random order drawn from the race's ``seed``, never in file order; the policy's
  ``first_pass="random"``, the same order when a race resumes);
* launch a replicate of the leader or its strongest challenger, whichever has fewer launches (the
  leader on equal counts while it has fewer than two), so launches of the two interleave;
* drop candidates whose P(best) is too small to matter;
* stop when the leader's P(best) reaches the confidence with at least two launches of it and one
  of every contender (**certified**), when no launch can separate the contenders (**tie**), or when
  the launch or time budget is spent (**budget**, said as such).

Every replicate is a fresh server: a restart is where the noise lives. Each launch benchmarks with
its own prompt seed (``orchestrate.launch_seeds``), so no two launches send the same prompts. The
race keeps no state of its own: it reads the evidence store, so an interrupted race resumes where it
stopped.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from stackdecide.bench.runner import Progress
from stackdecide.certify.probability import RankProbabilities, rank_probabilities
from stackdecide.certify.racing import MIN_REPLICATES, RaceState, next_action
from stackdecide.decision import Decision
from stackdecide.evidence.records import EvidenceSet
from stackdecide.evidence.store import EvidenceStore
from stackdecide.launch.plan import LaunchOptions
from stackdecide.loop import Notify
from stackdecide.mcda.methods import weighted_sum
from stackdecide.model.certainty import DEFAULT_CONFIDENCE, DEFAULT_SAMPLES, Certainty, CertaintySettings
from stackdecide.model.ranking import Ranking
from stackdecide.orchestrate import InProcess, Launch, Policy, RunResult, RunState, Stop, run


def optimistic_totals(ranking: Ranking) -> np.ndarray:
    """Weighted-sum totals (0..1) if every measurable cell not yet measured scored the scale's best.

    An unmeasured candidate whose optimistic total stays below the leader's cannot overtake it by
    being measured, so it need not be launched.
    """
    decision = ranking.decision
    measurable = np.array([c.measure is not None for c in decision.criteria])
    measured = np.array([[cell.measured for cell in row] for row in ranking.cells])
    best_case = np.where(measurable[None, :] & ~measured, 1.0, ranking.normalized)
    return weighted_sum(best_case, decision.weights)


REFERENCE_METRIC = "kl_div_mean"  # what a quality scenario's reference launch records first


def unmeasured_reference(ranking: Ranking, evidence: EvidenceSet) -> str | None:
    """The reference of a quality scenario that has no quality record yet, or None.

    Every other candidate's divergence is measured against the file the reference's first
    launch writes (``bench.quality``): launched before it, a candidate's quality stays judged and
    its launch is half spent.
    """
    decision = ranking.decision
    for scenario in decision.model.benchmark.scenarios:
        reference = scenario.reference
        if (scenario.scenario == "quality" and reference is not None
                and reference in decision.candidate_ids
                and not evidence.filter(candidate=reference, metric=REFERENCE_METRIC)):
            return reference
    return None


def _probabilities(ranking: Ranking, sure: Certainty) -> RankProbabilities:
    if sure.probabilities is not None:
        return sure.probabilities
    # nothing measured yet: the judged totals, without noise
    feasible = ranking.ranks > 0  # scoring ranks exactly the feasible candidates
    return rank_probabilities(ranking.scores[None, :], feasible)


def race_state(ranking: Ranking) -> RaceState:
    """What the racing policy needs: launches per candidate, P(best), who could still win."""
    sure = ranking.certainty
    assert sure is not None, "the race scores with evidence, so its rankings carry a certainty"
    probabilities = _probabilities(ranking, sure)
    launches = sure.launches()
    optimistic = optimistic_totals(ranking)
    leader_expected = probabilities.expected_totals[probabilities.leader()]
    feasible = ranking.ranks > 0  # scoring ranks exactly the feasible candidates
    return RaceState(ranking.candidate_ids,
                     np.array([launches[cid] for cid in ranking.candidate_ids]),
                     probabilities, feasible & (optimistic > leader_expected), optimistic)


@dataclass(frozen=True)
class RaceLimits:
    confidence: float = DEFAULT_CONFIDENCE
    max_launches: int = 12  # launches this invocation may start
    budget_s: float | None = None  # wall-clock seconds this invocation may spend
    min_replicates: int = MIN_REPLICATES
    max_replicates: int | None = None


@dataclass(frozen=True)
class RacePolicy(Policy):
    """Race the candidates until the winner is certified, a tie is proven, or the budget is spent.

    ``seed`` draws the first-pass order, the prompts and the Monte Carlo of P(best).
    """

    limits: RaceLimits = RaceLimits()
    seed: int = 0
    samples: int = DEFAULT_SAMPLES

    @property
    def certainty(self) -> CertaintySettings:
        return CertaintySettings(confidence=self.limits.confidence, samples=self.samples,
                                 seed=self.seed)

    def next(self, state: RunState) -> Launch | Stop:
        limits = self.limits
        heard: tuple[str, ...] = ()
        if not state.measurements:
            heard = (f"race: confidence {limits.confidence:.2f}, at most {limits.max_launches} "
                     "launches" + (f" and {limits.budget_s / 60:.1f} min" if limits.budget_s
                                   else "") + f", seed {self.seed}",)
        else:
            last = state.measurements[-1]
            outcome = last.outcome
            if outcome.fault == "environment":  # retrying would fail alike and teach nothing
                return Stop("budget", f"stopped: {last.candidate_id} could not be measured "
                            f"({outcome.failure}: {outcome.reason}); that is this machine's "
                            "fault, not the candidate's: fix it and run again to resume")
            heard = ("P(best): " + ", ".join(f"{cid} {p:.2f}" for cid, p in sorted(
                state.certainty.p_best.items(), key=lambda item: -item[1]) if p >= 0.005),)
        if state.ranking.winner is None:  # the leader of P(best) would be an infeasible one
            return Stop("settled", "no candidate is feasible, so there is nothing to race: "
                        + "; ".join(f"{cid}: {state.ranking.why_infeasible(cid)}"
                                    for cid in state.ranking.infeasible), heard)
        reference = unmeasured_reference(state.ranking, state.evidence)
        launched = {m.candidate_id for m in state.measurements}
        if (reference is not None and reference not in launched  # a failed one is not retried
                and len(state.measurements) < limits.max_launches):
            return Launch((reference,), (*heard, f"launch {reference} first: the quality "
                                         "scenario measures every candidate against it"))
        action = next_action(race_state(state.ranking), limits.confidence,
                             launches_used=len(state.measurements),
                             max_launches=limits.max_launches,
                             min_replicates=limits.min_replicates,
                             max_replicates=limits.max_replicates,
                             first_pass="random", seed=self.seed)
        if action.kind == "launch" and action.candidate is not None:
            expected = float(np.mean(state.step_seconds)) if state.step_seconds else 0.0
            if limits.budget_s is not None and state.elapsed_s + expected > limits.budget_s:
                return Stop("budget", f"time budget: {state.elapsed_s / 60:.1f} of "
                            f"{limits.budget_s / 60:.1f} min used and a launch takes "
                            f"~{expected / 60:.1f} min; next would have been: {action.reason}",
                            heard, tied=action.tied, dropped=action.dropped)
            dropped = ((f"dropped (cannot win with meaningful probability): "
                        f"{', '.join(action.dropped)}",) if action.dropped else ())
            return Launch((action.candidate,), (*heard, action.reason, *dropped))
        return Stop(action.kind, action.reason, heard,
                    winner=action.candidate if action.kind == "certified" else None,
                    tied=action.tied, dropped=action.dropped)


def until_certain(decision: Decision, store: EvidenceStore, options: LaunchOptions | None = None,
                  *, limits: RaceLimits | None = None, seed: int = 0, any_hardware: bool = False,
                  notify: Notify | None = None, bench_progress: Progress | None = None,
                  samples: int = DEFAULT_SAMPLES) -> RunResult:
    """Run ``RacePolicy`` in this process (see there)."""
    return run(decision, store, RacePolicy(limits or RaceLimits(), seed, samples),
               InProcess(options, notify, bench_progress), any_hardware=any_hardware,
               notify=notify)
