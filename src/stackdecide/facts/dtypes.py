"""Bytes per element of weights and KV cache, and the bytes a checkpoint's weights take.

The one place for these numbers: memory (what fits on the GPU) and the roofline (what one decode
step reads) both take them from here, and so does reading a checkpoint's ``quantization_config``
(``format_from_quantization_config``) or vLLM's ``--quantization`` (``format_from_engine``).
A checkpoint is

* the attention and MLP projections (``ModelShape.linear_params``, MoE experts included), in the
  checkpoint's weight format (``WeightFormat``): BF16/FP16 2 bytes, FP32 4, FP8 and INT8 1, INT4,
  NF4 and the FP4 formats half a byte;
* their quantization scales (``WeightFormat.scale_bytes``, per weight): block-FP8 one FP32 scale
  per 128 x 128 block; grouped INT4 (AWQ, GPTQ) one FP16 scale and one 4-bit zero point per group;
  symmetric grouped INT (compressed-tensors) one FP16 scale per group; bitsandbytes 4-bit one FP32
  absmax per 64 weights (double quantization: one 8-bit absmax per 64 plus one FP32 per 256 x 64);
  MXFP4 one 8-bit exponent per 32; NVFP4 one FP8 scale per 16. Per-tensor and per-channel scales
  are negligible and counted as 0;
* the embedding table, LM head, norms, biases and MoE routers, which quantized checkpoints keep in
  16 bit: they take the model dtype's bytes (vLLM's ``--dtype``; ``auto`` is BF16). A checkpoint
  that keeps its attention unquantized (gpt-oss: ``modules_to_not_convert`` names ``self_attn``)
  holds those projections in the model dtype too.

An unquantized checkpoint is loaded in the model dtype, so its projections take the model dtype's
bytes too (FP32 checkpoints excepted: they stay 4 bytes, as in the checkpoint).

A dtype has one name here whatever its spelling (``dtype_name``: ``bfloat16`` is ``bf16``,
``fp8_e4m3`` is ``fp8``); every table takes each spelling, and ``is_fp8`` is the one test of FP8.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from stackdecide.facts.shapes import ModelShape

# Other spellings of one dtype (vLLM's --dtype and --kv-cache-dtype choices, torch's names) -> the
# name the tables here use. vLLM's "fp8" KV cache is E4M3 on NVIDIA GPUs, so fp8_e4m3 is fp8.
DTYPE_SPELLINGS: dict[str, tuple[str, ...]] = {
    "bf16": ("bfloat16",), "fp16": ("float16", "half"), "fp32": ("float32", "float"),
    "fp8": ("fp8_e4m3",),
}
_CANONICAL = {spelling: name for name, spellings in DTYPE_SPELLINGS.items() for spelling in spellings}


def dtype_name(name: str) -> str:
    """The one name of a dtype, whatever its spelling: ``bfloat16`` -> ``bf16``, ``half`` ->
    ``fp16``, ``fp8_e4m3`` -> ``fp8``; any other name in lower case."""
    key = name.strip().lower()
    return _CANONICAL.get(key, key)


def is_fp8(name: str | None) -> bool:
    """Whether a dtype or weight format is one of the FP8 ones (``fp8``, ``fp8_e5m2``,
    ``fp8-block``...)."""
    return name is not None and dtype_name(name).startswith("fp8")


def _spellings(*names: str) -> tuple[str, ...]:
    """Each name followed by its other spellings."""
    return tuple(s for name in names for s in (name, *DTYPE_SPELLINGS.get(name, ())))


def _spelled(table: Mapping[str, float]) -> dict[str, float]:
    """A table by dtype name, with every spelling of each name as a key."""
    return {spelling: value for name, value in table.items() for spelling in _spellings(name)}


# vLLM's --dtype: the bytes of every tensor that is not quantized ("auto": BF16 for these models).
MODEL_DTYPE_BYTES: dict[str, float] = _spelled({"auto": 2, "bf16": 2, "fp16": 2, "fp32": 4})
SCALE_BYTES = 4  # FP32
FP8_BLOCK = 128
GROUP_SCALE_BYTES = 2  # FP16 scales of grouped integer formats
BNB_BLOCK = 64  # bitsandbytes 4-bit: one absmax per 64 weights
BNB_DOUBLE_QUANT_BLOCK = 256  # ... and with double quantization, one FP32 per 256 absmax values


@dataclass(frozen=True)
class WeightFormat:
    """A checkpoint format of the attention and MLP projections."""

    name: str  # canonical name, e.g. "fp8-block", "awq-g128", "int4-g32"
    bytes: float  # per weight
    scale_bytes: float = 0.0  # per weight: block/group scales and zero points
    quantized: bool = False  # stored below 16 bit: everything else stays in the model dtype
    fp32: bool = False  # kept in FP32 whatever --dtype says
    description: str = ""


_FIXED: dict[str, WeightFormat] = {
    **{name: WeightFormat(name, 2, description="16 bit") for name in _spellings("auto", "bf16", "fp16")},
    **{name: WeightFormat(name, 4, fp32=True, description="FP32") for name in _spellings("fp32")},
    **{name: WeightFormat(name, 1, quantized=True, description="FP8, per-tensor or per-channel "
                          "scales") for name in _spellings("fp8", "fp8-tensor", "fp8-channel")},
    "int8": WeightFormat("int8", 1, quantized=True, description="INT8, per-channel scales"),
    "int4": WeightFormat("int4", 0.5, quantized=True, description="INT4, per-channel scales"),
    "mxfp4": WeightFormat("mxfp4", 0.5, 1 / 32, True, description="MXFP4: one 8-bit scale per 32"),
    "nvfp4": WeightFormat("nvfp4", 0.5, 1 / 16, True, description="NVFP4: one FP8 scale per 16"),
    "bnb-4bit": WeightFormat("bnb-4bit", 0.5, SCALE_BYTES / BNB_BLOCK, True,
                             description="bitsandbytes NF4/FP4: one FP32 absmax per 64"),
    "bnb-4bit-dq": WeightFormat(
        "bnb-4bit-dq", 0.5, 1 / BNB_BLOCK + SCALE_BYTES / (BNB_BLOCK * BNB_DOUBLE_QUANT_BLOCK),
        True, description="bitsandbytes 4-bit, double-quantized absmax"),
    "bnb-8bit": WeightFormat("bnb-8bit", 1, quantized=True, description="bitsandbytes LLM.int8"),
}
_ALIASES = {"nf4": "bnb-4bit", "fp4": "bnb-4bit", "awq": "awq-g128", "gptq": "gptq-g128",
            "w8a8": "int8", "w4a16": "int4-g128"}
# fp8-block (128 x 128 blocks) or fp8-block-64x64
_FP8_BLOCK = re.compile(r"fp8-block(?:-(\d+)x(\d+))?")
# int4-g128 (symmetric: one FP16 scale per group), awq-g64 / gptq-g32 (4-bit, scale + zero point),
# gptq-int8-g128 (8-bit GPTQ)
_GROUPED = re.compile(r"(int|awq|gptq)(?:-?int)?(4|8)?-g(\d+)")


def _lookup(table: Mapping[str, float], key: str, what: str) -> float:
    try:
        return table[key.lower()]
    except KeyError:
        raise UnknownDtypeError(f"unknown {what} '{key}'; known: {', '.join(table)}") from None


class UnknownDtypeError(ValueError):
    """A dtype or weight format not in these tables."""


def weight_format(name: str) -> WeightFormat:
    """The format a name denotes; raises ``UnknownDtypeError`` for an unknown one.

    >>> weight_format("awq").scale_bytes == (2 + 0.5) / 128
    True
    """
    key = name.strip().lower()
    key = _ALIASES.get(key, key)
    if key in _FIXED:
        return _FIXED[key]
    block = _FP8_BLOCK.fullmatch(key)
    if block:
        rows, cols = (int(block.group(1)), int(block.group(2))) if block.group(1) else \
            (FP8_BLOCK, FP8_BLOCK)
        if rows > 0 and cols > 0:
            return WeightFormat(key, 1, SCALE_BYTES / (rows * cols), True,
                                description=f"FP8, one FP32 scale per {rows} x {cols} block")
    grouped = _GROUPED.fullmatch(key)
    if grouped and int(grouped.group(3)) > 0:
        kind, bits, group = grouped.group(1), int(grouped.group(2) or 4), int(grouped.group(3))
        if kind == "int" and grouped.group(2) is None:
            bits = 0  # "int-g128" names no width
        if bits:
            zero = bits / 8 if kind in ("awq", "gptq") else 0.0  # asymmetric: a zero point too
            return WeightFormat(key, bits / 8, (GROUP_SCALE_BYTES + zero) / group, True,
                                description=f"INT{bits}, group size {group}"
                                + (", scale and zero point" if zero else ", FP16 scale"))
    known = [*_FIXED, *_ALIASES, "fp8-block-RxC", "int4-gN", "int8-gN", "awq-gN", "gptq-gN",
             "gptq-int8-gN"]
    raise UnknownDtypeError(f"unknown weights dtype '{name}'; known: {', '.join(known)}")


def model_dtype_bytes(model_dtype: str = "auto") -> float:
    """Bytes per element of unquantized tensors under vLLM's ``--dtype``."""
    return _lookup(MODEL_DTYPE_BYTES, model_dtype, "model dtype")


