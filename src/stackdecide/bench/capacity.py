"""Capacity under a service-level objective: the highest load whose measured percentiles meet it.

Pure: no I/O, no clocks. ``CapacitySearch`` is a state machine that says which load to probe next
(``next_load``) and takes what that probe measured (``add``); ``bench.capacity_run`` drives it
against a server, and the tests drive it with a synthetic latency curve.

The search, over concurrency (closed loop) or request rate (Poisson arrivals):

1. *bracket*: probe ``start``; while a probe passes, multiply the load by ``growth`` (up to
   ``max_load``); while none has passed yet and a probe fails, divide it (down to ``min_load``).
   The bracket is [highest passing load, lowest failing load above it].
2. *refine*: probe inside the bracket until ``high / low <= 1 + precision`` (for concurrency also
   when ``high - low <= 1``). A probe's *margin* is its worst measured-to-limit ratio (above 1
   fails). With ``method="interpolate"`` the next load is where the margin, linear in log-log,
   crosses 1, nudged by ``sqrt(1 + precision)`` towards the end of the bracket that is farther
   away, so that an accurate estimate closes the bracket in two probes; when two steps together
   did not halve the bracket's log-width, or the failing end missed its limit more than 8-fold,
   the next is a bisection (the geometric mean), so the width at least halves every three probes.
   ``method="bisect"`` always bisects.

Every probe is kept with its verdict. Loads are only ever probed inside the current bracket, so
the result is monotone by construction: every passing probe lies below every failing one among the
bracket's ends. A probe with failed requests, preemptions or a saturated server fails whatever its
percentiles, with the reason.
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import Any, Literal

from stackdecide.model.metrics import PERCENTILE_KEYS, SLO_METRICS, latency_statistic, percentile_of

LoadKind = Literal["concurrency", "request_rate"]
Method = Literal["interpolate", "bisect"]
FAR_MARGIN = 8.0  # a failing end this far past its limit is refined by bisection


@dataclass(frozen=True)
class SloLimits:
    """Latency limits by metric name (``ttft_ms_p99: 500``) and the least goodput fraction."""

    limits: Mapping[str, float] = field(default_factory=dict)
    min_goodput: float | None = None

    def __post_init__(self) -> None:
        unknown = sorted(set(self.limits) - set(SLO_METRICS))
        if unknown:
            raise ValueError(f"unknown SLO key {unknown[0]!r}; use one of {', '.join(SLO_METRICS)}")
        if not self.limits and self.min_goodput is None:
            raise ValueError("an SLO needs at least one latency limit or min_goodput")
        if any(not (0 < v < math.inf) for v in self.limits.values()):
            raise ValueError("SLO latency limits must be positive numbers of milliseconds")
        if self.min_goodput is not None and not 0 < self.min_goodput <= 1:
            raise ValueError("min_goodput is a fraction of requests in (0, 1]")

    def request_limits_ms(self) -> dict[str, float]:
        """Per-request limits for goodput: each latency's limit at its highest percentile named."""
        chosen: dict[str, tuple[int, float]] = {}
        for key, value in self.limits.items():
            name, stat = latency_statistic(key)
            rank = PERCENTILE_KEYS.index(stat)
            if name not in chosen or rank > chosen[name][0]:
                chosen[name] = (rank, value)
        return {name: value for name, (_, value) in chosen.items()}

    def percentiles(self) -> tuple[float, ...]:
        return tuple(sorted({percentile_of(latency_statistic(k)[1]) for k in self.limits}))

    def text(self) -> str:
        """``ttft_ms_p99<=500,min_goodput>=0.95``: one line, also a scenario value."""
        parts = [f"{k}<={v:g}" for k, v in sorted(self.limits.items())]
        if self.min_goodput is not None:
            parts.append(f"min_goodput>={self.min_goodput:g}")
        return ",".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {**dict(self.limits), **({"min_goodput": self.min_goodput}
                                        if self.min_goodput is not None else {})}


@dataclass(frozen=True)
class ProbeMeasurement:
    """What one probe measured: latency statistics in ms keyed like ``ttft_ms_p99``."""

    load: float
    latencies_ms: Mapping[str, float]
    requests: int
    failed: int = 0
    goodput_fraction: float | None = None  # requests meeting every per-request limit / requests
    request_per_s: float = 0.0
    output_tok_s: float = 0.0
    preemptions: float | None = None  # the server's count during the probe; None: not exposed
    saturated: bool = False
    aborted: str | None = None  # why the probe could not finish


@dataclass(frozen=True)
class Verdict:
    passed: bool
    margin: float  # worst measured / limit (goodput: bad share / allowed bad share); inf: hard fail
    reasons: tuple[str, ...]  # every limit missed and every hard failure


