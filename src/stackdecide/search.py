"""The race over a space: predictions as the prior, launches where they most change the answer,
and a certificate within a tolerance.

Every step scores the decision with the evidence stored so far and, for every configuration no
launch measured, its prediction (``predict``, calibrated by those same launches): every candidate
is in the joint draws of the totals, measured ones from their replicates, the others from their
predicted intervals (``scoring.certainty``). Then ``certify.indifference.next_action_within``
decides, for the tolerance delta:

* **certified** when the leader is within delta of the best with P >= the confidence and rests on
  two launches; the candidates equivalent within delta are named;
* configurations whose P(within delta of the best) is below ``(1 - confidence) / m`` are
  **dropped**: not even their optimistic end reaches the leader's zone, and one never launched
  never will be (the reason is said, with its P);
* otherwise it **launches** the contender whose launch lowers the doubt about the certificate most
  per GPU-minute (its next launch's cost: the start-up measured or predicted for it, plus the
  benchmark, times its GPUs), each threat to the leader weighed by the share of it one launch
  settles (``threat_picks``; docs/metrics.md, "The next launch");
* it stops on the **budget**: no launch starts that would overrun the GPU-minutes given;
* with ``settle`` it goes on after the certificate, while the budget lasts, launching the
  contender whose place in the equivalence set is least settled, so that the set it names is
  what the evidence supports, not whoever was certified first.

With ``at_once`` > 1 (``--parallel``, ``--cluster``) a step launches the ``at_once`` contenders of
highest gain per GPU-minute together, each on its own GPUs. Configurations on hardware other than
the decision's (a space's ``hardware.gpu`` axis) are ranked on their prediction and never launched
here, marked so. The race keeps no state of its own: an interrupted one resumes from the store.
"""

from __future__ import annotations

import json
import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stackdecide._text import first_of
from stackdecide.bench.results import BENCH_LOADS
from stackdecide.bench.runner import Progress
from stackdecide.certify import DEFAULT_TOLERANCE_POINTS
from stackdecide.certify.indifference import (
    WithinAction,
    WithinRaceState,
    next_action_within,
    percent_to_points,
    tolerance_total,
)
from stackdecide.certify.racing import MIN_REPLICATES
from stackdecide.certify.uncertainty import prior_rel_sd_for
from stackdecide.decision import Decision, load
from stackdecide.errors import StackdecideError
from stackdecide.evidence import load_evidence
from stackdecide.evidence.records import EvidenceSet
from stackdecide.evidence.store import EvidenceStore
from stackdecide.launch.plan import LaunchOptions
from stackdecide.loop import Notify
from stackdecide.model.certainty import DEFAULT_CONFIDENCE, DEFAULT_SAMPLES, CertaintySettings
from stackdecide.model.metrics import METRICS
from stackdecide.model.ranking import Ranking
from stackdecide.model.space import elsewhere
from stackdecide.orchestrate import InProcess, Launch, Policy, Runner, RunResult, RunState, Stop, run
from stackdecide.predict import DEFAULT_LEVEL, calibration, merge, predict
from stackdecide.predict.predictions import Prediction
from stackdecide.schedule.tournament import gpus_needed
from stackdecide.scoring import rank
from stackdecide.scoring.certainty import certifiable
from stackdecide.scoring.predicted import StartCell, criterion_score
from stackdecide.vllm.logs import REFUSED

BENCH_S = 60.0  # a step beside its start-up, where no launch of this run says how long one takes
START_S = 120.0  # a start-up, where neither a launch nor a prediction says it


@dataclass(frozen=True)
class SearchLimits:
    """What the race may spend and what it must show: ``tolerance`` in points of total (0..100),
    ``budget_gpu_min`` GPU-minutes (a launch on two GPUs for three minutes spends six; on the CPU
    engine, minutes), ``at_once`` launches per step."""

    tolerance: float = DEFAULT_TOLERANCE_POINTS
    confidence: float = DEFAULT_CONFIDENCE
    max_launches: int | None = None
    budget_gpu_min: float | None = None
    at_once: int = 1
    min_replicates: int = MIN_REPLICATES
    max_replicates: int | None = None
    # after the certificate, launch the configurations whose place in the equivalence set is
    # unsettled, while the budget lasts (``SearchPolicy._settling``)
    settle: bool = False


