"""Model shapes: what a Hugging Face ``config.json`` says about a model's size, for any model.

``shape_from_config`` reads the keys that decide parameter counts and KV-cache size:

* dense and mixture-of-experts MLPs: ``num_experts`` / ``num_local_experts`` / ``n_routed_experts``,
  ``num_experts_per_tok`` (``experts_per_token``), ``moe_intermediate_size`` (else each expert is
  ``intermediate_size`` wide, as in Mixtral and gpt-oss), shared experts
  (``shared_expert_intermediate_size``, ``n_shared_experts``) and which layers are dense
  (``mlp_only_layers`` / ``decoder_sparse_step`` of Qwen-MoE, ``first_k_dense_replace`` /
  ``moe_layer_freq`` of DeepSeek);
* grouped-query attention (``num_key_value_heads``, ``head_dim``, a gated query as in Qwen3-Next)
  and multi-latent attention (``kv_lora_rank``, ``q_lora_rank``, ``qk_rope_head_dim``,
  ``qk_nope_head_dim``, ``v_head_dim``): an MLA layer caches ``kv_lora_rank + qk_rope_head_dim``
  elements per token, not K and V per head;
* the kind of every layer (``ModelShape.layer_types``), as vLLM 0.32 gives each layer its KV-cache
  spec (``vllm/v1/kv_cache_interface.py``): ``full_attention`` (``FullAttentionSpec``, or
  ``MLAAttentionSpec`` for MLA: every token), ``sliding_attention`` (``SlidingWindowSpec``: at
  most the window), ``linear_attention`` (Gated DeltaNet, a ``MambaSpec``: a fixed state per
  sequence, no per-token KV). They come from ``layer_types`` (or ``layers_block_type``); else
  ``full_attention_interval`` (Qwen3-Next: every n-th layer is full attention, the others
  linear); else Jamba's ``attn_layer_period``; else a ``sliding_window`` on every layer
  (Mistral-7B-v0.1; vLLM 0.32 ``EngineArgs.create_engine_config`` sets the model-wide window only
  then) or on the layers from ``max_window_layers`` on (Qwen2/3 with ``use_sliding_window``). A
  kind vLLM sizes some other way (mamba, chunked attention...) is kept as written, and a hybrid
  model whose layers are described some other way (``HYBRID_MARKERS``) gets a kind naming that
  key: ``unsized_layer_types`` names them, and the memory checks say they could not check rather
  than count those layers as something else;
* tied embeddings, and the checkpoint's ``quantization_config`` (its format is
  ``facts.dtypes.format_from_quantization_config``: one rule for every reader).

**What config.json leaves out** takes the architecture's default, as transformers' config class
(which vLLM loads the config with) sets it: Gemma-2's published config has neither
``tie_word_embeddings`` nor ``layer_types``, and ``Gemma2Config`` ties the embeddings and
alternates sliding and full layers. ``ARCHITECTURE_DEFAULTS`` holds these defaults for the common
architectures (a test checks each against transformers' own classes); any other ``model_type``
asks transformers' ``CONFIG_MAPPING`` where transformers is installed. ``ModelShape.defaults``
says which keys were filled and from where.

Built-in shapes are published ``config.json`` files under ``stackdecide/data/shapes/`` (one per
shape, named after it; each file's ``_stackdecide`` key and that folder's README.md give its
source). Parameter counts are estimates from the config: biases other than attention biases,
attention sinks and vision towers are not counted.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from importlib import resources
from pathlib import Path
from typing import Any

from stackdecide._files import read_user_text
from stackdecide.errors import StackdecideError
from stackdecide.facts.dtypes import attention_left_unquantized, format_from_quantization_config

CONFIG_LIMIT = 4 * 1024 * 1024  # a config.json is a few KB; this refuses anything else early
META_KEY = "_stackdecide"  # built-in files: {"source": ..., "hub_ids": [...]}; not a config key

# The layer kinds vLLM 0.32 sizes (vllm/v1/kv_cache_interface.py): KV for every token
# (FullAttentionSpec, MLAAttentionSpec), at most the window (SlidingWindowSpec), a fixed state per
# sequence (MambaSpec, for Gated DeltaNet linear attention).
FULL, SLIDING, LINEAR = "full_attention", "sliding_attention", "linear_attention"
# Other spellings of those kinds in config.json: ``layers_block_type`` (Jamba, Granite hybrids)
# says "attention" for a full-attention layer.
LAYER_KIND_SPELLINGS = {"attention": FULL}
# Keys of hybrid models (Nemotron-H, MiniMax, Mamba layers) whose layer kinds are read no other
# way: such a model's layers are never counted as attention in silence.
HYBRID_MARKERS = ("hybrid_override_pattern", "attn_type_list", "mamba_d_state", "mamba_n_heads",
                  "mamba_num_heads", "ssm_state_size")
# vLLM 0.32 vllm/model_executor/models/qwen3_next.py Qwen3NextAttention: the query projection
# also yields an output gate (``attn_output_gate``, True unless the config says otherwise).
GATED_QUERY_MODEL_TYPES = frozenset({"qwen3_next"})


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
    # the kind of each layer (FULL, SLIDING, LINEAR or a kind as written); empty: all FULL
    layer_types: tuple[str, ...] = ()
    gated_query: bool = False  # the query projection also yields an output gate (Qwen3-Next)
    # Gated DeltaNet linear attention (Qwen3-Next): heads and widths of its fixed state
    linear_num_key_heads: int = 0
    linear_num_value_heads: int = 0
    linear_key_head_dim: int = 0
    linear_value_head_dim: int = 0
    linear_conv_kernel_dim: int = 0
    linear_state_dtype: str | None = None  # the recurrent state's dtype (mamba_ssm_dtype); None: the model's
    attention_bias: bool = False
    quantization: str | None = None  # the checkpoint's weight format (facts.dtypes), e.g. fp8-block
    quant_method: str | None = None  # its quantization_config.quant_method as written
    unquantized_attention: bool = False  # the checkpoint keeps attention projections in 16 bit
    source: str = ""  # where the config came from
    defaults: str = ""  # keys config.json leaves out, the values they were given and from where
    hub_ids: tuple[str, ...] = ()
    config: Mapping[str, Any] = field(default_factory=dict, compare=False, hash=False, repr=False)

    # -- layers -------------------------------------------------------------------------------
    @property
    def kinds(self) -> tuple[str, ...]:
        """The kind of every layer."""
        return self.layer_types or (FULL,) * self.num_layers

    @property
    def full_attention_layers(self) -> int:
        return self.kinds.count(FULL)

    @property
    def sliding_layers(self) -> int:
        """Layers that keep at most ``sliding_window`` tokens of KV cache."""
        return self.kinds.count(SLIDING)

    @property
    def linear_layers(self) -> int:
        """Linear-attention layers: a fixed state per sequence, no KV cache per token."""
        return self.kinds.count(LINEAR)

    @property
    def attention_layers(self) -> int:
        """Layers with a KV cache per token: full and sliding-window attention."""
        return self.full_attention_layers + self.sliding_layers

    @property
    def unsized_layer_types(self) -> tuple[str, ...]:
        """Layer kinds whose memory this shape cannot size: kinds it does not know, and linear
        attention without the ``linear_*`` widths of its state."""
        unknown = {kind for kind in self.kinds if kind not in (FULL, SLIDING, LINEAR)}
        if self.linear_layers and not all(self.linear_state_elements_per_layer):
            unknown.add(f"{LINEAR} (no linear_* state sizes)")
        return tuple(sorted(unknown))

    # -- attention ---------------------------------------------------------------------------
    @property
    def mla(self) -> bool:
        return self.kv_lora_rank > 0

    @property
    def attention_params(self) -> int:
        """Q, K, V and output projections of every attention layer (a layer of a kind this shape
        does not know counts as one), and the projections of linear-attention layers."""
        h, heads = self.hidden_size, self.num_heads
        if self.mla:
            qk = self.qk_nope_head_dim + self.qk_rope_head_dim
            query = (h * self.q_lora_rank + self.q_lora_rank * heads * qk) if self.q_lora_rank \
                else h * heads * qk
            per_layer = (query + h * (self.kv_lora_rank + self.qk_rope_head_dim)
                         + self.kv_lora_rank * heads * (self.qk_nope_head_dim + self.v_head_dim)
                         + heads * self.v_head_dim * h)
        else:
            query_heads = heads * (2 if self.gated_query else 1)
            per_layer = h * self.head_dim * (query_heads + heads + 2 * self.num_kv_heads)
        return (self.num_layers - self.linear_layers) * per_layer \
            + self.linear_layers * self.linear_projection_params

    @property
    def linear_projection_params(self) -> int:
        """One Gated DeltaNet layer's projections (vLLM 0.32 qwen3_next.py Qwen3NextGatedDeltaNet):
        ``in_proj_qkvz`` (query and key of the key width, value and gate of the value width),
        ``in_proj_ba`` (two per value head) and ``out_proj``."""
        keys = self.linear_num_key_heads * self.linear_key_head_dim
        values = self.linear_num_value_heads * self.linear_value_head_dim
        h = self.hidden_size
        return h * (2 * keys + 2 * values) + h * 2 * self.linear_num_value_heads + values * h

    @property
    def attention_dim(self) -> float:
        """Per-head width of the attention products (QK^T and PV), for prefill FLOPs."""
        if self.mla:
            return (self.qk_nope_head_dim + self.qk_rope_head_dim + self.v_head_dim) / 2
        return self.head_dim

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
        norms of Qwen3, MLA's latent norms, the final norm), attention biases, MoE routers, and
        the small tensors of linear-attention layers (the causal convolution, per-head decay and
        step bias, the output norm)."""
        per_layer = 2 * self.hidden_size
        if self.mla:
            per_layer += self.kv_lora_rank + self.q_lora_rank
        per_attention_layer = 0
        if self.model_type in ("qwen3", "qwen3_moe", "qwen3_next"):
            per_attention_layer += 2 * self.head_dim
        if self.attention_bias:
            per_attention_layer += (self.num_heads + 2 * self.num_kv_heads) * self.head_dim \
                + self.hidden_size
        conv_channels = 2 * self.linear_num_key_heads * self.linear_key_head_dim \
            + self.linear_num_value_heads * self.linear_value_head_dim
        per_linear_layer = conv_channels * self.linear_conv_kernel_dim \
            + 2 * self.linear_num_value_heads + self.linear_value_head_dim
        router = self.hidden_size * self.num_experts * self.moe_layers
        return (self.num_layers * per_layer
                + (self.num_layers - self.linear_layers) * per_attention_layer
                + self.linear_layers * per_linear_layer + router + self.hidden_size)

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
        """KV-cache elements one token takes in one attention layer: K and V of every KV head
        (vLLM AttentionSpec), or MLA's compressed latent plus its rotary key (MLAAttentionSpec:
        one latent, no V)."""
        if self.mla:
            return self.kv_lora_rank + self.qk_rope_head_dim
        return 2 * self.num_kv_heads * self.head_dim

    @property
    def kv_elements_per_token(self) -> int:
        """KV-cache elements per token over the attention layers, while the context is within
        any sliding window; linear-attention layers keep none. Multiply by the dtype's bytes."""
        return self.attention_layers * self.kv_elements_per_layer

    def kv_elements(self, tokens: int) -> int:
        """KV-cache elements a context of ``tokens`` holds and attention reads: sliding-window
        layers keep at most the window."""
        window = min(tokens, self.sliding_window) if self.sliding_window else tokens
        return self.kv_elements_per_layer * (self.full_attention_layers * tokens
                                             + self.sliding_layers * window)

    def kv_elements_reserved(self, tokens: int, in_flight_tokens: int) -> int:
        """KV-cache elements vLLM 0.32 reserves for one request of ``tokens``: every token on
        full-attention layers (FullAttentionSpec.max_memory_usage_bytes); on sliding-window
        layers ``min(window - 1 + in_flight_tokens, tokens)``, since blocks leave the window
        only once the steps in flight have been processed
        (SlidingWindowSpec.max_admission_blocks_per_request). Block rounding is left out."""
        held = tokens
        if self.sliding_window:
            held = min(self.sliding_window - 1 + in_flight_tokens, tokens)
        return self.kv_elements_per_layer * (self.full_attention_layers * tokens
                                             + self.sliding_layers * held)

    @property
    def linear_state_elements_per_layer(self) -> tuple[int, int]:
        """The fixed state of one Gated DeltaNet layer per sequence, as (convolution state,
        recurrent state) elements: vLLM 0.32 vllm/model_executor/layers/mamba/mamba_utils.py
        MambaStateShapeCalculator.gated_delta_net_state_shape (on one GPU)."""
        conv_channels = 2 * self.linear_num_key_heads * self.linear_key_head_dim \
            + self.linear_num_value_heads * self.linear_value_head_dim
        recurrent = self.linear_num_value_heads * self.linear_value_head_dim \
            * self.linear_key_head_dim
        return conv_channels * max(self.linear_conv_kernel_dim - 1, 0), recurrent


