"""Indifference zone: which candidates are within a tolerance delta of the best, and how sure that is.

Asking which candidate is best at a resolution finer than the restart noise has no good answer: two
stacks a tenth of a point apart need hundreds of launches to separate, and the difference does not
matter. Asking which candidates are *within delta of the best* does have one. This is the
indifference zone of ranking and selection: Bechhofer (1954) chose a sample size that selects the
best with probability ``P*`` whenever it leads by at least ``delta*``; Kim & Nelson (2001) made
it fully sequential with elimination; the Bayesian form used here is the posterior probability of
good selection, P(the selected mean is within delta of the largest mean | data) (Chick & Inoue
2001; Branke, Chick & Schmidt 2007, whose stopping rules compare it with ``1 - alpha*``; Eckman &
Henderson 2022 on what such posterior stopping rules guarantee).

Input: joint draws of every candidate's total, shape ``(S, m)`` on 0..1, the matrix
:func:`~stackdecide.certify.probability.rank_probabilities` takes (rows carry any dependence), and
``delta`` on the same scale (points of total / ``POINTS``; :func:`tolerance_total`).

* **P(within delta)** of candidate i: the share of draws with ``total_i >= max_k total_k - delta``,
  the maximum over feasible candidates (infeasible ones are never within). At ``delta = 0`` it is
  P(best) of ``rank_probabilities``, where a draw in which k candidates tie gives each 1/k: the
  question is then "which one is best", the shares add up to 1, and the verdict below is today's.
  For ``delta > 0`` every candidate within delta in a draw counts fully, so the shares add up to
  1 or more (1 + the expected number of others in the zone).
* **Leader** X: highest P(within delta), then highest expected total, then the first in the file.
* **Certified** when P(within delta)_X >= confidence: "X is within delta of the best with P >=
  confidence". At delta = 0 this is the certificate of ``certify.racing``.
* **Equivalence set**: every candidate whose own P(within delta) reaches the confidence. Each member
  alone is a good selection at that confidence, so any of them may be chosen on other grounds (cost,
  simplicity). In a draw where all members are within delta of the best they are within delta of
  each other; the share of such draws (``p_all_equivalent``) is at least ``1 - sum(1 - P_i)``
  (Bonferroni), and is what a statement about all of them at once may claim. At delta = 0 the set
  is the certified leader alone, or empty.
* **Contenders**: candidates with P(within delta) >= ``drop_below`` (the racing rule passes
  ``(1 - confidence) / m``), and the leader. By the union bound, the probability that any dropped
  candidate is within delta of the best (a fortiori that it is the best) is below ``m *
  drop_below = 1 - confidence``.
* **Verdict**: ``certified``; otherwise ``tie`` between the contenders at delta = 0 (the
  difference may be smaller than the noise), and ``undecided`` for delta > 0: with a positive
  zone more launches always settle it, unless a true gap sits exactly at delta.

**Tolerance units.** Points of total (0..100 as printed), or a percentage of one metric converted
by :func:`percent_to_points`. :data:`DEFAULT_TOLERANCE_POINTS` is 1 point (see there).

**Next launch** (:func:`next_action_within`): the launch that most raises the approximate
probability of the certificate, per unit of cost. With the leader X and each contender i, ``D_i =
total_X - total_i + delta`` has mean ``d_i`` and variance ``v_X + v_i`` (the draws' variances), and
1 - P(X within delta of the best) is bounded by ``sum_i Phi(-d_i / sqrt(v_X + v_i))`` (Bonferroni:
the approximate probability of correct selection that OCBA maximises, Chen, Lin, Yücesan & Chick
2000, with each gap widened by delta, as the indifference zone enters the bounds of Branke, Chick &
Schmidt 2007). One launch of candidate c turns its variance into ``1 / (1 / v_c + 1 / s_c^2)``
(``s_c``: the SD of one launch's total), which lowers the terms that involve c; the step launches
the contender whose launch lowers the bound most, means held, per unit of ``launch_cost``. Each
term is taken as the doubt about the sign of ``D_i`` (``|d_i|``), so a launch that could show X
outside the zone counts too. Myopic steps on such an approximation (without the zone) meet the
optimality conditions of OCBA's allocation as samples accumulate (Li, Gao & Shi 2022); unlike
OCBA's asymptotic shares, which were tried first here, they see what the first launch of a
candidate resting on a vague prediction is worth: most of its doubt goes at once, where the tenth
replicate of a well-measured candidate changes little (in ``benchmarks/search.py`` OCBA's shares
kept replicating the top two while a dozen predicted contenders held the certificate back).

**Calibration** (measured with ``benchmarks/search.py``'s spaces). P is as honest as the draws it
is given: where unlaunched candidates rest on predictions whose intervals are too narrow, or whose
tails are thinned (a normal in place of a mixture over the predictions' error scales), a
certificate inherits it. There, right 87-92% of the time against a stated 96% until the benchmark's
stand-in for the prediction model could widen its intervals, 94.0% against 95.8% (biased
predictions, the best 0.5 launch noise ahead) until it was drawn with its tails, and since then
within 2 points of the P stated at every gap measured, or above it. The stop rule itself, with the
exact posterior of that simulation: certificates at fixed launch counts were right as often as
they stated; stopping at the first look whose P reaches the confidence made them 1-3 points less
right where the best led the runner-up by one launch's noise. Asking P to clear the confidence by
two Monte Carlo standard errors (2,000 draws) made them 1 point more often right, for 7% more
launch cost with good predictions, and is not done; a third launch of the leader before
certifying changed nothing.

References: R. E. Bechhofer (1954), "A single-sample multiple decision procedure for ranking means
of normal populations with known variances", Ann. Math. Stat. 25(1); S.-H. Kim & B. L. Nelson
(2001), "A fully sequential procedure for indifference-zone selection in simulation", ACM TOMACS
11(3); S. E. Chick & K. Inoue (2001), "New two-stage and sequential procedures for selecting the
best simulated system", Oper. Res. 49(5); J. Branke, S. E. Chick & C. Schmidt (2007), "Selecting a
selection procedure", Manage. Sci. 53(12); D. J. Eckman & S. G. Henderson (2022), "Posterior-based
stopping rules for Bayesian ranking-and-selection procedures", INFORMS J. Comput. 34(3);
C.-H. Chen, J. Lin, E. Yücesan & S. E. Chick (2000), "Simulation budget allocation for further
enhancing the efficiency of ordinal optimization", Discrete Event Dyn. Syst. 10(3); Y. Li, S. Gao &
Z. Shi (2022), "Asymptotic optimality of myopic ranking and selection procedures", arXiv:2211.14723.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

from stackdecide._text import first_of
from stackdecide.certify.probability import rank_probabilities
from stackdecide.certify.racing import MIN_REPLICATES, Action, contender_threshold, tie_sentence
from stackdecide.mcda.methods import POINTS, TIE_TOLERANCE, to_points

# One point of total (of 100): with criteria/hopper.yaml's weights, 3.3% of decode speed or of
# throughput at 64 streams (30% of the weight each), 6.7% of prefill speed. That is about the
# restart-to-restart noise of those metrics (1-8%) and half the noise of one launch's total there
# (~1.8 points): differences below it are not worth launches, differences above it are.
DEFAULT_TOLERANCE_POINTS = 1.0

VerdictKind = Literal["certified", "tie", "undecided"]


def tolerance_total(points: float) -> float:
    """A tolerance in points of total (0..100) on the totals' own scale (0..1)."""
    if not math.isfinite(points) or points < 0:
        raise ValueError("a tolerance must be a finite number of points >= 0")
    return points / POINTS


