"""Each layer kind holds what vLLM 0.32 sizes it to hold, read from published config.json files,
and what a config.json leaves out takes its architecture's default (transformers' config class).

Every test cites the vLLM source it follows; the configs are the built-in shapes (published files
under src/stackdecide/data/shapes/) and tests/data/configs/.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import pytest

from stackdecide.facts import memory, parallel
from stackdecide.facts.parallel import ParallelLayout
from stackdecide.facts.shapes import (
    ARCHITECTURE_DEFAULTS,
    DEFAULTED_KEYS,
    FULL,
    LINEAR,
    SHAPES,
    SLIDING,
    architecture_defaults,
    parse_shape,
    shape_from_path,
)

CONFIGS = Path(__file__).resolve().parents[1] / "data" / "configs"


def _published(name: str) -> dict:
    """A built-in shape's config.json as published, without stackdecide's own key."""
    return {k: v for k, v in SHAPES[name].config.items() if k != "_stackdecide"}


def test_full_attention_layers_hold_every_token() -> None:
    """vllm/v1/kv_cache_interface.py FullAttentionSpec.max_memory_usage_bytes:
    cdiv(max_model_len, block_size) pages."""
    llama = SHAPES["llama-3.1-70b"]
    assert llama.kinds == (FULL,) * 80
    assert memory.kv_bytes_per_sequence(llama, 8192, in_flight_tokens=16384) == 8192 * 327680


def test_sliding_window_layers_hold_the_window_and_the_steps_in_flight() -> None:
    """vllm/v1/kv_cache_interface.py SlidingWindowSpec.max_admission_blocks_per_request:
    min(sliding_window - 1 + max_in_flight_tokens, max_model_len) tokens (block rounding left
    out); vllm/config/vllm.py max_in_flight_tokens = max_concurrent_batches x
    max_num_batched_tokens, 2 batches with async scheduling (on by default) and no PP."""
    mistral = SHAPES["mistral-7b-v0.1"]  # sliding_window 4096 on all 32 layers, no layer_types
    assert (mistral.sliding_window, mistral.kinds) == (4096, (SLIDING,) * 32)
    in_flight = memory.in_flight_tokens(2048)
    assert in_flight == 4096 and memory.in_flight_tokens(2048, async_scheduling=False) == 2048
    assert memory.in_flight_tokens(2048, pipeline_parallel_size=2) == 3 * 2048
    per_token = memory.kv_bytes_per_token(mistral)
    assert per_token == 32 * 2 * 8 * 128 * 2  # 131,072 bytes while within the window
    # 32k context: 4,095 + 4,096 tokens per layer, 1.00 GiB, not 32,768 tokens (4.00 GiB)
    assert memory.kv_bytes_per_sequence(mistral, 32768, in_flight_tokens=in_flight) == \
        8191 * per_token
    assert memory.kv_bytes_per_sequence(mistral, 2000, in_flight_tokens=in_flight) == \
        2000 * per_token  # shorter than the window: every token


def test_gemma_2_alternates_sliding_and_full_layers() -> None:
    """vllm/model_executor/models/gemma2.py: per-layer sliding window from config.layer_types,
    which transformers' Gemma2Config fills (sliding on even layers); vllm/engine/arg_utils.py
    create_engine_config keeps the model-wide window off when layer_types mixes kinds."""
    gemma = SHAPES["gemma-2-9b"]
    assert gemma.kinds[:4] == (SLIDING, FULL, SLIDING, FULL)
    assert (gemma.sliding_layers, gemma.full_attention_layers) == (21, 21)
    per_layer = 2 * 8 * 256 * 2  # bytes per token and layer
    assert memory.kv_bytes_per_sequence(gemma, 8192, in_flight_tokens=4096) == \
        21 * 8192 * per_layer + 21 * (4095 + 4096) * per_layer


def test_multi_latent_attention_caches_one_latent_per_token() -> None:
    """vllm/v1/kv_cache_interface.py MLAAttentionSpec: one latent of kv_lora_rank +
    qk_rope_head_dim per token and layer (head_size_v 0), the same on every TP rank."""
    lite = SHAPES["deepseek-v2-lite"]
    assert lite.mla and memory.kv_bytes_per_token(lite) == 27 * (512 + 64) * 2  # 31,104 bytes
    assert parallel.kv_share(lite, ParallelLayout(tp=4)) == 1.0


def test_linear_attention_layers_hold_a_fixed_state_per_sequence() -> None:
    """Qwen3-Next: vllm/model_executor/models/qwen3_next.py builds layers from
    config.layer_types (transformers: full attention every full_attention_interval-th layer);
    Gated DeltaNet layers are a MambaSpec (vllm/v1/kv_cache_interface.py: one page per request),
    their state shaped by vllm/model_executor/layers/mamba/mamba_utils.py
    MambaStateShapeCalculator.gated_delta_net_state_shape."""
    qwen = SHAPES["qwen3-next-80b-a3b"]
    assert (qwen.full_attention_layers, qwen.linear_layers) == (12, 36)
    assert qwen.kinds[:4] == (LINEAR, LINEAR, LINEAR, FULL)
    # 12 attention layers x 2 KV heads x 256 x 2 (K, V) x 2 bytes, not 48 layers (98,304)
    assert memory.kv_bytes_per_token(qwen) == 24576
    conv = (2 * 16 * 128 + 32 * 128) * (4 - 1)  # conv_dim x (kernel - 1)
    recurrent = 32 * 128 * 128  # value heads x value dim x key dim
    assert qwen.linear_state_elements_per_layer == (conv, recurrent)
    state = 36 * (conv + recurrent) * 2
    assert memory.state_bytes_per_sequence(qwen) == state  # 37.7 MiB, whatever the length
    assert memory.kv_bytes_per_sequence(qwen, 32768, in_flight_tokens=0) == \
        32768 * 24576 + state
    # the state splits over TP with the value heads; 16 key heads refuse TP 3
    assert parallel.state_share(qwen, ParallelLayout(tp=4)) == 0.25
    assert ("tensor_parallel_size", "linear_num_key_heads 16 is not divisible by "
            "tensor_parallel_size 3") in parallel.layout_problems(qwen, ParallelLayout(tp=3))


def test_a_mamba_state_recorded_by_the_checkpoint_is_used() -> None:
    """vllm/model_executor/models/config.py (Qwen3.5): mamba_ssm_dtype of the config sets the
    recurrent state's dtype when --mamba-ssm-cache-dtype is auto."""
    fp32 = parse_shape({**_published("qwen3-next-80b-a3b"), "mamba_ssm_dtype": "float32"})
    conv, recurrent = fp32.linear_state_elements_per_layer
    assert memory.state_bytes_per_sequence(fp32) == 36 * (conv * 2 + recurrent * 4)