# -- what config.json leaves out -----------------------------------------------------------------

def _sliding_unless_every(period: int | str, default: int = 0) -> Callable[[Mapping[str, Any]], list]:
    """A ``layer_types`` default: sliding-window layers, and every ``period``-th one full
    (``period`` a config key, e.g. Gemma-3's ``sliding_window_pattern``, or a number)."""
    def layer_types(config: Mapping[str, Any]) -> list[str]:
        every = _int(config, period, default=default) if isinstance(period, str) else period
        return [SLIDING if (i + 1) % every else FULL
                for i in range(_int(config, "num_hidden_layers"))]
    return layer_types


# model_type -> (transformers' config class, the defaults it gives the keys a shape reads where
# they differ from what a shape assumes otherwise: untied embeddings, head_dim hidden / heads, one
# KV head per head, no bias, no sliding window, every layer full attention). transformers 5.x;
# tests/facts/test_layer_types.py checks every entry against the class itself.
ARCHITECTURE_DEFAULTS: dict[str, tuple[str, dict[str, Any]]] = {
    "llama": ("LlamaConfig", {}),
    "mistral": ("MistralConfig", {"sliding_window": 4096, "num_key_value_heads": 8}),
    "mixtral": ("MixtralConfig", {"num_key_value_heads": 8}),
    "qwen2": ("Qwen2Config", {"num_key_value_heads": 32}),
    "qwen3": ("Qwen3Config", {"num_key_value_heads": 32, "head_dim": 128}),
    "qwen3_moe": ("Qwen3MoeConfig", {"num_key_value_heads": 4}),
    "qwen3_next": ("Qwen3NextConfig", {
        "num_key_value_heads": 2, "head_dim": 256, "full_attention_interval": 4,
        "linear_num_key_heads": 16, "linear_num_value_heads": 32, "linear_key_head_dim": 128,
        "linear_value_head_dim": 128, "linear_conv_kernel_dim": 4}),
    "gemma": ("GemmaConfig", {"tie_word_embeddings": True, "head_dim": 256,
                              "num_key_value_heads": 16}),
    "gemma2": ("Gemma2Config", {"tie_word_embeddings": True, "head_dim": 256,
                                "num_key_value_heads": 4, "sliding_window": 4096,
                                "layer_types": _sliding_unless_every(2)}),
    "gemma3_text": ("Gemma3TextConfig", {
        "tie_word_embeddings": True, "head_dim": 256, "num_key_value_heads": 4,
        "sliding_window": 4096, "layer_types": _sliding_unless_every("sliding_window_pattern", 6)}),
    "gpt_oss": ("GptOssConfig", {"head_dim": 64, "num_key_value_heads": 8, "attention_bias": True,
                                 "sliding_window": 128, "layer_types": _sliding_unless_every(2)}),
    "deepseek_v2": ("DeepseekV2Config", {}),
    "deepseek_v3": ("DeepseekV3Config", {"num_key_value_heads": 128}),
}
# The keys a shape reads whose omission takes the architecture's default.
DEFAULTED_KEYS = ("tie_word_embeddings", "num_key_value_heads", "head_dim", "attention_bias",
                  "sliding_window", "layer_types", "full_attention_interval",
                  "linear_num_key_heads", "linear_num_value_heads", "linear_key_head_dim",
                  "linear_value_head_dim", "linear_conv_kernel_dim")