Calibrations = tuple[tuple[Decision, EvidenceSet], ...]


def prediction_for(decision: Decision, evidence: EvidenceSet, level: float = DEFAULT_LEVEL,
                   also: Calibrations = (), judged: bool = True) -> Prediction:
    """Each candidate's predicted cells, calibrated by ``evidence`` and by the launches of other
    decisions (``also``: each decision with its evidence; the same model on the same GPU under
    other candidate ids counts through the levels it shares), under the loads the benchmark
    client runs where the decision does not say them: what the race ranks unmeasured
    configurations on, and what ``score --predict`` shows."""
    found = calibration(decision, evidence)
    if also:
        found = merge([found, *(calibration(other, records) for other, records in also)])
    return predict(decision, found, BENCH_LOADS, level, judged=judged)


def start_predictions(decision: Decision, evidence: EvidenceSet, prediction: Prediction
                      ) -> tuple[StartCell, ...]:
    """Each never-launched configuration's chance to start, per 1/0 criterion, as ``score``
    ranks it with ``evidence`` and ``prediction`` (``scoring.predicted``, ``predict.starts``):
    what ``predict`` shows beside the predicted rates. A configuration the static checks refuse
    is left out: it cannot start as written, whatever the chance of the others."""
    ranking = rank(decision, evidence=evidence, prediction=prediction)
    return tuple((candidate, criterion.id, ranking.cells[i][j])
                 for j, criterion in enumerate(decision.criteria)
                 if criterion.measure is not None and METRICS[criterion.measure.metric].boolean
                 for i, candidate in enumerate(decision.candidate_ids)
                 if ranking.cells[i][j].predicted and candidate not in ranking.cannot_start)


def calibrations_from(written: Sequence[str]) -> Calibrations:
    """``--calibrate-with DECISION=EVIDENCE_DB`` (repeatable): each decision file with the
    evidence store its launches are in."""
    found = []
    for text in written:
        decision_path, sep, store_path = text.partition("=")
        if not sep or not decision_path.strip() or not store_path.strip():
            raise StackdecideError(f"--calibrate-with {text!r}: give DECISION=EVIDENCE, e.g. "
                                   "criteria/hopper.yaml=docs/results/hopper-h200/evidence.db")
        if not Path(store_path).is_file():
            raise StackdecideError(f"--calibrate-with {text!r}: no evidence file {store_path}")
        found.append((load(decision_path.strip()), load_evidence(store_path.strip())))
    return tuple(found)


def points(tolerance: float) -> str:
    """"1 point", "5 points": a tolerance in points of total, in words."""
    return f"{tolerance:g} point" + ("" if tolerance == 1 else "s")


def spent_gpu_minutes(decision: Decision, state: RunState) -> float:
    """GPU-minutes this run has spent: each step's wall time (launch, benchmark, stop, and the
    scoring between steps) times the GPUs of what ran in it (one on the CPU engine)."""
    def gpus(candidate_id: str) -> int:
        return max(1, gpus_needed(decision, candidate_id))

    if state.rounds:  # a scheduler's rounds say what ran together
        return sum(r.wall_s * sum(gpus(o.candidate_id) for o in r.outcomes)
                   for r in state.rounds) / 60.0
    return sum(seconds * gpus(m.candidate_id)  # in this process: one launch a step
               for seconds, m in zip(state.step_seconds, state.measurements, strict=False)) / 60.0


def _total_sd(ranking: Ranking, relative_sd: Callable[[int, int], float]) -> np.ndarray:
    """The SD of each candidate's total (0..1) when each of its measured or predicted cells moves
    by ``relative_sd(i, j)`` (an SD of the log of its raw value), through its value function and
    weight, the best of each criterion held: a first-order figure, for choosing launches. The cell
    is moved the worse way: the best value sits at the top of a ``relative_to_best`` scale, where
    a move up changes nothing."""
    decision = ranking.decision
    weights = np.asarray(decision.weights, dtype=float)
    weights = weights / weights.sum()
    variance = np.zeros(len(decision.candidates))
    for j, criterion in enumerate(decision.criteria):
        measure = criterion.measure
        if measure is None or METRICS[measure.metric].boolean:
            continue
        metric = METRICS[measure.metric]
        rows = [i for i in range(len(decision.candidates))
                if (ranking.cells[i][j].measured or ranking.cells[i][j].predicted)
                and ranking.cells[i][j].raw]
        if not rows:
            continue
        raws = np.array([float(ranking.cells[i][j].raw or 0.0) for i in rows])
        best = raws.max() if metric.higher_is_better else raws.min()
        span = criterion.scale.high - criterion.scale.low
        for i, raw in zip(rows, raws, strict=True):
            worse = raw * math.exp((-1.0 if metric.higher_is_better else 1.0) * relative_sd(i, j))
            moved = [criterion_score(criterion, value, best) for value in (raw, worse)]
            variance[i] += (weights[j] * (moved[1] - moved[0]) / span) ** 2
    return np.sqrt(variance)


