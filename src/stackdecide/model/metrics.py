"""The metrics evidence can hold, each with its unit and which way is better.

Names follow ``<quantity>_<unit>[_<statistic>]`` so a reader sees the unit in every table
(``ttft_ms_p99`` is the 99th percentile of time to first token, in milliseconds). Latency statistics
are over the requests of one benchmark run, as ``vllm bench serve`` reports them.

Each metric also carries its *domain*, the values it can physically take (a latency is positive,
a throughput not negative), and ``SCENARIO_DOMAINS`` those of the scenario parameters. This is the
one place they are stated: every record is checked against them on the way in, whatever made it
(``evidence add``, an import, the benchmark).

It is also the one place metric names are written: the latencies (``LATENCIES``) and their
statistics (``LATENCY_STATISTICS``, ``PERCENTILE_KEYS``) make the latency metrics, the keys an SLO
can limit (``SLO_METRICS``: the decision file's ``benchmark.slo`` fields, ``bench --slo``) and
the objectives goodput can hold a request to (``GOODPUT_LATENCIES``); what other tools call each
quantity (``known_as``) makes the importers' maps (``tool_metrics``, ``tool_latencies``) and
the rows ``stackdecide bench`` reports. A new metric is one entry here.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal

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
DIVERGENCE = Domain(0.0, why="a divergence cannot be negative")
PERCENT = Domain(0.0, high=100.0, why="a share is 0 to 100 %")
RATIO = Domain(0.0, open_low=True, why="a ratio of positive quantities is positive")

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


Tool = Literal["vllm", "guidellm", "aiperf", "bench"]


@dataclass(frozen=True)
class Alias:
    """What one tool's results call a quantity: ``key`` in its output, times ``scale`` in our unit.

    Tools: ``vllm`` (a ``vllm bench serve --save-result`` key; for a latency, the ``X`` of
    ``mean_X_ms``), ``guidellm`` (a metric of GuideLLM's ``benchmarks.json``), ``aiperf`` (a metric
    of AIPerf's ``profile_export_aiperf.json``) and ``bench`` (a field of ``stackdecide bench``'s
    summary of one level, ``bench.stats.Summary``).
    """

    tool: Tool
    key: str
    scale: float = 1.0


def known_as(**keys: str | tuple[str, float]) -> tuple[Alias, ...]:
    """``known_as(vllm="output_throughput", guidellm=("request_latency", 1000.0))``: each tool's
    key, with the factor to our unit where it is not 1."""
    return tuple(Alias(tool, key) if isinstance(key, str) else Alias(tool, *key)  # type: ignore[arg-type]
                 for tool, key in keys.items())


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
    known_as: tuple[Alias, ...] = ()  # what benchmark tools call it (the importers read these)

    def problem(self, value: float) -> str | None:
        """Why ``value`` cannot be a measurement of this metric, or None when it can."""
        return self.domain.problem(value, self.name, self.unit)


ONE_STREAM = (("concurrency", 1),)

# The percentiles a latency metric can be at: those vllm bench serve's --metric-percentiles is
# most often given. Latency statistics add the mean.
PERCENTILE_KEYS = ("p50", "p90", "p95", "p99")
LATENCY_STATISTICS = ("mean", *PERCENTILE_KEYS)


def percentile_key(percentile: float) -> str:
    """``99.0`` -> ``"p99"``, ``99.9`` -> ``"p99_9"``: a percentile as metric names and
    summaries write it."""
    return f"p{percentile:g}".replace(".", "_")


def percentile_of(key: str) -> float:
    """``"p99"`` -> ``99.0``: the percentile a key names."""
    return float(key.removeprefix("p").replace("_", "."))


@dataclass(frozen=True)
class Latency:
    """A latency that benchmarks report as a mean and percentiles over a run, in milliseconds:
    one metric ``<key>_ms_<statistic>`` per statistic of ``LATENCY_STATISTICS``."""

    key: str
    meaning: str
    domain: Domain
    # One value per request (ITL has one per gap between chunks), so a goodput objective can hold
    # each request to a limit on it.
    per_request: bool
    known_as: tuple[Alias, ...] = ()

    def metric(self, statistic: str) -> str:
        return f"{self.key}_ms_{statistic}"


LATENCIES: dict[str, Latency] = {latency.key: latency for latency in (
    Latency("ttft", "time to first token", LATENCY, per_request=True, known_as=known_as(
        vllm="ttft", bench="ttft", guidellm="time_to_first_token_ms",
        aiperf="time_to_first_token")),
    # GuideLLM's and AIPerf's inter-token latency is per request (last - first token) /
    # (output tokens - 1), which is vLLM's TPOT, not its ITL.
    Latency("tpot", "time per output token after the first", GAP, per_request=True,
            known_as=known_as(vllm="tpot", bench="tpot", guidellm="inter_token_latency_ms",
                              aiperf="inter_token_latency")),
    Latency("itl", "inter-token latency", GAP, per_request=False,
            known_as=known_as(vllm="itl", bench="itl")),
    Latency("e2el", "end-to-end request latency", LATENCY, per_request=True, known_as=known_as(
        vllm="e2el", bench="e2el", guidellm=("request_latency", 1000.0),  # seconds
        aiperf="request_latency")),
)}
# Latencies a goodput objective can limit, request by request.
GOODPUT_LATENCIES = tuple(key for key, latency in LATENCIES.items() if latency.per_request)
# What an SLO can limit: every latency at every percentile (``ttft_ms_p99``).
SLO_METRICS = tuple(latency.metric(p) for latency in LATENCIES.values() for p in PERCENTILE_KEYS)


def latency_statistic(metric: str) -> tuple[str, str]:
    """``"ttft_ms_p99"`` -> ``("ttft", "p99")``; ValueError for a name that is no latency metric."""
    key, _, statistic = metric.partition("_ms_")
    if key not in LATENCIES or statistic not in LATENCY_STATISTICS:
        raise ValueError(f"{metric!r} is no latency metric")
    return key, statistic


def _build() -> dict[str, Metric]:
    metrics = [
        Metric("decode_tok_s", "tok/s", True, "output tokens per second of one request while "
                                              "decoding", RATE, implied_scenario=ONE_STREAM),
        Metric("prefill_tok_s", "tok/s", True, "prompt tokens per second processed before the first "
                                               "output token", RATE, implied_scenario=ONE_STREAM),
        Metric("output_tok_s", "tok/s", True, "output tokens per second over all requests", RATE,
               known_as=known_as(vllm="output_throughput", bench="output_tok_s",
                                 guidellm="output_tokens_per_second",
                                 aiperf="output_token_throughput")),
        Metric("total_tok_s", "tok/s", True, "prompt and output tokens per second over all requests",
               RATE, known_as=known_as(vllm="total_token_throughput", bench="total_tok_s")),
        Metric("request_per_s", "req/s", True, "completed requests per second", RATE,
               known_as=known_as(vllm="request_throughput", bench="request_per_s",
                                 guidellm="requests_per_second", aiperf="request_throughput")),
        Metric("goodput_req_s", "req/s", True, "requests per second that met the service-level "
                                               "objectives", RATE,
               known_as=known_as(vllm="request_goodput", bench="goodput_req_s")),
        Metric("vram_gb", "GiB", False, "GPU memory held by the engine, in GiB (2**30 bytes)",
               AMOUNT),
        Metric("startup_s", "s", False, "seconds from launch until the server answers", DURATION),
        Metric("launch_ok", "bool", True, "1 when the engine started and served, 0 when it did not "
                                          "(with the reason in the note)", YES_NO, boolean=True),
    ]
    for latency in LATENCIES.values():
        for statistic in LATENCY_STATISTICS:
            shown = "mean" if statistic == "mean" else f"{statistic[1:]}th percentile"
            metrics.append(Metric(latency.metric(statistic), "ms", False,
                                  f"{shown} {latency.meaning}", latency.domain))
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
    metrics += [  # the quality scenario (bench.quality): next-token distributions against a
        # reference candidate's on stackdecide's evaluation text (certify.divergence)
        Metric("kl_div_mean", "nats", False, "mean over positions of the KL divergence of the "
                                             "next-token distribution from the reference's (its "
                                             "top k, the rest lumped)", DIVERGENCE),
        Metric("kl_div_p99", "nats", False, "99th percentile over positions of that KL "
                                            "divergence", DIVERGENCE),
        Metric("top1_agree_pct", "%", True, "share of positions whose most likely next token is "
                                            "the reference's", PERCENT),
        Metric("ppl_ratio", "ratio", False, "perplexity of the evaluation text over the "
                                            "reference's", RATIO),
        Metric("greedy_agree_pct", "%", True, "share of the reference's greedy continuations "
                                              "repeated before the first different token",
               PERCENT),
    ]
    return {metric.name: metric for metric in metrics}


METRICS: dict[str, Metric] = _build()


def tool_metrics(tool: Tool) -> dict[str, tuple[str, float]]:
    """``{their key: (metric, factor)}`` of the metrics other than latencies that ``tool``
    reports, in catalogue order: ``tool_metrics("vllm")["output_throughput"]`` is
    ``("output_tok_s", 1.0)``."""
    return {alias.key: (metric.name, alias.scale) for metric in METRICS.values()
            for alias in metric.known_as if alias.tool == tool}


def tool_latencies(tool: Tool) -> dict[str, tuple[str, float]]:
    """``{their key: (latency, factor to ms)}`` of the latencies ``tool`` reports:
    ``tool_latencies("guidellm")["request_latency"]`` is ``("e2el", 1000.0)``."""
    return {alias.key: (latency.key, alias.scale) for latency in LATENCIES.values()
            for alias in latency.known_as if alias.tool == tool}


def get_metric(name: str, location: Location | None = None) -> Metric:
    """The metric called ``name``; an unknown name raises an error listing the known ones."""
    try:
        return METRICS[name]
    except KeyError:
        raise EvidenceError(unknown_metric_message(name), location) from None


def unknown_metric_message(name: str) -> str:
    return f"unknown metric '{name}'{did_you_mean(name, METRICS)} Known metrics: {', '.join(METRICS)}"
