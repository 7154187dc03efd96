"""Uncertainty of one measured cell: the true mean of a metric from a few server launches.

Model
-----
One replicate is one fresh server launch (a repeat inside one server would hit the prefix
cache, so it is not independent). A replicate of a metric whose true value is ``mu`` reads

    x_i = mu * (1 + eps_i),    eps_i ~ N(0, s^2) independent,

with ``s`` a *relative* standard deviation: restart-to-restart spread on serving benchmarks
scales with the value, so one ``s`` per metric kind is shared by all candidates.

``s^2`` is a precision-weighted combination of three sources, each counted by its degrees of
freedom (the conjugate normal / scaled-inverse-chi^2 update):

* a prior ``prior_rel_sd`` worth ``k0 = prior_strength`` pseudo degrees of freedom,
* optionally a pooled estimate from *other* candidates on the same metric
  (``pooled_rel_sd`` with ``pooled_dof``; see :func:`pooled_rel_sd`),
* this cell's own replicates, ``n - 1`` degrees of freedom:

    s^2 = (k0 * prior^2 + pooled_dof * pooled^2 + sum((x_i - mean)^2) / mean^2)
          / (k0 + pooled_dof + n - 1)

The interval for the true mean is ``mean +/- t_dof(conf) * s * |mean| / sqrt(n)`` with
``dof = k0 + pooled_dof + n - 1``: a Student t, because ``s`` is itself estimated. With
``n = 1`` the spread comes from the prior (and pool) alone: ``method = "prior"``.

Pass pooled groups that exclude the cell itself, otherwise its deviations count twice.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from typing import Literal

import numpy as np
from scipy import optimize, stats

# Relative SD of one launch, from restarting the same config on an H100 with vLLM:
# decode tok/s spread 1-4 %, prefill tok/s 5-8 %, output throughput 4-5 % (each prior lies
# inside its measured range, see MEASURED_SPREAD below). Start-up time is not measured as a spread: a cold
# start (empty compile caches) takes ~2x a warm one, which is a systematic effect, not
# noise, so cold launches must not be mixed with warm ones; 15 % is a cautious guess
# for warm-start jitter. Anything else falls back to DEFAULT_PRIOR_REL_SD.
DEFAULT_PRIOR_REL_SD: float = 0.05
PRIOR_REL_SD: Mapping[str, float] = {
    "decode_tok_s": 0.03,
    "prefill_tok_s": 0.06,
    "output_tok_s": 0.05,
    "startup_s": 0.15,
}

# Restart-to-restart relative SD ranges (low, high) measured on an H100, per metric.
MEASURED_SPREAD: Mapping[str, tuple[float, float]] = {
    "decode_tok_s": (0.01, 0.04),
    "prefill_tok_s": (0.05, 0.08),
    "output_tok_s": (0.04, 0.05),
}

# How much each prior is worth, in pseudo degrees of freedom: the measured range read as a
# 90 % range of s. Decode gives ~3.6; prefill (~25) and output (~110) are capped at
# PRIOR_STRENGTH_CAP because the ranges come from one GPU type and a handful of configs.
# No measured spread (start-up, others): the weak default, which fixes only the magnitude.
DEFAULT_PRIOR_STRENGTH: float = 2.0
PRIOR_STRENGTH_CAP: float = 20.0


def prior_strength_from_range(low: float, high: float, coverage: float = 0.90,
                              cap: float = PRIOR_STRENGTH_CAP) -> float:
    """Degrees of freedom whose scaled-inverse-chi^2 law of s puts ``coverage`` between ``low``
    and ``high``, judged by their ratio (``sqrt(chi2_hi / chi2_lo) = high / low``), capped."""
    if not 0 < low < high:
        raise ValueError("need 0 < low < high")
    tail = (1 - coverage) / 2

    def excess(nu: float) -> float:
        return math.sqrt(stats.chi2.ppf(1 - tail, nu) / stats.chi2.ppf(tail, nu)) - high / low

    if excess(cap) > 0:  # the range is narrower than even ``cap`` dof would give
        return cap
    return float(optimize.brentq(excess, 0.1, cap))


PRIOR_STRENGTH: Mapping[str, float] = {
    metric: prior_strength_from_range(low, high) for metric, (low, high) in MEASURED_SPREAD.items()
}


def prior_rel_sd_for(metric: str) -> float:
    """Prior relative SD per replicate for ``metric`` (generic default when unknown)."""
    return PRIOR_REL_SD.get(metric, DEFAULT_PRIOR_REL_SD)


def prior_strength_for(metric: str) -> float:
    """Prior pseudo degrees of freedom for ``metric`` (weak default when unknown)."""
    return PRIOR_STRENGTH.get(metric, DEFAULT_PRIOR_STRENGTH)


@dataclass(frozen=True)
class Estimate:
    """Estimate of the true mean of one cell, with its confidence interval.

    ``rel_sd`` is the relative SD per replicate that was used, ``dof`` its degrees of
    freedom and ``standard_error`` the absolute SD of the mean (``rel_sd * |center| / sqrt(n)``).
    """

    n: int
    center: float
    median: float
    low: float
    high: float
    confidence: float
    method: Literal["t", "prior"]
    rel_sd: float
    dof: float
    standard_error: float

    def to_dict(self) -> dict[str, float | int | str]:
        return asdict(self)


def _relative_ss(values: np.ndarray) -> float:
    """Sum of squared deviations from the mean, in units of the mean (dimensionless)."""
    mean = float(values.mean())
    return float(((values - mean) ** 2).sum()) / mean**2


def _as_values(values: Sequence[float] | np.ndarray) -> np.ndarray:
    arr = np.asarray(values, dtype=float)
    if arr.ndim != 1 or arr.size == 0:
        raise ValueError("values must be a non-empty 1-d sequence")
    if not np.all(np.isfinite(arr)):
        raise ValueError("values must be finite")
    if arr.mean() == 0:
        raise ValueError("a relative SD needs a non-zero mean")
    return arr


def estimate(
    values: Sequence[float] | np.ndarray,
    confidence: float = 0.95,
    prior_rel_sd: float = DEFAULT_PRIOR_REL_SD,
    prior_strength: float = 2.0,
    pooled_rel_sd: float | None = None,
    pooled_dof: int = 0,
) -> Estimate:
    """Estimate the true mean of a cell from its replicates (see the module docstring)."""
    x = _as_values(values)
    if not 0 < confidence < 1:
        raise ValueError("confidence must be in (0, 1)")
    if prior_rel_sd < 0 or prior_strength < 0 or pooled_dof < 0:
        raise ValueError("prior_rel_sd, prior_strength and pooled_dof must be >= 0")
    if pooled_dof > 0 and pooled_rel_sd is None:
        raise ValueError("pooled_dof > 0 needs pooled_rel_sd")
    n = int(x.size)
    dof = prior_strength + pooled_dof + n - 1
    if dof <= 0:
        raise ValueError("no degrees of freedom: give a prior, a pool, or two replicates")
    pooled = 0.0 if pooled_rel_sd is None else pooled_rel_sd
    own_ss = _relative_ss(x) if n > 1 else 0.0
    s2 = (prior_strength * prior_rel_sd**2 + pooled_dof * pooled**2 + own_ss) / dof
    rel_sd = math.sqrt(s2)
    center = float(x.mean())
    se = rel_sd * abs(center) / math.sqrt(n)
    half = float(stats.t.ppf(0.5 + confidence / 2, dof)) * se
    return Estimate(
        n=n,
        center=center,
        median=float(np.median(x)),
        low=center - half,
        high=center + half,
        confidence=confidence,
        method="prior" if n == 1 else "t",
        rel_sd=rel_sd,
        dof=float(dof),
        standard_error=se,
    )


def pooled_rel_sd(groups: Sequence[Sequence[float]]) -> tuple[float, int]:
    """Pooled relative SD across candidates on one metric, and its degrees of freedom.

    Each group is one candidate's replicates; it contributes its relative sum of squares and
    ``n - 1`` dof, so groups with one replicate add nothing. With no dof at all the result
    is ``(0.0, 0)``, which :func:`estimate` weighs by zero.
    """
    total_ss = 0.0
    total_dof = 0
    for group in groups:
        x = _as_values(group)
        if x.size > 1:
            total_ss += _relative_ss(x)
            total_dof += int(x.size) - 1
    if total_dof == 0:
        return 0.0, 0
    return math.sqrt(total_ss / total_dof), total_dof