def launch_sd(ranking: Ranking) -> np.ndarray:
    """The SD of one launch's total per candidate: each cell moved by its metric's launch-to-launch
    noise (its estimate's, else the prior's)."""
    decision = ranking.decision
    estimates = ranking.certainty.cells if ranking.certainty is not None else {}

    def noise(i: int, j: int) -> float:
        found = estimates.get((decision.candidate_ids[i], decision.criteria[j].id))
        return found.estimate.rel_sd if found is not None else \
            prior_rel_sd_for(str(ranking.cells[i][j].metric))

    return _total_sd(ranking, noise)


def own_sd(ranking: Ranking) -> np.ndarray:
    """The SD of each candidate's total from the doubt about its own cells (a measured mean's
    standard error, a predicted mean's interval), the best of each criterion held. The draws'
    spread of a total also holds the doubt about the best it is read against
    (``relative_to_best``), which a launch of the candidate does not remove."""
    decision = ranking.decision
    estimates = ranking.certainty.cells if ranking.certainty is not None else {}

    def doubt(i: int, j: int) -> float:
        cell = ranking.cells[i][j]
        if cell.predicted:
            return cell.log_sd or 0.0
        found = estimates.get((decision.candidate_ids[i], decision.criteria[j].id))
        return found.estimate.standard_error / abs(found.estimate.center) if found else 0.0

    return _total_sd(ranking, doubt)


def engine_starts(state: RunState) -> int:
    """The launches that started an engine: a launch refused before it started one (its
    preflight) spent no GPU time, and counts against no launch limit."""
    return sum(1 for m in state.measurements if m.outcome.failure != REFUSED)


def launch_cost(decision: Decision, ranking: Ranking, state: RunState) -> np.ndarray:
    """GPU-minutes of each candidate's next launch: its start-up (the fastest of its own, since a
    repeat finds the caches its first launch filled; else its predicted start-up; else
    ``START_S``) plus what else a step of this run took beside the start-up (benchmark, stop,
    scoring: the median; ``BENCH_S`` before the first), times its GPUs."""
    started: dict[str, list[float]] = {}
    for record in state.evidence:
        if record.metric == "startup_s":
            started.setdefault(record.candidate, []).append(record.value)
    rest = [seconds - (m.outcome.startup_s or 0.0)
            for seconds, m in zip(state.step_seconds, state.measurements, strict=False)]
    rest_s = max(float(np.median(rest)), 0.0) if rest else BENCH_S
    startup_column = next((j for j, c in enumerate(decision.criteria)
                           if c.measure is not None and c.measure.metric == "startup_s"), None)
    costs = []
    for i, candidate_id in enumerate(decision.candidate_ids):
        own = started.get(candidate_id)
        cell = ranking.cells[i][startup_column] if startup_column is not None else None
        start = min(own) if own else \
            float(cell.raw) if cell is not None and cell.predicted and cell.raw else START_S
        costs.append(max(start + rest_s, 1.0) / 60.0 * max(1, gpus_needed(decision, candidate_id)))
    return np.array(costs)