def judge(measurement: ProbeMeasurement, slo: SloLimits, *,
          allow_preemptions: bool = False) -> Verdict:
    """Whether one probe meets the SLO, its margin, and why not."""
    reasons: list[str] = []
    hard = False
    if measurement.aborted:
        reasons.append(f"aborted: {measurement.aborted}")
        hard = True
    if measurement.failed:
        reasons.append(f"{measurement.failed} of {measurement.requests} requests failed")
        hard = True
    if measurement.preemptions and not allow_preemptions:
        reasons.append(f"the server preempted {measurement.preemptions:g} requests")
        hard = True
    if measurement.saturated:
        reasons.append("saturated: requests finished slower than they arrived")
        hard = True
    ratios: list[float] = []
    for key, limit in sorted(slo.limits.items()):
        value = measurement.latencies_ms.get(key)
        if value is None or not math.isfinite(value):
            reasons.append(f"{key} not measured")
            hard = True
            continue
        ratios.append(value / limit)
        if value > limit:
            reasons.append(f"{key} {value:.4g} > {limit:g} ms")
    if slo.min_goodput is not None:
        good = measurement.goodput_fraction
        if good is None:
            reasons.append("goodput not measured")
            hard = True
        else:
            # the share of bad requests over the share allowed: 0 when every request is good,
            # so that the margin keeps falling with the load (min_goodput / good would stop at
            # min_goodput and hide how far below its limit a probe is)
            allowed = 1.0 - slo.min_goodput
            bad = 1.0 - good
            ratios.append(bad / allowed if allowed > 0 else (math.inf if bad > 0 else 0.0))
            if good < slo.min_goodput:
                reasons.append(f"goodput {good:.3f} < {slo.min_goodput:g}")
    margin = math.inf if hard else max(ratios, default=0.0)
    return Verdict(passed=not reasons, margin=margin, reasons=tuple(reasons))


@dataclass(frozen=True)
class SearchSettings:
    kind: LoadKind = "concurrency"
    start: float = 1.0
    growth: float = 2.0
    precision: float = 0.1  # stop when high / low <= 1 + precision
    min_load: float = 1.0
    max_load: float = 1024.0
    max_probes: int = 16
    method: Method = "interpolate"

    def __post_init__(self) -> None:
        if self.kind not in ("concurrency", "request_rate"):
            raise ValueError(f"search over 'concurrency' or 'request_rate', not {self.kind!r}")
        if self.method not in ("interpolate", "bisect"):
            raise ValueError(f"method 'interpolate' or 'bisect', not {self.method!r}")
        if not self.growth > 1:
            raise ValueError(f"growth must be above 1, got {self.growth}")
        if not 0 < self.precision < 10:
            raise ValueError(f"precision is relative, e.g. 0.1; got {self.precision}")
        if not 0 < self.min_load <= self.start <= self.max_load < math.inf:
            raise ValueError(f"need 0 < min_load <= start <= max_load, got {self.min_load}, "
                             f"{self.start}, {self.max_load}")
        if self.kind == "concurrency" and any(
                v != int(v) for v in (self.min_load, self.start, self.max_load)):
            raise ValueError("concurrency loads are whole numbers")
        if self.max_probes < 2:
            raise ValueError("max_probes must be at least 2")

    def to_dict(self) -> dict[str, Any]:
        return {"kind": self.kind, "start": self.start, "growth": self.growth,
                "precision": self.precision, "min_load": self.min_load,
                "max_load": self.max_load, "max_probes": self.max_probes, "method": self.method}


@dataclass(frozen=True)
class Probe:
    index: int
    phase: Literal["bracket", "refine"]
    measurement: ProbeMeasurement
    verdict: Verdict

    @property
    def load(self) -> float:
        return self.measurement.load


@dataclass(frozen=True)
class CapacityResult:
    """The search's outcome: every probe, the bracket [last pass, first fail], and why it stopped."""

    settings: SearchSettings
    slo: SloLimits
    probes: tuple[Probe, ...]
    last_pass: Probe | None
    first_fail: Probe | None
    stopped_because: str
    converged: bool  # the bracket closed to the precision

    @property
    def capacity_req_s(self) -> float | None:
        """Request rate: the offered rate of the last pass; concurrency: its measured rate."""
        if self.last_pass is None:
            return None
        if self.settings.kind == "request_rate":
            return self.last_pass.load
        return self.last_pass.measurement.request_per_s

    @property
    def capacity_concurrency(self) -> int | None:
        if self.last_pass is None or self.settings.kind != "concurrency":
            return None
        return int(self.last_pass.load)

    @property
    def capacity_output_tok_s(self) -> float | None:
        return None if self.last_pass is None else self.last_pass.measurement.output_tok_s

    @property
    def relative_gap(self) -> float | None:
        """first fail / last pass - 1: the bracket's width; None while it is open."""
        if self.last_pass is None or self.first_fail is None:
            return None
        return self.first_fail.load / self.last_pass.load - 1.0