def percent_to_points(percent: float, weight: float, higher_is_better: bool = True) -> float:
    """Points of total that ``percent`` % of one metric is worth, for a weighted-sum decision whose
    criterion on that metric has ``weight`` (its share of the total weight; the weights add to 1)
    and is measured ``relative_to_best``.

    ``relative_to_best`` scores ``raw / best`` (``best / raw`` for a lower-is-better metric) on 0..1,
    whatever the criterion's scale, and the total is ``sum_j w_j v_j``; as points, ``POINTS`` times
    that. So for a higher-is-better metric, two candidates ``percent`` % *of the best value* apart
    differ by exactly ``weight * percent`` points. Approximations: a percentage of a candidate's own
    value ``raw`` is worth ``weight * percent * raw / best`` points, less below the best; for a
    lower-is-better metric, a candidate ``percent`` % above the best value loses ``weight * percent
    / (1 + percent / 100)`` points (returned here), and two candidates away from the best differ by
    ``weight * POINTS * (best / a - best / b)``. Other methods than the weighted sum move their
    totals differently.
    """
    if not math.isfinite(percent) or percent < 0:
        raise ValueError("percent must be a finite number >= 0")
    if not 0 <= weight <= 1:
        raise ValueError("weight is a share of the total weight, 0..1")
    share = percent / 100
    lost = share if higher_is_better else share / (1 + share)
    return weight * lost * POINTS