def threat_gains(totals: np.ndarray, own_variance: np.ndarray, launch_sd: np.ndarray, leader: int,
                 delta: float, candidates: list[int]) -> np.ndarray:
    """How much one launch of each of ``candidates`` is expected to lower the doubt about "the
    leader is within delta of the best".

    The doubt is at most the sum of the threats ``q_i = P(total_i > total_leader + delta)`` (from
    the joint draws). A threat rests on the variance of the difference, ``v_leader + v_i`` (each
    candidate's own doubt, ``own_sd``), and a launch of i takes ``v_i - 1 / (1 / v_i + 1 / s_i^2)``
    of it (``s_i``: one launch's SD): the share of its threat it is expected to settle, either way.
    A launch of the leader is worth its share of the strongest threat. Unlike a bound with the means held
    fixed, this values the first launch of a configuration resting on a vague prediction by the
    doubt it removes, not by how far its mean sits from the leader's: a config predicted level
    with the leader is exactly the one worth launching.
    """
    threat = (totals > totals[:, [leader]] + delta).mean(axis=0)
    threat[leader] = 0.0
    variance = np.maximum(own_variance, 0.0)
    with np.errstate(divide="ignore", invalid="ignore"):
        after = np.where((variance > 0) & (launch_sd > 0),
                         1.0 / (1.0 / variance + 1.0 / np.maximum(launch_sd, 1e-12) ** 2), variance)
        settled = np.nan_to_num((variance - after) / (variance[leader] + variance))
    gains = threat * settled
    # the leader's launch settles its share of each threat, but the threats are not independent
    # doubts to add up: they are duels the leader fights one at a time, and replicating it
    # settles none of them while its rival rests on a launch or a prediction. So it is worth what
    # it does for the strongest of them (the duel of ``certify.racing``, on variances)
    gains[leader] = float(np.max(threat * np.nan_to_num(
        (variance[leader] - after[leader]) / (variance[leader] + variance))))
    return gains[candidates]


def threat_picks(totals: np.ndarray, own_variance: np.ndarray, launch_sd: np.ndarray,
                 launch_cost: np.ndarray, leader: int, delta: float, candidates: Sequence[int],
                 count: int) -> list[tuple[int, float, float]]:
    """The next launches: up to ``count`` of ``candidates`` whose launch lowers the doubt about
    the leader most per GPU-minute (``threat_gains`` over ``launch_cost``), each as (candidate,
    gain, gain per GPU-minute), best first; none whose launch would lower nothing. The race over
    a space and ``benchmarks/search.py`` choose by it."""
    chosen = list(candidates)
    if not chosen or count < 1:
        return []
    gains = threat_gains(totals, own_variance, launch_sd, leader, delta, chosen)
    worth = gains / np.asarray(launch_cost, dtype=float)[chosen]
    return [(chosen[k], float(gains[k]), float(worth[k]))
            for k in np.argsort(-worth, kind="stable") if gains[k] > 0][:count]