def _transformers_defaults(config: Mapping[str, Any],
                           missing: list[str]) -> tuple[dict[str, Any], str] | None:
    """What transformers' config class of ``config``'s model_type gives the ``missing`` keys;
    None without transformers or a class for it. Imported only here: transformers brings torch
    (seconds), so the common architectures are read from ``ARCHITECTURE_DEFAULTS``."""
    try:
        import transformers
        from transformers import CONFIG_MAPPING
    except ImportError:
        return None
    quiet = logging.getLogger("transformers")
    level = quiet.level
    quiet.setLevel(logging.ERROR)  # a config class warns about keys it does not know
    try:
        config_class = CONFIG_MAPPING[str(config.get("model_type"))]
        instance = config_class(**{k: v for k, v in config.items() if k != META_KEY})
    except Exception:  # no class for this model_type, or one that refuses the config
        return None
    finally:
        quiet.setLevel(level)
    filled = {key: getattr(instance, key) for key in missing
              if getattr(instance, key, None) is not None}
    return filled, f"transformers {transformers.__version__} {config_class.__name__}"


def architecture_defaults(config: Mapping[str, Any]) -> tuple[dict[str, Any], str]:
    """The ``DEFAULTED_KEYS`` ``config`` leaves out that its architecture gives a value, and
    where those values come from: ``ARCHITECTURE_DEFAULTS`` for the common architectures,
    transformers' config class for any other (where installed). ``({}, "")`` when the defaults
    are what a shape assumes anyway; ``({}, why)`` when no defaults are known."""
    missing = [key for key in DEFAULTED_KEYS if key not in config]
    if not missing:
        return {}, ""
    model_type = str(config.get("model_type") or "?")
    known = ARCHITECTURE_DEFAULTS.get(model_type)
    if known is not None:
        class_name, defaults = known
        filled = {key: value(config) if callable(value) else value
                  for key, value in defaults.items() if key in missing}
        return filled, (f"{class_name}'s defaults (stackdecide's table of transformers' "
                        "defaults)" if filled else "")
    found = _transformers_defaults(config, missing)
    if found is not None:
        return found if found[0] else ({}, "")
    return {}, (f"model_type '{model_type}' is not in stackdecide's table of architecture "
                "defaults and transformers is not installed")


