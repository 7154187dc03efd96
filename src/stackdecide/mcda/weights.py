"""The region of admissible weight vectors, and uniform sampling from it.

Weights live on the simplex {w >= 0, sum w = 1}. A decision may narrow that region with per-criterion
bounds (``sensitivity.weight_bounds``) and with an importance order (``sensitivity.importance_order``,
most important first). SMAA needs weights drawn uniformly from what is left:

* Uniform on the simplex is Dirichlet(1, ..., 1): normalised independent Exp(1) draws. Normalised
  independent *uniforms* are not uniform on the simplex (they crowd the centre).
* Lower bounds alone are exact without rejection: ``w = low + (1 - sum(low)) * u`` maps the uniform
  simplex affinely onto {w >= low, sum w = 1}.
* An importance order is exact by sorting: Dirichlet(1) is exchangeable, so sorting the ordered
  coordinates of a uniform draw is a k!-to-1 volume-preserving map onto the ordered region.
* Upper bounds (and lower bounds together with an order) are met by rejection; a pilot run refuses
  regions so small that rejection would take forever.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np

PROPOSAL_BLOCK = 8192  # proposals per draw; fixed so the stream does not depend on how it is read
PILOT_DRAWS = 4 * PROPOSAL_BLOCK  # proposals drawn before judging the acceptance rate
MIN_ACCEPTANCE = 1e-3  # below this share of accepted proposals, sampling is refused


class WeightRegionError(ValueError):
    """The bounds and order leave no (or almost no) weights to sample."""


@dataclass(frozen=True)
class WeightRegion:
    """Bounds per criterion (fractions 0..1) and an importance order (indices, most important first)."""

    lows: np.ndarray
    highs: np.ndarray
    order: tuple[int, ...] = ()

    @property
    def size(self) -> int:
        return int(self.lows.size)

    @property
    def has_upper_bounds(self) -> bool:
        return bool(np.any(self.highs < 1.0))

    @property
    def restricted(self) -> bool:
        return bool(np.any(self.lows > 0) or self.has_upper_bounds or len(self.order) > 1)

    def tightened(self) -> tuple[np.ndarray, np.ndarray]:
        """Bounds implied by the order: a weight is at most every more important one's high and at
        least every less important one's low."""
        lows, highs = self.lows.copy(), self.highs.copy()
        if self.order:
            chain = np.array(self.order)
            highs[chain] = np.minimum.accumulate(self.highs[chain])
            lows[chain] = np.maximum.accumulate(self.lows[chain][::-1])[::-1]
        return lows, highs

    def conflict(self, names: Sequence[str] | None = None) -> str | None:
        """Why no weight vector satisfies bounds, order and sum 1 together; None when some does.

        With the tightened bounds both ``lows`` and ``highs`` respect the order, and so does every
        point between them; the sum moves continuously between sum(lows) and sum(highs), so the
        region is non-empty exactly when each low <= high and sum(lows) <= 1 <= sum(highs).
        """
        label = (lambda i: f"'{names[i]}'") if names else (lambda i: f"criterion {i}")
        lows, highs = self.tightened()
        for k in np.flatnonzero(lows > highs + 1e-12):
            chain = list(self.order)
            position = chain.index(int(k)) if int(k) in chain else -1
            if position < 0:
                return f"{label(int(k))} has bounds {self.lows[k]:g}..{self.highs[k]:g}"
            above = chain[: position + 1]
            below = chain[position:]
            capped = above[int(np.argmin(self.highs[above]))]
            floored = below[int(np.argmax(self.lows[below]))]
            return (f"importance order puts {label(capped)} before {label(floored)}, but "
                    f"weight_bounds cap {label(capped)} at {self.highs[capped]:g} and hold "
                    f"{label(floored)} at {self.lows[floored]:g} or more")
        low_sum, high_sum = float(lows.sum()), float(highs.sum())
        if low_sum > 1 + 1e-9 or high_sum < 1 - 1e-9:
            return (f"with the importance order, weight_bounds make the weights add up to "
                    f"between {low_sum:g} and {high_sum:g}, never 1")
        return None

    def transform(self, unit: np.ndarray) -> np.ndarray:
        """Map uniform simplex draws (n, m) into the ordered, lower-bounded space (in place)."""
        if len(self.order) > 1:
            chain = list(self.order)
            unit[:, chain] = -np.sort(-unit[:, chain], axis=1)  # descending along the order
            return unit
        low_sum = float(self.lows.sum())
        if low_sum > 0:
            unit *= 1.0 - low_sum
            unit += self.lows
        return unit

    def accepts(self, weights: np.ndarray) -> np.ndarray:
        """Which rows of (n, m) weights lie within the bounds."""
        ok = np.all(weights <= self.highs, axis=1)
        if len(self.order) > 1:  # lows were not built in by the shift
            ok &= np.all(weights >= self.lows, axis=1)
        return ok