@dataclass(frozen=True)
class SearchPolicy(Policy):
    """Race a space (or a list) for a certificate within ``limits.tolerance`` (module doc)."""

    limits: SearchLimits = SearchLimits()
    seed: int = 0
    samples: int = DEFAULT_SAMPLES
    level: float = DEFAULT_LEVEL
    also: Calibrations = ()  # other decisions' launches that calibrate the predictions

    @property
    def certainty(self) -> CertaintySettings:
        return CertaintySettings(confidence=self.limits.confidence, samples=self.samples,
                                 seed=self.seed, tolerance=self.limits.tolerance)

    def prediction(self, decision: Decision, evidence: EvidenceSet) -> Prediction:
        return prediction_for(decision, evidence, self.level, self.also)

    def next(self, state: RunState) -> Launch | Stop:
        limits, decision = self.limits, state.ranking.decision
        assert isinstance(decision, Decision)
        heard = self._heard(state)
        if state.ranking.winner is None:
            return Stop("settled", "no candidate is feasible, so there is nothing to race: "
                        + "; ".join(f"{cid}: {state.ranking.why_infeasible(cid)}"
                                    for cid in state.ranking.infeasible), heard)
        if state.measurements and state.measurements[-1].outcome.fault == "environment":
            last = state.measurements[-1]
            return Stop("budget", f"stopped: {last.candidate_id} could not be measured "
                        f"({last.outcome.failure}: {last.outcome.reason}); that is this "
                        "machine's fault, not the candidate's: fix it and run again to resume",
                        heard)
        ranking = state.ranking
        sure = state.certainty
        assert sure.totals is not None, "every candidate is measured or predicted"
        away = elsewhere(decision.model)
        launches = sure.launches()
        counts = np.array([launches[cid] for cid in ranking.candidate_ids])
        cost = launch_cost(decision, ranking, state)
        within = WithinRaceState(ranking.candidate_ids, counts, sure.totals, launch_sd(ranking),
                                 certifiable(ranking), cost)
        started = engine_starts(state)
        action = next_action_within(within, tolerance_total(limits.tolerance), limits.confidence,
                                    launches_used=started,
                                    max_launches=limits.max_launches,
                                    min_replicates=limits.min_replicates,
                                    max_replicates=limits.max_replicates)
        spent_launches = limits.max_launches is not None and \
            started >= limits.max_launches
        # the rule's own choice of launch reads the draws' spread, which under relative_to_best
        # also holds the doubt about the best; this policy chooses on each candidate's own doubt
        # (``threat_gains``), so only a certificate or a spent budget ends the race here
        # settling keeps one launch in reserve: one that undoes a borderline certificate
        # leaves a launch to win it back rather than ending the race on it
        room = limits.max_launches is None or started + 1 < limits.max_launches
        settling = action.kind == "certified" and limits.settle and room
        if (action.kind == "certified" and not settling) or spent_launches:
            return self._stop(action, heard)
        picks = self._settling(action, within, away) if settling else \
            self._picks(action, within, own_sd(ranking), away)
        if not picks and (settling or action.kind != "launch"):
            return self._stop(action, heard)
        if not picks:
            return self._stop(WithinAction(
                "budget", None, "every configuration worth a launch is for other hardware "
                f"({', '.join(sorted(away))}): {action.reason.split(': ', 1)[-1]}",
                action.tied, action.dropped, action.equivalent, action.certificate), heard)
        if limits.max_launches is not None:  # a step of several launches stops at the limit
            picks = picks[:max(1, limits.max_launches - started)]
        spent = spent_gpu_minutes(decision, state)
        needed = float(sum(cost[ranking.candidate_ids.index(cid)] for cid, _ in picks))
        # a settling launch leaves room for one more of the leader (the reserve above)
        reserve = float(cost[action.certificate.leader]) if settling and action.certificate \
            else 0.0
        if limits.budget_gpu_min is not None and \
                spent + needed + reserve > limits.budget_gpu_min:
            if settling:  # the certificate stands; the set is as settled as the budget allowed
                return self._stop(action, heard)
            return self._stop(WithinAction(
                "budget", None, f"GPU-minute budget: {spent:.1f} of {limits.budget_gpu_min:g} "
                f"spent and the next launch takes ~{needed:.1f}; next would have been: "
                f"{picks[0][1]}", action.tied, action.dropped, action.equivalent,
                action.certificate), heard)
        dropped = self._dropped(action, state)
        return Launch(tuple(cid for cid, _ in picks), (*heard, *dropped, *(why for _, why in picks)),
                      len(picks))

    def _heard(self, state: RunState) -> tuple[str, ...]:
        limits = self.limits
        if state.measurements:
            sure = state.certainty
            assert sure.within is not None
            p = sure.within.probabilities.p_within
            top = np.argsort(-p)[:5]
            return (f"P(within {points(limits.tolerance)} of the best): " + ", ".join(
                f"{sure.candidate_ids[i]} {p[i]:.2f}" for i in top if p[i] >= 0.005),)
        budget = f", at most {limits.budget_gpu_min:g} GPU-minutes" if limits.budget_gpu_min else ""
        count = f", at most {limits.max_launches} launches" if limits.max_launches else ""
        return (f"race over {len(state.ranking.candidate_ids)} configurations for one within "
                f"{points(limits.tolerance)} of the best at P >= {limits.confidence:.2f}"
                f"{budget}{count}, {limits.at_once} at a time, seed {self.seed}",)

    def _picks(self, action: WithinAction, within: WithinRaceState, own: np.ndarray,
               away: dict[str, str]) -> list[tuple[str, str]]:
        """What to launch, and why: the leader while a certificate waits only on its second launch;
        else the contenders whose launch lowers the doubt about the certificate most per GPU-minute
        (``threat_picks`` on each candidate's own doubt, ``own_sd``), ``at_once`` of them; never one
        for other hardware."""
        cert = action.certificate
        assert cert is not None
        names, cap = within.candidates, self.limits.max_replicates
        launchable = [i for i in cert.contenders if names[i] not in away
                      and (cap is None or within.launches[i] < cap)]
        picks: list[tuple[str, str]] = []
        if cert.kind == "certified" and cert.leader in launchable:
            picks.append((names[cert.leader], action.reason))
        if launchable and len(picks) < self.limits.at_once:
            assert within.launch_cost is not None
            means = within.totals[:, launchable].mean(axis=0)
            leader = cert.leader if cert.leader in launchable else \
                launchable[int(np.argmax(means))]
            p_within = cert.probabilities.p_within
            zone = points(self.limits.tolerance)
            taken = {name for name, _ in picks}
            for i, gain, worth in threat_picks(
                    within.totals, own ** 2, within.launch_sd, within.launch_cost, leader,
                    cert.delta, [i for i in launchable if names[i] not in taken],
                    self.limits.at_once - len(picks)):
                basis = f"{int(within.launches[i])} launch(es)" if within.launches[i] else \
                    "its prediction alone"
                picks.append((names[i], (
                    f"launch {names[i]}: one launch is expected to lower P({names[leader]} is not "
                    f"within {zone} of the best) by {gain:.3f} ({worth:.3f} per GPU-minute), "
                    f"the most of any{' left' if picks else ''}; it rests on {basis}, "
                    f"P(within {zone}) = {p_within[i]:.2f}")))
        return picks

    def _settling(self, action: WithinAction, within: WithinRaceState,
                  away: dict[str, str]) -> list[tuple[str, str]]:
        """After a certificate (``SearchLimits.settle``): the configuration whose place in the
        equivalence set is least settled, P(within delta) between 1 - confidence and the
        confidence, the likeliest to join first (then the fewest launches); none when every
        contender is in the set or out of it. Two runs over near-equivalent configurations
        otherwise each name the first one certified, and their sets need not meet."""
        cert = action.certificate
        assert cert is not None
        names, cap, confidence = within.candidates, self.limits.max_replicates, \
            self.limits.confidence
        p_within = cert.probabilities.p_within
        open_ = [i for i in cert.contenders if names[i] not in away
                 and (cap is None or within.launches[i] < cap)
                 and 1 - confidence < p_within[i] < confidence]
        if not open_:
            return []
        i = min(open_, key=lambda k: (-p_within[k], within.launches[k], k))
        zone = points(self.limits.tolerance)
        return [(names[i], f"launch {names[i]}: {names[cert.leader]} is certified; whether "
                           f"{names[i]} is also within {zone} of the best is unsettled "
                           f"(P = {p_within[i]:.2f}, {int(within.launches[i])} launch(es))")]

    def _dropped(self, action: WithinAction, state: RunState) -> tuple[str, ...]:
        """The configurations dropped without a launch, with their P(within delta): said once,
        at the first step."""
        if state.measurements or not action.dropped or action.certificate is None:
            return ()
        ids = state.ranking.candidate_ids
        p = action.certificate.probabilities.p_within
        infeasible = state.ranking.infeasible
        launches = state.certainty.launches()
        away = elsewhere(state.ranking.decision.model)
        never = [cid for cid in action.dropped if launches[cid] == 0 and cid not in infeasible]
        lines = []
        if hopeless := [cid for cid in never if cid not in away]:
            lines.append(f"not launched, predicted unable to come within "
                         f"{points(self.limits.tolerance)} of the best (P(within) below "
                         f"{(1 - self.limits.confidence) / len(ids):.4f}): "
                         + first_of((f"{cid} ({p[ids.index(cid)]:.3f})" for cid in hopeless), 8))
        if other := [cid for cid in never if cid in away]:
            # never chosen here whatever their prediction: said apart, lest it read as a verdict
            lines.append("not launched, for hardware other than the decision's (ranked by "
                         "prediction only): " + first_of(other, 8))
        return tuple(lines)

    def _stop(self, action: WithinAction, heard: tuple[str, ...]) -> Stop:
        kind = action.kind if action.kind in ("certified", "tie", "budget") else "budget"
        return Stop(kind, action.reason, heard,
                    winner=action.candidate if action.kind == "certified" else None,
                    tied=action.tied, dropped=action.dropped)


