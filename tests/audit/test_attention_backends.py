"""The attention backend and FP8 KV-cache checks of a candidate, on published config.json files
(tests/data/configs/, each naming its source in ``_source``), with the vLLM source each follows."""

from __future__ import annotations

from pathlib import Path

import pytest

from stackdecide.audit import engine_config
from stackdecide.audit.engine_config import file_hardware
from stackdecide.decision import parse
from stackdecide.facts import backends
from stackdecide.model.schema import Hardware, ModelSpec

CONFIGS = Path(__file__).resolve().parents[1] / "data" / "configs"
L4 = file_hardware(Hardware(gpu="L4"))  # SM 8.9
H100 = file_hardware(Hardware(gpu="H100"))  # SM 9.0
VLLM_032 = backends.rules_version("0.32.0", None)


def facts(config: str, model_id: str = "org/model", engine: dict | None = None,
          weights: str | None = None) -> engine_config.ModelFacts:
    return engine_config.model_facts(engine or {}, ModelSpec(id=model_id, config=str(CONFIGS / config),
                                                             weights=weights))


def codes(problems) -> list[tuple[str, str]]:
    return [(p.code, p.severity) for p in problems]


DEEPSEEK = facts("deepseek-v2-lite.json", "deepseek-ai/DeepSeek-V2-Lite")
LLAMA = facts("llama-3.1-8b-instruct.json", "meta-llama/Llama-3.1-8B-Instruct")


# vLLM 0.32 vllm/v1/attention/backends/mla/flashmla.py FlashMLABackend.supports_compute_capability:
#     return capability.major in [9, 10]
def test_flashmla_on_an_l4_is_an_error() -> None:
    [problem] = engine_config.check_attention_backend({"attention_backend": "FLASHMLA"}, {},
                                                      DEEPSEEK, L4, VLLM_032)
    assert (problem.code, problem.severity, problem.field) == \
        ("attention-backend-unsupported", "error", "engine.attention_backend")
    assert "SM 9.x or 10.x, not SM 8.9" in problem.message
    assert "flashmla.py FlashMLABackend.supports_compute_capability" in problem.message
    assert "stack.vllm 0.32.0" in problem.message
    # the compute capability is explained by where it came from, not by the GPU's memory
    assert "SM from the GPU table's SM 8.9 for NVIDIA L4)" in problem.message
    assert "GiB" not in problem.message
    assert engine_config.check_attention_backend({"attention_backend": "FLASHMLA"}, {}, DEEPSEEK,
                                                 H100, VLLM_032) == []


# vLLM 0.32 vllm/v1/attention/backend.py AttentionBackend.validate_configuration:
#     if use_mla != cls.is_mla(): ... invalid_reasons.append("MLA not supported")
def test_flash_attn_for_an_mla_model_is_an_error() -> None:
    [problem] = engine_config.check_attention_backend({"attention_backend": "FLASH_ATTN"}, {},
                                                      DEEPSEEK, H100, VLLM_032)
    assert problem.code == "attention-backend-unsupported" and "MLA not supported" in problem.message
    # vllm/config/model.py ModelConfig.use_mla: false under VLLM_MLA_DISABLE=1; the head size is
    # then qk_nope_head_dim + qk_rope_head_dim = 192, which FlashAttention takes
    assert engine_config.check_attention_backend(
        {"attention_backend": "FLASH_ATTN"}, {"VLLM_MLA_DISABLE": "1"}, DEEPSEEK, H100, VLLM_032) == []


# vLLM 0.32 vllm/v1/attention/backends/fa_utils.py flash_attn_supports_kv_cache_dtype:
#     return (sm90_fp8_kv_supported and is_sm90) or (fa_version == 4 and ...family(100))
def test_fa2_on_sm_8_9_has_no_fp8_kv_cache() -> None:
    engine = {"attention_backend": "FLASH_ATTN", "kv_cache_dtype": "fp8"}
    [problem] = engine_config.check_fp8_kv_backend(engine, {}, L4, None, LLAMA, VLLM_032)
    assert problem.code == "fp8-kv-unsupported-backend" and "SM 8.9 has none" in problem.message
    assert "0.27.0 to 0.34.x" in problem.message
    assert engine_config.check_fp8_kv_backend(engine, {}, H100, None, LLAMA, VLLM_032) == []
    # an FP8 KV cache the checkpoint declares: kv_cache_dtype auto runs fp8 (0.22 on,
    # vllm/model_executor/layers/attention/attention.py Attention.__init__)
    declared = facts("llama-3.1-8b-instruct-fp8-kv.json")
    [from_auto] = engine_config.check_fp8_kv_backend({"attention_backend": "FLASH_ATTN"}, {}, L4,
                                                     None, declared, VLLM_032)
    assert "auto: the checkpoint's compressed-tensors with a kv_cache_scheme" in from_auto.message


