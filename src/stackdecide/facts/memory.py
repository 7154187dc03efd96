"""Memory arithmetic of a serving configuration: weights, KV cache per token, what is left for it.

Estimates from the model shape, not measurements; every term is kept so a message can show it.
vLLM's own accounting (v1 worker): budget = total memory x gpu_memory_utilization; from it come
the weights, the activation peak of a profiling forward pass over ``max_num_batched_tokens``
tokens, memory outside PyTorch (CUDA context, cuBLAS/NCCL workspaces) and CUDA graphs; the rest
holds the KV cache, which must fit at least one sequence of ``max_model_len`` tokens.

What one sequence holds follows vLLM 0.32's KV-cache spec of each layer kind
(``vllm/v1/kv_cache_interface.py``, ``ModelShape.layer_types``): full-attention and MLA layers keep
every token (``FullAttentionSpec``, ``MLAAttentionSpec``); sliding-window layers the window and the
tokens of the steps in flight (``SlidingWindowSpec``); linear-attention layers a fixed state
whatever the length (``MambaSpec``). vLLM refuses to start when one request of ``max_model_len``
does not fit (``vllm/v1/core/kv_cache_utils.py`` ``check_enough_kv_cache_memory``), and logs
``num_blocks / blocks per request`` as its maximum concurrency
(``get_max_concurrency_for_kv_cache_config``).
"""

from __future__ import annotations

from dataclasses import dataclass

from stackdecide.facts import dtypes, parallel
from stackdecide.facts.gpus import GIB
from stackdecide.facts.parallel import ParallelLayout
from stackdecide.facts.shapes import ModelShape

# Outside PyTorch's allocator: CUDA context plus cuBLAS and NCCL workspaces. vLLM logs this as
# "non-torch memory"; around half a GiB on a single GPU.
NON_TORCH_BYTES = GIB // 2


def _estimate_names(weights: str | None, model_dtype: str,
                    kv_cache_dtype: str = "auto") -> tuple[str | None, str, str]:
    """Names ``facts.dtypes`` knows, for an estimate: a memory check should not fail on a name
    it has no table entry for, so an unknown FP8 format counts as FP8 (block-scaled when it says
    "block"), any other unknown format or dtype as 16 bit."""
    if weights and not _known_format(weights):
        weights = ("fp8-block" if "block" in weights.lower() else "fp8") if dtypes.is_fp8(weights) \
            else None
    if model_dtype.lower() not in dtypes.MODEL_DTYPE_BYTES:
        model_dtype = "auto"
    if kv_cache_dtype.lower() != "auto" and kv_cache_dtype.lower() not in dtypes.KV_BYTES:
        kv_cache_dtype = "bf16"
    return weights, model_dtype, kv_cache_dtype


def _known_format(weights: str) -> bool:
    try:
        dtypes.weight_format(weights)
    except dtypes.UnknownDtypeError:
        return False
    return True


def kv_bytes_per_token(shape: ModelShape, kv_cache_dtype: str = "auto",
                       model_dtype: str = "auto") -> float:
    """KV-cache bytes one token takes across the attention layers: 2 x kv_heads x head_dim x
    bytes per layer (MLA: kv_lora_rank + qk_rope_head_dim). Linear-attention layers take none:
    their state is per sequence (``state_bytes_per_sequence``)."""
    _, model_dtype, kv_cache_dtype = _estimate_names(None, model_dtype, kv_cache_dtype)
    return shape.kv_elements_per_token * dtypes.kv_dtype_bytes(kv_cache_dtype, model_dtype)


def state_bytes_per_sequence(shape: ModelShape, model_dtype: str = "auto") -> float:
    """The fixed state linear-attention layers keep for one sequence, whatever its length
    (vLLM 0.32 ``MambaSpec.max_memory_usage_bytes``: one page per request). The convolution
    state takes the model dtype (``--mamba-cache-dtype auto``), the recurrent state the
    checkpoint's ``mamba_ssm_dtype`` where it gives one (as vLLM 0.32 ``models/config.py`` reads it
    for Qwen3.5), else the model dtype (``--mamba-ssm-cache-dtype auto``)."""
    if not shape.linear_layers:
        return 0.0
    _, model_dtype, _ = _estimate_names(None, model_dtype)
    conv_bytes = dtypes.model_dtype_bytes(model_dtype)
    ssm_dtype = _estimate_names(None, shape.linear_state_dtype)[1] if shape.linear_state_dtype \
        else model_dtype
    conv, recurrent = shape.linear_state_elements_per_layer
    return shape.linear_layers * (conv * conv_bytes + recurrent * dtypes.model_dtype_bytes(ssm_dtype))