def search(decision: Decision, store: EvidenceStore, options: LaunchOptions | None = None, *,
           limits: SearchLimits | None = None, seed: int = 0, any_hardware: bool = False,
           notify: Notify | None = None, runner: Runner | None = None,
           bench_progress: Progress | None = None, samples: int = DEFAULT_SAMPLES,
           also: Calibrations = ()) -> RunResult:
    """Run ``SearchPolicy``: in this process one launch at a time, or on ``runner`` (a
    scheduler's, for ``at_once`` > 1); ``also``: other decisions' launches that calibrate the
    predictions."""
    return run(decision, store, SearchPolicy(limits or SearchLimits(), seed, samples, also=also),
               runner or InProcess(options, notify, bench_progress), any_hardware=any_hardware,
               notify=notify)


def tolerance_points(decision: Decision, written: str | None) -> float:
    """``--tolerance`` in points of total: a number of points, or ``PCT%CRITERION`` (that % of the
    criterion's metric, ``certify.indifference.percent_to_points``); None: the default, 1 point for
    a decision with a space, 0 for a list of candidates."""
    if written is None:
        return DEFAULT_TOLERANCE_POINTS if decision.model.space is not None else 0.0
    text = written.strip()
    if "%" not in text:
        try:
            points = float(text)
            tolerance_total(points)  # a negative or infinite tolerance raises
            return points
        except ValueError:
            raise StackdecideError(f"--tolerance {written!r}: give points of total (1, 0.5) or "
                                   "PCT%CRITERION (3%decode_speed)") from None
    percent, _, criterion_id = text.partition("%")
    criterion = next((c for c in decision.criteria if c.id == criterion_id.strip()), None)
    if criterion is None or criterion.measure is None:
        measured = ", ".join(c.id for c in decision.criteria if c.measure is not None)
        raise StackdecideError(f"--tolerance {written!r}: '{criterion_id}' is not a measured "
                               f"criterion of this decision (measured: {measured or 'none'})")
    if criterion.measure.value != "relative_to_best":
        raise StackdecideError(f"--tolerance {written!r}: a % of a metric converts to points only "
                               f"for a relative_to_best criterion; '{criterion.id}' is "
                               f"{criterion.measure.value}: give points instead")
    try:
        share = float(decision.weights[decision.criterion_ids.index(criterion.id)]) / \
            float(np.sum(decision.weights))
        return percent_to_points(float(percent), share,
                                 METRICS[criterion.measure.metric].higher_is_better)
    except ValueError as exc:
        raise StackdecideError(f"--tolerance {written!r}: {exc}") from None


