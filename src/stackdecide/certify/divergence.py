"""How far a stack's next-token distributions are from a reference's on the same text.

Both stacks are teacher-forced through one evaluation text: at every position after the first,
each gives its ``k`` most likely next tokens with their log-probabilities (vLLM's
``prompt_logprobs``) and the log-probability of the token the text has there. From those:

* **KL divergence** ``KL(P_ref || Q)`` per position, on the reference's top ``k`` with the rest
  lumped into one bucket. With ``S`` the reference's top-k tokens that the candidate also returned,
  the partition is each token of ``S`` on its own plus everything else::

      KL_S = sum_{i in S} p_i log(p_i / q_i) + p_r log(p_r / q_r),
      p_r = 1 - sum_{i in S} p_i,   q_r = 1 - sum_{i in S} q_i.

  Merging outcomes never raises a divergence (the chain rule: ``KL = KL_S + p_r KL(P|r || Q|r)``,
  the last factor the divergence of the two tails, each renormalised), so ``KL_S`` is a lower
  bound of the full-vocabulary KL that ``llama-perplexity --kl-divergence`` reports, short of it by
  the reference's lumped mass ``p_r`` times the tails' divergence. ``p_r`` is measured with every
  comparison (``lumped_mass``); where every tail token's probability moves by at most a factor
  ``e^d``, the tails' divergence is at most ``2 d``, so the gap is at most ``2 d p_r``.
* **Top-1 agreement**: the share of positions whose most likely token is the same for both.
* **Perplexity ratio**: ``exp(mean NLL_Q - mean NLL_ref)`` over the text's own tokens, the
  candidate's perplexity over the reference's.
* **Greedy agreement**: per prompt, the share of the reference's greedy continuation that the
  candidate's greedy continuation repeats before it first differs.

Uncertainty (``summarize``): a percentile bootstrap over prompts. Positions of one prompt are not
independent (one odd prompt moves all of its positions), so a resample draws whole prompts with
replacement and recomputes each statistic; the interval is the middle ``confidence`` of the
resampled values, seeded, so the same comparison always gives the same interval.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np

BOOTSTRAP_RESAMPLES = 1000
BOOTSTRAP_SEED = 0
CONFIDENCE = 0.95
PERCENTILE = 99.0
# Probability mass below float32 rounding of a sum of k probabilities: a lumped bucket this
# small is rounding, and the floor keeps log(p_r / q_r) finite where both are.
MASS_FLOOR = 1e-12
_CHUNK = 100  # resamples per step of the weighted percentile, to bound its memory


@dataclass(frozen=True)
class NextTokens:
    """One pass over an evaluation text: per scored position (every token after a prompt's
    first), the top-k token ids by log-probability (most likely first), their log-probabilities,
    the log-probability of the text's own token there, and which prompt the position is in."""

    top_ids: np.ndarray  # (positions, k) int
    top_logprobs: np.ndarray  # (positions, k) float
    token_logprobs: np.ndarray  # (positions,) float
    prompt_index: np.ndarray  # (positions,) int, non-decreasing

    def __post_init__(self) -> None:
        positions = self.token_logprobs.shape[0]
        if self.top_ids.shape != self.top_logprobs.shape or self.top_ids.ndim != 2 \
                or self.top_ids.shape[0] != positions or self.prompt_index.shape != (positions,):
            raise ValueError("top ids, top log-probabilities, token log-probabilities and prompt "
                             "indices must describe the same positions")

    @property
    def k(self) -> int:
        return int(self.top_ids.shape[1])

    @property
    def positions(self) -> int:
        return int(self.token_logprobs.shape[0])


@dataclass(frozen=True)
class Comparison:
    """A candidate's pass against the reference's, position by position and prompt by prompt."""

    kl: np.ndarray  # (positions,) nats, KL_S of each position (module doc)
    lumped_mass: np.ndarray  # (positions,) the reference's mass in the lumped bucket
    top1_same: np.ndarray  # (positions,) bool
    nll_difference: np.ndarray  # (positions,) candidate NLL - reference NLL of the text's token
    greedy_share: np.ndarray  # (prompts,) share of each reference continuation repeated
    prompt_index: np.ndarray  # (positions,)


@dataclass(frozen=True)
class Interval:
    """A statistic of a comparison and its bootstrap interval over prompts."""

    value: float
    low: float
    high: float