def in_flight_tokens(max_num_batched_tokens: int, pipeline_parallel_size: int = 1,
                     async_scheduling: bool = True) -> int:
    """Tokens scheduled but not yet processed, which sliding-window layers hold besides the
    window: vLLM 0.32 ``VllmConfig.max_in_flight_tokens``, ``max_concurrent_batches x
    max_num_batched_tokens``, where async scheduling (on by default) keeps ``pp + 1`` batches in
    flight and synchronous scheduling ``pp``."""
    batches = pipeline_parallel_size + (1 if async_scheduling else 0)
    return batches * max_num_batched_tokens


def kv_bytes_reserved(shape: ModelShape, tokens: int, kv_cache_dtype: str = "auto",
                      model_dtype: str = "auto", *, in_flight_tokens: int) -> float:
    """KV-cache bytes vLLM reserves for one request of ``tokens`` on one replica: every token on
    full-attention layers, ``min(window - 1 + in_flight_tokens, tokens)`` on sliding-window
    layers (``ModelShape.kv_elements_reserved``)."""
    _, model_dtype, kv_cache_dtype = _estimate_names(None, model_dtype, kv_cache_dtype)
    return shape.kv_elements_reserved(tokens, in_flight_tokens) \
        * dtypes.kv_dtype_bytes(kv_cache_dtype, model_dtype)


def kv_bytes_per_sequence(shape: ModelShape, tokens: int, kv_cache_dtype: str = "auto",
                          model_dtype: str = "auto", *, in_flight_tokens: int) -> float:
    """What one request of ``tokens`` holds on one replica: its KV cache (``kv_bytes_reserved``)
    and the linear-attention layers' fixed state."""
    return kv_bytes_reserved(shape, tokens, kv_cache_dtype, model_dtype,
                             in_flight_tokens=in_flight_tokens) \
        + state_bytes_per_sequence(shape, model_dtype)


def weight_bytes(shape: ModelShape, weights: str | None = None, model_dtype: str = "auto") -> float:
    """Weight memory of checkpoint format ``weights`` (``bf16``, ``fp8``, ``fp8-block``...) loaded
    with ``--dtype model_dtype``: ``facts.dtypes.weight_bytes``, whose module doc says what each
    format keeps in 16 bit and which scales it adds."""
    return weight_parts(shape, weights, model_dtype).total


def weight_parts(shape: ModelShape, weights: str | None = None,
                 model_dtype: str = "auto") -> dtypes.WeightBytes:
    """``weight_bytes`` part by part (projections, scales, embedding, LM head, norms): what
    ``facts.parallel`` splits over GPUs."""
    weights, model_dtype, _ = _estimate_names(weights, model_dtype)
    return dtypes.weight_bytes(shape, weights, model_dtype)


def activation_peak_bytes(shape: ModelShape, max_num_batched_tokens: int, max_num_seqs: int,
                          model_dtype: str = "auto") -> float:
    """Rough peak of vLLM's profiling pass: the widest layer outputs for a full token batch, plus
    float32 logits for every sequence (the sampler's batch). The two sizes are the ones vLLM
    runs with: the configuration's, or vLLM's defaults for the GPU (``facts.vllm_defaults``)."""
    dtype_bytes = dtypes.model_dtype_bytes(_estimate_names(None, model_dtype)[1])
    # an MoE layer holds each token's routed experts' intermediate activations
    mlp = max(shape.intermediate_size if shape.moe_layers < shape.num_layers else 0,
              shape.expert_intermediate_size * shape.experts_per_token)
    widest = (2 * mlp + mlp + 2 * shape.hidden_size
              + (shape.num_heads + 2 * shape.num_kv_heads) * shape.head_dim)
    return max_num_batched_tokens * widest * dtype_bytes + max_num_seqs * shape.vocab_size * 4