def never_launched(result: RunResult) -> dict[str, str]:
    """Each configuration the race dropped without launching it, and why."""
    sure = result.certainty
    launches = sure.launches()
    within = sure.within
    if within is None:
        return {}
    p = within.probabilities.p_within
    delta = within.delta * 100
    infeasible = result.after.infeasible
    return {cid: f"cannot start or breaks a constraint: {result.after.why_infeasible(cid)}"
            if cid in infeasible else f"P(within {points(delta)} of the best) = {p[i]:.3f}, predicted"
            for i, cid in enumerate(sure.candidate_ids)
            if cid in result.stop.dropped and launches[cid] == 0}



@dataclass(frozen=True)
class Answer:
    """What a race over a space answered: its choice (the certified configuration, else the
    leader), whether it is certified, the configurations equivalent within the tolerance, and
    the fewest configurations that hold the best at the race's confidence (``holds_best``)."""

    choice: str | None
    certified: bool
    equivalent: tuple[str, ...]
    tolerance: float
    where: str = ""  # the folder it was read from
    holds_best: tuple[str, ...] = ()
    twins: tuple[str, ...] = ()  # the choice's twins on every rate (``rate_twins``)

    def to_dict(self) -> dict[str, object]:
        return {"choice": self.choice, "certified": self.certified,
                "equivalent": list(self.equivalent), "tolerance_points": self.tolerance,
                "holds_best": list(self.holds_best), "twins": list(self.twins)}


ANSWER_FILE = "answer.json"


def holding_best(ids: Sequence[str], p_best: np.ndarray, confidence: float) -> tuple[str, ...]:
    """The fewest configurations whose P(best) adds up to ``confidence``, likeliest first: the
    set that holds the best at that probability (a credible set of the best; Gupta's subset
    selection asks the same of a sample). Two runs whose choices differ answer consistently
    when each choice lies in the other's set."""
    order = np.argsort(-p_best, kind="stable")
    reached = np.searchsorted(np.cumsum(p_best[order]), confidence - 1e-12) + 1
    return tuple(ids[i] for i in order[:min(int(reached), len(ids))])