def normal_p_within(mean_a: float, sd_a: float, mean_b: float, sd_b: float, delta: float) -> float:
    """P(A >= B - delta) for independent normals: Phi((mean_a - mean_b + delta) / sqrt(sd_a^2 + sd_b^2)).

    With two candidates this is P(A is within delta of the best).
    """
    spread = math.hypot(sd_a, sd_b)
    margin = mean_a - mean_b + delta
    if spread == 0:
        return 1.0 if margin >= 0 else 0.0
    return float(stats.norm.cdf(margin / spread))


def _draws(totals_samples: ArrayLike, feasible: ArrayLike | None) -> tuple[np.ndarray, np.ndarray]:
    raw = np.asarray(totals_samples, dtype=float)
    if raw.ndim != 2 or raw.shape[0] == 0 or raw.shape[1] == 0:
        raise ValueError("totals_samples must have shape (S, m) with S, m >= 1")
    if np.isnan(raw).any():
        raise ValueError("totals_samples contains NaN")
    ok = np.ones(raw.shape[1], dtype=bool) if feasible is None else np.asarray(feasible, dtype=bool)
    if ok.shape != (raw.shape[1],):
        raise ValueError("feasible must have shape (m,)")
    return raw, ok


def _within_rows(raw: np.ndarray, ok: np.ndarray, delta: float) -> np.ndarray:
    """(S, m) booleans: candidate within delta of the best feasible total of each draw."""
    totals = np.where(ok[None, :], raw, -np.inf)
    best = totals.max(axis=1, keepdims=True)
    return ok[None, :] & (totals >= best - delta - TIE_TOLERANCE)


@dataclass(frozen=True)
class WithinProbabilities:
    """P(within ``delta`` of the best) per candidate, from ``samples`` joint draws.

    ``mc_standard_error`` = max over candidates of sqrt(p (1 - p) / S).
    """

    delta: float
    p_within: np.ndarray
    expected_totals: np.ndarray
    samples: int
    mc_standard_error: float

    def leader(self) -> int:
        """Highest P(within delta), then highest expected total, then the first."""
        order = np.lexsort((-np.arange(self.p_within.size), self.expected_totals, self.p_within))
        return int(order[-1])

    def equivalent(self, confidence: float) -> list[int]:
        """Candidates whose P(within delta) reaches ``confidence``, most probable first."""
        return self._at_least(confidence)

    def contenders(self, drop_below: float) -> list[int]:
        """The leader and every candidate with P(within delta) >= ``drop_below`` (and > 0)."""
        return sorted(set(self._at_least(drop_below)) | {self.leader()}, key=self._rank)

    def _at_least(self, threshold: float) -> list[int]:
        p = self.p_within
        return sorted((i for i in range(p.size) if p[i] >= threshold and p[i] > 0), key=self._rank)

    def _rank(self, i: int) -> tuple[float, int]:
        return -self.p_within[i], i


def within_probabilities(totals_samples: ArrayLike, delta: float,
                         feasible: ArrayLike | None = None) -> WithinProbabilities:
    """P(within ``delta`` of the best) from joint draws of the totals (``(S, m)``, 0..1).

    At ``delta = 0``: P(best) of :func:`~stackdecide.certify.probability.rank_probabilities`.
    """
    if not math.isfinite(delta) or delta < 0:
        raise ValueError("delta must be finite and >= 0")
    raw, ok = _draws(totals_samples, feasible)
    # at delta = 0 ties are split: the question is then which one is best
    p = rank_probabilities(raw, ok).p_best if delta == 0 else _within_rows(raw, ok, delta).mean(axis=0)
    return WithinProbabilities(delta, p, raw.mean(axis=0), raw.shape[0],
                               float(np.sqrt(p * (1 - p) / raw.shape[0]).max()))


def jointly_within(totals_samples: ArrayLike, members: Sequence[int], delta: float,
                   feasible: ArrayLike | None = None) -> float:
    """Share of draws in which every one of ``members`` is within ``delta`` of the best."""
    raw, ok = _draws(totals_samples, feasible)
    if not members:
        return 1.0
    return float(_within_rows(raw, ok, delta)[:, list(members)].all(axis=1).mean())