@dataclass(frozen=True)
class QualitySummary:
    """Every statistic of a comparison, each with its interval (``summarize``)."""

    kl_mean: Interval
    kl_p99: Interval
    top1_agree_pct: Interval
    ppl_ratio: Interval
    greedy_agree_pct: Interval
    lumped_mass_mean: float
    prompts: int
    positions: int


def lumped_kl(reference: NextTokens, candidate: NextTokens) -> tuple[np.ndarray, np.ndarray]:
    """``KL_S`` of every position and the reference's mass in its lumped bucket (module doc)."""
    _same_positions(reference, candidate)
    p = np.exp(reference.top_logprobs)
    shared, q_logprob = _candidate_logprobs(reference.top_ids, candidate)
    q = np.where(shared, np.exp(q_logprob), 0.0)
    head = np.where(shared, p * (reference.top_logprobs - q_logprob), 0.0).sum(axis=1)
    p_rest = np.maximum(1.0 - np.where(shared, p, 0.0).sum(axis=1), MASS_FLOOR)
    q_rest = np.maximum(1.0 - q.sum(axis=1), MASS_FLOOR)
    kl = head + p_rest * np.log(p_rest / q_rest)
    # a coarse-grained KL is never negative; below 0 is float rounding of identical inputs
    return np.maximum(kl, 0.0), np.where(p_rest > MASS_FLOOR, p_rest, 0.0)


def _candidate_logprobs(wanted: np.ndarray, candidate: NextTokens
                        ) -> tuple[np.ndarray, np.ndarray]:
    """For each id of ``wanted`` (positions, k), whether the candidate returned it at that
    position, and its log-probability there (0 where not): one sorted search over all positions,
    each position's ids shifted into a range of their own."""
    ids = candidate.top_ids.astype(np.int64)
    stride = int(max(wanted.max(initial=0), ids.max(initial=0))) + 1
    shift = np.arange(ids.shape[0], dtype=np.int64)[:, None] * stride
    order = np.argsort(ids, axis=1, kind="stable")
    keys = (np.take_along_axis(ids, order, axis=1) + shift).ravel()
    logprobs = np.take_along_axis(candidate.top_logprobs, order, axis=1).ravel()
    sought = (wanted.astype(np.int64) + shift).ravel()
    at = np.minimum(np.searchsorted(keys, sought), keys.size - 1)
    shared = (keys[at] == sought).reshape(wanted.shape)
    return shared, np.where(shared, logprobs[at].reshape(wanted.shape), 0.0)


def greedy_shares(reference: Sequence[Sequence[int]], candidate: Sequence[Sequence[int]]
                  ) -> np.ndarray:
    """Per prompt, the share of the reference's greedy continuation that the candidate's repeats
    before the first token where they differ."""
    if len(reference) != len(candidate):
        raise ValueError(f"{len(reference)} reference continuations, {len(candidate)} of the "
                         "candidate")
    shares = []
    for ours, theirs in zip(reference, candidate, strict=True):
        if not ours:
            raise ValueError("a reference continuation is empty")
        same = 0
        for a, b in zip(ours, theirs, strict=False):
            if a != b:
                break
            same += 1
        shares.append(same / len(ours))
    return np.asarray(shares, dtype=float)


def compare(reference: NextTokens, candidate: NextTokens,
            reference_greedy: Sequence[Sequence[int]],
            candidate_greedy: Sequence[Sequence[int]]) -> Comparison:
    """The candidate's pass and greedy continuations against the reference's."""
    kl, lumped = lumped_kl(reference, candidate)
    greedy = greedy_shares(reference_greedy, candidate_greedy)
    prompts = int(reference.prompt_index.max()) + 1 if reference.positions else 0
    if len(greedy) != prompts:
        raise ValueError(f"{len(greedy)} greedy continuations for {prompts} prompts")
    return Comparison(
        kl=kl, lumped_mass=lumped,
        top1_same=reference.top_ids[:, 0] == candidate.top_ids[:, 0],
        nll_difference=reference.token_logprobs - candidate.token_logprobs,
        greedy_share=greedy, prompt_index=reference.prompt_index)


