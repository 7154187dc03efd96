"""Bytes per element of weights and KV cache, and the bytes a checkpoint's weights take.

The one place for these numbers: memory (what fits on the GPU) and the roofline (what one decode
step reads) both take them from here. A checkpoint is

* the attention and MLP projections (``ModelShape.linear_params``), in the checkpoint's format:
  BF16/FP16 2 bytes, FP32 4, FP8 and INT8 1, INT4 (AWQ, GPTQ) half a byte;
* their quantization scales: FP8 per tensor has one scale per tensor (negligible, counted as 0);
  block-FP8 (``fp8-block``, ``weight_block_size`` 128 x 128) has one FP32 scale per 128 x 128
  block; INT4 group scales are not counted (their group size varies by checkpoint);
* the embedding table, LM head and norms, which quantized checkpoints keep in 16 bit: they take
  the model dtype's bytes (vLLM's ``--dtype``; ``auto`` is BF16).

An unquantized checkpoint is loaded in the model dtype, so its projections take the model dtype's
bytes too (FP32 checkpoints excepted: they stay 4 bytes, as in the checkpoint).
"""

from __future__ import annotations

from dataclasses import dataclass

from stackdecide.facts.shapes import ModelShape

# vLLM's --dtype: the bytes of every tensor that is not quantized ("auto": BF16 for these models).
MODEL_DTYPE_BYTES: dict[str, float] = {
    "auto": 2, "bfloat16": 2, "bf16": 2, "float16": 2, "fp16": 2, "half": 2,
    "float": 4, "float32": 4, "fp32": 4,
}
# Checkpoint formats (decision.model.weights): bytes per weight of the attention/MLP projections.
WEIGHT_BYTES: dict[str, float] = {
    "auto": 2, "bf16": 2, "bfloat16": 2, "fp16": 2, "float16": 2, "fp32": 4, "float32": 4,
    "fp8": 1, "fp8-block": 1, "fp8_e4m3": 1, "int8": 1, "int4": 0.5, "awq": 0.5, "gptq": 0.5,
}
_FP32 = frozenset({"fp32", "float32"})
# Formats with one FP32 scale per block of FP8_BLOCK x FP8_BLOCK weights.
BLOCK_SCALED = frozenset({"fp8-block"})
FP8_BLOCK = 128
SCALE_BYTES = 4  # FP32
# KV-cache dtypes (vLLM's --kv-cache-dtype, plus bf16/fp16 spellings): bytes per element.
# "auto" follows the model dtype.
KV_BYTES: dict[str, float] = {
    "bf16": 2, "bfloat16": 2, "fp16": 2, "float16": 2, "half": 2, "float": 4, "float32": 4,
    "fp8": 1, "fp8_e4m3": 1, "fp8_e5m2": 1, "fp8_inc": 1, "fp8_ds_mla": 1,
    "fp8_per_token_head": 1, "int8_per_token_head": 1, "int4_per_token_head": 0.5,
    "nvfp4": 0.5, "nvfp4_4over6": 0.5,
}


class UnknownDtypeError(ValueError):
    """A dtype or weight format not in these tables."""


def _lookup(table: dict[str, float], key: str, what: str) -> float:
    try:
        return table[key.lower()]
    except KeyError:
        raise UnknownDtypeError(f"unknown {what} '{key}'; known: {', '.join(table)}") from None


def model_dtype_bytes(model_dtype: str = "auto") -> float:
    """Bytes per element of unquantized tensors under vLLM's ``--dtype``."""
    return _lookup(MODEL_DTYPE_BYTES, model_dtype, "model dtype")


def weight_format_bytes(weights: str) -> float:
    """Bytes per attention/MLP weight of a checkpoint format; raises ``UnknownDtypeError``."""
    return _lookup(WEIGHT_BYTES, weights, "weights dtype")


def kv_dtype_bytes(kv_cache_dtype: str = "auto", model_dtype: str = "auto") -> float:
    """Bytes per KV-cache element; ``auto`` is the model dtype's. Raises ``UnknownDtypeError``."""
    if kv_cache_dtype.lower() == "auto":
        return model_dtype_bytes(model_dtype)
    return _lookup(KV_BYTES, kv_cache_dtype, "KV-cache dtype")


@dataclass(frozen=True)
class WeightBytes:
    """A checkpoint's weights in bytes, part by part."""

    linear: float  # attention + MLP projections in the checkpoint's format
    scales: float  # FP32 block scales of block-FP8 checkpoints
    embedding: float  # input embedding table; 0 when tied to the LM head
    lm_head: float  # output projection (the embedding table itself when tied)
    norms: float

    @property
    def total(self) -> float:
        """What the weights occupy in memory."""
        return self.linear + self.scales + self.embedding + self.lm_head + self.norms

    @property
    def read_per_token(self) -> float:
        """What one decode step reads: all but the input embedding table, of which it reads one
        row per token (negligible)."""
        return self.total - self.embedding


def weight_bytes(shape: ModelShape, weights: str | None = None,
                 model_dtype: str = "auto") -> WeightBytes:
    """The weights of ``shape`` in checkpoint format ``weights`` (None: unquantized) loaded with
    vLLM's ``--dtype model_dtype``; see the module doc. Raises ``UnknownDtypeError``."""
    fmt = (weights or "auto").lower()
    stored = weight_format_bytes(fmt)  # an unknown format is refused, not guessed
    high = model_dtype_bytes(model_dtype)
    if fmt in _FP32:
        per_weight = high = stored  # kept in FP32 throughout, as in the checkpoint
    elif stored < 2:
        per_weight = stored  # quantized: projections as stored, the rest in the model dtype
    else:
        per_weight = high  # a 16-bit checkpoint is cast to the model dtype when loaded
    tied = shape.tie_word_embeddings
    return WeightBytes(
        linear=shape.linear_params * per_weight,
        scales=shape.linear_params / FP8_BLOCK**2 * SCALE_BYTES if fmt in BLOCK_SCALED else 0.0,
        embedding=0.0 if tied else shape.lm_head_params * high,
        lm_head=shape.lm_head_params * high,
        norms=shape.norm_params * high)