def _points_text(delta: float) -> str:
    points = float(to_points(delta))
    return f"{points:g} point" + ("" if points == 1 else "s")


def _listed(names: Sequence[str], p_within: np.ndarray, indices: Sequence[int], predicted: np.ndarray,
            most: int = 5, below: float | None = None) -> str:
    """"a (0.97), b (0.96, predicted) and 3 more": candidates with their P(within delta); each
    ``short_of`` the line ``below``, where they are all under it."""
    def shown(p: float) -> str:
        return f"{p:.2f}" if below is None else short_of(p, below)

    return first_of((f"{names[i]} ({shown(float(p_within[i]))}{', predicted' if predicted[i] else ''})"
                     for i in indices), most)


@dataclass(frozen=True)
class Certificate:
    """The indifference-zone verdict on joint draws (see the module docstring).

    ``p`` is the leader's P(within delta) (its P(best) at delta = 0); ``equivalent`` and
    ``contenders`` are indices, most probable first.
    """

    kind: VerdictKind
    delta: float
    confidence: float
    leader: int
    p: float
    equivalent: tuple[int, ...]
    p_all_equivalent: float
    contenders: tuple[int, ...]
    probabilities: WithinProbabilities

    def statement(self, names: Sequence[str], launches: ArrayLike | None = None) -> str:
        """The verdict in words; with ``launches``, members resting on no launch are marked
        predicted."""
        p_within = self.probabilities.p_within
        predicted = np.zeros(len(names), dtype=bool) if launches is None else np.asarray(launches) == 0
        leader = names[self.leader]
        if self.delta == 0:
            if self.kind == "certified":
                return f"certified: {leader} (P = {self.p:.2f})"
            return tie_sentence([(names[i], float(p_within[i])) for i in self.contenders])
        zone = _points_text(self.delta)
        if self.kind == "certified":
            text = (f"certified within {zone}: {leader} is within {zone} of the best (P = {self.p:.2f}); "
                    f"equivalent within {zone}: {_listed(names, p_within, self.equivalent, predicted)}")
            if len(self.equivalent) > 1:
                text += f"; all of them at once: P = {self.p_all_equivalent:.2f}"
            return text
        return (f"not certified within {zone}: {leader} is within {zone} of the best with P = "
                f"{short_of(self.p, self.confidence)}, below {self.confidence:.2f}; in contention: "
                f"{_listed(names, p_within, self.contenders, predicted, below=self.confidence)}")


def short_of(p: float, confidence: float) -> str:
    """``p``, below ``confidence``, in two decimals, or three where two would round it up to the
    line (0.9496 reads 0.949, never "0.95, below 0.95")."""
    text = f"{p:.2f}"
    return f"{math.floor(p * 1000) / 1000:.3f}" if float(text) >= confidence else text


def certificate(totals_samples: ArrayLike, delta: float, confidence: float, drop_below: float,
                feasible: ArrayLike | None = None) -> Certificate:
    """Is the leader within ``delta`` of the best with P >= ``confidence``? Which candidates are
    equivalent within delta, and which are still contenders (P(within delta) >= ``drop_below``)?"""
    if not 0 < confidence < 1:
        raise ValueError("confidence must be in (0, 1)")
    probabilities = within_probabilities(totals_samples, delta, feasible)
    leader = probabilities.leader()
    p = float(probabilities.p_within[leader])
    equivalent = tuple(probabilities.equivalent(confidence))
    if delta == 0 or len(equivalent) <= 1:
        p_all = p if equivalent else 0.0
    else:
        p_all = jointly_within(totals_samples, equivalent, delta, feasible)
    kind: VerdictKind = "certified" if p >= confidence else ("tie" if delta == 0 else "undecided")
    return Certificate(kind, delta, confidence, leader, p, equivalent, p_all,
                       tuple(probabilities.contenders(drop_below)), probabilities)


def _sign_doubt(gap: np.ndarray, variance: np.ndarray) -> np.ndarray:
    """Phi(-|gap| / sqrt(variance)), with no doubt left where the variance is 0 and the gap not."""
    with np.errstate(divide="ignore", invalid="ignore"):
        z = np.where(variance > 0, np.abs(gap) / np.sqrt(variance), np.where(gap != 0, np.inf, 0.0))
    return stats.norm.sf(z)


