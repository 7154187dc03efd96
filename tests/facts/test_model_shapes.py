"""Model shapes read from config.json: dense, MoE, GQA, MLA, sliding windows, quantization."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from stackdecide.cli import main
from stackdecide.errors import StackdecideError
from stackdecide.facts import memory
from stackdecide.facts.dtypes import weight_bytes
from stackdecide.facts.shapes import SHAPES, find_shape, parse_shape, shape_for_id, shape_from_path

# name: (params B, active params B, KV bytes/token in BF16, checkpoint format, sliding window,
# sliding layers, checkpoint GB). Published totals: Qwen3-30B-A3B "30.5B, 3.3B activated",
# gpt-oss-20b "21B (20.9B), 13.8 GB of MXFP4 checkpoint", Llama-3.1-70B 70.6B, Mistral 7.24B,
# Gemma-2-9B 9.24B, Mixtral-8x7B 46.7B (12.9B active), DeepSeek-V2-Lite 15.7B, Qwen3-Next 80B.
EXPECTED = {
    "deepseek-v2-lite": (15.706, 2.661, 31104, None, None, 0, 31.41),
    "gemma-2-9b": (9.241, 9.241, 344064, None, 4096, 21, 18.48),
    "mixtral-8x7b-v0.1": (46.703, 12.88, 131072, None, None, 0, 93.41),
    "qwen3-next-80b-a3b": (79.674, 3.875, 24576, None, None, 0, 159.35),
    "gpt-oss-20b": (20.908, 4.187, 49152, "mxfp4", 128, 12, 13.75),
    "llama-3.1-70b": (70.554, 70.554, 327680, None, None, 0, 141.11),
    "llama-3.1-8b": (8.03, 8.03, 131072, None, None, 0, 16.06),
    "mistral-7b-v0.1": (7.242, 7.242, 131072, None, 4096, 32, 14.48),
    "mistral-7b-v0.3": (7.248, 7.248, 131072, None, None, 0, 14.5),
    "qwen3-30b-a3b": (30.532, 3.353, 98304, None, None, 0, 61.06),
    "qwen3-32b": (32.762, 32.762, 262144, None, None, 0, 65.52),
    "qwen3-4b-fp8": (4.022, 4.022, 147456, "fp8-block", None, 0, 4.41),
    "qwen3-4b": (4.022, 4.022, 147456, None, None, 0, 8.04),
    "qwen3-8b": (8.191, 8.191, 147456, None, None, 0, 16.38),
    "tiny": (0.002, 0.002, 1024, None, None, 0, 0.0),
    "smollm2-135m": (0.135, 0.135, 23040, None, None, 0, 0.27),
    "smollm2-135m-fp8": (0.135, 0.135, 23040, "fp8", None, 0, 0.16),
}


def _facts(name: str) -> tuple:
    s = SHAPES[name]
    return (round(s.params / 1e9, 3), round(s.active_params / 1e9, 3),
            memory.kv_bytes_per_token(s), s.quantization, s.sliding_window, s.sliding_layers,
            round(memory.weight_bytes(s, s.quantization) / 1e9, 2))


def test_every_built_in_shape_derives_its_published_size() -> None:
    assert {name: _facts(name) for name in SHAPES} == EXPECTED


def test_built_in_files_name_their_source() -> None:
    for shape in SHAPES.values():
        assert shape.source.endswith("(built in)") and shape.hub_ids
        if shape.name == "smollm2-135m":  # written from the GGUF of a package, not the hub
            assert shape.source.startswith("config.json that transformers")
        elif shape.name == "smollm2-135m-fp8":  # stackdecide's own FP8 checkpoint of it
            assert shape.source.startswith("config.json of stackdecide's FP8 checkpoint")
        elif shape.name != "tiny":
            assert shape.source.startswith("https://huggingface.co/")
    assert shape_for_id("qwen/qwen3-8b") is SHAPES["qwen3-8b"]
    assert shape_for_id("Qwen/Qwen3-9B") is None and shape_for_id(None) is None


DEEPSEEK_V2_LITE = {  # deepseek-ai/DeepSeek-V2-Lite config.json, the keys that size it
    "architectures": ["DeepseekV2ForCausalLM"], "model_type": "deepseek_v2", "hidden_size": 2048,
    "intermediate_size": 10944, "moe_intermediate_size": 1408, "num_hidden_layers": 27,
    "num_attention_heads": 16, "num_key_value_heads": 16, "n_shared_experts": 2,
    "n_routed_experts": 64, "num_experts_per_tok": 6, "first_k_dense_replace": 1,
    "moe_layer_freq": 1, "kv_lora_rank": 512, "q_lora_rank": None, "qk_rope_head_dim": 64,
    "v_head_dim": 128, "qk_nope_head_dim": 128, "vocab_size": 102400,
    "tie_word_embeddings": False, "max_position_embeddings": 163840,
}


def test_multi_latent_attention_caches_the_latent_not_k_and_v() -> None:
    shape = parse_shape(DEEPSEEK_V2_LITE, "v2-lite")
    assert shape.mla and shape.kv_elements_per_layer == 512 + 64
    assert memory.kv_bytes_per_token(shape) == 27 * 576 * 2  # 31,104 bytes, not 27x2x16x128x2
    assert (shape.moe_layers, shape.shared_intermediate_size) == (26, 2 * 1408)
    assert round(shape.params / 1e9, 2) == 15.71  # published: 15.7B
    assert 2.4 < shape.active_params / 1e9 < 2.7  # published: 2.4B active


def test_sliding_window_layers_hold_at_most_the_window() -> None:
    mistral, oss = SHAPES["mistral-7b-v0.1"], SHAPES["gpt-oss-20b"]
    assert mistral.kv_elements(8192) == mistral.kv_elements(4096) == 4096 * 32 * 2 * 8 * 128
    assert oss.kv_elements(100) == 100 * 24 * 2 * 8 * 64  # inside the window: every layer
    assert oss.kv_elements(1000) == (12 * 1000 + 12 * 128) * 2 * 8 * 64
    qwen2 = parse_shape({**json.loads(json.dumps(SHAPES["qwen3-8b"].config)),
                         "use_sliding_window": True, "sliding_window": 4096,
                         "max_window_layers": 28})
    assert (qwen2.sliding_window, qwen2.sliding_layers) == (4096, 36 - 28)


@pytest.mark.parametrize(("quantization_config", "expected", "attention_kept"), [
    ({"quant_method": "fp8", "weight_block_size": [128, 128]}, "fp8-block", False),
    ({"quant_method": "fp8", "activation_scheme": "dynamic"}, "fp8", False),
    ({"quant_method": "awq", "bits": 4, "group_size": 128, "zero_point": True}, "awq-g128", False),
    ({"quant_method": "gptq", "bits": 4, "group_size": 32}, "gptq-g32", False),
    ({"quant_method": "gptq", "bits": 8, "group_size": -1}, "int8", False),
    ({"quant_method": "bitsandbytes", "load_in_4bit": True, "bnb_4bit_use_double_quant": True},
     "bnb-4bit-dq", False),
    ({"quant_method": "bitsandbytes", "load_in_8bit": True}, "bnb-8bit", False),
    ({"quant_method": "compressed-tensors", "config_groups": {"group_0": {"weights": {
        "num_bits": 8, "type": "float", "strategy": "channel"}}}}, "fp8", False),
    ({"quant_method": "compressed-tensors", "config_groups": {"group_0": {"weights": {
        "num_bits": 8, "type": "float", "strategy": "block", "block_structure": [128, 128]}}}},
     "fp8-block", False),
    ({"quant_method": "compressed-tensors", "ignore": ["lm_head", "re:.*self_attn.*"],
      "config_groups": {"group_0": {"weights": {"num_bits": 4, "type": "int",
                                                "strategy": "group", "group_size": 128}}}},
     "int4-g128", True),
    ({"quant_method": "mxfp4", "modules_to_not_convert": ["model.layers.*.self_attn"]},
     "mxfp4", True),
    ({"quant_method": "some_new_method"}, None, False),
])
def test_quantization_config_names_the_weight_format(quantization_config: dict, expected: str | None,
                                                     attention_kept: bool) -> None:
    config = {**SHAPES["qwen3-8b"].config, "quantization_config": quantization_config}
    shape = parse_shape(config)
    assert (shape.quantization, shape.unquantized_attention) == (expected, attention_kept)
    assert shape.quant_method == quantization_config["quant_method"]


def test_weight_bytes_per_format_on_qwen3_8b() -> None:
    shape = SHAPES["qwen3-8b"]
    linear, rest = shape.linear_params, shape.params - shape.linear_params
    expected = {
        "bf16": 2 * shape.params,
        "fp8": linear + 2 * rest,
        "fp8-block": linear * (1 + 4 / 128**2) + 2 * rest,
        "awq-g128": linear * (0.5 + 2.5 / 128) + 2 * rest,  # FP16 scale + 4-bit zero per group
        "int4-g128": linear * (0.5 + 2 / 128) + 2 * rest,
        "bnb-4bit": linear * (0.5 + 4 / 64) + 2 * rest,
        "nvfp4": linear * (0.5 + 1 / 16) + 2 * rest,
    }
    assert {f: weight_bytes(shape, f).total for f in expected} == pytest.approx(expected)


def test_gpt_oss_keeps_attention_in_bf16_and_reads_four_experts() -> None:
    shape = SHAPES["gpt-oss-20b"]
    held = weight_bytes(shape, "mxfp4")
    assert held.linear == shape.expert_params * 0.5  # only the experts are MXFP4
    assert held.norms == (shape.norm_params + shape.attention_params) * 2
    read = weight_bytes(shape, "mxfp4", active=True)
    assert read.linear == shape.active_expert_params * 0.5 == held.linear * 4 / 32


def test_a_text_config_inside_a_multimodal_config_is_read() -> None:
    inner = {k: v for k, v in SHAPES["qwen3-8b"].config.items() if k != "_stackdecide"}
    shape = parse_shape({"architectures": ["SomeVLModel"], "text_config": inner,
                         "quantization_config": {"quant_method": "fp8"}})
    assert shape.params == SHAPES["qwen3-8b"].params and shape.quantization == "fp8"


def test_model_folders_and_config_files(tmp_path: Path) -> None:
    (tmp_path / "m").mkdir()
    (tmp_path / "m" / "config.json").write_text(json.dumps(DEEPSEEK_V2_LITE))
    assert shape_from_path(tmp_path / "m").kv_elements_per_layer == 576
    assert find_shape(str(tmp_path / "m" / "config.json")).num_layers == 27
    (tmp_path / "bad.json").write_text(json.dumps({"hidden_size": 8}))
    with pytest.raises(StackdecideError, match="no num_attention_heads"):
        shape_from_path(tmp_path / "bad.json")
    with pytest.raises(StackdecideError, match="no model 'nowhere'"):
        find_shape("nowhere")


def test_model_show_prints_what_was_derived(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["model", "show", "tiny"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[:9] == [
        "tiny: Qwen3ForCausalLM (qwen3)",
        "  source: stackdecide's own test shape: a Qwen3 layout at a few MB, head_dim 64 (one the "
        "CPU attention supports) (built in)",
        "  hub ids: stackdecide/tiny-qwen3",
        "  layers 2, hidden size 256, vocabulary 4096, embeddings tied",
        "  attention: 4 heads, 2 KV heads (grouped-query, 2 heads per KV head), head dim 64",
        "  MLP: dense, intermediate size 512",
        "  context: max_position_embeddings 4096; no sliding window",
        "  parameters: 2.230 M total, 2.230 M active per token",
        "  checkpoint: 16 bit (no quantization_config)",
    ]
    assert any(line.split()[:2] == ["bf16", "1,024"] for line in lines)  # KV bytes per token
    (tmp_path / "config.json").write_text(json.dumps(DEEPSEEK_V2_LITE))
    mla = CliRunner().invoke(main, ["model", "show", str(tmp_path)])
    assert mla.exit_code == 0, mla.output
    assert "multi-latent attention: 16 heads, latent KV 512 + rotary key 64" in mla.output
    assert "64 experts 1408 wide, 6 per token, on 26 of 27 layers" in mla.output
    missing = CliRunner().invoke(main, ["model", "show", "gpt-9"])
    assert missing.exit_code != 0 and "no model 'gpt-9'" in missing.output
