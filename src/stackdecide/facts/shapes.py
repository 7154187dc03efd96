"""Model shapes: what a Hugging Face ``config.json`` says about a model's size, for any model.

``shape_from_config`` reads the keys that decide parameter counts and KV-cache size:

* dense and mixture-of-experts MLPs: ``num_experts`` / ``num_local_experts`` / ``n_routed_experts``,
  ``num_experts_per_tok`` (``experts_per_token``), ``moe_intermediate_size`` (else each expert is
  ``intermediate_size`` wide, as in Mixtral and gpt-oss), shared experts
  (``shared_expert_intermediate_size``, ``n_shared_experts``) and which layers are dense
  (``mlp_only_layers`` / ``decoder_sparse_step`` of Qwen-MoE, ``first_k_dense_replace`` /
  ``moe_layer_freq`` of DeepSeek);
* grouped-query attention (``num_key_value_heads``, ``head_dim``) and multi-latent attention
  (``kv_lora_rank``, ``q_lora_rank``, ``qk_rope_head_dim``, ``qk_nope_head_dim``, ``v_head_dim``):
  an MLA layer caches ``kv_lora_rank + qk_rope_head_dim`` elements per token, not K and V per head;
* sliding-window layers (``sliding_window`` with ``layer_types``, or ``use_sliding_window`` and
  ``max_window_layers`` as in Qwen2/3, else every layer as in Mistral-7B-v0.1): they hold at most
  the window in the KV cache;
* tied embeddings, and the checkpoint's ``quantization_config`` (its format is
  ``facts.dtypes.format_from_quantization_config``: one rule for every reader).

Built-in shapes are published ``config.json`` files under ``stackdecide/data/shapes/`` (one per
shape, named after it; each file's ``_stackdecide`` key and that folder's README.md give its
source). Parameter counts are estimates from the config: biases other than attention biases,
attention sinks and vision towers are not counted.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from stackdecide._files import read_user_text
from stackdecide.errors import StackdecideError
from stackdecide.facts.dtypes import attention_left_unquantized, format_from_quantization_config

CONFIG_LIMIT = 4 * 1024 * 1024  # a config.json is a few KB; this refuses anything else early
META_KEY = "_stackdecide"  # built-in files: {"source": ..., "hub_ids": [...]}; not a config key


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
    intermediate_size: int  # of dense MLP layers
    vocab_size: int
    max_position_embeddings: int
    tie_word_embeddings: bool
    num_experts: int = 0  # routed experts per MoE layer; 0: dense
    experts_per_token: int = 0
    expert_intermediate_size: int = 0
    moe_layers: int = 0  # layers whose MLP is routed experts
    shared_intermediate_size: int = 0  # always-active shared experts of an MoE layer, together
    kv_lora_rank: int = 0  # multi-latent attention (DeepSeek); 0: per-head K and V
    q_lora_rank: int = 0
    qk_rope_head_dim: int = 0
    qk_nope_head_dim: int = 0
    v_head_dim: int = 0
    sliding_window: int | None = None
    sliding_layers: int = 0  # layers that keep at most ``sliding_window`` tokens of KV cache
    attention_bias: bool = False
    quantization: str | None = None  # the checkpoint's weight format (facts.dtypes), e.g. fp8-block
    quant_method: str | None = None  # its quantization_config.quant_method as written
    unquantized_attention: bool = False  # the checkpoint keeps attention projections in 16 bit
    source: str = ""  # where the config came from
    hub_ids: tuple[str, ...] = ()
    config: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)

    # -- attention ---------------------------------------------------------------------------
    @property
    def mla(self) -> bool:
        return self.kv_lora_rank > 0

    @property
    def attention_params(self) -> int:
        """Q, K, V and output projections of every layer."""
        h, heads = self.hidden_size, self.num_heads
        if self.mla:
            qk = self.qk_nope_head_dim + self.qk_rope_head_dim
            query = (h * self.q_lora_rank + self.q_lora_rank * heads * qk) if self.q_lora_rank \
                else h * heads * qk
            per_layer = (query + h * (self.kv_lora_rank + self.qk_rope_head_dim)
                         + self.kv_lora_rank * heads * (self.qk_nope_head_dim + self.v_head_dim)
                         + heads * self.v_head_dim * h)
        else:
            per_layer = h * self.head_dim * (2 * heads + 2 * self.num_kv_heads)
        return self.num_layers * per_layer

    @property
    def attention_dim(self) -> float:
        """Per-head width of the attention products (QK^T and PV), for prefill FLOPs."""
        if self.mla:
            return (self.qk_nope_head_dim + self.qk_rope_head_dim + self.v_head_dim) / 2
        return self.head_dim

    @property
    def full_attention_layers(self) -> int:
        return self.num_layers - self.sliding_layers

    # -- MLP ----------------------------------------------------------------------------------
    @property
    def dense_mlp_params(self) -> int:
        """Dense MLP layers and the shared experts of MoE layers: run for every token."""
        dense = self.num_layers - self.moe_layers
        return 3 * self.hidden_size * (dense * self.intermediate_size
                                       + self.moe_layers * self.shared_intermediate_size)

    @property
    def expert_params(self) -> int:
        return 3 * self.hidden_size * self.expert_intermediate_size * self.num_experts \
            * self.moe_layers

    @property
    def active_expert_params(self) -> int:
        """The experts one token runs through."""
        return 3 * self.hidden_size * self.expert_intermediate_size * self.experts_per_token \
            * self.moe_layers

    # -- totals -------------------------------------------------------------------------------
    @property
    def linear_params(self) -> int:
        """Parameters of the attention and MLP projections (all experts): the ones quantization
        compresses."""
        return self.attention_params + self.dense_mlp_params + self.expert_params

    @property
    def active_linear_params(self) -> int:
        """Projections one token runs through: only ``experts_per_token`` of the experts."""
        return self.attention_params + self.dense_mlp_params + self.active_expert_params

    @property
    def lm_head_params(self) -> int:
        """The output projection (vocab x hidden); the embedding table itself when tied."""
        return self.vocab_size * self.hidden_size

    @property
    def norm_params(self) -> int:
        """What checkpoints keep in 16 bit besides embeddings: RMSNorm weights (per layer, q/k
        norms of Qwen3, MLA's latent norms, the final norm), attention biases, MoE routers."""
        per_layer = 2 * self.hidden_size
        if self.model_type in ("qwen3", "qwen3_moe"):
            per_layer += 2 * self.head_dim
        if self.mla:
            per_layer += self.kv_lora_rank + self.q_lora_rank
        if self.attention_bias:
            per_layer += (self.num_heads + 2 * self.num_kv_heads) * self.head_dim + self.hidden_size
        router = self.hidden_size * self.num_experts * self.moe_layers
        return self.num_layers * per_layer + router + self.hidden_size

    @property
    def params(self) -> int:
        """Parameter count (embeddings counted once when tied)."""
        embeddings = self.lm_head_params * (1 if self.tie_word_embeddings else 2)
        return self.linear_params + self.norm_params + embeddings

    @property
    def active_params(self) -> int:
        """Parameters one token uses (an MoE model's "A3B"); ``params`` for a dense model."""
        return self.params - self.expert_params + self.active_expert_params

    # -- KV cache -----------------------------------------------------------------------------
    @property
    def kv_elements_per_layer(self) -> int:
        """KV-cache elements one token takes in one layer: K and V of every KV head, or MLA's
        compressed latent plus its rotary key."""
        if self.mla:
            return self.kv_lora_rank + self.qk_rope_head_dim
        return 2 * self.num_kv_heads * self.head_dim

    @property
    def kv_elements_per_token(self) -> int:
        """KV-cache elements per token over all layers, while the context is within any sliding
        window; multiply by the dtype's bytes."""
        return self.num_layers * self.kv_elements_per_layer

    def kv_elements(self, tokens: int) -> int:
        """KV-cache elements ``tokens`` of context hold: sliding-window layers keep at most the
        window."""
        window = min(tokens, self.sliding_window) if self.sliding_window else tokens
        return self.kv_elements_per_layer * (self.full_attention_layers * tokens
                                             + self.sliding_layers * window)


# -- reading a config.json ---------------------------------------------------------------------

def _int(config: Mapping[str, Any], *keys: str, default: int | None = None) -> int:
    for key in keys:
        value = config.get(key)
        if value is not None and not isinstance(value, bool):
            return int(value)
    if default is None:
        raise KeyError(keys[0])
    return default


def _moe_layers(config: Mapping[str, Any], layers: int, experts: int) -> int:
    """How many layers route to experts: Qwen-MoE's ``mlp_only_layers`` and
    ``decoder_sparse_step``, DeepSeek's ``first_k_dense_replace`` and ``moe_layer_freq``."""
    if not experts:
        return 0
    only = set(config.get("mlp_only_layers") or [])
    step = _int(config, "decoder_sparse_step", default=1) or 1
    first = _int(config, "first_k_dense_replace", default=0)
    freq = _int(config, "moe_layer_freq", default=1) or 1
    return sum(1 for i in range(layers)
               if i not in only and (i + 1) % step == 0 and i >= first and i % freq == 0)


def _sliding(config: Mapping[str, Any], layers: int) -> tuple[int | None, int]:
    window = config.get("sliding_window")
    if not isinstance(window, int) or isinstance(window, bool) or window <= 0:
        return None, 0
    types = config.get("layer_types")
    if isinstance(types, list) and types:
        return window, sum(1 for kind in types if kind == "sliding_attention")
    if config.get("use_sliding_window") is False:
        return None, 0
    if "max_window_layers" in config and "use_sliding_window" in config:
        # Qwen2/3: layers from max_window_layers on use the window
        return window, max(0, layers - _int(config, "max_window_layers", default=layers))
    return window, layers  # Mistral-7B-v0.1: every layer


def text_config(config: Mapping[str, Any]) -> Mapping[str, Any]:
    """The language model's part of a multimodal config (``text_config``), with the
    checkpoint's quantization_config kept."""
    inner = config.get("text_config")
    if isinstance(inner, Mapping) and "num_hidden_layers" not in config:
        merged = dict(inner)
        merged.setdefault("architectures", config.get("architectures"))
        merged.setdefault("quantization_config", config.get("quantization_config"))
        return merged
    return config


def parse_shape(config: Mapping[str, Any], name: str = "local", source: str = "",
                hub_ids: tuple[str, ...] = ()) -> ModelShape:
    """The shape of a model from its ``config.json``; raises ``KeyError`` naming a missing size
    key, ``TypeError``/``ValueError`` for a value that is not a number."""
    raw = config
    config = text_config(config)
    heads, hidden = _int(config, "num_attention_heads"), _int(config, "hidden_size")
    layers = _int(config, "num_hidden_layers")
    experts = _int(config, "num_experts", "num_local_experts", "n_routed_experts", default=0)
    intermediate = _int(config, "intermediate_size", default=0)
    expert_size = _int(config, "moe_intermediate_size", default=intermediate) if experts else 0
    shared = _int(config, "shared_expert_intermediate_size", default=0) or \
        _int(config, "n_shared_experts", default=0) * expert_size
    if not intermediate and not experts:
        raise KeyError("intermediate_size")
    window, sliding = _sliding(config, layers)
    quant = config.get("quantization_config") or {}
    method = str(quant.get("quant_method")) if isinstance(quant, Mapping) and quant else None
    quant = quant if isinstance(quant, Mapping) else {}
    return ModelShape(
        name=name, architecture=str((config.get("architectures") or ["?"])[0]),
        model_type=str(config.get("model_type", "?")), hidden_size=hidden, num_layers=layers,
        num_heads=heads, num_kv_heads=_int(config, "num_key_value_heads", default=heads),
        head_dim=_int(config, "head_dim", default=hidden // heads),
        intermediate_size=intermediate, vocab_size=_int(config, "vocab_size"),
        max_position_embeddings=_int(config, "max_position_embeddings", default=0),
        tie_word_embeddings=bool(config.get("tie_word_embeddings", False)),
        num_experts=experts,
        experts_per_token=_int(config, "num_experts_per_tok", "experts_per_token", default=0)
        if experts else 0,
        expert_intermediate_size=expert_size, moe_layers=_moe_layers(config, layers, experts),
        shared_intermediate_size=shared,
        kv_lora_rank=_int(config, "kv_lora_rank", default=0),
        q_lora_rank=_int(config, "q_lora_rank", default=0),
        qk_rope_head_dim=_int(config, "qk_rope_head_dim", default=0),
        qk_nope_head_dim=_int(config, "qk_nope_head_dim", default=0),
        v_head_dim=_int(config, "v_head_dim", default=0),
        sliding_window=window, sliding_layers=sliding,
        attention_bias=bool(config.get("attention_bias", False)),
        quantization=format_from_quantization_config(quant), quant_method=method,
        unquantized_attention=attention_left_unquantized(quant),
        source=source, hub_ids=hub_ids, config=raw)


def shape_from_config(config: Mapping[str, Any], name: str = "local",
                      source: str = "") -> ModelShape | None:
    """The shape of a model from its ``config.json``; None when a size key is missing."""
    try:
        return parse_shape(config, name, source)
    except (KeyError, TypeError, ValueError, ZeroDivisionError):
        return None


def read_config(path: str | Path) -> tuple[dict[str, Any], str]:
    """A ``config.json`` (or a model folder holding one) and the path it was read from."""
    where = Path(path)
    if where.is_dir():
        where = where / "config.json"
    text = read_user_text(where, kind="model config", content="JSON", limit=CONFIG_LIMIT)
    try:
        config = json.loads(text)
    except ValueError as exc:
        raise StackdecideError(f"{where}: not JSON ({exc})") from None
    if not isinstance(config, dict):
        raise StackdecideError(f"{where}: expected a JSON object (a model's config.json)")
    return config, str(where)


def shape_from_path(path: str | Path, name: str | None = None) -> ModelShape:
    """The shape of the ``config.json`` at ``path`` (a file or a model folder); raises
    ``StackdecideError`` saying which key is missing."""
    config, where = read_config(path)
    try:
        return parse_shape(config, name or str(path), where)
    except KeyError as exc:
        raise StackdecideError(f"{where}: no {exc.args[0]}; not a language model's "
                               "config.json?") from None
    except (TypeError, ValueError, ZeroDivisionError) as exc:
        raise StackdecideError(f"{where}: a size is not a number ({exc})") from None


# -- built-in shapes ---------------------------------------------------------------------------

def _builtin() -> dict[str, ModelShape]:
    shapes = {}
    folder = resources.files("stackdecide") / "data" / "shapes"
    for entry in sorted(folder.iterdir(), key=lambda e: e.name):
        if not entry.name.endswith(".json"):
            continue
        config = json.loads(entry.read_text())
        meta = config.get(META_KEY) or {}
        name = entry.name.removesuffix(".json")
        shapes[name] = parse_shape(config, name, f"{meta.get('source', '?')} (built in)",
                                   tuple(meta.get("hub_ids") or ()))
    return shapes


SHAPES: dict[str, ModelShape] = _builtin()


def get_shape(name: str) -> ModelShape:
    try:
        return SHAPES[name]
    except KeyError:
        raise StackdecideError(f"unknown model shape '{name}'; known shapes: "
                               f"{', '.join(SHAPES)}") from None


def shape_for_id(model_id: str | None) -> ModelShape | None:
    """The built-in shape published under a hub id (``Qwen/Qwen3-8B``), case-insensitively."""
    wanted = str(model_id or "").strip().lower()
    return next((s for s in SHAPES.values() if wanted in (h.lower() for h in s.hub_ids)), None) \
        if wanted else None


def find_shape(reference: str) -> ModelShape:
    """A shape by built-in name, hub id of a built-in, model folder or config.json path."""
    if reference in SHAPES:
        return SHAPES[reference]
    by_id = shape_for_id(reference)
    if by_id is not None:
        return by_id
    if Path(reference).exists():
        return shape_from_path(reference)
    raise StackdecideError(f"no model '{reference}': not a built-in shape ({', '.join(SHAPES)}), "
                           "the hub id of one, nor a model folder or config.json here")
