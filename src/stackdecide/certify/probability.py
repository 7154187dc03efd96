"""Uncertainty through the ranking: Monte Carlo probabilities of winning and of each rank.

The input is a matrix of joint draws of every candidate's total score, shape ``(S, m)``: one
row per draw of all uncertain quantities at once (measured cells, and weights when they are
sampled SMAA-style). Any dependence between candidates is carried by the rows, so the
probabilities below are plain frequencies over rows.

Totals within ``mcda.methods.TIE_TOLERANCE`` tie, the one tie rule of every ranking. Ties inside
a row are split equally: ``k`` candidates tied for first each get ``1/k`` of the win, and a tied
group spanning ranks ``r .. r+k-1`` gives each member ``1/k`` of each of those ranks. Pairwise, a
tie counts one half for each side. Infeasible candidates are ranked below
every feasible one and never win (``p_best = 0``).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike
from scipy import stats

from stackdecide.mcda.methods import TIE_TOLERANCE, above_and_tied


@dataclass(frozen=True)
class RankProbabilities:
    """Ranking probabilities from ``samples`` joint draws.

    ``rank_matrix[i, r]`` = P(candidate i takes rank r + 1); ``pairwise[i, k]`` = P(total_i >
    total_k) (diagonal 0); ``mc_standard_error`` = max over candidates of sqrt(p(1 - p) / S) for
    ``p_best``; ``seed`` records the seed of the draws, for provenance only.
    """

    p_best: np.ndarray
    rank_matrix: np.ndarray
    pairwise: np.ndarray
    expected_totals: np.ndarray
    samples: int
    seed: int | None
    mc_standard_error: float

    def leader(self) -> int:
        """Index of the most probable winner (ties broken by expected total, then index)."""
        order = np.lexsort((-np.arange(self.p_best.size), self.expected_totals, self.p_best))
        return int(order[-1])

    def contenders(self, threshold: float) -> list[int]:
        """Indices with ``p_best >= threshold`` (and > 0), most probable first."""
        idx = [i for i in range(self.p_best.size) if self.p_best[i] >= threshold and self.p_best[i] > 0]
        return sorted(idx, key=lambda i: (-self.p_best[i], i))


CHUNK_CELLS = 4_000_000  # draws x candidates^2 per chunk: ~32 MB a float array


def rank_probabilities(
    totals_samples: ArrayLike,
    feasible: ArrayLike | None = None,
    seed: int | None = None,
) -> RankProbabilities:
    """Rank, win and pairwise probabilities from joint draws of the totals (``(S, m)``)."""
    raw = np.asarray(totals_samples, dtype=float)
    if raw.ndim != 2 or raw.shape[0] == 0 or raw.shape[1] == 0:
        raise ValueError("totals_samples must have shape (S, m) with S, m >= 1")
    if np.isnan(raw).any():
        raise ValueError("totals_samples contains NaN")
    n_samples, m = raw.shape
    ok = np.ones(m, dtype=bool) if feasible is None else np.asarray(feasible, dtype=bool)
    if ok.shape != (m,):
        raise ValueError("feasible must have shape (m,)")
    # -inf puts infeasible candidates below every feasible one, ties among them split
    totals = np.where(ok[None, :], raw, -np.inf)
    rank_sum, pairwise_sum = np.zeros((m, m)), np.zeros((m, m))
    # draws in chunks: each holds (chunk, m, m) arrays, which for a space of hundreds of
    # configurations would not fit in memory all at once
    chunk = max(1, CHUNK_CELLS // (m * m))
    ranks = np.arange(m)[None, None, :]
    for start in range(0, n_samples, chunk):
        part = totals[start:start + chunk]
        above, equal = above_and_tied(part)
        occupies = (ranks >= above[:, :, None]) & (ranks < (above + equal)[:, :, None])
        rank_sum += (occupies / equal[:, :, None]).sum(axis=0)
        greater = part[:, :, None] > part[:, None, :] + TIE_TOLERANCE
        with np.errstate(invalid="ignore"):
            gap = np.abs(part[:, :, None] - part[:, None, :])
        ties = (part[:, :, None] == part[:, None, :]) | (gap <= TIE_TOLERANCE)
        pairwise_sum += greater.sum(axis=0) + 0.5 * ties.sum(axis=0)
    rank_matrix = rank_sum / n_samples
    p_best = np.where(ok, rank_matrix[:, 0], 0.0)
    pairwise = pairwise_sum / n_samples
    np.fill_diagonal(pairwise, 0.0)
    mc_se = float(np.sqrt(p_best * (1 - p_best) / n_samples).max())
    return RankProbabilities(
        p_best=p_best,
        rank_matrix=rank_matrix,
        pairwise=pairwise,
        expected_totals=raw.mean(axis=0),
        samples=n_samples,
        seed=seed,
        mc_standard_error=mc_se,
    )


def _clip(draws: np.ndarray, lows: ArrayLike | None, highs: ArrayLike | None) -> np.ndarray:
    if lows is None and highs is None:
        return draws
    return np.clip(draws, lows, highs)


def sample_normal_cells(
    means: ArrayLike,
    sds: ArrayLike,
    samples: int,
    rng: np.random.Generator,
    lows: ArrayLike | None = None,
    highs: ArrayLike | None = None,
) -> np.ndarray:
    """Independent normal draws per cell, shape ``(samples, *means.shape)``.

    ``sds`` of 0 gives fixed cells. ``lows``/``highs`` clip to the scale, where a value function
    saturates (a score cannot leave 0..1 however fast the measurement).
    """
    mu = np.asarray(means, dtype=float)
    sd = np.broadcast_to(np.asarray(sds, dtype=float), mu.shape)
    if (sd < 0).any():
        raise ValueError("sds must be >= 0")
    draws = mu + sd * rng.standard_normal((samples, *mu.shape))
    return _clip(draws, lows, highs)


def sample_t_cells(
    means: ArrayLike,
    scales: ArrayLike,
    dof: ArrayLike,
    samples: int,
    rng: np.random.Generator,
    lows: ArrayLike | None = None,
    highs: ArrayLike | None = None,
) -> np.ndarray:
    """Like :func:`sample_normal_cells` with Student-t draws: the law of a mean whose SD was
    itself estimated with ``dof`` degrees of freedom (``scale`` = its standard error)."""
    mu = np.asarray(means, dtype=float)
    scale = np.broadcast_to(np.asarray(scales, dtype=float), mu.shape)
    nu = np.broadcast_to(np.asarray(dof, dtype=float), mu.shape)
    if (scale < 0).any() or (nu <= 0).any():
        raise ValueError("scales must be >= 0 and dof > 0")
    draws = mu + scale * rng.standard_t(nu, size=(samples, *mu.shape))
    return _clip(draws, lows, highs)


def normal_p_greater(mean_a: float, sd_a: float, mean_b: float, sd_b: float) -> float:
    """P(A > B) for independent normals A, B: Phi((mean_a - mean_b) / sqrt(sd_a^2 + sd_b^2))."""
    spread = math.hypot(sd_a, sd_b)
    if spread == 0:
        return 1.0 if mean_a > mean_b else (0.0 if mean_a < mean_b else 0.5)
    return float(stats.norm.cdf((mean_a - mean_b) / spread))
