"""The roofline of each predicted metric under a load: the fastest the GPU could possibly go.

* ``decode_tok_s`` (one stream's output rate): ``facts.roofline.decode_ceiling`` at the mean
  context of a request (prompt + half the output); with several streams per replica, one step
  reads the weights once and every stream's KV cache, so a stream's rate is ``1 / step``.
* ``prefill_tok_s``: ``facts.roofline.prefill_ceiling`` for one prompt of ``input_len`` tokens.
* ``output_tok_s`` at ``concurrency`` streams of ``input_len`` / ``output_len`` tokens, per replica
  (data parallel splits the streams): while ``B`` requests run at once, serving them takes at
  least ``output_len`` decode steps that each read the weights and ``B`` KV caches at the mean
  context (memory), and at least the FLOPs of ``B`` prompts plus ``B x output_len`` decode tokens
  at the tensor peak (compute); the ceiling is ``B x output_len`` over the larger of the two.
  ``B`` is the streams per replica, capped by ``max_num_seqs`` (vLLM's default for the GPU when unset)
  and by the sequences the KV cache holds (``audit.capacity``).

Upper limits, like the rooflines they come from: batched decode of a mixture of experts is
counted with one token's experts, and decode attention FLOPs are left out, so nothing here can
be below what a GPU reaches. ``startup_s`` has no roofline.
"""

from __future__ import annotations

from dataclasses import dataclass, replace

from stackdecide.facts import parallel
from stackdecide.facts.roofline import GpuPeaks, decode_ceiling, prefill_ceiling
from stackdecide.facts.shapes import ModelShape

RATE_METRICS = ("decode_tok_s", "prefill_tok_s", "output_tok_s")


@dataclass(frozen=True)
class Load:
    """What a metric is measured under: streams at once and the tokens of each request."""

    concurrency: float
    input_len: int
    output_len: int

    @property
    def label(self) -> str:
        streams = "1 stream" if self.concurrency == 1 else f"{self.concurrency:g} streams"
        return f"{streams}, {self.input_len}/{self.output_len} tokens"


@dataclass(frozen=True)
class ServingSetup:
    """What the rooflines need of one configuration on one GPU model."""

    shape: ModelShape
    peaks: GpuPeaks  # one GPU's peaks, count 1
    weights: str  # checkpoint format (facts.dtypes)
    kv_cache_dtype: str
    layout: parallel.ParallelLayout
    max_num_seqs: int | None  # as vLLM runs it (its default where unset); None: not known
    kv_tokens: int | None  # KV tokens one replica holds; None: not known


@dataclass(frozen=True)
class Ceiling:
    """A metric's roofline under a load, with what bound it."""

    metric: str
    value: float  # tok/s
    bound: str  # "memory" or "compute"
    streams: float  # requests running at once on one replica, after the caps
    limited_by: str  # what set ``streams``: "load", "max_num_seqs" or "KV cache"
    replicas: int  # replicas serving the load


def _replica_peaks(setup: ServingSetup) -> GpuPeaks:
    return replace(setup.peaks, count=setup.layout.tp)


def busy_replicas(setup: ServingSetup, load: Load) -> int:
    """Replicas with a request to serve: fewer streams than replicas leave some idle."""
    return max(1, min(setup.layout.dp, int(load.concurrency)))


def streams_per_replica(setup: ServingSetup, load: Load) -> tuple[float, str]:
    """Requests one busy replica runs at once under ``load``, and what capped them."""
    streams, why = load.concurrency / busy_replicas(setup, load), "load"
    seqs = setup.max_num_seqs
    if seqs is not None and seqs < streams:
        streams, why = float(seqs), "max_num_seqs"
    if setup.kv_tokens is not None:
        fit = setup.kv_tokens / (load.input_len + load.output_len)
        if fit < streams:
            streams, why = max(fit, 1.0), "KV cache"
    return max(streams, 1.0), why


def _step_seconds(setup: ServingSetup, load: Load, streams: float) -> float:
    """One decode step of ``streams`` requests at the mean context: the weights once, every
    stream's KV cache, the tensor-parallel all-reduces."""
    hardware = _replica_peaks(setup)
    context = load.input_len + load.output_len // 2
    one = decode_ceiling(setup.shape, hardware, setup.weights, setup.kv_cache_dtype, context)
    share = parallel.kv_share(setup.shape, setup.layout) if hardware.count > 1 else 1.0
    weights_read = one.bytes_per_token - one.kv_bytes * share
    step_bytes = weights_read + streams * one.kv_bytes * share
    return step_bytes / (hardware.memory_bandwidth_gb_s * 1e9) + one.all_reduce_s


def decode_rate(setup: ServingSetup, load: Load) -> Ceiling:
    streams, why = streams_per_replica(setup, load)
    return Ceiling("decode_tok_s", 1.0 / _step_seconds(setup, load, streams), "memory", streams,
                   why, busy_replicas(setup, load))


def prefill_rate(setup: ServingSetup, load: Load) -> Ceiling | None:
    found = prefill_ceiling(setup.shape, _replica_peaks(setup), setup.weights,
                            setup.kv_cache_dtype, load.input_len)
    if found is None:
        return None
    return Ceiling("prefill_tok_s", found.tok_s, found.bound, 1.0, "load", 1)


def output_rate(setup: ServingSetup, load: Load) -> Ceiling | None:
    hardware = _replica_peaks(setup)
    prompt = prefill_ceiling(setup.shape, hardware, setup.weights, setup.kv_cache_dtype,
                             load.input_len)
    if prompt is None:
        return None
    streams, why = streams_per_replica(setup, load)
    memory_s = load.output_len * _step_seconds(setup, load, streams)
    scale = 1e12 * hardware.count
    token_s = 2.0 * setup.shape.active_linear_params / (prompt.linear_tflops * scale) \
        + 2.0 * setup.shape.lm_head_params / (prompt.attention_tflops * scale)
    compute_s = streams * (prompt.compute_s + load.output_len * token_s)
    seconds = max(memory_s, compute_s)
    replicas = busy_replicas(setup, load)
    return Ceiling("output_tok_s", replicas * streams * load.output_len / seconds,
                   "memory" if memory_s >= compute_s else "compute", streams, why, replicas)


def metric_ceiling(metric: str, setup: ServingSetup, load: Load) -> Ceiling | None:
    """The roofline of ``metric`` under ``load``; None for a metric without one (``startup_s``)
    or a GPU whose tensor peaks are unknown (prefill and throughput)."""
    if metric == "decode_tok_s":
        return decode_rate(setup, load)
    if metric == "prefill_tok_s":
        return prefill_rate(setup, load)
    if metric == "output_tok_s":
        return output_rate(setup, load)
    return None