def rate_twins(prediction: Prediction, candidate: str) -> tuple[str, ...]:
    """The configurations the same as ``candidate`` on every rate the decision measures, each at
    its load, as far as prediction can tell (``Predicted.twin``: a scheduler limit no load
    reaches apart): a choice stands for them too, start-up aside. None without a rate."""
    rates = [p for p in prediction.predictions if p.candidate == candidate and p.load is not None]
    if not rates:
        return ()
    group = {(p.candidate, p.criterion): p.twin or p.candidate for p in prediction.predictions}
    others = sorted({p.candidate for p in prediction.predictions} - {candidate})
    return tuple(k for k in others if all(group.get((k, p.criterion)) ==
                                          group[(candidate, p.criterion)] for p in rates))


def race_answer(result: RunResult, decision: Decision) -> Answer:
    """What the race over ``decision``'s space answered (``Answer``)."""
    sure = result.certainty
    within = sure.within
    equivalent = tuple(sure.candidate_ids[i] for i in within.equivalent) if within else ()
    best = holding_best(sure.candidate_ids, sure.probabilities.p_best, sure.settings.confidence) \
        if sure.probabilities is not None else ()
    choice = result.stop.winner or sure.verdict.winner
    twins = rate_twins(prediction_for(decision, result.evidence), choice) if choice else ()
    return Answer(choice, result.stop.kind == "certified", equivalent,
                  within.delta * 100 if within else 0.0, holds_best=best, twins=twins)


def write_answer(folder: Path, answer: Answer) -> None:
    (folder / ANSWER_FILE).write_text(json.dumps(answer.to_dict(), indent=2) + "\n")


def previous_answer(folder: Path) -> Answer | None:
    """The answer of the latest earlier run beside ``folder`` (sibling folders with the same
    prefix, ordered by name, which starts with their UTC time), if any wrote one."""
    prefix = folder.name.split("-")[0] + "-"
    earlier = sorted(p for p in folder.parent.glob(prefix + "*")
                     if p.name < folder.name and (p / ANSWER_FILE).is_file())
    for previous in reversed(earlier):
        try:
            data = json.loads((previous / ANSWER_FILE).read_text())
            return Answer(data["choice"], bool(data["certified"]), tuple(data["equivalent"]),
                          float(data["tolerance_points"]), str(previous),
                          tuple(data.get("holds_best", ())), tuple(data.get("twins", ())))
        except (OSError, ValueError, KeyError, TypeError):
            continue  # a damaged answer file says nothing about this run
    return None


def compare_answers(now: Answer, before: Answer | None) -> str:
    """This run's answer beside the previous one's, in one sentence."""
    if before is None:
        return "previous run: none on this machine to compare with"
    if now.choice == before.choice:
        return f"previous run ({before.where}): the same choice, {now.choice}"
    if before.choice in now.twins or now.choice in before.twins:
        return (f"previous run ({before.where}): the same configuration on every rate measured "
                f"({before.choice}, now its twin {now.choice}: they differ only in a scheduler "
                "limit no benchmark load reaches)")
    # a choice stands for its twins (``rate_twins``): the same on every rate, start-up aside
    shared = sorted(set(now.equivalent) & set(before.equivalent))
    via_twins = sorted((set(now.equivalent) | set(now.twins))
                       & (set(before.equivalent) | set(before.twins)))
    if shared or via_twins:
        twin_note = "" if shared else " (counting each choice's twins on every rate)"
        return (f"previous run ({before.where}): another choice ({before.choice}, now "
                f"{now.choice}), equivalence sets overlapping in "
                f"{', '.join(shared or via_twins)}{twin_note}")
    crossed = [answer.choice in other.holds_best for answer, other in ((now, before), (before, now))
               if {answer.choice, *answer.twins} & set(other.holds_best)]
    if len(crossed) == 2:
        each = "each choice" if all(crossed) else "each choice, or a twin of it on every rate,"
        return (f"previous run ({before.where}): another choice ({before.choice}, now "
                f"{now.choice}), no configuration equivalent in both, but {each} is in the "
                "other run's set that holds the best")
    return (f"previous run ({before.where}): a different choice ({before.choice}, now "
            f"{now.choice}) and no configuration equivalent in both")