def launch_gains(means: ArrayLike, variances: ArrayLike, launch_sd: ArrayLike, leader: int,
                 delta: float) -> np.ndarray:
    """How much one more launch of each candidate lowers the Bonferroni bound on 1 - P(``leader``
    within ``delta`` of the best), means held (module docstring).

    ``means`` and ``variances`` are the candidates' expected totals and the variances of their
    draws, ``launch_sd`` the SD of one launch's total.
    """
    mu, var, sd = (np.asarray(x, dtype=float) for x in (means, variances, launch_sd))
    if mu.ndim != 1 or var.shape != mu.shape or sd.shape != mu.shape or not 0 <= leader < mu.size:
        raise ValueError("means, variances and launch_sd must have one value per candidate")
    if (var < 0).any() or (sd < 0).any() or delta < 0:
        raise ValueError("variances, launch_sd and delta must be >= 0")
    with np.errstate(divide="ignore"):
        after = np.where((var > 0) & (sd > 0), 1.0 / (1.0 / var + 1.0 / sd**2), var)
    gap = mu[leader] - mu + delta
    others = np.arange(mu.size) != leader
    now = np.where(others, _sign_doubt(gap, var[leader] + var), 0.0)
    gains = now - np.where(others, _sign_doubt(gap, var[leader] + after), 0.0)
    gains[leader] = float(np.sum(now - np.where(others, _sign_doubt(gap, after[leader] + var), 0.0)))
    return gains


@dataclass(frozen=True)
class WithinRaceState:
    """Where a race for a delta-certificate stands.

    ``totals`` are joint draws (S, m) of every candidate's total (0..1): from its launches when it
    has any, else from its prediction (or any stated prior), so every candidate is in the draws.
    ``launch_sd[i]`` is the SD of one launch's total of candidate i (the per-launch noise of its
    cells carried through the weights); ``feasible`` marks candidates that may win at all;
    ``launch_cost`` is what the next launch of each would cost (GPU-minutes, say: a configuration's
    first launch is cold), equal for all when not given.
    """

    candidates: tuple[str, ...]
    launches: np.ndarray
    totals: np.ndarray
    launch_sd: np.ndarray
    feasible: np.ndarray | None = None
    launch_cost: np.ndarray | None = None

    def __post_init__(self) -> None:
        m = len(self.candidates)
        shapes = [np.shape(self.launches), np.shape(self.launch_sd)]
        shapes += [np.shape(a) for a in (self.feasible, self.launch_cost) if a is not None]
        if any(shape != (m,) for shape in shapes) or np.ndim(self.totals) != 2 \
                or np.shape(self.totals)[1] != m:
            raise ValueError(f"per-candidate arrays must have shape ({m},) and totals (S, {m})")
        if self.launch_cost is not None and not np.all(np.asarray(self.launch_cost) > 0):
            raise ValueError("launch costs must be > 0")


@dataclass(frozen=True)
class WithinAction(Action):
    """An :class:`~stackdecide.certify.racing.Action` with the certificate it was decided on.

    ``tied`` lists (candidate, P(within delta)) of the contenders on budget and tie stops,
    ``equivalent`` those of the equivalence set."""

    equivalent: tuple[tuple[str, float], ...] = ()
    certificate: Certificate | None = None


def _greedy_pick(state: WithinRaceState, cert: Certificate, launchable: list[int]) -> tuple[int, str]:
    """The launchable contender whose launch lowers the doubt about the certificate most per unit of
    cost, and why; -1 when no launch would lower it."""
    draws = np.asarray(state.totals, dtype=float)
    contenders = list(cert.contenders)
    cost = np.ones(len(contenders)) if state.launch_cost is None else \
        np.asarray(state.launch_cost, dtype=float)[contenders]
    gains = launch_gains(draws[:, contenders].mean(axis=0), draws[:, contenders].var(axis=0),
                         np.asarray(state.launch_sd, dtype=float)[contenders],
                         contenders.index(cert.leader), cert.delta)
    worth = gains / cost
    p_within = cert.probabilities.p_within
    pick = max((k for k, i in enumerate(contenders) if i in launchable and gains[k] > 0),
               key=lambda k: (worth[k], p_within[contenders[k]], -contenders[k]), default=None)
    if pick is None:
        return -1, ""
    i, n = contenders[pick], int(state.launches[contenders[pick]])
    zone = _points_text(cert.delta)
    basis = f"{n} launch{'es' if n != 1 else ''}" if n else "its prediction alone"
    why = (f"one more launch lowers the bound on P({state.candidates[cert.leader]} is not within {zone} of "
           f"the best) by {gains[pick]:.3f}" + ("" if state.launch_cost is None else f" ({worth[pick]:.4f} "
           "per unit of cost)") + f", the most of any; it rests on {basis}, P(within {zone}) = "
           f"{p_within[i]:.2f}")
    return i, why