def _describe_defaults(filled: Mapping[str, Any], origin: str, config: Mapping[str, Any]) -> str:
    """What ``ModelShape.defaults`` says: the keys filled, their values, and from where."""
    if filled:
        shown = []
        for key, value in filled.items():
            if isinstance(value, list):  # layer_types: how many layers of each kind
                counts = {kind: value.count(kind) for kind in dict.fromkeys(value)}
                value = " + ".join(f"{n} {kind}" for kind, n in counts.items())
            shown.append(f"{key} {value}")
        return f"config.json leaves out {', '.join(shown)}: {origin}"
    if origin and "tie_word_embeddings" not in config:
        return f"config.json leaves out tie_word_embeddings and {origin}: untied embeddings assumed"
    return ""


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
    ``decoder_sparse_step``, DeepSeek's ``first_k_dense_replace`` and ``moe_layer_freq``,
    Jamba's ``expert_layer_period`` and ``expert_layer_offset``."""
    if not experts:
        return 0
    only = set(config.get("mlp_only_layers") or [])
    step = _int(config, "decoder_sparse_step", default=1) or 1
    first = _int(config, "first_k_dense_replace", default=0)
    freq = _int(config, "moe_layer_freq", default=1) or 1
    period = _int(config, "expert_layer_period", default=1) or 1
    offset = _int(config, "expert_layer_offset", default=0)
    return sum(1 for i in range(layers)
               if i not in only and (i + 1) % step == 0 and i >= first and i % freq == 0
               and i % period == offset % period)


