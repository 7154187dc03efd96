"""Memory arithmetic of a serving configuration: weights, KV cache per token, what is left for it.

Estimates from the model shape, not measurements; every term is kept so a message can show it.
vLLM's own accounting (v1 worker): budget = total memory x gpu_memory_utilization; from it come
the weights, the activation peak of a profiling forward pass over ``max_num_batched_tokens``
tokens, memory outside PyTorch (CUDA context, cuBLAS/NCCL workspaces) and CUDA graphs; the rest
holds the KV cache, which must fit at least one sequence of ``max_model_len`` tokens.
"""

from __future__ import annotations

from dataclasses import dataclass

from stackdecide.facts.shapes import ModelShape

GIB = 1024**3

# Bytes per element of each KV-cache dtype name vLLM accepts; "auto" follows the model dtype.
KV_DTYPE_BYTES: dict[str, float] = {
    "bfloat16": 2, "float16": 2, "half": 2, "float": 4, "float32": 4,
    "fp8": 1, "fp8_e4m3": 1, "fp8_e5m2": 1, "fp8_inc": 1, "fp8_ds_mla": 1,
    "fp8_per_token_head": 1, "int8_per_token_head": 1, "int4_per_token_head": 0.5,
    "nvfp4": 0.5, "nvfp4_4over6": 0.5,
}
MODEL_DTYPE_BYTES: dict[str, float] = {
    "auto": 2, "bfloat16": 2, "float16": 2, "half": 2, "float": 4, "float32": 4,
}
# Outside PyTorch's allocator: CUDA context plus cuBLAS and NCCL workspaces. vLLM logs this as
# "non-torch memory"; around half a GiB on a single GPU.
NON_TORCH_BYTES = GIB // 2
# The scheduler defaults when a configuration leaves them unset (vLLM's V1 server on most GPUs).
ASSUMED_MAX_NUM_BATCHED_TOKENS = 8192
ASSUMED_MAX_NUM_SEQS = 256


def kv_bytes_per_token(shape: ModelShape, kv_cache_dtype: str = "auto",
                       model_dtype: str = "auto") -> float:
    """KV-cache bytes one token takes across all layers: 2 x layers x kv_heads x head_dim x bytes."""
    if kv_cache_dtype == "auto":
        element = MODEL_DTYPE_BYTES.get(model_dtype, 2)
    else:
        element = KV_DTYPE_BYTES.get(kv_cache_dtype, 2)
    return shape.kv_elements_per_token * element


def embedding_params(shape: ModelShape) -> int:
    return shape.vocab_size * shape.hidden_size * (1 if shape.tie_word_embeddings else 2)


def weight_bytes(shape: ModelShape, weights: str | None = None, model_dtype: str = "auto") -> float:
    """Weight memory: params x dtype bytes; FP8 checkpoints keep embeddings and norms in 16 bit.

    ``weights`` is the checkpoint format (``bf16``, ``fp8``, ``fp8-block``...); block-FP8 adds one
    float32 scale per 128 x 128 block of each linear layer.
    """
    dtype_bytes = MODEL_DTYPE_BYTES.get(model_dtype, 2)
    if weights and weights.lower().startswith("fp8"):
        unquantized = embedding_params(shape) + shape.hidden_size * (2 * shape.num_layers + 1)
        linear = shape.params - unquantized
        scales = linear / (128 * 128) * 4 if "block" in weights.lower() else 0
        return linear * 1 + scales + unquantized * dtype_bytes
    if weights and weights.lower() in ("fp32", "float32"):
        return shape.params * 4.0
    return shape.params * dtype_bytes


def activation_peak_bytes(shape: ModelShape, max_num_batched_tokens: int, max_num_seqs: int,
                          model_dtype: str = "auto") -> float:
    """Rough peak of vLLM's profiling pass: the widest layer outputs for a full token batch, plus
    float32 logits for every sequence (the sampler's batch)."""
    dtype_bytes = MODEL_DTYPE_BYTES.get(model_dtype, 2)
    widest = (2 * shape.intermediate_size + shape.intermediate_size + 2 * shape.hidden_size
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


def tokens_that_fit(budget: KvBudget, bytes_per_token: float) -> int:
    return max(0, int(budget.kv_bytes // bytes_per_token)) if bytes_per_token > 0 else 0