def weight_region(criterion_ids: Sequence[str], bounds: Mapping[str, object] | None = None,
                  order: Sequence[str] = ()) -> WeightRegion:
    """A region from the file's ``weight_bounds`` (id -> Range or (low, high)) and order (ids)."""
    index = {cid: i for i, cid in enumerate(criterion_ids)}
    lows = np.zeros(len(criterion_ids))
    highs = np.ones(len(criterion_ids))
    for cid, value in (bounds or {}).items():
        low, high = (value.low, value.high) if hasattr(value, "low") else value  # type: ignore[misc]
        lows[index[cid]], highs[index[cid]] = float(low), float(high)
    return WeightRegion(lows, highs, tuple(index[cid] for cid in order))


def uniform_simplex(rng: np.random.Generator, n: int, m: int) -> np.ndarray:
    """n weight vectors uniform on the (m-1)-simplex: Dirichlet(1), via normalised Exp(1) draws."""
    draws = rng.standard_exponential((n, m))
    draws /= draws.sum(axis=1, keepdims=True)
    return draws


@dataclass
class WeightStream:
    """Uniform weights from a region, read in any batch sizes with the same result.

    Proposals are drawn in fixed blocks and accepted rows queue up, so ``take(100)`` twice gives
    exactly what ``take(200)`` gives once.
    """

    region: WeightRegion
    rng: np.random.Generator
    draws: int = 0  # proposals drawn so far
    accepted: int = 0  # proposals accepted so far
    _queue: list[np.ndarray] = field(default_factory=list, repr=False)
    _queued: int = 0

    def take(self, n: int) -> np.ndarray:
        while self._queued < n:
            self._draw_block()
        batch = np.concatenate(self._queue) if len(self._queue) > 1 else self._queue[0]
        out, rest = batch[:n], batch[n:]
        self._queue = [rest] if rest.shape[0] else []
        self._queued = rest.shape[0]
        return out

    @property
    def acceptance_rate(self) -> float:
        return self.accepted / self.draws if self.draws else 1.0

    def _draw_block(self) -> None:
        m = self.region.size
        proposals = self.region.transform(uniform_simplex(self.rng, PROPOSAL_BLOCK, m))
        if self.region.restricted:
            proposals = proposals[self.region.accepts(proposals)]
        self.draws += PROPOSAL_BLOCK
        self.accepted += proposals.shape[0]
        if self.draws >= PILOT_DRAWS and self.acceptance_rate < MIN_ACCEPTANCE:
            raise WeightRegionError(
                f"the weight bounds and importance order keep only {self.accepted} of "
                f"{self.draws} uniformly drawn weight vectors (acceptance below "
                f"{MIN_ACCEPTANCE:g}); the region is too small to sample: widen the bounds")
        self._queue.append(proposals)
        self._queued += proposals.shape[0]


def smaa_streams(seed: int) -> list[np.random.Generator]:
    """Independent generators of SMAA-2 for weights, scores and confidence factors, in that order."""
    return np.random.default_rng(seed).spawn(3)


def sampled_weights(region: WeightRegion, samples: int, seed: int) -> np.ndarray:
    """The weight vectors (samples, criteria) that SMAA-2 with this seed uses, in order; the
    certainty of a ranking with sampled weights draws the same ones."""
    return WeightStream(region, smaa_streams(seed)[0]).take(samples)
