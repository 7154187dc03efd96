"""Known model shapes: enough of a model's config to scaffold it and to compute its roofline.

Values are copied from each model's published ``config.json`` on the Hugging Face hub
(Qwen/Qwen3-4B-Instruct-2507, Qwen/Qwen3-4B-Instruct-2507-FP8, meta-llama/Llama-3.1-8B-Instruct).
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(frozen=True)
class ModelShape:
    name: str
    architecture: str  # transformers class name, e.g. Qwen3ForCausalLM
    model_type: str
    hidden_size: int
    num_layers: int
    num_heads: int
    num_kv_heads: int
    head_dim: int
    intermediate_size: int
    vocab_size: int
    max_position_embeddings: int
    tie_word_embeddings: bool
    rope_theta: float
    rms_norm_eps: float = 1e-6
    extra_config: dict[str, Any] = field(default_factory=dict)
    quantization: str | None = None  # "fp8-block" for block-quantized FP8 checkpoints

    @property
    def params(self) -> int:
        """Parameter count (embeddings counted once when tied)."""
        attention = self.hidden_size * self.head_dim * (2 * self.num_heads + 2 * self.num_kv_heads)
        mlp = 3 * self.hidden_size * self.intermediate_size
        norms = 2 * self.hidden_size + (2 * self.head_dim if self.model_type == "qwen3" else 0)
        per_layer = attention + mlp + norms
        embeddings = self.vocab_size * self.hidden_size * (1 if self.tie_word_embeddings else 2)
        return self.num_layers * per_layer + embeddings + self.hidden_size

    @property
    def linear_params(self) -> int:
        """Parameters of the attention and MLP projections: the ones quantization compresses."""
        attention = self.hidden_size * self.head_dim * (2 * self.num_heads + 2 * self.num_kv_heads)
        return self.num_layers * (attention + 3 * self.hidden_size * self.intermediate_size)

    @property
    def lm_head_params(self) -> int:
        """The output projection (vocab x hidden); the embedding table itself when tied."""
        return self.vocab_size * self.hidden_size

    @property
    def norm_params(self) -> int:
        """RMSNorm weights (per layer, q/k norms of Qwen3, and the final norm)."""
        return self.params - self.linear_params - self.vocab_size * self.hidden_size * (
            1 if self.tie_word_embeddings else 2)

    @property
    def kv_elements_per_token(self) -> int:
        """KV-cache elements per token (K and V, all layers); multiply by the dtype's bytes."""
        return 2 * self.num_layers * self.num_kv_heads * self.head_dim


_QWEN3_4B = dict(
    architecture="Qwen3ForCausalLM", model_type="qwen3", hidden_size=2560, num_layers=36,
    num_heads=32, num_kv_heads=8, head_dim=128, intermediate_size=9728, vocab_size=151936,
    max_position_embeddings=262144, tie_word_embeddings=True, rope_theta=5_000_000.0,
)

SHAPES: dict[str, ModelShape] = {
    "qwen3-4b": ModelShape(name="qwen3-4b", **_QWEN3_4B),
    "qwen3-4b-fp8": ModelShape(name="qwen3-4b-fp8", quantization="fp8-block", **_QWEN3_4B),
    "llama-3.1-8b": ModelShape(
        name="llama-3.1-8b", architecture="LlamaForCausalLM", model_type="llama",
        hidden_size=4096, num_layers=32, num_heads=32, num_kv_heads=8, head_dim=128,
        intermediate_size=14336, vocab_size=128256, max_position_embeddings=131072,
        tie_word_embeddings=False, rope_theta=500_000.0, rms_norm_eps=1e-5,
        extra_config={"rope_scaling": {"factor": 8.0, "low_freq_factor": 1.0,
                                       "high_freq_factor": 4.0,
                                       "original_max_position_embeddings": 8192,
                                       "rope_type": "llama3"}},
    ),
    # A few-MB model for the CPU engine in tests: head_dim 64 is one the CPU attention supports.
    "tiny": ModelShape(
        name="tiny", architecture="Qwen3ForCausalLM", model_type="qwen3", hidden_size=256,
        num_layers=2, num_heads=4, num_kv_heads=2, head_dim=64, intermediate_size=512,
        vocab_size=4096, max_position_embeddings=4096, tie_word_embeddings=True,
        rope_theta=1_000_000.0,
    ),
}


def get_shape(name: str) -> ModelShape:
    try:
        return SHAPES[name]
    except KeyError:
        from stackdecide.errors import StackdecideError

        raise StackdecideError(f"unknown model shape '{name}'; known shapes: "
                               f"{', '.join(SHAPES)}") from None

def shape_from_config(config: dict[str, Any], name: str = "local") -> ModelShape | None:
    """The shape of a model from its ``config.json``; None when a size field is missing."""
    try:
        heads = int(config["num_attention_heads"])
        hidden = int(config["hidden_size"])
        quant = config.get("quantization_config") or {}
        return ModelShape(
            name=name, architecture=(config.get("architectures") or ["?"])[0],
            model_type=str(config.get("model_type", "?")), hidden_size=hidden,
            num_layers=int(config["num_hidden_layers"]), num_heads=heads,
            num_kv_heads=int(config.get("num_key_value_heads") or heads),
            head_dim=int(config.get("head_dim") or hidden // heads),
            intermediate_size=int(config["intermediate_size"]),
            vocab_size=int(config["vocab_size"]),
            max_position_embeddings=int(config.get("max_position_embeddings") or 0),
            tie_word_embeddings=bool(config.get("tie_word_embeddings", False)),
            rope_theta=float(config.get("rope_theta") or 10000.0),
            quantization="fp8-block" if str(quant.get("quant_method")) == "fp8"
            and quant.get("weight_block_size") else None)
    except (KeyError, TypeError, ValueError):
        return None
