"""Value functions: a measured raw value -> a score on the criterion's own scale.

Most functions first compute a *goodness* in 0..1 (1 = as good as the function allows) and then
place it on the scale with ``on_scale``: the scale's best end is ``high`` for a benefit criterion and
``low`` for a cost criterion. ``points`` maps raw values straight to scores. Every result is clamped
to the scale, so a measurement can never push a score outside what the file's scale allows.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

import numpy as np
from numpy.typing import ArrayLike


class _Range(Protocol):
    low: float
    high: float


class MeasureSpec(Protocol):
    """What a value function needs of a criterion's ``measure`` block (``model.schema.Measure``)."""

    value: str
    worst: float | None
    best: float | None
    points: Sequence[tuple[float, float]] | None
    target: _Range | None
    falloff: float | None
    penalize: str


def clamp(value: ArrayLike, low: float, high: float) -> np.ndarray:
    return np.minimum(np.maximum(value, low), high)


def on_scale(goodness: ArrayLike, low: float, high: float, benefit: bool) -> np.ndarray:
    """Goodness 0..1 -> score: 1 lands on the scale's best end, 0 on its worst end."""
    goodness = clamp(goodness, 0.0, 1.0)
    worst, best = (low, high) if benefit else (high, low)
    return worst + goodness * (best - worst)


def linear(raw: ArrayLike, worst: float, best: float) -> np.ndarray:
    """Goodness rising linearly from ``worst`` (0) to ``best`` (1); either may be the larger."""
    return clamp((np.asarray(raw, dtype=float) - worst) / (best - worst), 0.0, 1.0)


def points(raw: ArrayLike, pairs: Sequence[tuple[float, float]], low: float, high: float
           ) -> np.ndarray:
    """Score by piecewise-linear interpolation of ``(raw, score)`` pairs, flat beyond the ends."""
    xs = [x for x, _ in pairs]
    ys = [y for _, y in pairs]
    return clamp(np.interp(raw, xs, ys), low, high)


def default_falloff(target_low: float, target_high: float) -> float:
    """Distance outside the target at which the score reaches the worst end, when none is given.

    The target's own width: missing a 100..160 target by 60 (at 40 or 220) scores zero. A
    single-value target uses half its magnitude (or 1 for a target of 0).
    """
    width = target_high - target_low
    if width > 0:
        return width
    return abs(target_high) / 2 or 1.0


def target(raw: ArrayLike, target_low: float, target_high: float, falloff: float | None = None,
           penalize: str = "both") -> np.ndarray:
    """Goodness 1 inside ``[target_low, target_high]``, falling linearly to 0 at ``falloff`` outside.

    ``penalize`` picks the sides that lose score: ``both``, ``below`` (values above the target
    keep full score, e.g. decode speed) or ``above`` (values below keep it, e.g. memory).
    """
    raw = np.asarray(raw, dtype=float)
    distance_falloff = default_falloff(target_low, target_high) if falloff is None else falloff
    below = np.maximum(target_low - raw, 0.0) if penalize in ("both", "below") else 0.0
    above = np.maximum(raw - target_high, 0.0) if penalize in ("both", "above") else 0.0
    return clamp(1.0 - (below + above) / distance_falloff, 0.0, 1.0)


def relative_to_best(raw: ArrayLike, best_raw: ArrayLike, higher_is_better: bool) -> np.ndarray:
    """Goodness as a share of the best measured candidate: raw/best, or best/raw for lower-better.

    Ratios need positive values: a non-positive best of a higher-better metric gives 0 to all; a
    non-positive raw of a lower-better metric is the best possible (1).
    """
    raw, best_raw = np.asarray(raw, dtype=float), np.asarray(best_raw, dtype=float)
    with np.errstate(divide="ignore", invalid="ignore"):
        if higher_is_better:
            return np.where(best_raw > 0, clamp(raw / best_raw, 0.0, 1.0), 0.0)
        return np.where(raw <= 0, 1.0, clamp(np.maximum(best_raw, 0.0) / raw, 0.0, 1.0))


PASS_THRESHOLD_BOOLEAN = 0.5


def pass_fail(raw: ArrayLike, threshold: float, higher_is_better: bool, strict: bool = False
              ) -> np.ndarray:
    """Goodness 1 when ``raw`` reaches ``threshold`` in the metric's good direction, else 0.

    ``strict`` requires going past the threshold. 1/0 metrics use threshold 0.5, strict: the median
    of repeated launches passes only when most launches passed (a tie fails).
    """
    raw = np.asarray(raw, dtype=float)
    if higher_is_better:
        passed = raw > threshold if strict else raw >= threshold
    else:
        passed = raw < threshold if strict else raw <= threshold
    return np.where(passed, 1.0, 0.0)


def measured_scores(measure: MeasureSpec, raw: ArrayLike, *, scale_low: float, scale_high: float,
                    benefit: bool, higher_is_better: bool, best_raw: ArrayLike | None = None,
                    boolean: bool = False) -> np.ndarray:
    """The criterion scores for raw values of any shape, by the criterion's ``measure`` block.

    ``best_raw`` (the best aggregated value among measured candidates, broadcast against ``raw``)
    is needed by ``relative_to_best``; ``boolean`` marks 1/0 metrics, whose pass threshold defaults
    to 0.5. One array call scores every Monte Carlo draw of a cell at once.
    """
    raw = np.asarray(raw, dtype=float)
    if not np.isfinite(raw).all():
        raise ValueError(f"raw value {raw[~np.isfinite(raw)].flat[0]} is not finite")
    kind = measure.value
    if kind == "points":
        assert measure.points is not None  # schema guarantees it
        return points(raw, measure.points, scale_low, scale_high)
    if kind == "linear":
        assert measure.worst is not None and measure.best is not None
        goodness = linear(raw, measure.worst, measure.best)
    elif kind == "target":
        assert measure.target is not None
        goodness = target(raw, measure.target.low, measure.target.high, measure.falloff,
                          measure.penalize)
    elif kind == "relative_to_best":
        if best_raw is None:
            raise ValueError("relative_to_best needs the best measured value")
        goodness = relative_to_best(raw, best_raw, higher_is_better)
    else:  # pass_fail
        if measure.best is not None:
            goodness = pass_fail(raw, measure.best, higher_is_better)
        elif boolean:
            goodness = pass_fail(raw, PASS_THRESHOLD_BOOLEAN, higher_is_better, strict=True)
        else:
            raise ValueError("pass_fail on a metric that is not 1/0 needs 'best' as the threshold")
    return on_scale(goodness, scale_low, scale_high, benefit)


def measured_score(measure: MeasureSpec, raw: float, *, scale_low: float, scale_high: float,
                   benefit: bool, higher_is_better: bool, best_raw: float | None = None,
                   boolean: bool = False) -> float:
    """``measured_scores`` of one aggregated raw value, as a float."""
    return float(measured_scores(measure, raw, scale_low=scale_low, scale_high=scale_high,
                                 benefit=benefit, higher_is_better=higher_is_better,
                                 best_raw=best_raw, boolean=boolean))
