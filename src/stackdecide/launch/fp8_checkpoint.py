"""An FP8 checkpoint written from a prepared model folder: the route of a model quantized offline,
beside vLLM's online ``--quantization fp8`` of the same weights.

The format is the one vLLM's ``fp8`` quantization reads as serialized (AutoFP8's): every linear
layer of the decoder keeps its weight in ``float8_e4m3fn`` with one float32 scale per tensor
(``<layer>.weight_scale``, the tensor's largest magnitude over 448, the format's largest finite
value), activations are quantized at run time (``quantization_config: {quant_method: fp8,
activation_scheme: dynamic}``), and everything else (embeddings, the tied LM head, norms) is kept
in bfloat16. Per tensor, not in 128 x 128 blocks: SmolLM2's hidden size, 576, is no multiple of
128. Online quantization computes the same per-tensor scales from the BF16 weights at load time;
the two routes differ only in the rounding of the source (float32 here, BF16 there) and in vLLM
requantizing fused q/k/v and gate/up shards to their largest scale.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import torch

FP8_E4M3_MAX = 448.0
WEIGHTS_FILE = "model.safetensors"
# the linear layers of a Llama decoder layer; vLLM fuses q/k/v and gate/up when it loads them
LINEAR_WEIGHTS = ("q_proj.weight", "k_proj.weight", "v_proj.weight", "o_proj.weight",
                  "gate_proj.weight", "up_proj.weight", "down_proj.weight")
QUANTIZATION_CONFIG = {"quant_method": "fp8", "activation_scheme": "dynamic"}
# files a model folder keeps as they are: the tokenizer, its template, generation defaults
_COPIED = ("generation_config.json", "tokenizer.json", "tokenizer_config.json",
           "chat_template.jinja", "special_tokens_map.json")


@dataclass(frozen=True)
class Fp8Summary:
    """What the quantization did: how many tensors, and the worst relative error it left."""

    quantized_tensors: int
    kept_tensors: int
    max_relative_error: float  # of a dequantized weight, relative to its tensor's largest value

    def as_dict(self) -> dict[str, object]:
        return {"quantized_tensors": self.quantized_tensors, "kept_tensors": self.kept_tensors,
                "max_relative_error": self.max_relative_error, **QUANTIZATION_CONFIG,
                "scales": "per tensor", "fp8": "e4m3"}


def quantize_per_tensor(weight: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
    """``weight`` as float8_e4m3fn and its float32 scale (a 0-d tensor): ``fp8 * scale``
    approximates ``weight``; an all-zero tensor gets scale 1."""
    import torch

    absmax = weight.detach().abs().max().to(torch.float32)
    scale = absmax / FP8_E4M3_MAX if float(absmax) > 0 else torch.tensor(1.0)
    quantized = (weight.to(torch.float32) / scale).clamp(-FP8_E4M3_MAX, FP8_E4M3_MAX)
    return quantized.to(torch.float8_e4m3fn), scale.reshape(()).to(torch.float32)


def dequantize(quantized: torch.Tensor, scale: torch.Tensor) -> torch.Tensor:
    import torch

    return quantized.to(torch.float32) * scale


def is_linear_weight(name: str) -> bool:
    return name.endswith(LINEAR_WEIGHTS) and ".layers." in name


def write_fp8_checkpoint(source: Path, out: Path) -> Fp8Summary:
    """Write the FP8 checkpoint of the model folder ``source`` into the new folder ``out``."""
    import torch
    from safetensors.torch import load_file, save_file

    tensors = load_file(source / WEIGHTS_FILE)
    written: dict[str, torch.Tensor] = {}
    quantized_count = 0
    worst = 0.0
    for name, tensor in tensors.items():
        if is_linear_weight(name):
            quantized, scale = quantize_per_tensor(tensor)
            error = (dequantize(quantized, scale) - tensor.to(torch.float32)).abs().max()
            worst = max(worst, float(error / (scale * FP8_E4M3_MAX)))
            written[name] = quantized
            written[name.removesuffix("weight") + "weight_scale"] = scale
            quantized_count += 1
        else:
            written[name] = tensor.to(torch.bfloat16)
    out.mkdir(parents=True)
    save_file(written, str(out / WEIGHTS_FILE), metadata={"format": "pt"})
    config = json.loads((source / "config.json").read_text())
    config.update(dtype="bfloat16", torch_dtype="bfloat16",
                  quantization_config=dict(QUANTIZATION_CONFIG))
    (out / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    for name in _COPIED:
        if (source / name).is_file():
            (out / name).write_bytes((source / name).read_bytes())
    return Fp8Summary(quantized_count, len(tensors) - quantized_count, worst)