# KV-cache dtypes (vLLM's --kv-cache-dtype, plus bf16/fp16 spellings): bytes per element.
# "auto" follows the model dtype.
KV_BYTES: dict[str, float] = _spelled({
    "bf16": 2, "fp16": 2, "fp32": 4,
    "fp8": 1, "fp8_e5m2": 1, "fp8_inc": 1, "fp8_ds_mla": 1,
    "fp8_per_token_head": 1, "int8_per_token_head": 1, "int4_per_token_head": 0.5,
    "nvfp4": 0.5, "nvfp4_4over6": 0.5,
})


def kv_dtype_bytes(kv_cache_dtype: str = "auto", model_dtype: str = "auto") -> float:
    """Bytes per KV-cache element; ``auto`` is the model dtype's. Raises ``UnknownDtypeError``."""
    if kv_cache_dtype.lower() == "auto":
        return model_dtype_bytes(model_dtype)
    return _lookup(KV_BYTES, kv_cache_dtype, "KV-cache dtype")


# -- reading a checkpoint's format -------------------------------------------------------------

# vLLM --quantization methods and the weight format they load (checkpoint methods that need the
# checkpoint's quantization_config to say more, such as compressed-tensors, are not here).
ENGINE_FORMATS: dict[str, str] = {
    **dict.fromkeys(("fp8", "fp8_per_tensor", "fp8_per_channel", "fbgemm_fp8", "ptpc_fp8"), "fp8"),
    **dict.fromkeys(("fp8_per_block", "deepseek_v4_fp8"), "fp8-block"),
    **dict.fromkeys(("awq", "awq_marlin"), "awq-g128"),
    **dict.fromkeys(("gptq", "gptq_marlin"), "gptq-g128"),
    "bitsandbytes": "bnb-4bit", "mxfp4": "mxfp4", "modelopt_fp4": "nvfp4", "experts_int8": "int8",
}


