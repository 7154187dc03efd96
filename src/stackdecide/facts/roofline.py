"""Rooflines: the fastest a GPU could possibly decode or prefill a model, from its peak numbers.

Decode (one stream) is bound by memory: every token reads all weights once, plus the KV cache of
the context so far, so ``tokens/s <= bandwidth / (weight bytes + KV bytes)``. Prefill is bound by
compute: ``2 x linear params`` FLOPs per token plus causal attention ``2 x layers x heads x
head_dim x L^2`` for an L-token prompt, at the GPU's dense tensor peak; it can be no faster than
reading the weights once either. Both are upper limits: kernels, launch gaps and scheduling make
real numbers lower. Measured with vLLM 0.26 and a Qwen3-4B shape (128 prompt + 256 output tokens,
one stream): BF16 decoded at 230 tok/s on an H100 SXM, 55% of its 414 tok/s ceiling, and at
276 tok/s on an H200, 46% of 594; FP8 weights reached 287 tok/s on the H200, 27% of 1,079. A 4B
model leaves the GPU idle between small kernels, so the smaller the bytes per token, the further
below the ceiling.

A mixture-of-experts model reads and computes only the experts a token is routed to
(``ModelShape.active_linear_params``); sliding-window layers attend to at most their window.
Bytes per weight and per KV element come from ``facts.dtypes``, as memory's do: FP8 checkpoints
(``fp8``, ``fp8-block``) keep the embedding / LM head and norms in BF16; only the attention and MLP
projections are 1 byte per weight (``fp8-block`` adds one FP32 scale per 128x128 block).
"""

from __future__ import annotations

from dataclasses import dataclass

from stackdecide.facts import dtypes, parallel
from stackdecide.facts.dtypes import UnknownDtypeError
from stackdecide.facts.gpus import GpuSpec, find_gpu
from stackdecide.facts.shapes import ModelShape

# The roofline fails only on a dtype or weight format that facts.dtypes does not know.
RooflineError = UnknownDtypeError


@dataclass(frozen=True)
class GpuPeaks:
    """What the roofline needs of the GPU(s): peaks for ``count`` GPUs (ideal tensor parallel)."""

    name: str
    memory_bandwidth_gb_s: float
    bf16_dense_tflops: float | None
    fp8_dense_tflops: float | None
    count: int = 1
    bandwidth_source: str = ""
    spec: GpuSpec | None = None
    interconnect: str = "nvlink"  # between the GPUs when count > 1 (facts.parallel latencies)

    @property
    def bandwidth_bytes_s(self) -> float:
        return self.memory_bandwidth_gb_s * 1e9 * self.count


def hardware_from(gpu: str, memory_bandwidth_gb_s: float | None = None,
                  count: int = 1) -> GpuPeaks | None:
    """The roofline's hardware from a GPU name; a given bandwidth overrides the table's.

    None when the GPU is unknown and no bandwidth is given.
    """
    spec = find_gpu(gpu)
    if memory_bandwidth_gb_s is not None:
        source = "the decision file"
        if spec is not None and spec.memory_bandwidth_gb_s != memory_bandwidth_gb_s:
            source += f" (the table says {spec.memory_bandwidth_gb_s:g} GB/s for {spec.name})"
        bandwidth = memory_bandwidth_gb_s
    elif spec is not None:
        source, bandwidth = spec.source, spec.memory_bandwidth_gb_s
    else:
        return None
    return GpuPeaks(
        name=spec.name if spec else gpu, memory_bandwidth_gb_s=bandwidth,
        bf16_dense_tflops=spec.bf16_dense_tflops if spec else None,
        fp8_dense_tflops=spec.fp8_dense_tflops if spec else None,
        count=count, bandwidth_source=source, spec=spec)



@dataclass(frozen=True)
class WeightTraffic:
    """Bytes of weights one decode step reads (batch 1)."""

    linear_bytes: float  # attention + MLP projections in the weights dtype
    scale_bytes: float  # FP32 block scales of block-FP8 checkpoints
    lm_head_bytes: float  # BF16 output projection (the tied embedding table when tied)
    norm_bytes: float

    @property
    def total(self) -> float:
        return self.linear_bytes + self.scale_bytes + self.lm_head_bytes + self.norm_bytes


def weight_traffic(shape: ModelShape, weights: str) -> WeightTraffic:
    """What one decode step reads of a checkpoint in format ``weights`` (``facts.dtypes``): of an
    MoE model, only the experts one token is routed to."""
    held = dtypes.weight_bytes(shape, weights, active=True)
    return WeightTraffic(linear_bytes=held.linear, scale_bytes=held.scales,
                         lm_head_bytes=held.lm_head, norm_bytes=held.norms)


@dataclass(frozen=True)
class DecodeCeiling:
    """Single-stream decode limit and how it was reached."""

    hardware: GpuPeaks
    shape: str
    weights: str
    kv_cache_dtype: str
    context_tokens: int
    weights_read: WeightTraffic
    kv_bytes_per_context_token: float
    kv_bytes: float  # KV cache read for one new token at this context
    bytes_per_token: float  # read by one GPU (the fullest, under tensor parallel)
    tok_s: float
    all_reduce_s: float = 0.0  # per token, tensor parallel only (facts.parallel)


