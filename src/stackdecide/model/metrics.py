"""The metrics evidence can hold, each with its unit and which way is better.

Names follow ``<quantity>_<unit>[_<statistic>]`` so a reader sees the unit in every table
(``ttft_ms_p99`` is the 99th percentile of time to first token, in milliseconds). Latency statistics
are over the requests of one benchmark run, as ``vllm bench serve`` reports them.

Each metric also carries its *domain*, the values it can physically take (a latency is positive,
a throughput not negative), and ``SCENARIO_DOMAINS`` those of the scenario parameters. This is the
one place they are stated: every record is checked against them on the way in, whatever made it
(``evidence add``, an import, the benchmark).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from stackdecide._text import did_you_mean
from stackdecide.errors import EvidenceError, Location

# The largest magnitude a measured value may have. Far above anything physical (1e12 ms is 31
# years, 1e12 tok/s a million times any GPU), and far enough below float's limit (1.8e308) that
# sums, ratios and differences of stored values can never overflow into inf or NaN.
MAX_MEASURED = 1e12
# The largest count (concurrency, prompts, tokens per request) a scenario may give: whole numbers
# up to this are exact in float and in SQLite's 64-bit integers.
MAX_COUNT = 10**12


@dataclass(frozen=True)
class Domain:
    """The values a quantity can physically take: from ``low`` (excluded when ``open_low``) up to
    ``high``, whole numbers only with ``integer``. ``why`` tells a reader what a value outside
    means, e.g. "a latency cannot be zero or negative"."""

    low: float
    open_low: bool = False
    high: float = MAX_MEASURED
    integer: bool = False
    why: str = ""

    def contains(self, value: float) -> bool:
        if not math.isfinite(value) or value > self.high:
            return False
        if value < self.low or (self.open_low and value == self.low):
            return False
        return not self.integer or value == int(value)

    def problem(self, value: float, what: str, unit: str = "") -> str | None:
        """Why ``value`` is not a possible ``what``, or None when it is."""
        if self.contains(value):
            return None
        shown = f"{value:g}" + (f" {unit}" if unit and unit != "bool" else "")
        if not math.isfinite(value):
            return f"{shown} is not a finite number; a measured {what} must be one"
        reason = f" ({self.why})" if self.why else ""
        return f"{shown} is not a possible {what}: allowed are {self.describe(unit)}{reason}"

    @property
    def bound(self) -> str:
        """The domain's defining bound, as the docs' metric table states it: ``> 0``, ``>= 0``,
        ``0 or 1``, ``whole number >= 1`` (every domain also ends at ``high``)."""
        if self.integer and (self.low, self.high) == (0.0, 1.0):
            return "0 or 1"
        kind = "whole number " if self.integer else ""
        return f"{kind}{'>' if self.open_low else '>='} {self.low:g}"

    def describe(self, unit: str = "") -> str:
        """``> 0 ms, at most 1e+12 ms``: the whole domain, for messages."""
        if self.integer and (self.low, self.high) == (0.0, 1.0):
            return self.bound
        unit = f" {unit}" if unit and unit != "bool" else ""
        return f"{self.bound}{unit}, at most {self.high:g}{unit}"


LATENCY = Domain(0.0, open_low=True, why="a latency cannot be zero or negative")
# TPOT and ITL are gaps between streamed chunks: tokens that arrive in one chunk have no gap, so 0
# is a real measurement (a bursty stream); only a negative gap is impossible.
GAP = Domain(0.0, why="a time between tokens cannot be negative")
RATE = Domain(0.0, why="a throughput cannot be negative")
AMOUNT = Domain(0.0, why="an amount of memory cannot be negative")
DURATION = Domain(0.0, open_low=True, why="a duration cannot be zero or negative")
YES_NO = Domain(0.0, high=1.0, integer=True, why="1 (yes) or 0 (no)")

# Scenario parameters with a physical meaning, checked wherever a record is made. Other scenario
# keys (backend, model, --metadata pairs) are free text or numbers.
SCENARIO_DOMAINS: dict[str, Domain] = {
    "concurrency": Domain(1.0, high=MAX_COUNT, integer=True,
                          why="at least one request in flight"),
    "num_prompts": Domain(1.0, high=MAX_COUNT, integer=True, why="at least one request"),
    "input_len": Domain(1.0, high=MAX_COUNT, integer=True, why="a prompt has at least one token"),
    "output_len": Domain(1.0, high=MAX_COUNT, integer=True,
                         why="a completion has at least one token"),
    "request_rate": Domain(0.0, open_low=True, why="requests per second; write \"inf\" for no "
                                                     "limit"),
    "burstiness": Domain(0.0, open_low=True, why="the gamma shape of request arrivals"),
}
UNLIMITED_RATE = "inf"  # request_rate as vllm bench serve writes "no limit"


def scenario_problem(key: str, value: object) -> str | None:
    """Why ``value`` is not a possible value of scenario parameter ``key``, or None."""
    domain = SCENARIO_DOMAINS.get(key)
    if domain is None:
        return None
    if key == "request_rate" and isinstance(value, str) and value.strip() == UNLIMITED_RATE:
        return None
    number = _as_number(value)
    if number is None:
        kind = "a whole number" if domain.integer else "a number"
        extra = ' or "inf"' if key == "request_rate" else ""
        return f"'{key}' must be {kind}{extra}, got {_short(value)}"
    if domain.contains(number):
        return None
    return f"'{key}' is {number:g}: allowed are {domain.describe()} ({domain.why})"


def _as_number(value: object) -> float | None:
    """A number, or text that is one ("1": scenarios match "1" and 1 alike); None otherwise."""
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        try:
            return float(value)
        except OverflowError:
            return math.inf
    if isinstance(value, str):
        try:
            return float(value)
        except ValueError:
            return None
    return None


def _short(value: object) -> str:
    text = repr(value)
    return text if len(text) <= 40 else text[:37] + "..."


@dataclass(frozen=True)
class Metric:
    name: str
    unit: str
    higher_is_better: bool
    description: str
    domain: Domain
    boolean: bool = False  # values are 1 (yes) or 0 (no)
    # What the metric means of a run: decode_tok_s is one stream's rate, so a criterion on it
    # compares runs at concurrency 1 unless its measure.scenario says otherwise.
    implied_scenario: tuple[tuple[str, int], ...] = ()

    def problem(self, value: float) -> str | None:
        """Why ``value`` cannot be a measurement of this metric, or None when it can."""
        return self.domain.problem(value, self.name, self.unit)


ONE_STREAM = (("concurrency", 1),)

# Statistics reported for each latency of ``vllm bench serve``: mean, median and the percentiles
# its --metric-percentiles option is most often given.
LATENCY_STATISTICS = ("mean", "p50", "p90", "p95", "p99")
_LATENCIES = {
    "ttft": "time to first token",
    "tpot": "time per output token after the first",
    "itl": "inter-token latency",
    "e2el": "end-to-end request latency",
}


def _build() -> dict[str, Metric]:
    metrics = [
        Metric("decode_tok_s", "tok/s", True, "output tokens per second of one request while "
                                              "decoding", RATE, implied_scenario=ONE_STREAM),
        Metric("prefill_tok_s", "tok/s", True, "prompt tokens per second processed before the first "
                                               "output token", RATE, implied_scenario=ONE_STREAM),
        Metric("output_tok_s", "tok/s", True, "output tokens per second over all requests", RATE),
        Metric("total_tok_s", "tok/s", True, "prompt and output tokens per second over all requests",
               RATE),
        Metric("request_per_s", "req/s", True, "completed requests per second", RATE),
        Metric("goodput_req_s", "req/s", True, "requests per second that met the service-level "
                                               "objectives", RATE),
        Metric("vram_gb", "GiB", False, "GPU memory held by the engine, in GiB (2**30 bytes)",
               AMOUNT),
        Metric("startup_s", "s", False, "seconds from launch until the server answers", DURATION),
        Metric("launch_ok", "bool", True, "1 when the engine started and served, 0 when it did not "
                                          "(with the reason in the note)", YES_NO, boolean=True),
    ]
    for key, what in _LATENCIES.items():
        domain = GAP if key in ("tpot", "itl") else LATENCY
        for statistic in LATENCY_STATISTICS:
            shown = "mean" if statistic == "mean" else f"{statistic[1:]}th percentile"
            metrics.append(Metric(f"{key}_ms_{statistic}", "ms", False, f"{shown} {what}", domain))
    metrics += [  # the capacity scenario (bench.capacity) and its cost
        Metric("capacity_req_s", "req/s", True, "highest request rate that met the SLO (the "
                                                "capacity search's last passing probe)", RATE),
        Metric("capacity_concurrency", "requests", True, "highest concurrency that met the SLO",
               Domain(1.0, high=MAX_COUNT, integer=True, why="at least one request in flight")),
        Metric("capacity_output_tok_s", "tok/s", True, "output tokens per second at SLO capacity",
               RATE),
        Metric("cost_per_mtok_out", "per Mtok", False, "GPU cost of a million output tokens at "
                                                      "SLO capacity (price per GPU hour x GPUs)",
               Domain(0.0, open_low=True, why="a cost of serving is positive")),
    ]
    return {metric.name: metric for metric in metrics}


METRICS: dict[str, Metric] = _build()


def get_metric(name: str, location: Location | None = None) -> Metric:
    """The metric called ``name``; an unknown name raises an error listing the known ones."""
    try:
        return METRICS[name]
    except KeyError:
        raise EvidenceError(unknown_metric_message(name), location) from None


def unknown_metric_message(name: str) -> str:
    return f"unknown metric '{name}'{did_you_mean(name, METRICS)} Known metrics: {', '.join(METRICS)}"