def format_from_engine(quantization: str | None) -> str | None:
    """The weight format vLLM's ``--quantization`` implies, or None when it does not say."""
    return ENGINE_FORMATS.get(str(quantization or "").strip().lower())


def _grouped(kind: str, bits: int, group: Any) -> str | None:
    size = int(group) if isinstance(group, int | float) and not isinstance(group, bool) else 0
    if bits not in (4, 8):
        return None
    if size <= 0:  # per-channel
        return f"int{bits}"
    if kind == "int":
        return f"int{bits}-g{size}"
    return f"{kind}-g{size}" if bits == 4 else f"{kind}-int8-g{size}"


def _compressed_tensors(config: Mapping[str, Any]) -> str | None:
    groups = config.get("config_groups") or {}
    weights = next((g.get("weights") for g in groups.values()
                    if isinstance(g, Mapping) and isinstance(g.get("weights"), Mapping)), None)
    if not weights:
        return None
    bits, kind = int(weights.get("num_bits") or 0), str(weights.get("type") or "int")
    strategy = str(weights.get("strategy") or "tensor")
    if kind == "float" and bits == 8:
        block = weights.get("block_structure")
        if strategy == "block" and isinstance(block, list) and len(block) == 2:
            return "fp8-block" if list(block) == [FP8_BLOCK, FP8_BLOCK] else \
                f"fp8-block-{int(block[0])}x{int(block[1])}"
        return "fp8"
    if kind == "float" and bits == 4:
        return "nvfp4"
    group = weights.get("group_size") if strategy == "group" else None
    symmetric = weights.get("symmetric", True)
    if bits == 4 and group and not symmetric:
        return _grouped("awq", 4, group)  # asymmetric: a zero point per group, as AWQ
    return _grouped("int", bits, group)


