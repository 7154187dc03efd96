"""What stackdecide derived from a model's config: ``stackdecide model show``. Pure: returns text."""

from __future__ import annotations

from tabulate import tabulate

from stackdecide.facts import dtypes
from stackdecide.facts.memory import GIB
from stackdecide.facts.shapes import ModelShape

# Formats shown for every model, besides the checkpoint's own: the common ways it is served.
SHOWN_FORMATS = ("bf16", "fp8", "fp8-block", "int8", "awq-g128", "int4-g128", "nvfp4", "mxfp4")
SHOWN_KV = ("bf16", "fp8", "fp32")


def _billions(count: int) -> str:
    return f"{count / 1e9:.3f} B" if count >= 1e8 else f"{count / 1e6:.3f} M"


def _attention(shape: ModelShape) -> str:
    if shape.mla:
        return (f"multi-latent attention: {shape.num_heads} heads, latent KV {shape.kv_lora_rank} "
                f"+ rotary key {shape.qk_rope_head_dim} per token and layer "
                f"(q_lora_rank {shape.q_lora_rank or 'none'}, qk_nope {shape.qk_nope_head_dim}, "
                f"v_head_dim {shape.v_head_dim})")
    kind = ("multi-head" if shape.num_kv_heads == shape.num_heads else
            "multi-query" if shape.num_kv_heads == 1 else
            f"grouped-query, {shape.num_heads // max(shape.num_kv_heads, 1)} heads per KV head")
    return (f"{shape.num_heads} heads, {shape.num_kv_heads} KV heads ({kind}), head dim "
            f"{shape.head_dim}")


def _mlp(shape: ModelShape) -> str:
    if not shape.num_experts:
        return f"dense, intermediate size {shape.intermediate_size}"
    shared = f", shared experts {shape.shared_intermediate_size} wide" \
        if shape.shared_intermediate_size else ""
    dense = shape.num_layers - shape.moe_layers
    dense_text = f"; {dense} dense layers of {shape.intermediate_size}" if dense else ""
    return (f"mixture of experts: {shape.num_experts} experts {shape.expert_intermediate_size} "
            f"wide, {shape.experts_per_token} per token, on {shape.moe_layers} of "
            f"{shape.num_layers} layers{shared}{dense_text}")


def _checkpoint(shape: ModelShape) -> str:
    if shape.quantization:
        kept = "; attention kept in 16 bit" if shape.unquantized_attention else ""
        return f"{shape.quantization} (quantization_config.quant_method {shape.quant_method}){kept}"
    if shape.quant_method:
        return (f"quant_method {shape.quant_method}: a format stackdecide does not know; "
                "give model.weights")
    return "16 bit (no quantization_config)"


def model_text(shape: ModelShape, model_dtype: str = "auto") -> str:
    """The derived facts of ``shape``: sizes, parameter counts, weight bytes per checkpoint format
    and KV-cache bytes per token per KV-cache dtype."""
    window = (f"sliding window {shape.sliding_window} tokens on {shape.sliding_layers} of "
              f"{shape.num_layers} layers" if shape.sliding_layers else "no sliding window")
    lines = [
        f"{shape.name}: {shape.architecture} ({shape.model_type})",
        f"  source: {shape.source or 'given config'}",
        *([f"  hub ids: {', '.join(shape.hub_ids)}"] if shape.hub_ids else []),
        f"  layers {shape.num_layers}, hidden size {shape.hidden_size}, vocabulary "
        f"{shape.vocab_size}, embeddings {'tied' if shape.tie_word_embeddings else 'untied'}",
        f"  attention: {_attention(shape)}",
        f"  MLP: {_mlp(shape)}",
        f"  context: max_position_embeddings {shape.max_position_embeddings}; {window}",
        f"  parameters: {_billions(shape.params)} total, {_billions(shape.active_params)} active "
        "per token",
        f"  checkpoint: {_checkpoint(shape)}",
    ]
    formats = ([shape.quantization] if shape.quantization else []) + \
        [f for f in SHOWN_FORMATS if f != shape.quantization]
    rows = []
    for name in formats:
        held = dtypes.weight_bytes(shape, name, model_dtype)
        read = dtypes.weight_bytes(shape, name, model_dtype, active=True)
        mark = " (checkpoint)" if name == shape.quantization else ""
        rows.append([name + mark, f"{held.total / GIB:.2f}", f"{held.total / 1e9:.2f}",
                     f"{(read.total - read.embedding) / 1e9:.2f}"])
    lines += ["", f"weights by format (unquantized tensors in --dtype {model_dtype}):",
              tabulate(rows, ["format", "GiB", "GB", "GB read per decode step"],
                       tablefmt="simple", disable_numparse=True)]
    kv_rows = []
    for name in SHOWN_KV:
        per_token = shape.kv_elements_per_token * dtypes.kv_dtype_bytes(name)
        longest = shape.kv_elements(shape.max_position_embeddings) * dtypes.kv_dtype_bytes(name)
        kv_rows.append([name, f"{per_token:,.0f}",
                        f"{longest / GIB:.2f}" if shape.max_position_embeddings else "-"])
    lines += ["", "KV cache by --kv-cache-dtype (auto: the model dtype):",
              tabulate(kv_rows, ["kv dtype", "bytes per token",
                                 f"GiB per {shape.max_position_embeddings}-token sequence"],
                       tablefmt="simple", disable_numparse=True)]
    return "\n".join(lines) + "\n"