@dataclass(frozen=True)
class KvBudget:
    """What is left for the KV cache, with every term of the subtraction."""

    total_bytes: float
    utilization: float
    weight_bytes: float
    activation_bytes: float
    non_torch_bytes: float
    explicit_kv_bytes: float | None = None  # kv_cache_memory_bytes / VLLM_CPU_KVCACHE_SPACE

    @property
    def budget_bytes(self) -> float:
        return self.total_bytes * self.utilization

    @property
    def kv_bytes(self) -> float:
        if self.explicit_kv_bytes is not None:
            return self.explicit_kv_bytes
        return self.budget_bytes - self.weight_bytes - self.activation_bytes - self.non_torch_bytes

    def describe(self) -> str:
        if self.explicit_kv_bytes is not None:
            return f"the KV cache is set to {gib(self.explicit_kv_bytes)}"
        return (f"{gib(self.total_bytes)} x {self.utilization:g} = {gib(self.budget_bytes)}, minus "
                f"weights {gib(self.weight_bytes)}, activation peak ~{gib(self.activation_bytes)}"
                f" and non-torch memory ~{gib(self.non_torch_bytes)} leaves "
                f"{gib(self.kv_bytes)} for the KV cache")


def gib(value: float) -> str:
    return f"{value / GIB:.2f} GiB"


@dataclass(frozen=True)
class Capacity:
    """What the KV cache holds: vLLM's "KV cache size: N tokens, Maximum concurrency for L tokens
    per request: X.XXx", estimated from the shape and the budget; bytes are per GPU."""

    kv_bytes: float  # the KV-cache budget
    kv_bytes_per_token: float  # the attention layers, within any sliding window
    max_model_len: int
    bytes_per_sequence: float  # what one request of max_model_len reserves, state included
    state_bytes_per_sequence: float  # of it, the linear-attention layers' fixed state
    concurrency: float  # sequences of max_model_len that fit at once
    tokens: int  # KV tokens that fit: concurrency x max_model_len, as vLLM counts them

    @property
    def fits_one(self) -> bool:
        return self.concurrency >= 1


def capacity(shape: ModelShape, budget: KvBudget, max_model_len: int,
             kv_cache_dtype: str = "auto", model_dtype: str = "auto", *,
             layout: ParallelLayout, in_flight_tokens: int) -> Capacity:
    """Tokens and full-length sequences the KV cache of ``budget`` (per GPU) holds on the
    fullest GPU of ``layout``. vLLM counts tokens as ``concurrency x max_model_len``, where
    concurrency is the budget over what one request reserves (``kv_bytes_per_sequence``: for a
    model with full attention only, the budget over the bytes per token); block rounding (a few
    blocks at most) is left out."""
    share = parallel.kv_share(shape, layout)
    per_token = kv_bytes_per_token(shape, kv_cache_dtype, model_dtype) * share
    state = state_bytes_per_sequence(shape, model_dtype) * parallel.state_share(shape, layout)
    per_sequence = state + share * kv_bytes_reserved(shape, max_model_len, kv_cache_dtype,
                                                     model_dtype, in_flight_tokens=in_flight_tokens)
    available = max(0.0, budget.kv_bytes)
    concurrency = available / per_sequence if per_sequence > 0 else 0.0
    return Capacity(available, per_token, max_model_len, per_sequence, state, concurrency,
                    int(concurrency * max_model_len))


def longest_sequence(shape: ModelShape, budget: KvBudget, max_model_len: int,
                     kv_cache_dtype: str = "auto", model_dtype: str = "auto", *,
                     layout: ParallelLayout, in_flight_tokens: int) -> int:
    """The longest request, up to ``max_model_len`` tokens, the KV cache of ``budget`` holds; 0
    when not one token fits. vLLM 0.32 ``kv_cache_utils.estimate_max_model_len``: a binary search
    over what one request reserves."""
    def fits(tokens: int) -> bool:
        return capacity(shape, budget, tokens, kv_cache_dtype, model_dtype, layout=layout,
                        in_flight_tokens=in_flight_tokens).fits_one

    if not fits(1):
        return 0
    low, high = 1, max_model_len
    while low < high:
        middle = (low + high + 1) // 2
        low, high = (middle, high) if fits(middle) else (low, middle - 1)
    return low