class CapacitySearch:
    """Say the next load (``next_load``), take its measurement (``add``), until ``next_load``
    returns None; then ``result()``."""

    def __init__(self, settings: SearchSettings, slo: SloLimits, *,
                 allow_preemptions: bool = False) -> None:
        self.settings = settings
        self.slo = slo
        self.allow_preemptions = allow_preemptions
        self.probes: list[Probe] = []
        self.low: Probe | None = None  # highest passing load
        self.high: Probe | None = None  # lowest failing load above ``low``
        self.stopped_because = ""
        self._widths: list[float] = []  # log-width of the bracket after each refine probe

    # -- protocol --------------------------------------------------------------------------------
    def next_load(self) -> float | None:
        if self.stopped_because:
            return None
        load = self._next()
        if load is None:
            return None
        if len(self.probes) >= self.settings.max_probes:
            self.stopped_because = (f"probe budget of {self.settings.max_probes} spent before "
                                    "the bracket closed")
            return None
        return load

    def add(self, measurement: ProbeMeasurement) -> Probe:
        verdict = judge(measurement, self.slo, allow_preemptions=self.allow_preemptions)
        phase = "refine" if self.low is not None and self.high is not None else "bracket"
        probe = Probe(len(self.probes), phase, measurement, verdict)
        self.probes.append(probe)
        if verdict.passed:
            if self.low is None or probe.load > self.low.load:
                self.low = probe
        elif self.high is None or probe.load < self.high.load:
            self.high = probe
        if phase == "refine" and self.low is not None and self.high is not None:
            self._widths.append(math.log(self.high.load / self.low.load))
        return probe

    def result(self) -> CapacityResult:
        return CapacityResult(self.settings, self.slo, tuple(self.probes), self.low, self.high,
                              self.stopped_because or "not finished", self._closed())

    # -- the rule --------------------------------------------------------------------------------
    def _closed(self) -> bool:
        if self.low is None or self.high is None:
            return False
        if self.settings.kind == "concurrency" and self.high.load - self.low.load <= 1:
            return True
        return self.high.load / self.low.load <= 1 + self.settings.precision * (1 + 1e-9)

    def _next(self) -> float | None:
        s = self.settings
        if not self.probes:
            return float(s.start)
        low, high = self.low, self.high
        if low is not None and high is not None:
            if self._closed():
                self.stopped_because = (f"bracket [{low.load:g}, {high.load:g}] within "
                                        f"{s.precision:.0%}")
                return None
            return self._refine(low, high)
        if low is not None:  # only passes so far: grow
            if low.load >= s.max_load:
                self.stopped_because = (f"the highest allowed load {s.max_load:g} meets the SLO; "
                                        "capacity is at least that")
                return None
            return self._round(min(low.load * s.growth, s.max_load), up=True)
        assert high is not None  # only fails so far: shrink
        if high.load <= s.min_load:
            self.stopped_because = (f"the lowest allowed load {s.min_load:g} misses the SLO: "
                                    + "; ".join(high.verdict.reasons))
            return None
        return self._round(max(high.load / s.growth, s.min_load), up=False)

    def _refine(self, low: Probe, high: Probe) -> float:
        s = self.settings
        log_low, log_high = math.log(low.load), math.log(high.load)
        width = log_high - log_low
        bisect = (s.method == "bisect" or not math.isfinite(high.verdict.margin)
                  or low.verdict.margin <= 0
                  or self._bisect_needed())
        if bisect:
            target = (log_low + log_high) / 2
        else:
            m_low, m_high = math.log(low.verdict.margin), math.log(high.verdict.margin)
            fraction = -m_low / (m_high - m_low) if m_high > m_low else 0.5
            target = log_low + min(max(fraction, 0.0), 1.0) * width
            nudge = 0.5 * math.log(1 + s.precision)
            target += nudge if log_high - target > target - log_low else -nudge
            # at least 10% of the width from either end, so every probe shrinks the bracket
            target = min(max(target, log_low + 0.1 * width), log_high - 0.1 * width)
        load = math.exp(target)
        if s.kind == "concurrency":
            return float(min(max(round(load), int(low.load) + 1), int(high.load) - 1))
        return load

    def _bisect_needed(self) -> bool:
        """Bisect when the last two refine steps together did not halve the bracket's log-width
        (so it halves at least every three probes), or when the failing end missed its limit
        more than ``FAR_MARGIN``-fold: across such a jump (requests queueing once the server's
        batch is full) the latency is far from log-log linear, and interpolation creeps."""
        w = self._widths
        far = self.high is not None and self.high.verdict.margin > FAR_MARGIN
        return far or (len(w) >= 3 and w[-1] > 0.5 * w[-3])

    def _round(self, load: float, *, up: bool) -> float:
        if self.settings.kind != "concurrency":
            return load
        last = self.probes[-1].load
        whole = math.ceil(load) if up else math.floor(load)
        if whole == last:  # growth too small to move a whole number
            whole += 1 if up else -1
        return float(whole)


def run_search(settings: SearchSettings, slo: SloLimits, measure: Any, *,
               allow_preemptions: bool = False) -> CapacityResult:
    """Drive a search with a plain function ``measure(load) -> ProbeMeasurement``."""
    search = CapacitySearch(settings, slo, allow_preemptions=allow_preemptions)
    while (load := search.next_load()) is not None:
        search.add(measure(load))
    return search.result()