def decode_ceiling(shape: ModelShape, hardware: GpuPeaks, weights: str = "bf16",
                   kv_cache_dtype: str = "auto", context_tokens: int = 0) -> DecodeCeiling:
    """Tokens/s of one stream: bandwidth / (weight bytes + KV bytes of ``context_tokens``).

    On ``hardware.count`` GPUs (tensor parallel) each GPU reads its share in parallel and every
    layer adds two all-reduces on the critical path: ``facts.parallel.tensor_parallel_decode``."""
    traffic = weight_traffic(shape, weights)
    kv_bytes = dtypes.kv_dtype_bytes(kv_cache_dtype)
    per_token = shape.kv_elements_per_token * kv_bytes
    kv = shape.kv_elements(context_tokens) * kv_bytes  # sliding-window layers read the window
    total = traffic.total + kv
    if hardware.count <= 1:
        return DecodeCeiling(hardware, shape.name, weights, kv_cache_dtype, context_tokens,
                             traffic, per_token, kv, total, hardware.bandwidth_bytes_s / total)
    layout = parallel.ParallelLayout(tp=hardware.count)
    held = dtypes.weight_bytes(shape, weights, active=True)
    per_gpu = parallel.gpu_weight_bytes(held, shape, layout).total - held.embedding / layout.tp \
        + kv * parallel.kv_share(shape, layout)  # decode reads the LM head, not the table
    one_gpu = hardware.memory_bandwidth_gb_s * 1e9
    tp = parallel.tensor_parallel_decode(per_gpu, total, one_gpu, shape, hardware.count,
                                         hardware.interconnect)
    return DecodeCeiling(hardware, shape.name, weights, kv_cache_dtype, context_tokens, traffic,
                         per_token, kv, per_gpu, tp.tok_s, tp.all_reduce_s)


@dataclass(frozen=True)
class PrefillCeiling:
    """Limit on prefill speed for one prompt of ``prompt_tokens``, with its FLOP and byte counts."""

    hardware: GpuPeaks
    shape: str
    weights: str
    kv_cache_dtype: str
    prompt_tokens: int
    linear_flops: float
    attention_flops: float
    lm_head_flops: float  # logits of the last position only
    linear_tflops: float  # peak used for the projections
    attention_tflops: float  # peak used for attention and the LM head
    compute_s: float
    memory_s: float  # weights read once, KV written once
    bound: str  # "compute" or "memory"
    tok_s: float


def prefill_ceiling(shape: ModelShape, hardware: GpuPeaks, weights: str = "bf16",
                    kv_cache_dtype: str = "auto", prompt_tokens: int = 2048
                    ) -> PrefillCeiling | None:
    """Prompt tokens/s for one prompt; None when the hardware's tensor peaks are unknown."""
    if hardware.bf16_dense_tflops is None:
        return None
    # 1-byte weights (FP8, INT8) or KV cache are taken to run at the FP8 tensor peak
    fp8_weights = dtypes.weight_format(weights).bytes == 1
    kv_bytes = dtypes.kv_dtype_bytes(kv_cache_dtype)
    fp8_kv = kv_bytes == 1
    fp8_peak = hardware.fp8_dense_tflops
    linear_tflops = fp8_peak if fp8_weights and fp8_peak else hardware.bf16_dense_tflops
    attention_tflops = fp8_peak if fp8_kv and fp8_peak else hardware.bf16_dense_tflops
    length = prompt_tokens
    linear = 2.0 * shape.active_linear_params * length  # each token runs its own experts only
    window = min(length, shape.sliding_window) if shape.sliding_window else length
    attention = 2.0 * shape.num_heads * shape.attention_dim * length * (
        shape.full_attention_layers * length + shape.sliding_layers * window)
    lm_head = 2.0 * shape.lm_head_params
    scale = 1e12 * hardware.count
    compute_s = linear / (linear_tflops * scale) + (attention + lm_head) / (
        attention_tflops * scale)
    kv_written = shape.kv_elements(length) * kv_bytes
    held = dtypes.weight_bytes(shape, weights)  # a long prompt routes tokens to every expert
    memory_s = (held.total - held.embedding + kv_written) / hardware.bandwidth_bytes_s
    seconds = max(compute_s, memory_s)
    return PrefillCeiling(hardware, shape.name, weights, kv_cache_dtype, length, linear,
                          attention, lm_head, linear_tflops, attention_tflops, compute_s,
                          memory_s, "compute" if compute_s >= memory_s else "memory",
                          length / seconds)


def best_prefill_ceiling(shape: ModelShape, hardware: GpuPeaks, weights: str = "bf16",
                         kv_cache_dtype: str = "auto", max_prompt_tokens: int = 131072
                         ) -> PrefillCeiling | None:
    """The highest prefill ceiling over prompt lengths 64, 128, ... up to ``max_prompt_tokens``:
    short prompts are bound by reading the weights, long ones by attention."""
    lengths, length = [], 64
    while length <= max(64, max_prompt_tokens):
        lengths.append(length)
        length *= 2
    ceilings = [prefill_ceiling(shape, hardware, weights, kv_cache_dtype, n) for n in lengths]
    found = [c for c in ceilings if c is not None]
    return max(found, key=lambda c: c.tok_s) if found else None
