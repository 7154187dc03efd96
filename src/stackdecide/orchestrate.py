"""One loop for every way of measuring: a policy says what to launch next or why to stop; the loop
launches it, stores what it measured, re-scores, and asks again.

The policies: ``stable.StablePolicy`` measures the leader and whoever could still overtake it
(``launch --bench``, ``--until-stable``), ``race.RacePolicy`` races the candidates until the winner
is certified (``--until-certain``), ``schedule.tournament.TournamentPolicy`` measures every
candidate several at a time, then the top contenders alone (``--parallel``, ``--cluster``). A runner
carries the launches out: ``InProcess`` one after another in this process,
``schedule.tournament.OnScheduler`` on a scheduler's workers.

Every step reads the evidence store and scores the decision from it, the one place a run computes
how sure the ranking is, with the policy's certainty settings. A run keeps no state of its own
beyond what it launched, so an interrupted run resumes where it stopped. Every launch sends prompts
of its own, also across resumed runs: its seed derives from the run's seed and the launches already
in the store (``launch_seeds``).
"""

from __future__ import annotations

import time
from abc import ABC, abstractmethod
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal, Protocol

from stackdecide.bench.runner import Progress
from stackdecide.decision import Decision
from stackdecide.evidence.records import EvidenceSet
from stackdecide.evidence.store import EvidenceStore
from stackdecide.launch.plan import LaunchOptions
from stackdecide.loop import Measurement, Notify, derive_seed, measure
from stackdecide.model.certainty import Certainty, CertaintySettings
from stackdecide.model.ranking import Ranking
from stackdecide.predict.predictions import Prediction
from stackdecide.schedule.base import Round

StopKind = Literal["measured", "settled", "certified", "tie", "budget"]


@dataclass(frozen=True)
class Launch:
    """Candidates to launch next, what to say first, and how many may run at once (a runner
    that runs one at a time ignores ``limit``; None: as many as fit)."""

    candidates: tuple[str, ...]
    messages: tuple[str, ...] = ()
    limit: int | None = 1


@dataclass(frozen=True)
class Stop:
    """Why a run ends: all asked for was measured, the ranking is settled, the winner is
    certified, a tie is proven, or the budget is spent. ``winner`` is the certified candidate;
    ``tied`` the contenders with their P(best) at a tie or a budget stop; ``dropped`` the candidates
    too unlikely to win to be measured further."""

    kind: StopKind
    reason: str
    messages: tuple[str, ...] = ()
    winner: str | None = None
    tied: tuple[tuple[str, float], ...] = ()
    dropped: tuple[str, ...] = ()


@dataclass(frozen=True)
class RunState:
    """Where a run stands: the ranking now, the evidence it rests on, what this run launched."""

    ranking: Ranking
    evidence: EvidenceSet
    measurements: tuple[Measurement, ...]
    rounds: tuple[Round, ...]  # the scheduler's rounds, one a step (in-process runs have none)
    step_seconds: tuple[float, ...]  # wall time of each step's launches
    elapsed_s: float

    @property
    def certainty(self) -> Certainty:
        """How sure the ranking is; a run always scores with evidence, so it has one."""
        assert self.ranking.certainty is not None, "a run scores with evidence"
        return self.ranking.certainty


class Policy(ABC):
    """What to launch next, or why to stop, from where a run stands.

    ``seed`` is the run's: launch seeds derive from it. ``certainty`` is how every step's ranking
    computes how sure it is. ``skipped`` lists candidates the policy will not launch, and why.
    """

    seed: int = 0
    skipped: tuple[tuple[str, str], ...] = ()

    @property
    def certainty(self) -> CertaintySettings:
        return CertaintySettings()

    def prediction(self, decision: Decision, evidence: EvidenceSet) -> Prediction | None:
        """Predicted cells for what no launch measured (``scoring.predicted``): none unless the
        policy ranks on predictions."""
        return None

    def evidence(self, stored: EvidenceSet, rounds: Sequence[Round]) -> EvidenceSet:
        """What the ranking rests on, after ``rounds``: every stored record unless the policy
        says otherwise."""
        return stored

    @abstractmethod
    def next(self, state: RunState) -> Launch | Stop:
        """The next launches, or why the run ends."""


