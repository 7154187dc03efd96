"""SMAA-2: how often each candidate takes each rank when the weights (and scores) are uncertain.

Definitions follow Lahdelma, R. & Salminen, P. (2001), "SMAA-2: Stochastic multicriteria
acceptability analysis for group decision making", Operations Research 49(3), 444-454:

* rank acceptability index b_i^r: the share of the admissible weights (and score outcomes) that give
  candidate i rank r. b_i^1 is its share of first places.
* central weight vector w_i^c: the expected weight vector over the weights that make i the winner,
  the "typical preferences" supporting i. Undefined when b_i^1 = 0.
* confidence factor p_i^c: the probability that i wins when the weights are fixed at w_i^c and only
  the scores vary. Without score uncertainty it is 1 or 0.

Everything is estimated by Monte Carlo over samples processed in chunks: scores of a whole chunk are
one call of the method (one matrix product for the weighted sum; WPM and TOPSIS broadcast over the
chunk's weights), and ranks come from one sort per sample, so memory stays bounded by the chunk.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, NamedTuple

import numpy as np

from stackdecide.errors import DecisionFileError, StackdecideError
from stackdecide.mcda.methods import rank_order, winners
from stackdecide.mcda.weights import (
    WeightRegion,
    WeightRegionError,
    WeightStream,
    smaa_streams,
    weight_region,
)
from stackdecide.model.score_uncertainty import score_uncertainty
from stackdecide.robustness.flips import method_totals

if TYPE_CHECKING:
    from stackdecide.model.decision import DecisionMatrix

CHUNK_BYTES = 32 * 2**20  # size of the largest per-chunk array; peak memory is a few of these
DEFAULT_RANKS = 1000  # ranks counted by default: (candidates x ranks) counts stay small


@dataclass(frozen=True)
class SmaaResult:
    """Rank acceptability, central weights and confidence factors, with the sampling behind them."""

    candidate_ids: tuple[str, ...]
    criterion_ids: tuple[str, ...]
    samples: int
    seed: int
    rank_counts: np.ndarray  # (candidates, ranks): samples in which candidate i took rank r + 1;
    # ranks is the number of candidates, up to DEFAULT_RANKS unless run_smaa(ranks=...) says
    central_weights: np.ndarray  # (candidates, criteria); NaN rows for candidates never first
    confidence: np.ndarray  # (candidates,); NaN for candidates never first
    acceptance_rate: float  # share of uniformly drawn weight vectors inside the region
    region: WeightRegion
    score_uncertainty: bool  # whether scores were perturbed
    chunk: int  # samples per chunk (does not change the numbers)
    method: str = "wsm"  # the registered method that scored each sample

    @property
    def acceptability(self) -> np.ndarray:
        """b_i^r, shape (candidates, ranks); each column adds up to 1, and so does each row
        when every rank is counted."""
        return self.rank_counts / self.samples

    @property
    def acceptability_stderr(self) -> np.ndarray:
        """Monte Carlo standard error of each b_i^r: sqrt(b (1 - b) / samples)."""
        b = self.acceptability
        return np.sqrt(b * (1.0 - b) / self.samples)

    @property
    def first_rank(self) -> np.ndarray:
        return self.acceptability[:, 0]


Perturb = Callable[[np.random.Generator, int], np.ndarray]


class SmaaArrays(NamedTuple):
    rank_counts: np.ndarray  # (candidates, ranks)
    central_weights: np.ndarray  # (candidates, criteria)
    confidence: np.ndarray  # (candidates,)
    draws: int  # weight vectors proposed
    accepted: int  # of them, inside the region (only ``samples`` of these are used)
    chunk: int


def smaa(normalized: np.ndarray, region: WeightRegion, samples: int, seed: int,
         perturb: Perturb | None = None, chunk: int | None = None,
         ranks: int | None = None, method: str = "wsm") -> SmaaArrays:
    """SMAA-2 of a normalised matrix (candidates, criteria) under ``method`` (a name in
    ``methods.METHODS``; the weighted sum by default).

    ``perturb(rng, n)``, when given, returns n normalised matrices with sampled scores in place of
    ``normalized``. Weights, scores and confidence factors use separate child streams of ``seed``,
    and weights are read from a block stream, so ``chunk`` changes memory use and speed, never the
    numbers. ``ranks`` limits the counted ranks to the first few (default: all, up to
    ``DEFAULT_RANKS``). The streams do not depend on the method, so every method sees the same
    weights and scores for the same seed.
    """
    fixed = np.asarray(normalized, dtype=float)
    n, m = fixed.shape
    totals_of = method_totals(method)
    # the weighted sum's matrix product needs (candidates,) per sample with fixed scores; the
    # other methods build (candidates, criteria) arrays per sample, a few of them for TOPSIS
    per_sample = n * (m if perturb else 1) * 8 if method == "wsm" else 4 * n * m * 8
    chunk = chunk or max(1, min(samples, CHUNK_BYTES // per_sample))
    weight_rng, score_rng, confidence_rng = smaa_streams(seed)
    stream = WeightStream(region, weight_rng)
    ranks = min(n, DEFAULT_RANKS if ranks is None else max(1, ranks))
    rank_counts = np.zeros(n * ranks, dtype=np.int64)
    weight_sums = np.zeros((n, m))
    positions = np.arange(ranks)
    for start in range(0, samples, chunk):
        size = min(chunk, samples - start)
        weights = stream.take(size)
        matrix = perturb(score_rng, size) if perturb else fixed
        order = rank_order(totals_of(matrix, weights))
        rank_counts += np.bincount((order[:, :ranks] * ranks + positions).ravel(),
                                   minlength=n * ranks)
        np.add.at(weight_sums, order[:, 0], weights)
    counts = rank_counts.reshape(n, ranks)
    wins = counts[:, 0]
    with np.errstate(invalid="ignore", divide="ignore"):
        central = weight_sums / wins[:, None]
    central[wins == 0] = np.nan
    confidence = confidence_factors(fixed, central, confidence_rng, samples, perturb, chunk,
                                    method)
    return SmaaArrays(counts, central, confidence, stream.draws, stream.accepted, chunk)


def confidence_factors(normalized: np.ndarray, central: np.ndarray, rng: np.random.Generator,
                       samples: int, perturb: Perturb | None = None,
                       chunk: int | None = None, method: str = "wsm") -> np.ndarray:
    """p_i^c: the share of score outcomes in which i wins at its own central weights (NaN rows of
    ``central`` give NaN). All candidates' central weights are scored against each outcome at once."""
    n, m = normalized.shape
    confidence = np.full(n, np.nan)
    have = np.flatnonzero(~np.isnan(central[:, 0]))
    if have.size == 0:
        return confidence
    if method != "wsm":
        confidence[have] = _method_confidence(method_totals(method), normalized, central[have],
                                              have, rng, samples, perturb, chunk)
        return confidence
    candidate_weights = central[have].T  # (criteria, k)
    if perturb is None:
        confidence[have] = (winners(normalized @ candidate_weights, axis=0) == have).astype(float)
        return confidence
    chunk = max(1, min(chunk or samples, CHUNK_BYTES // (n * max(m, have.size) * 8)))
    won = np.zeros(have.size, dtype=np.int64)
    for start in range(0, samples, chunk):
        size = min(chunk, samples - start)
        totals = perturb(rng, size) @ candidate_weights  # (size, candidates, k)
        won += (winners(totals, axis=1) == have).sum(axis=0)
    confidence[have] = won / samples
    return confidence


def _method_confidence(totals_of: Callable[[np.ndarray, np.ndarray], np.ndarray],
                       normalized: np.ndarray, weights: np.ndarray, have: np.ndarray,
                       rng: np.random.Generator, samples: int, perturb: Perturb | None,
                       chunk: int | None) -> np.ndarray:
    """``confidence_factors`` for a method other than the weighted sum: ``weights`` (k, criteria)
    are the central weights of the candidates ``have``; each is scored as its own batch row."""
    if perturb is None:
        return (winners(totals_of(normalized, weights), axis=1) == have).astype(float)
    n, m = normalized.shape
    # (size, k, candidates, criteria) arrays, a few of them: the chunk keeps each near CHUNK_BYTES
    chunk = max(1, min(chunk or samples, CHUNK_BYTES // (4 * n * m * have.size * 8)))
    won = np.zeros(have.size, dtype=np.int64)
    for start in range(0, samples, chunk):
        size = min(chunk, samples - start)
        totals = totals_of(perturb(rng, size)[:, None], weights)  # (size, k, candidates)
        won += (winners(totals, axis=2) == have).sum(axis=0)
    return won / samples


def run_smaa(decision: DecisionMatrix, samples: int | None = None, seed: int | None = None,
             chunk: int | None = None, use_score_uncertainty: bool = True,
             ranks: int | None = None, method: str = "wsm") -> SmaaResult:
    """SMAA-2 of a decision under ``method`` (default the weighted sum), with its ``sensitivity``
    limits on weights and its ``uncertainty`` on scores. ``seed=None`` draws fresh entropy and
    records it in the result."""
    spec = decision.model.sensitivity
    samples = spec.samples if samples is None else int(samples)
    if samples < 1:
        raise StackdecideError(f"samples must be at least 1, got {samples}")
    if seed is None:
        seed = int(np.random.SeedSequence().entropy)  # type: ignore[arg-type]
    region = weight_region(decision.criterion_ids, spec.weight_bounds, spec.importance_order)
    problem = region.conflict(decision.criterion_ids)
    if problem:
        raise _located(decision, ("sensitivity", "importance_order"), problem)
    scores = score_uncertainty(decision)
    uncertain = use_score_uncertainty and scores.any

    def perturb(rng: np.random.Generator, n: int) -> np.ndarray:
        return decision.normalize(scores.sample(rng, n))

    try:
        arrays = smaa(decision.normalize(), region, samples, seed,
                      perturb if uncertain else None, chunk, ranks, method)
    except WeightRegionError as exc:
        raise _located(decision, ("sensitivity", "weight_bounds"), str(exc)) from None
    return SmaaResult(decision.candidate_ids, decision.criterion_ids, samples, seed,
                      arrays.rank_counts, arrays.central_weights, arrays.confidence,
                      arrays.accepted / arrays.draws, region, uncertain, arrays.chunk, method)


def _located(decision: DecisionMatrix, path: Sequence[str], message: str) -> DecisionFileError:
    location = decision.positions.locate(tuple(path)) if decision.positions else None
    return DecisionFileError(message, location)


