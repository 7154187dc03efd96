"""The certified race: launch whatever most reduces the doubt about the winner, until it is certain.

Each step re-scores the decision from the evidence store, computes P(best) under measurement noise
(``robustness.certainty``) and asks the racing policy (``certify.racing``) what to do:

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
its own prompt seed, so nothing is served from the prefix cache of an earlier run. The race keeps no
state of its own: it reads the evidence store, so an interrupted race resumes where it stopped.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, replace

import numpy as np

from stackdecide.bench.runner import Progress
from stackdecide.certify.probability import RankProbabilities, rank_probabilities
from stackdecide.certify.racing import MIN_REPLICATES, Action, RaceState, next_action
from stackdecide.decision import Decision
from stackdecide.evidence.store import EvidenceStore
from stackdecide.launch.plan import LaunchOptions
from stackdecide.loop import Measurement, measure, optimistic_totals
from stackdecide.model.ranking import Ranking
from stackdecide.robustness.certainty import DEFAULT_CONFIDENCE, Certainty, certainty

Notify = Callable[[str], None]


@dataclass(frozen=True)
class RaceResult:
    """Rankings before and after, the final certainty, and how the race ended."""

    before: Ranking
    after: Ranking
    certainty: Certainty
    action: Action  # the last decision of the policy: certified, tie or budget
    measurements: tuple[Measurement, ...]
    seed: int
    elapsed_s: float
    stopped_on_budget: bool

    @property
    def certified(self) -> str | None:
        return self.action.candidate if self.action.kind == "certified" else None


def _probabilities(sure: Certainty) -> RankProbabilities:
    if sure.probabilities is not None:
        return sure.probabilities
    ranking = sure.ranking  # nothing measured yet: the judged totals, without noise
    feasible = np.array([cid not in ranking.infeasible for cid in ranking.candidate_ids])
    return rank_probabilities(ranking.totals[None, :] / 100.0, feasible)


def race_state(sure: Certainty) -> RaceState:
    """What the racing policy needs: launches per candidate, P(best), who could still win."""
    ranking = sure.ranking
    probabilities = _probabilities(sure)
    launches = sure.launches()
    optimistic = optimistic_totals(ranking) / 100.0
    leader_expected = probabilities.expected_totals[probabilities.leader()]
    feasible = np.array([cid not in ranking.infeasible for cid in ranking.candidate_ids])
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


def until_certain(decision: Decision, store: EvidenceStore, options: LaunchOptions | None = None,
                  *, limits: RaceLimits | None = None, seed: int = 0, any_hardware: bool = False,
                  notify: Notify | None = None, bench_progress: Progress | None = None,
                  samples: int = 4000) -> RaceResult:
    """Race the candidates until the winner is certified, a tie is proven, or the budget is spent."""
    limits = limits or RaceLimits()
    say = notify or (lambda message: None)
    started = time.monotonic()
    measurements: list[Measurement] = []
    durations: list[float] = []

    def assess() -> tuple[Certainty, Action]:
        evidence = store.load()
        ranking = decision.score(evidence=evidence, any_hardware=any_hardware)
        sure = certainty(ranking, evidence, confidence=limits.confidence, samples=samples,
                         seed=seed)
        state = race_state(sure)
        action = next_action(state, limits.confidence, launches_used=len(measurements),
                             max_launches=limits.max_launches,
                             min_replicates=limits.min_replicates,
                             max_replicates=limits.max_replicates,
                             first_pass="random", seed=seed)
        return sure, action

    say(f"race: confidence {limits.confidence:.2f}, at most {limits.max_launches} launches"
        + (f" and {limits.budget_s / 60:.1f} min" if limits.budget_s else "") + f", seed {seed}")
    sure, action = assess()
    before = sure.ranking
    stopped_on_budget = False
    while action.kind == "launch" and action.candidate is not None:
        elapsed = time.monotonic() - started
        expected = float(np.mean(durations)) if durations else 0.0
        if limits.budget_s is not None and elapsed + expected > limits.budget_s:
            stopped_on_budget = True
            action = replace(action, kind="budget", candidate=None, reason=(
                f"time budget: {elapsed / 60:.1f} of {limits.budget_s / 60:.1f} min used and a "
                f"launch takes ~{expected / 60:.1f} min; next would have been: {action.reason}"))
            break
        say(action.reason)
        if action.dropped:
            say(f"dropped (cannot win with meaningful probability): {', '.join(action.dropped)}")
        launch_started = time.monotonic()
        # prompts of their own for every launch, also across resumed runs of the same race: the
        # launches already in the store number this one
        launches = sure.launches()
        launch_seed = int(np.random.SeedSequence([seed, launches[action.candidate],
                                                  sum(launches.values())]).generate_state(1)[0])
        measurements.append(measure(decision, action.candidate, store, options, notify=say,
                                    bench_progress=bench_progress, seed=launch_seed))
        durations.append(time.monotonic() - launch_started)
        outcome = measurements[-1].outcome
        if outcome.fault == "environment":  # retrying would fail alike and teach nothing
            sure, _ = assess()
            action = Action("budget", None, f"stopped: {action.candidate} could not be measured "
                            f"({outcome.failure}: {outcome.reason}); that is this machine's "
                            "fault, not the candidate's: fix it and run again to resume")
            break
        sure, action = assess()
        say("P(best): " + ", ".join(f"{cid} {p:.2f}" for cid, p in sorted(
            sure.p_best.items(), key=lambda item: -item[1]) if p >= 0.005))
    if action.kind == "budget":
        stopped_on_budget = True
    return RaceResult(before, sure.ranking, sure, action, tuple(measurements), seed,
                      time.monotonic() - started, stopped_on_budget)