@dataclass(frozen=True)
class Batch:
    """What one step's launches measured (stored, ids set), and the round they ran in when a
    scheduler ran them."""

    measurements: tuple[Measurement, ...]
    round: Round | None = None


class Runner(Protocol):
    def __call__(self, decision: Decision, store: EvidenceStore, seeds: dict[str, int],
                 limit: int | None) -> Batch:
        """Launch each candidate of ``seeds`` with its prompt seed, measure it and store what it
        measured; at most ``limit`` at once."""
        ...


@dataclass(frozen=True)
class InProcess:
    """Launches in this process, one after another (``loop.measure``)."""

    options: LaunchOptions | None = None
    notify: Notify | None = None
    bench_progress: Progress | None = None

    def __call__(self, decision: Decision, store: EvidenceStore, seeds: dict[str, int],
                 limit: int | None) -> Batch:
        return Batch(tuple(measure(decision, candidate_id, store, self.options,
                                   notify=self.notify, bench_progress=self.bench_progress,
                                   seed=seed)
                           for candidate_id, seed in seeds.items()))


@dataclass(frozen=True)
class RunResult:
    """Rankings before and after, every measurement made in between, and how the run ended.

    ``after`` carries how sure it is (``certainty``), computed from ``evidence``, what it rests on.
    """

    before: Ranking
    after: Ranking
    evidence: EvidenceSet
    measurements: tuple[Measurement, ...]
    stop: Stop
    rounds: tuple[Round, ...]
    skipped: tuple[tuple[str, str], ...]
    seed: int
    elapsed_s: float

    @property
    def certainty(self) -> Certainty:
        assert self.after.certainty is not None, "a run scores with evidence"
        return self.after.certainty

    @property
    def certified(self) -> str | None:
        return self.stop.winner if self.stop.kind == "certified" else None


def launch_seeds(run_seed: int, launched: int, candidates: Sequence[str]) -> dict[str, int]:
    """The prompt seed of each candidate of one step: the launches already in the store
    (``launched``) and its place in the step number it, so every launch of a run, and of a run
    resumed later on the same store, sends prompts of its own."""
    return {candidate_id: derive_seed(run_seed, launched + place)
            for place, candidate_id in enumerate(candidates)}


def launches_stored(store: EvidenceStore) -> int:
    """Launches the store holds: each launch that measured anything stored one ``launch_ok``."""
    return store.count(metric="launch_ok")


def run(decision: Decision, store: EvidenceStore, policy: Policy, runner: Runner, *,
        any_hardware: bool = False, notify: Notify | None = None) -> RunResult:
    """Ask ``policy`` what to launch, have ``runner`` launch it, re-score, until it says stop."""
    say = notify or (lambda message: None)
    started = time.monotonic()
    measurements: list[Measurement] = []
    rounds: list[Round] = []
    step_seconds: list[float] = []

    def now() -> RunState:
        evidence = policy.evidence(store.load(), rounds)
        ranking = decision.score(evidence=evidence, any_hardware=any_hardware,
                                 certainty=policy.certainty,
                                 prediction=policy.prediction(decision, evidence))
        return RunState(ranking, evidence, tuple(measurements), tuple(rounds),
                        tuple(step_seconds), time.monotonic() - started)

    state = now()
    before = state.ranking
    while True:
        step = policy.next(state)
        for message in step.messages:
            say(message)
        if isinstance(step, Stop):
            break
        seeds = launch_seeds(policy.seed, launches_stored(store), step.candidates)
        step_started = time.monotonic()
        batch = runner(decision, store, seeds, step.limit)
        step_seconds.append(time.monotonic() - step_started)
        measurements += batch.measurements
        if batch.round is not None:
            rounds.append(batch.round)
        state = now()
    return RunResult(before, state.ranking, state.evidence, state.measurements, step,
                     state.rounds, policy.skipped, policy.seed, time.monotonic() - started)