def _same_positions(reference: NextTokens, candidate: NextTokens) -> None:
    if reference.positions != candidate.positions \
            or not np.array_equal(reference.prompt_index, candidate.prompt_index):
        raise ValueError(f"the candidate's pass has {candidate.positions} positions, the "
                         f"reference's {reference.positions}: not the same text")


def lower_percentile(values: np.ndarray, percentile: float = PERCENTILE) -> float:
    """The smallest value with at least ``percentile`` % of the values at or below it
    (numpy's ``inverted_cdf``): always one of the values, and the same rule the bootstrap's
    weighted percentile uses."""
    return float(np.percentile(values, percentile, method="inverted_cdf"))


def _weighted_lower_percentiles(values: np.ndarray, groups: np.ndarray, counts: np.ndarray,
                                percentile: float) -> np.ndarray:
    """``lower_percentile`` of each resample, a resample being ``counts[b, g]`` copies of every
    value of group ``g``: one sort, then cumulative weights per resample."""
    order = np.argsort(values, kind="stable")
    ordered, ordered_groups = values[order], groups[order]
    found = np.empty(counts.shape[0])
    for start in range(0, counts.shape[0], _CHUNK):
        weights = counts[start:start + _CHUNK][:, ordered_groups].astype(float)
        cumulative = np.cumsum(weights, axis=1)
        needed = cumulative[:, -1:] * (percentile / 100.0)
        first = np.argmax(cumulative >= needed - 1e-9 * cumulative[:, -1:], axis=1)
        found[start:start + _CHUNK] = ordered[first]
    return found


def summarize(comparison: Comparison, *, resamples: int = BOOTSTRAP_RESAMPLES,
              seed: int = BOOTSTRAP_SEED, confidence: float = CONFIDENCE) -> QualitySummary:
    """Every statistic with its percentile bootstrap interval over prompts (module doc)."""
    if not 0 < confidence < 1:
        raise ValueError("confidence must be in (0, 1)")
    groups = comparison.prompt_index
    prompts = len(comparison.greedy_share)
    if comparison.kl.size == 0 or prompts == 0:
        raise ValueError("a comparison needs at least one scored position")
    per_prompt = np.bincount(groups, minlength=prompts).astype(float)
    kl_sum = np.bincount(groups, weights=comparison.kl, minlength=prompts)
    same_sum = np.bincount(groups, weights=comparison.top1_same.astype(float), minlength=prompts)
    nll_sum = np.bincount(groups, weights=comparison.nll_difference, minlength=prompts)

    rng = np.random.default_rng(seed)
    counts = rng.multinomial(prompts, np.full(prompts, 1.0 / prompts), size=resamples)
    weight = counts @ per_prompt
    draws = {
        "kl_mean": counts @ kl_sum / weight,
        "kl_p99": _weighted_lower_percentiles(comparison.kl, groups, counts, PERCENTILE),
        "top1_agree_pct": 100.0 * (counts @ same_sum) / weight,
        "ppl_ratio": np.exp(counts @ nll_sum / weight),
        "greedy_agree_pct": 100.0 * (counts @ comparison.greedy_share) / prompts,
    }
    values = {
        "kl_mean": float(comparison.kl.mean()),
        "kl_p99": lower_percentile(comparison.kl),
        "top1_agree_pct": 100.0 * float(comparison.top1_same.mean()),
        "ppl_ratio": float(np.exp(comparison.nll_difference.mean())),
        "greedy_agree_pct": 100.0 * float(comparison.greedy_share.mean()),
    }
    tail = (1.0 - confidence) / 2 * 100.0

    def interval(name: str) -> Interval:
        low, high = np.percentile(draws[name], [tail, 100.0 - tail])
        # a percentile interval can miss its own estimate (a p99 of a skewed sample, or a
        # statistic that barely moves, by a rounding error): widened to hold it, so a record's
        # interval always contains its value
        value = values[name]
        return Interval(value, min(float(low), value), max(float(high), value))

    return QualitySummary(
        kl_mean=interval("kl_mean"), kl_p99=interval("kl_p99"),
        top1_agree_pct=interval("top1_agree_pct"), ppl_ratio=interval("ppl_ratio"),
        greedy_agree_pct=interval("greedy_agree_pct"),
        lumped_mass_mean=float(comparison.lumped_mass.mean()), prompts=prompts,
        positions=int(comparison.kl.size))
