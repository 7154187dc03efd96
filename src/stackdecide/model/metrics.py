"""The metrics evidence can hold, each with its unit and which way is better.

Names follow ``<quantity>_<unit>[_<statistic>]`` so a reader sees the unit in every table
(``ttft_ms_p99`` is the 99th percentile of time to first token, in milliseconds). Latency statistics
are over the requests of one benchmark run, as ``vllm bench serve`` reports them.
"""

from __future__ import annotations

import difflib
from dataclasses import dataclass

from stackdecide.errors import EvidenceError, Location


@dataclass(frozen=True)
class Metric:
    name: str
    unit: str
    higher_is_better: bool
    description: str
    boolean: bool = False  # values are 1 (yes) or 0 (no)


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
        Metric("decode_tok_s", "tok/s", True, "output tokens per second of one request while decoding"),
        Metric("prefill_tok_s", "tok/s", True, "prompt tokens per second processed before the first "
                                               "output token"),
        Metric("output_tok_s", "tok/s", True, "output tokens per second over all requests"),
        Metric("total_tok_s", "tok/s", True, "prompt and output tokens per second over all requests"),
        Metric("request_per_s", "req/s", True, "completed requests per second"),
        Metric("goodput_req_s", "req/s", True, "requests per second that met the service-level "
                                               "objectives"),
        Metric("vram_gb", "GiB", False, "GPU memory held by the engine, in GiB (2**30 bytes)"),
        Metric("startup_s", "s", False, "seconds from launch until the server answers"),
        Metric("launch_ok", "bool", True, "1 when the engine started and served, 0 when it did not "
                                          "(with the reason in the note)", boolean=True),
    ]
    for key, what in _LATENCIES.items():
        for statistic in LATENCY_STATISTICS:
            shown = "mean" if statistic == "mean" else f"{statistic[1:]}th percentile"
            metrics.append(Metric(f"{key}_ms_{statistic}", "ms", False, f"{shown} {what}"))
    return {metric.name: metric for metric in metrics}


METRICS: dict[str, Metric] = _build()


def get_metric(name: str, location: Location | None = None) -> Metric:
    """The metric called ``name``; an unknown name raises an error listing the known ones."""
    try:
        return METRICS[name]
    except KeyError:
        raise EvidenceError(unknown_metric_message(name), location) from None


def unknown_metric_message(name: str) -> str:
    close = difflib.get_close_matches(name, list(METRICS), n=1, cutoff=0.6)
    hint = f"; did you mean '{close[0]}'?" if close else ""
    return f"unknown metric '{name}'{hint} Known metrics: {', '.join(METRICS)}"
