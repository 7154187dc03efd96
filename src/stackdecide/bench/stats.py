"""Benchmark statistics: per-request records in, the summaries that ``vllm bench serve`` prints out.

Every formula follows ``vllm/benchmarks/serve.py`` (``calculate_metrics``) so that numbers from
``stackdecide bench`` and from ``vllm bench serve`` mean the same thing; docs/metrics.md writes
them down. Pure functions: no I/O, no clocks.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass, field, make_dataclass
from typing import Any, Self

import numpy as np

from stackdecide.model import derived
from stackdecide.model.metrics import GOODPUT_LATENCIES, percentile_key

# The percentiles of each latency a summary holds unless more are asked for (an SLO's).
PERCENTILES = (50.0, 90.0, 99.0)


@dataclass
class RequestRecord:
    """One request as the client saw it. Times are seconds from ``time.perf_counter``.

    ``itl_s`` holds the gaps between consecutive streamed chunks that carried ``choices`` (the
    first chunk's arrival is the TTFT). ``latency_s`` ends at the last such chunk, as in vLLM.
    """

    index: int
    prompt_len: int  # tokens sent; replaced by the server's usage.prompt_tokens when reported
    max_tokens: int
    start_s: float = 0.0  # offset from the start of its level
    success: bool = False
    ttft_s: float = 0.0
    latency_s: float = 0.0
    itl_s: list[float] = field(default_factory=list)
    output_tokens: int = 0  # usage.completion_tokens, or the number of chunks when not reported
    chunks: int = 0  # streamed chunks that carried choices
    usage_reported: bool = False
    error: str = ""
    error_kind: str = ""  # see bench_stream.FailureKind

    @property
    def arrivals(self) -> int:
        """Chunks that reached the client apart from the one before (``derived.arrivals``)."""
        return derived.arrivals(self.chunks, self.itl_s)

    @property
    def tpot_s(self) -> float | None:
        """Time per output token after the first; None for one-token outputs (vLLM skips them)."""
        if not self.success or self.output_tokens <= 1:
            return None
        return (self.latency_s - self.ttft_s) / (self.output_tokens - 1)

    def latency_ms(self, latency: str) -> float:
        """This request's value of a latency of ``GOODPUT_LATENCIES``, in milliseconds (a
        one-token output's TPOT counts as 0, as vLLM's goodput counts it)."""
        seconds = {"ttft": self.ttft_s, "tpot": self.tpot_s or 0.0, "e2el": self.latency_s}
        return seconds[latency] * 1000.0

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> RequestRecord:
        return cls(**data)


@dataclass(frozen=True)
class Distribution:
    """Mean, median, standard deviation and percentiles of one latency metric, in milliseconds."""

    count: int
    mean: float
    median: float
    std: float
    percentiles: dict[str, float]  # "p50", "p90", "p99" -> value

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def distribution(values: Sequence[float], percentiles: Sequence[float] = PERCENTILES,
                 scale: float = 1000.0) -> Distribution | None:
    """Summary of values (default: seconds, reported in milliseconds); None when there are none.

    Percentiles use numpy's default linear interpolation, as ``vllm bench serve`` does.
    """
    if len(values) == 0:
        return None
    scaled = np.asarray(values, dtype=float) * scale
    return Distribution(
        count=int(scaled.size), mean=float(scaled.mean()), median=float(np.median(scaled)),
        std=float(scaled.std()),
        percentiles={percentile_key(p): float(np.percentile(scaled, p)) for p in percentiles})


class GoodputObjectives:
    """What a ``Slo`` does with its fields, whichever latencies they are."""

    def __bool__(self) -> bool:
        return bool(self.to_dict())

    def to_dict(self) -> dict[str, float]:
        return {k: v for k, v in asdict(self).items() if v is not None}  # type: ignore[call-overload]

    def limits_ms(self) -> dict[str, float]:
        """``{"ttft": 500.0}``: each objective given, by latency."""
        return {key.removesuffix("_ms"): value for key, value in self.to_dict().items()}

    @classmethod
    def from_limits(cls, limits_ms: Mapping[str, float]) -> Self:
        """The objectives of the latencies among ``limits_ms`` that a request can be held to."""
        return cls(**{f"{key}_ms": value for key, value in limits_ms.items()
                      if key in GOODPUT_LATENCIES})


# Service-level objectives for goodput, in milliseconds (``--goodput ttft:MS tpot:MS``): a field
# ``<latency>_ms`` for each latency of the metric catalogue that a request has one value of.
Slo = make_dataclass(
    "Slo", [(f"{key}_ms", float | None, field(default=None)) for key in GOODPUT_LATENCIES],
    bases=(GoodputObjectives,), frozen=True,
    namespace={"__doc__": "Service-level objectives for goodput, in milliseconds."})
Slo.__module__ = __name__  # where pickle (a config sent to a worker process) looks it up


def parse_slo(pairs: Sequence[str]) -> GoodputObjectives:
    """``["ttft:500", "tpot:50"]`` (or one string with spaces) -> Slo. Raises ValueError."""
    values: dict[str, float] = {}
    for item in (part for text in pairs for part in text.replace(",", " ").split()):
        name, sep, number = item.partition(":")
        if not sep:
            raise ValueError(f"'{item}' is not KEY:MILLISECONDS (e.g. ttft:500)")
        if name not in GOODPUT_LATENCIES:
            *most, last = GOODPUT_LATENCIES
            raise ValueError(f"unknown objective '{name}'; use {', '.join(most)} or {last}")
        try:
            value = float(number)
        except ValueError:
            raise ValueError(f"'{number}' in '{item}' is not a number of milliseconds") from None
        if not value >= 0:
            raise ValueError(f"objective '{item}' must be a non-negative number of milliseconds")
        values[name] = value
    return Slo.from_limits(values)


def is_good(record: RequestRecord, slo: GoodputObjectives) -> bool:
    """Whether a successful request meets every objective of ``slo``."""
    return all(record.latency_ms(name) <= limit for name, limit in slo.limits_ms().items())


@dataclass(frozen=True)
class Summary:
    """What ``vllm bench serve`` reports for one run, from the successful requests.

    Throughputs divide by ``duration_s``, the wall time from the first request sent to the last
    one finished (warm-up excluded).
    """

    completed: int
    failed: int
    duration_s: float
    total_input_tokens: int
    total_output_tokens: int
    request_per_s: float
    output_tok_s: float
    total_tok_s: float
    goodput_req_s: float | None
    ttft: Distribution | None
    tpot: Distribution | None
    itl: Distribution | None
    e2el: Distribution | None
    prefill_tok_s: Distribution | None = None  # per request prompt_len / TTFT, as tok/s (not ms)
    # median over requests of output tokens / arrivals (chunks, chunks read together counted once)
    tokens_per_chunk_p50: float | None = None

    @property
    def bursty(self) -> bool:
        """Whether the median request arrived in bursts of tokens rather than token by token.

        A server that decodes faster than it streams (a tiny model on a CPU) sends most of a
        request's tokens in a few chunks, and a server or client short of CPU can deliver a
        stream's chunks all at once; TPOT then measures the HTTP path, not decoding.
        """
        return derived.is_bursty(self.tokens_per_chunk_p50)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def summarize(records: Sequence[RequestRecord], duration_s: float,
              slo: GoodputObjectives | None = None,
              percentiles: Sequence[float] = PERCENTILES) -> Summary:
    """The run's summary from its request records; see docs/metrics.md for each definition and
    ``model.derived`` for the rates derived from them."""
    slo = slo or Slo()
    good = [r for r in records if r.success]
    failed = len(records) - len(good)
    total_input = sum(r.prompt_len for r in good)
    total_output = sum(r.output_tokens for r in good)
    tpots = [t for r in good if (t := r.tpot_s) is not None]
    itls = [gap for r in good for gap in r.itl_s]
    rate = (lambda n: n / duration_s) if duration_s > 0 else (lambda n: 0.0)
    prefill = derived.prefill_rates([r.prompt_len for r in good], [r.ttft_s for r in good])
    return Summary(
        completed=len(good), failed=failed, duration_s=duration_s,
        total_input_tokens=total_input, total_output_tokens=total_output,
        request_per_s=rate(len(good)),
        output_tok_s=derived.output_tok_s(total_output, duration_s),
        total_tok_s=rate(total_input + total_output),
        goodput_req_s=rate(sum(is_good(r, slo) for r in good)) if slo else None,
        ttft=distribution([r.ttft_s for r in good], percentiles),
        tpot=distribution(tpots, percentiles),
        itl=distribution(itls, percentiles),
        e2el=distribution([r.latency_s for r in good], percentiles),
        prefill_tok_s=distribution(prefill, percentiles, scale=1.0),
        tokens_per_chunk_p50=derived.tokens_per_chunk([r.output_tokens for r in good],
                                                      [r.arrivals for r in good]))
