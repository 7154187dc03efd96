"""Racing: which candidate to launch next, and when to stop (a pure policy, no I/O).

Rule, in order, given P(best) from :func:`~stackdecide.certify.probability.rank_probabilities`:

1. **Certified** when the leader (argmax P(best)) has ``P >= confidence``, no unmeasured
   candidate could still win, the leader has ``min_replicates`` launches (a lucky or broken
   single launch must not carry a certificate) and every contender at least one; the
   contenders' noise comes from the prior and the replicates pooled across candidates.
   (Requiring two launches of every contender too cost 0.65 instead of 0.61 of the launches of
   three runs each at a gap of 2 sigma in ``benchmarks/certify.py``, for no gain in
   correctness there.) The threshold stays ``confidence`` at every look: a stricter one (0.975,
   or ``1 - (1 - confidence) / j`` at the j-th replicate) cost 0.69 of those launches at 2 sigma
   and did not make certificates issued near true ties (0.5 sigma) more often right (91 % and
   85 % +/- 6 % of far fewer, against 91 %).
2. **Budget** when ``max_launches`` are used and the race is not certified; the tie set is the
   contenders.
3. **Launch an unmeasured candidate that could win** (its optimistic total, every measurable
   cell at the best of its scale, beats the leader's expected total; the caller decides),
   highest optimistic total first, or in a random order drawn from a seed (``first_pass``).
   An unmeasured candidate that cannot win is dropped, never launched.
4. **Contenders** are candidates with ``P(best) >= drop_below``, default
   ``(1 - confidence) / m``: the dropped ones together hold less than ``1 - confidence`` of the
   win, so ignoring them cannot cost the confidence asked for.
5. While the leader is below ``confidence``: launch, between the leader and the strongest
   challenger (highest P(challenger beats leader)), the one with fewer launches. The doubt
   about the winner is mostly the doubt about that pair's difference, whose variance falls
   fastest by replicating the less-replicated side. On equal counts either launch shrinks it
   alike: the leader's, while it is short of ``min_replicates`` (only that one can complete a
   certificate), else the challenger's. (Challenger first cost 0.63 of the launches of three
   runs each at a gap of 2 sigma in ``benchmarks/certify.py``, leader first 0.61.)
6. Once confident: launch the leader if it is still short of ``min_replicates``.
7. When nothing launchable remains (everyone at ``max_replicates``): **tie**, with the tied set
   and a rough count of launches that would separate the top two.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from scipy import stats

from stackdecide.certify.probability import RankProbabilities
from stackdecide.mcda.methods import to_points

ActionKind = Literal["certified", "tie", "launch", "budget"]
FirstPassOrder = Literal["optimistic", "random"]
MIN_REPLICATES = 2  # launches of the leader before a certificate


@dataclass(frozen=True)
class RaceState:
    """Where a race stands: launches so far and ranking probabilities per candidate.

    ``could_win[i]`` matters for unmeasured candidates only (0 launches): True when its
    optimistic total beats the leader's expected total. ``optimistic_totals`` orders them.
    """

    candidates: tuple[str, ...]
    launches: np.ndarray
    p: RankProbabilities
    could_win: np.ndarray
    optimistic_totals: np.ndarray | None = None

    def __post_init__(self) -> None:
        m = len(self.candidates)
        shapes = [np.shape(self.launches), np.shape(self.p.p_best), np.shape(self.could_win)]
        if self.optimistic_totals is not None:
            shapes.append(np.shape(self.optimistic_totals))
        if any(shape != (m,) for shape in shapes):
            raise ValueError(f"every per-candidate array must have shape ({m},)")


@dataclass(frozen=True)
class Action:
    """What to do next. ``tied`` lists (candidate, P(best)) for ties and budget stops."""

    kind: ActionKind
    candidate: str | None
    reason: str
    tied: tuple[tuple[str, float], ...] = ()
    dropped: tuple[str, ...] = ()


def _launch_word(n: int) -> str:
    return f"{n} launch" if n == 1 else f"{n} launches"


def _separation(state: RaceState, a: int, b: int, confidence: float) -> str:
    """Rough launches each of a and b would need to separate at ``confidence``.

    Assumes the observed difference is real and both have similar noise, so the z-score of
    the difference grows like 1 / sqrt(1/n_a + 1/n_b).
    """
    names, n = state.candidates, state.launches
    p_ab = float(np.clip(state.p.pairwise[a, b], 1e-9, 1 - 1e-9))
    z_now, z_goal = stats.norm.ppf(p_ab), stats.norm.ppf(confidence)
    if z_now <= 0 or n[a] == 0 or n[b] == 0:
        return f"no number of launches would separate {names[a]} from {names[b]}: their means coincide"
    inv_sum = 1 / n[a] + 1 / n[b]
    need = math.ceil(2 * (z_goal / z_now) ** 2 / inv_sum)
    if need > 1000:
        return f"separating {names[a]} from {names[b]} would take over 1000 launches each"
    return (f"separating {names[a]} from {names[b]} at P = {confidence:.2f} would take about "
            f"{need} launches each (now {n[a]} and {n[b]})")


def contender_threshold(confidence: float, candidates: int) -> float:
    """P(best) below which a candidate is dropped: together the dropped hold < 1 - confidence."""
    return (1 - confidence) / candidates


def launches_required(is_leader: bool, min_replicates: int = MIN_REPLICATES) -> int:
    """Launches a contender needs before a certificate: the leader ``min_replicates``, others one."""
    return min_replicates if is_leader else 1


def tie_sentence(tied: Sequence[tuple[str, float]]) -> str:
    """"statistical tie between a and b (P 0.55 / 0.43): ..." for (candidate, P(best)) pairs."""
    names = [name for name, _ in tied]
    probs = " / ".join(f"{p:.2f}" for _, p in tied)
    who = names[0] if len(names) == 1 else ", ".join(names[:-1]) + " and " + names[-1]
    return f"statistical tie between {who} (P {probs}): the difference is smaller than the noise"


def _tie_text(state: RaceState, tied: list[int]) -> str:
    return tie_sentence([(state.candidates[i], float(state.p.p_best[i])) for i in tied])


def _contenders(state: RaceState, leader: int, drop_below: float) -> list[int]:
    measured = state.launches > 0
    keep = set(state.p.contenders(drop_below)) | {leader}
    keep = {i for i in keep if measured[i] or state.could_win[i] or i == leader}
    return sorted(keep, key=lambda i: (-state.p.p_best[i], i))


def _launch(state: RaceState, i: int, reason: str, dropped: tuple[str, ...]) -> Action:
    return Action("launch", state.candidates[i], f"launch {state.candidates[i]}: {reason}", dropped=dropped)


def first_pass_order(candidates: int, seed: int) -> np.ndarray:
    """The random first-pass order: a permutation of the candidates drawn from ``seed`` alone, so
    a resumed race keeps the order it started with."""
    return np.random.default_rng([seed, 1]).permutation(candidates)


def _hopeful_launch(state: RaceState, leader: int, dropped: tuple[str, ...],
                    order: FirstPassOrder, seed: int) -> Action | None:
    hopeful = [i for i in range(len(state.candidates)) if state.launches[i] == 0 and state.could_win[i]]
    if not hopeful:
        return None
    opt = state.optimistic_totals
    if order == "random":
        position = np.argsort(first_pass_order(len(state.candidates), seed))
        best = min(hopeful, key=lambda i: position[i])
    else:
        best = max(hopeful, key=lambda i: (-np.inf if opt is None else opt[i], -i))
    lead_name, lead_exp = state.candidates[leader], state.p.expected_totals[leader]
    if opt is None:
        why = f"not measured yet and could still beat the leader {lead_name}"
    else:
        why = (f"not measured yet; its best possible total {to_points(opt[best]):.2f} beats "
               f"the leader {lead_name}'s expected {to_points(lead_exp):.2f}")
    if order == "random":
        why += f" (first pass in random order, seed {seed})"
    return _launch(state, best, why, dropped)


def _duel_launch(state: RaceState, leader: int, contenders: list[int], can_launch: list[bool],
                 dropped: tuple[str, ...], min_replicates: int) -> Action | None:
    """Launch the less-replicated of leader and strongest challenger (rule 5)."""
    names, n, pw = state.candidates, state.launches, state.p.pairwise
    challengers = sorted((c for c in contenders if c != leader), key=lambda c: (-pw[c, leader], c))
    if not challengers:
        return None
    ch = challengers[0]
    # on equal counts either launch shrinks the pair's doubt alike; only the leader's can
    # complete a certificate while it is short of min_replicates
    leader_first = n[leader] < n[ch] or n[leader] == n[ch] < min_replicates
    first, second = (leader, ch) if leader_first else (ch, leader)
    for i in [first, second, *challengers[1:]]:
        if not can_launch[i]:
            continue
        if i == leader:
            versus = ", as many as" if n[leader] == n[ch] else " vs"
            why = (f"leader (P = {state.p.p_best[leader]:.2f}) has {_launch_word(n[leader])}"
                   f"{versus} {n[ch]} for {names[ch]} "
                   f"(P({names[ch]} beats {names[leader]}) = {pw[ch, leader]:.2f})")
        else:
            why = (f"P({names[i]} beats {names[leader]}) = {pw[i, leader]:.2f}, "
                   f"{_launch_word(n[i])} vs {n[leader]}")
        return _launch(state, i, why, dropped)
    return None


def _budget_reason(state: RaceState, leader: int, contenders: list[int], short: list[int],
                   min_replicates: int, confidence: float) -> str:
    names, n, pb = state.candidates, state.launches, state.p.p_best
    hopeful = [names[i] for i in range(len(names)) if n[i] == 0 and state.could_win[i]]
    if hopeful:
        return f"{', '.join(hopeful)} not measured yet and could still beat {names[leader]}"
    if pb[leader] >= confidence:
        have = ", ".join(f"{names[i]} has {_launch_word(n[i])}" for i in short)
        return f"{names[leader]} leads (P = {pb[leader]:.2f}) but {have}; {min_replicates} needed to certify"
    return _tie_text(state, contenders)


def next_action(
    state: RaceState,
    confidence: float = 0.95,
    drop_below: float | None = None,
    launches_used: int | None = None,
    max_launches: int | None = None,
    min_replicates: int = MIN_REPLICATES,
    max_replicates: int | None = None,
    first_pass: FirstPassOrder = "optimistic",
    seed: int = 0,
) -> Action:
    """Next step of the race (see the module docstring for the rule).

    ``launches_used`` defaults to the sum of ``state.launches``; pass it when failed launches
    also count against ``max_launches``. ``first_pass`` orders the launches of unmeasured
    candidates: highest optimistic total first, or ``"random"``, a permutation drawn from
    ``seed`` (launch order then carries no bias, such as who pays the cold compile caches).
    """
    if first_pass not in ("optimistic", "random"):
        raise ValueError("first_pass must be 'optimistic' or 'random'")
    if not 0 < confidence < 1:
        raise ValueError("confidence must be in (0, 1)")
    if max_replicates is not None and max_replicates < min_replicates:
        raise ValueError("max_replicates must be >= min_replicates")
    m, names, n, pb = len(state.candidates), state.candidates, state.launches, state.p.p_best
    threshold = contender_threshold(confidence, m) if drop_below is None else drop_below
    used = int(n.sum()) if launches_used is None else launches_used
    leader = state.p.leader()
    contenders = _contenders(state, leader, threshold)
    dropped = tuple(names[i] for i in range(m) if i not in contenders
                    and (n[i] > 0 or not state.could_win[i]))
    hopeful = bool(np.any((n == 0) & state.could_win.astype(bool)))
    confident = pb[leader] >= confidence
    short = [i for i in contenders if n[i] < launches_required(i == leader, min_replicates)]
    if confident and not hopeful and not short:
        return Action("certified", names[leader], f"certified: {names[leader]} (P = {pb[leader]:.2f})",
                      dropped=dropped)
    tied = tuple((names[i], float(pb[i])) for i in contenders)
    if max_launches is not None and used >= max_launches:
        why = _budget_reason(state, leader, contenders, short, min_replicates, confidence)
        return Action("budget", None, f"budget spent ({used} of {max_launches} launches): {why}",
                      tied=tied, dropped=dropped)
    action = _hopeful_launch(state, leader, dropped, first_pass, seed)
    if action is not None:
        return action
    can_launch = [max_replicates is None or n[i] < max_replicates for i in range(m)]
    if not confident:
        action = _duel_launch(state, leader, contenders, can_launch, dropped, min_replicates)
    ready = [i for i in short if can_launch[i]]
    if action is None and ready:
        i = ready[0]
        action = _launch(state, i, f"{_launch_word(n[i])}, {min_replicates} needed before "
                         f"certifying {names[leader]} (P = {pb[leader]:.2f})", dropped)
    if action is not None:
        return action
    if len(contenders) == 1:  # only with a drop_below so high that the rest was dropped
        why = (f"{names[leader]} leads (P = {pb[leader]:.2f}) but the rest of the win is spread over "
               f"candidates each under P = {threshold:.2g}")
    else:
        why = (f"{_tie_text(state, contenders)}; every contender is at the {max_replicates}-launch cap; "
               + _separation(state, contenders[0], contenders[1], confidence))
    return Action("tie", None, why, tied=tied, dropped=dropped)