def test_layers_of_a_kind_vllm_sizes_otherwise_are_not_counted_in_silence(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """Jamba's Mamba layers (attn_layer_period 8, offset 4) and Llama-4's chunked local attention
    (vllm/v1/kv_cache_interface.py ChunkedLocalAttentionSpec) are sized by rules stackdecide does
    not have: the shape names them instead of counting them as attention."""
    monkeypatch.setitem(sys.modules, "transformers", None)  # this architecture's own rule
    jamba = shape_from_path(CONFIGS / "jamba-v0.1.json")
    assert jamba.full_attention_layers == 4 and jamba.unsized_layer_types == ("mamba",)
    assert jamba.moe_layers == 16  # expert_layer_period 2, offset 1
    chunked = parse_shape({**_published("llama-3.1-8b"),
                           "layer_types": ["chunked_attention", "chunked_attention",
                                           "chunked_attention", "full_attention"] * 8})
    assert chunked.unsized_layer_types == ("chunked_attention",)
    nemotron = parse_shape({**_published("llama-3.1-8b"), "hybrid_override_pattern": "M*" * 16})
    assert nemotron.unsized_layer_types == ("hybrid layers (hybrid_override_pattern)",)
    no_sizes = parse_shape({k: v for k, v in _published("qwen3-next-80b-a3b").items()
                            if not k.startswith("linear_")} | {"model_type": "other"})
    assert no_sizes.unsized_layer_types == ("linear_attention (no linear_* state sizes)",)


def test_gemma_2_takes_gemma2config_defaults_for_what_its_config_leaves_out() -> None:
    """google/gemma-2-9b's config.json has neither tie_word_embeddings nor layer_types;
    transformers' Gemma2Config (which vLLM loads it with) ties the embeddings and alternates
    sliding and full layers."""
    published = _published("gemma-2-9b")
    assert "tie_word_embeddings" not in published and "layer_types" not in published
    gemma = SHAPES["gemma-2-9b"]
    assert gemma.tie_word_embeddings and round(gemma.params / 1e9, 2) == 9.24  # not 10.16
    assert gemma.defaults == (
        "config.json leaves out tie_word_embeddings True, layer_types 21 sliding_attention + "
        "21 full_attention: Gemma2Config's defaults (stackdecide's table of transformers' "
        "defaults)")
    written = parse_shape({**published, "tie_word_embeddings": True,
                           "layer_types": list(gemma.kinds)})
    assert written.params == gemma.params and written.kinds == gemma.kinds
    assert written.defaults == ""
    # a config that says everything needs no default, and the common ones say nothing
    assert all(not SHAPES[name].defaults for name in SHAPES if name != "gemma-2-9b")


def test_without_transformers_an_unknown_architecture_says_what_was_assumed(
        monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(sys.modules, "transformers", None)
    config = {k: v for k, v in _published("llama-3.1-8b").items()
              if k != "tie_word_embeddings"} | {"model_type": "somethingnew"}
    filled, origin = architecture_defaults(config)
    assert filled == {} and "transformers is not installed" in origin
    shape = parse_shape(config)
    assert not shape.tie_word_embeddings
    assert shape.defaults == (
        "config.json leaves out tie_word_embeddings and model_type 'somethingnew' is not in "
        "stackdecide's table of architecture defaults and transformers is not installed: untied "
        "embeddings assumed")


@pytest.mark.slow  # imports transformers (and torch): seconds
@pytest.mark.parametrize("model_type", sorted(ARCHITECTURE_DEFAULTS))
def test_the_table_of_defaults_is_what_transformers_sets(model_type: str) -> None:
    """Each entry of ARCHITECTURE_DEFAULTS, and what a shape assumes for the keys an entry leaves
    out, against transformers' own config class, on a config that gives sizes only."""
    transformers = pytest.importorskip("transformers")
    config = {"model_type": model_type, "num_hidden_layers": 12, "hidden_size": 1200,
              "num_attention_heads": 12, "intermediate_size": 100, "vocab_size": 1000}
    if model_type.startswith("deepseek"):
        config |= {"kv_lora_rank": 512, "qk_rope_head_dim": 64, "qk_nope_head_dim": 128,
                   "v_head_dim": 128, "q_lora_rank": None}
    instance = transformers.CONFIG_MAPPING[model_type](**config)
    theirs = parse_shape(config | {key: getattr(instance, key) for key in DEFAULTED_KEYS
                                   if getattr(instance, key, None) is not None})
    ours = parse_shape(config)
    fields = ["tie_word_embeddings", "num_kv_heads", "attention_bias", "sliding_window", "kinds",
              "linear_num_key_heads", "linear_num_value_heads", "linear_key_head_dim",
              "linear_value_head_dim", "linear_conv_kernel_dim"] + ([] if ours.mla else ["head_dim"])
    assert {f: getattr(ours, f) for f in fields} == {f: getattr(theirs, f) for f in fields}


@pytest.mark.slow  # imports transformers (and torch): seconds
def test_an_architecture_not_in_the_table_asks_transformers() -> None:
    transformers = pytest.importorskip("transformers")
    jamba = json.loads((CONFIGS / "jamba-v0.1.json").read_text())
    shape = parse_shape(jamba)
    assert shape.defaults.endswith(f"transformers {transformers.__version__} JambaConfig")
    assert shape.full_attention_layers == 4 and shape.unsized_layer_types  # never silent