def format_from_quantization_config(config: Mapping[str, Any] | None) -> str | None:
    """The weight format a ``config.json``'s ``quantization_config`` describes; None when there
    is none or its method is not one this table knows (the caller names the method)."""
    if not config:
        return None
    method = str(config.get("quant_method") or "").lower()
    if method == "fp8":
        block = config.get("weight_block_size")
        if isinstance(block, list) and len(block) == 2:
            return "fp8-block" if list(block) == [FP8_BLOCK, FP8_BLOCK] else \
                f"fp8-block-{int(block[0])}x{int(block[1])}"
        return "fp8"
    if method in ("awq", "gptq"):
        bits = int(config.get("bits") or config.get("w_bit") or 4)
        group = config.get("group_size", config.get("q_group_size", 128))
        return _grouped(method, bits, group)
    if method == "bitsandbytes":
        if config.get("load_in_8bit"):
            return "bnb-8bit"
        return "bnb-4bit-dq" if config.get("bnb_4bit_use_double_quant") else "bnb-4bit"
    if method == "compressed-tensors":
        return _compressed_tensors(config)
    if method == "mxfp4":
        return "mxfp4"
    if method in ("modelopt", "modelopt_fp4"):
        algo = str(config.get("quant_algo") or "").upper()
        return "nvfp4" if "FP4" in algo else "fp8" if "FP8" in algo else None
    return None


def attention_left_unquantized(config: Mapping[str, Any] | None) -> bool:
    """Whether a ``quantization_config`` keeps the attention projections in 16 bit (its
    ``modules_to_not_convert`` or ``ignore`` list names ``self_attn``)."""
    if not config:
        return False
    names = [*(config.get("modules_to_not_convert") or []), *(config.get("ignore") or [])]
    return any("self_attn" in str(name) for name in names)


# -- the bytes of a checkpoint -----------------------------------------------------------------

@dataclass(frozen=True)
class WeightBytes:
    """A checkpoint's weights in bytes, part by part."""

    linear: float  # attention + MLP projections in the checkpoint's format
    scales: float  # their block/group scales
    embedding: float  # input embedding table; 0 when tied to the LM head
    lm_head: float  # output projection (the embedding table itself when tied)
    norms: float  # norms, biases, MoE routers and projections kept in 16 bit

    @property
    def total(self) -> float:
        """What the weights occupy in memory."""
        return self.linear + self.scales + self.embedding + self.lm_head + self.norms


def weight_bytes(shape: ModelShape, weights: str | None = None, model_dtype: str = "auto",
                 active: bool = False) -> WeightBytes:
    """The weights of ``shape`` in checkpoint format ``weights`` (None: unquantized) loaded with
    vLLM's ``--dtype model_dtype``; see the module doc. ``active``: only the MoE experts one token
    runs through (what one decode step reads). Raises ``UnknownDtypeError``."""
    fmt = weight_format(weights or "auto")  # an unknown format is refused, not guessed
    high = model_dtype_bytes(model_dtype)
    if fmt.fp32:
        per_weight = high = fmt.bytes  # kept in FP32 throughout, as in the checkpoint
    elif fmt.quantized:
        per_weight = fmt.bytes  # quantized: projections as stored, the rest in the model dtype
    else:
        per_weight = high  # a 16-bit checkpoint is cast to the model dtype when loaded
    linear = shape.active_linear_params if active else shape.linear_params
    kept = shape.attention_params if fmt.quantized and shape.unquantized_attention else 0
    tied = shape.tie_word_embeddings
    return WeightBytes(
        linear=(linear - kept) * per_weight,
        scales=(linear - kept) * fmt.scale_bytes if fmt.quantized else 0.0,
        embedding=0.0 if tied else shape.lm_head_params * high,
        lm_head=shape.lm_head_params * high,
        norms=(shape.norm_params + kept) * high)