# vLLM 0.32 vllm/model_executor/layers/attention/attention.py _init_kv_cache_quant:
#     if not isinstance(quant_method, CompressedTensorsKVCacheMethod) or (
#         ...kv_cache_scheme is not None): raise ValueError("fp8_e5m2 kv-cache is not supported ...")
def test_compressed_tensors_fp8_without_a_kv_cache_scheme_keeps_fp8_e5m2() -> None:
    e5m2 = {"kv_cache_dtype": "fp8_e5m2"}
    weight_only = facts("llama-3.1-8b-instruct-fp8.json", "RedHatAI/Meta-Llama-3.1-8B-Instruct-FP8")
    assert weight_only.fp8_checkpoint and weight_only.quantization_unknown is None
    assert engine_config.check_fp8_kv_with_fp8_checkpoint(e5m2, weight_only, VLLM_032) == []
    # before 0.24 vLLM refused it too
    assert codes(engine_config.check_fp8_kv_with_fp8_checkpoint(
        e5m2, weight_only, backends.rules_version("0.23.0", None))) == \
        [("fp8-e5m2-with-fp8-checkpoint", "error")]
    with_scheme = facts("llama-3.1-8b-instruct-fp8-kv.json")
    assert codes(engine_config.check_fp8_kv_with_fp8_checkpoint(e5m2, with_scheme, VLLM_032)) == \
        [("fp8-e5m2-with-fp8-checkpoint", "error")]


def test_the_fp8_checkpoint_rule_rests_on_the_quantization_config_not_the_model_id() -> None:
    e5m2 = {"kv_cache_dtype": "fp8_e5m2"}
    # an "FP8" id over a BF16 config: the config is the checkpoint's own, nothing refuses
    named = facts("llama-3.1-8b-instruct.json", "someone/Llama-3.1-8B-Instruct-FP8-test")
    assert engine_config.check_fp8_kv_with_fp8_checkpoint(e5m2, named, VLLM_032) == []
    # an FP8 id with no config of that checkpoint: said, not refused
    by_id = engine_config.model_facts({"model": "RedHatAI/Meta-Llama-3.1-8B-Instruct-FP8"}, None)
    [problem] = engine_config.check_fp8_kv_with_fp8_checkpoint(
        {**e5m2, "model": "RedHatAI/Meta-Llama-3.1-8B-Instruct-FP8"}, by_id, VLLM_032)
    assert (problem.code, problem.severity) == ("fp8-e5m2-checkpoint-unchecked", "warning")


def test_an_unknown_backend_or_layer_type_is_a_note_never_a_pass() -> None:
    [unknown] = engine_config.check_attention_backend({"attention_backend": "FLASH_ATTENTION"}, {},
                                                      LLAMA, H100, VLLM_032)
    assert (unknown.code, unknown.severity) == ("check-skipped", "info")
    assert "not a backend the rules know" in unknown.message
    # Qwen3-Next: 3 layers in 4 are Gated DeltaNet (linear attention), run on a backend of their own
    hybrid = facts("qwen3-next-80b-a3b-instruct.json", "Qwen/Qwen3-Next-80B-A3B-Instruct")
    [note] = engine_config.check_attention_backend({"attention_backend": "FLASH_ATTN"}, {}, hybrid,
                                                   H100, VLLM_032)
    assert (note.code, note.severity) == ("check-skipped", "info")
    assert "could not check attention backend FLASH_ATTN" in note.message
    old = backends.rules_version("0.10.2", None)
    [outside] = engine_config.check_attention_backend({"attention_backend": "FLASHMLA"}, {},
                                                      DEEPSEEK, L4, old)
    assert "the rules cover vLLM 0.11.1 to 0.34.x, not stack.vllm 0.10.2" in outside.message


# vLLM 0.32 vllm/platforms/cuda.py CudaPlatform.get_attn_backend_cls: "No valid attention backend
# found"; no CUDA MLA backend lists fp8_e5m2 in supported_kv_cache_dtypes
def test_an_mla_model_with_an_e5m2_cache_and_no_backend_named_cannot_start() -> None:
    [problem] = engine_config.check_attention_backend({"kv_cache_dtype": "fp8_e5m2"}, {}, DEEPSEEK,
                                                      H100, VLLM_032)
    assert problem.code == "no-attention-backend"
    assert engine_config.check_attention_backend({"kv_cache_dtype": "fp8"}, {}, DEEPSEEK, H100,
                                                 VLLM_032) == []


def test_a_cpu_target_ignores_the_backend_named() -> None:
    cpu = file_hardware(Hardware(gpu="cpu"))
    engine = {"attention_backend": "FLASHMLA", "kv_cache_dtype": "fp8_e5m2"}
    assert engine_config.check_attention_backend(engine, {}, DEEPSEEK, cpu, VLLM_032) == []
    assert engine_config.check_fp8_kv_backend(engine, {}, cpu, None, DEEPSEEK, VLLM_032) == []


DECISION = """\
schema: stackdecide/v1
decision:
  title: t
  hardware: {{gpu: NVIDIA L40S}}  # SM 8.9
  model: {{id: deepseek-ai/DeepSeek-V2-Lite, config: {config}}}
criteria:
  - {{id: speed, weight: 1}}
candidates:
  - id: flashmla
    stack: {{vllm: "{pin}"}}
    engine: {{attention_backend: FLASHMLA}}
    scores: {{speed: 5}}
  - id: triton
    stack: {{vllm: "{pin}"}}
    engine: {{attention_backend: TRITON_MLA}}
    scores: {{speed: 4}}
"""


@pytest.mark.parametrize("pin", ["0.32.0", "0.11.1"])
def test_the_audit_uses_the_candidates_pinned_vllm(pin: str) -> None:
    decision = parse(DECISION.format(config=CONFIGS / "deepseek-v2-lite.json", pin=pin))
    findings = engine_config.check_launchability(decision)
    [refused] = [f for f in findings if f.code == "launch:attention-backend-unsupported"]
    assert refused.subject == "flashmla" and f"stack.vllm {pin}" in refused.message
    assert not [f for f in findings if f.subject == "triton" and "backend" in f.code]