def next_action_within(
    state: WithinRaceState,
    delta: float,
    confidence: float = 0.95,
    drop_below: float | None = None,
    launches_used: int | None = None,
    max_launches: int | None = None,
    min_replicates: int = MIN_REPLICATES,
    max_replicates: int | None = None,
) -> WithinAction:
    """Next step of a race for "X is within ``delta`` of the best with P >= ``confidence``".

    1. **Certified** when the leader's P(within delta) reaches ``confidence`` and it has
       ``min_replicates`` launches (a lucky or broken single launch must not carry a certificate).
       The others need no launch: their doubt, from their launches or their prediction, is in the
       draws.
    2. **Budget** when ``max_launches`` are used.
    3. Candidates with P(within delta) below ``drop_below`` (default ``(1 - confidence) / m``, the
       racing rule) are dropped: their optimistic end does not reach the leader's zone. An
       unmeasured one is never launched.
    4. The leader, when it is confident but short of ``min_replicates``.
    5. Otherwise the contender whose launch lowers the doubt about the certificate most per unit of
       ``launch_cost`` (module docstring), among those under ``max_replicates``.
    6. Nothing to launch (every contender at ``max_replicates``, or no launch would lower the
       doubt): a **tie** at delta = 0 (as ``next_action``); for delta > 0 a ``budget`` stop, since
       more launches would settle it.

    At delta = 0 the stop rule is ``certify.racing.next_action``'s (P(best), ties split, the same
    contenders); which candidate is launched may differ.
    """
    if not 0 < confidence < 1:
        raise ValueError("confidence must be in (0, 1)")
    if max_replicates is not None and max_replicates < min_replicates:
        raise ValueError("max_replicates must be >= min_replicates")
    names, n = state.candidates, np.asarray(state.launches)
    m = len(names)
    threshold = contender_threshold(confidence, m) if drop_below is None else drop_below
    cert = certificate(state.totals, delta, confidence, threshold, state.feasible)
    p_within = cert.probabilities.p_within
    leader, used = cert.leader, int(n.sum()) if launches_used is None else launches_used
    dropped = tuple(names[i] for i in range(m) if i not in cert.contenders)
    equivalent = tuple((names[i], float(p_within[i])) for i in cert.equivalent)
    tied = tuple((names[i], float(p_within[i])) for i in cert.contenders)

    def act(kind: Literal["certified", "tie", "launch", "budget"], candidate: str | None,
            reason: str) -> WithinAction:
        return WithinAction(kind, candidate, reason, () if kind in ("certified", "launch") else tied,
                            dropped, equivalent, cert)

    statement = cert.statement(names, n)
    short = n[leader] < min_replicates
    if cert.kind == "certified" and not short:
        return act("certified", names[leader], statement)
    if max_launches is not None and used >= max_launches:
        return act("budget", None, f"budget spent ({used} of {max_launches} launches): {statement}")
    launchable = [i for i in cert.contenders if max_replicates is None or n[i] < max_replicates]
    if cert.kind == "certified" and leader in launchable:
        return act("launch", names[leader],
                   f"launch {names[leader]}: {n[leader]} launch{'es' if n[leader] != 1 else ''}, "
                   f"{min_replicates} needed before certifying it ({statement})")
    pick, why = _greedy_pick(state, cert, launchable)
    if pick >= 0:
        return act("launch", names[pick], f"launch {names[pick]}: {why}")
    capped = max_replicates is not None and all(n[i] >= max_replicates for i in cert.contenders)
    cap = f"every contender is at the {max_replicates}-launch cap" if capped else \
        "no launch would lower the doubt (the contenders' totals do not vary)"
    if delta == 0:
        return act("tie", None, f"{statement}; {cap}")
    return act("budget", None, f"{cap}: {statement}")