def _layer_kinds(config: Mapping[str, Any], layers: int) -> tuple[int | None, tuple[str, ...]]:
    """The sliding window and the kind of every layer (see the module doc)."""
    window = config.get("sliding_window")
    if not isinstance(window, int) or isinstance(window, bool) or window <= 0 \
            or config.get("use_sliding_window") is False:
        window = None  # vLLM 0.32 ModelConfig: a window of 0 disables it; Qwen2/3's flag too
    listed = config.get("layer_types") or config.get("layers_block_type")
    interval = _int(config, "full_attention_interval", default=0)
    if isinstance(listed, list) and listed:
        if len(listed) != layers:
            raise ValueError(f"{len(listed)} layer types for {layers} layers")
        kinds = [LAYER_KIND_SPELLINGS.get(str(kind), str(kind)) for kind in listed]
        # a sliding layer without a window attends to every token (vLLM: no per-layer window)
        kinds = [FULL if kind == SLIDING and window is None else kind for kind in kinds]
    elif interval > 0:  # Qwen3NextConfig.layer_types: every interval-th layer is full attention
        kinds = [FULL if (i + 1) % interval == 0 else LINEAR for i in range(layers)]
    elif "attn_layer_period" in config:  # Jamba: attention every period-th layer, mamba between
        period = _int(config, "attn_layer_period")
        offset = _int(config, "attn_layer_offset", default=0)
        kinds = [FULL if i % period == offset else "mamba" for i in range(layers)]
    elif marker := next((key for key in HYBRID_MARKERS if key in config), None):
        kinds = [f"hybrid layers ({marker})"] * layers  # layers this module cannot tell apart
    elif window is not None and "max_window_layers" in config and "use_sliding_window" in config:
        first = _int(config, "max_window_layers", default=layers)  # Qwen2/3: the window from here on
        kinds = [SLIDING if i >= first else FULL for i in range(layers)]
    elif window is not None:
        kinds = [SLIDING] * layers  # Mistral-7B-v0.1: a model-wide window
    else:
        kinds = [FULL] * layers
    return (window if SLIDING in kinds else None), tuple(kinds)


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
    """The shape of a model from its ``config.json``, with the architecture's defaults for what
    it leaves out (``architecture_defaults``); raises ``KeyError`` naming a missing size key,
    ``TypeError``/``ValueError`` for a value that is not a number."""
    raw = config
    config = text_config(config)
    filled, origin = architecture_defaults(config)
    defaults = _describe_defaults(filled, origin, config)
    config = {**config, **filled}
    heads, hidden = _int(config, "num_attention_heads"), _int(config, "hidden_size")
    layers = _int(config, "num_hidden_layers")
    experts = _int(config, "num_experts", "num_local_experts", "n_routed_experts", default=0)
    intermediate = _int(config, "intermediate_size", default=0)
    expert_size = _int(config, "moe_intermediate_size", default=intermediate) if experts else 0
    shared = _int(config, "shared_expert_intermediate_size", default=0) or \
        _int(config, "n_shared_experts", default=0) * expert_size
    if not intermediate and not experts:
        raise KeyError("intermediate_size")
    window, kinds = _layer_kinds(config, layers)
    quant = config.get("quantization_config") or {}
    method = str(quant.get("quant_method")) if isinstance(quant, Mapping) and quant else None
    quant = quant if isinstance(quant, Mapping) else {}
    model_type = str(config.get("model_type", "?"))
    state_dtype = config.get("mamba_ssm_dtype")
    return ModelShape(
        name=name, architecture=str((config.get("architectures") or ["?"])[0]),
        model_type=model_type, hidden_size=hidden, num_layers=layers,
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
        sliding_window=window, layer_types=kinds,
        gated_query=bool(config.get("attn_output_gate", model_type in GATED_QUERY_MODEL_TYPES)),
        linear_num_key_heads=_int(config, "linear_num_key_heads", default=0),
        linear_num_value_heads=_int(config, "linear_num_value_heads", default=0),
        linear_key_head_dim=_int(config, "linear_key_head_dim", default=0),
        linear_value_head_dim=_int(config, "linear_value_head_dim", default=0),
        linear_conv_kernel_dim=_int(config, "linear_conv_kernel_dim", default=0),
        linear_state_dtype=str(state_dtype) if state_dtype else None,
        attention_bias=bool(config.get("attention_bias", False)),
        quantization=format_from_quantization_config(quant), quant_method=method,
        unquantized_attention=attention_left_unquantized(quant),
        source=source, defaults=defaults, hub_ids=hub_ids, config=raw)


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
