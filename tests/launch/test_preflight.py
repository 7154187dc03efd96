"""Preflight checks: pure functions of the engine config, model facts and measured hardware."""

from __future__ import annotations

import json
import os
import socket
from pathlib import Path

import pytest

from stackdecide.audit import engine_config
from stackdecide.facts import memory
from stackdecide.facts.memory import GIB
from stackdecide.facts.shapes import SHAPES
from stackdecide.launch import preflight
from stackdecide.launch.scaffold import scaffold_model
from stackdecide.model.schema import Hardware, ModelSpec, Stack
from stackdecide.vllm.probe import GpuInfo, GpuProcess, RuntimeVersions

RTX4090 = Hardware(gpu="NVIDIA GeForce RTX 4090 Laptop GPU", vram_gb=16, compute_capability="8.9")
QWEN_FP8 = ModelSpec(id="Qwen/Qwen3-4B-Instruct-2507-FP8", shape="qwen3-4b", weights="fp8-block")
QWEN_BF16 = ModelSpec(id="Qwen/Qwen3-4B-Instruct-2507", shape="qwen3-4b", weights="bf16")


def _codes(problems) -> list[str]:
    return [p.code for p in problems]


# -- FP8 checkpoint with an fp8_e5m2 KV cache ----------------------------------------------------

@pytest.mark.parametrize(("engine", "spec"), [
    ({"model": "x", "quantization": "fp8"}, None),
    ({"model": "x"}, ModelSpec(id="x", shape="qwen3-4b-fp8")),
])
def test_fp8_checkpoint_refuses_e5m2(engine, spec) -> None:
    facts = engine_config.model_facts(engine, spec)
    assert facts.fp8_checkpoint
    problems = engine_config.check_fp8_kv_with_fp8_checkpoint({**engine, "kv_cache_dtype": "fp8_e5m2"},
                                                           facts)
    assert _codes(problems) == ["fp8-e5m2-with-fp8-checkpoint"]
    assert "not supported with fp8 checkpoints" in problems[0].message
    assert problems[0].field == "engine.kv_cache_dtype"
    ok = engine_config.check_fp8_kv_with_fp8_checkpoint({**engine, "kv_cache_dtype": "fp8"}, facts)
    assert ok == []


def test_fp8_weights_said_without_the_checkpoints_config_are_a_warning() -> None:
    # model.weights says FP8, but quantization_config decides (quant_method fp8 refuses,
    # compressed-tensors without kv_cache_scheme does not): not known, so not refused
    facts = engine_config.model_facts({"model": "x"}, QWEN_FP8)
    assert facts.fp8_checkpoint and facts.quantization_unknown
    [problem] = engine_config.check_fp8_kv_with_fp8_checkpoint(
        {"model": "x", "kv_cache_dtype": "fp8_e5m2"}, facts)
    assert (problem.code, problem.severity) == ("fp8-e5m2-checkpoint-unchecked", "warning")
    assert "decision.model.config" in problem.message


def test_fp8_checkpoint_read_from_a_local_config(tmp_path: Path) -> None:
    scaffold_model("tiny", tmp_path / "m", fp8=True)
    facts = engine_config.model_facts({"model": str(tmp_path / "m")}, None)
    assert facts.fp8_checkpoint and "quant_method fp8" in (facts.fp8_reason or "")
    assert facts.shape is not None and facts.shape.head_dim == 64
    assert facts.weights == "fp8-block"
    plain = engine_config.model_facts({"model": str(tmp_path / "m2")}, QWEN_BF16)
    assert not plain.fp8_checkpoint and plain.shape is SHAPES["qwen3-4b"]


def test_an_fp8_model_id_marks_the_candidate_not_the_decision() -> None:
    named = engine_config.model_facts({"model": "Qwen/Qwen3-4B-Instruct-2507-FP8"}, QWEN_BF16)
    assert named.fp8_checkpoint and named.weights == "fp8"
    assert "names an FP8 checkpoint" in (named.fp8_reason or "")
    assert named.quantization_unknown  # the id says FP8, never how it is quantized
    folder = engine_config.model_facts({"model": "/data/fp8-models/qwen3"}, QWEN_BF16)
    assert not folder.fp8_checkpoint and folder.weights == "bf16"


# -- FP8 KV cache per backend and GPU generation -------------------------------------------------

@pytest.mark.parametrize(("backend", "dtype", "capability", "refused"), [
    ("FLASH_ATTN", "fp8_e5m2", (9, 0), True),  # FlashAttention's FP8 is e4m3 only
    ("FLASH_ATTN", "fp8", (8, 9), True),  # Ada runs FlashAttention 2: no FP8 KV
    ("FLASH_ATTN", "fp8", (9, 0), False),  # Hopper: FlashAttention 3
    ("FLASH_ATTN", "fp8_e4m3", (10, 0), False),  # Blackwell: FlashAttention 4
    ("FLASHINFER", "fp8_e5m2", (8, 9), False),
    ("FLASHINFER", "fp8", (7, 5), False),  # the GPU, not the KV cache: check_attention_backend
    ("TRITON_ATTN", "fp8_e5m2", (7, 5), False),
    ("FLASH_ATTN", "fp8", None, False),  # generation unknown: only the dtype rule applies
])
def test_fp8_kv_backend_rules(backend, dtype, capability, refused) -> None:
    assert (engine_config.fp8_kv_unsupported(backend, dtype, capability) is not None) == refused


def test_backend_dtypes_read_from_the_installed_vllm_win() -> None:
    reason = engine_config.fp8_kv_unsupported("CPU_ATTN", "fp8_inc", None,
                                          ("auto", "fp8", "fp8_e4m3", "fp8_e5m2"))
    assert reason is not None and "fp8_e5m2" in reason


def test_fp8_kv_check_uses_the_decision_hardware() -> None:
    target = preflight.target_hardware((), RTX4090)
    engine = {"kv_cache_dtype": "fp8", "attention_backend": "FLASH_ATTN"}
    problems = engine_config.check_fp8_kv_backend(engine, {}, target)
    assert _codes(problems) == ["fp8-kv-unsupported-backend"]
    assert "SM 8.9" in problems[0].message and "decision.hardware" in problems[0].message
    from_env = engine_config.check_fp8_kv_backend({"kv_cache_dtype": "fp8_e5m2"},
                                              {"VLLM_ATTENTION_BACKEND": "FLASH_ATTN"}, target)
    assert _codes(from_env) == ["fp8-kv-unsupported-backend"]


# -- memory ----------------------------------------------------------------------------------

def test_kv_bytes_per_token_is_2_layers_kv_heads_head_dim_bytes() -> None:
    shape = SHAPES["qwen3-4b"]
    assert memory.kv_bytes_per_token(shape, "auto") == 2 * 36 * 8 * 128 * 2
    assert memory.kv_bytes_per_token(shape, "fp8_e5m2") == 2 * 36 * 8 * 128
    assert memory.kv_bytes_per_token(shape, "auto", "float32") == 2 * 36 * 8 * 128 * 4


def test_weights_fp8_keep_embeddings_in_16_bit() -> None:
    shape = SHAPES["qwen3-4b"]
    bf16 = memory.weight_bytes(shape, "bf16")
    fp8 = memory.weight_bytes(shape, "fp8-block")
    assert bf16 == shape.params * 2
    embeddings = shape.vocab_size * shape.hidden_size * 2
    assert embeddings < fp8 - (shape.params - shape.vocab_size * shape.hidden_size) < \
        embeddings * 1.05
    assert 4.0 * GIB < fp8 < 4.3 * GIB


def test_rtx4090_context_does_not_fit_16_gib() -> None:
    engine = {"gpu_memory_utilization": 0.85, "max_model_len": 131072,
              "kv_cache_dtype": "fp8_e5m2", "quantization": "fp8", "max_num_batched_tokens": 8192,
              "max_num_seqs": 256}
    facts = engine_config.model_facts(engine, QWEN_FP8)
    target = preflight.target_hardware((), RTX4090)
    assert target is not None and target.total_bytes == 16 * GIB
    problems = engine_config.check_kv_fits(engine, {}, facts, target)
    assert _codes(problems) == ["kv-cache-too-small"]
    message = problems[0].message
    assert "131072 needs 9.00 GiB" in message and "73,728 bytes/token" in message
    assert "16.00 GiB x 0.85 = 13.60 GiB" in message and "decision.hardware.vram_gb" in message
    # a context that fits is not refused
    assert engine_config.check_kv_fits({**engine, "max_model_len": 32768}, {}, facts, target) == []


def test_kv_fit_on_cpu_uses_the_explicit_kv_space() -> None:
    facts = engine_config.model_facts({"model": "x"}, ModelSpec(id="x", shape="tiny"))
    cpu = preflight.target_hardware((), Hardware(gpu="cpu"))
    assert cpu is not None and cpu.device == "cpu"
    # the same numbers as the real CPU engine's refusal: 2,000,000 tokens need 1.91 GiB > 1 GiB
    problems = engine_config.check_kv_fits({"max_model_len": 2_000_000},
                                       {"VLLM_CPU_KVCACHE_SPACE": "1"}, facts, cpu)
    assert _codes(problems) == ["kv-cache-too-small"] and "1.91 GiB" in problems[0].message
    assert engine_config.check_kv_fits({"max_model_len": 2_000_000}, {}, facts, cpu) == []


def test_unset_max_model_len_means_the_models_own() -> None:
    facts = engine_config.model_facts({}, QWEN_BF16)
    target = preflight.target_hardware((), Hardware(gpu="L4", vram_gb=24))
    problems = engine_config.check_kv_fits({}, {}, facts, target)
    assert problems and "max_position_embeddings (max_model_len unset) 262144" in \
        problems[0].message


def test_max_model_len_above_the_model() -> None:
    facts = engine_config.model_facts({}, ModelSpec(id="x", shape="tiny"))
    assert _codes(engine_config.check_max_model_len({"max_model_len": "8k"}, {}, facts)) == \
        ["max-model-len-above-model"]
    assert engine_config.check_max_model_len({"max_model_len": 4096}, {}, facts) == []
    assert engine_config.check_max_model_len({"max_model_len": 8000},
                                         {"VLLM_ALLOW_LONG_MAX_MODEL_LEN": "1"}, facts) == []


@pytest.mark.parametrize(("text", "tokens"), [(131072, 131072), ("128k", 128000),
                                              ("128K", 131072), ("1M", 1048576), ("auto", None),
                                              (-1, None), (True, None)])
def test_token_counts_as_vllm_reads_them(text, tokens) -> None:
    assert engine_config.parse_token_count(text) == tokens


# -- runtime checks --------------------------------------------------------------------------

H100 = GpuInfo(0, "NVIDIA H100 80GB HBM3", 80 * GIB, 12 * GIB, "9.0",
               (GpuProcess(4242, 67 * GIB, "python -m vllm.entrypoints.openai.api_server"),))


def test_gpu_memory_held_by_a_leftover_server_is_named() -> None:
    problems = preflight.check_free_memory({"gpu_memory_utilization": 0.85}, H100,
                                           process_groups={4242: 4240})
    assert _codes(problems) == ["gpu-memory-busy"]
    message = problems[0].message
    assert "PID 4242" in message and "process group 4240" in message and "67.00 GiB" in message
    assert "12.00 GiB (0.15) is free" in message
    assert preflight.check_free_memory({"gpu_memory_utilization": 0.1}, H100) == []
    assert preflight.check_free_memory({}, None) == []


def test_the_visible_gpu_is_the_target() -> None:
    target = preflight.target_hardware((H100,), RTX4090)
    assert target is not None and target.total_bytes == 80 * GIB and "NVML" in target.source


def test_a_port_in_use_is_found_with_its_holder() -> None:
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        state = preflight.port_state("127.0.0.1", port)
        assert state.in_use
        assert os.getpid() in [pid for pid, _ in state.holders]
        problems = preflight.check_port(state)
        assert _codes(problems) == ["port-in-use"] and f"PID {os.getpid()}" in problems[0].message
    assert not preflight.port_state("127.0.0.1", port).in_use


def test_stack_pins_against_the_installed_versions() -> None:
    runtime = RuntimeVersions(python="/venv/bin/python", vllm="0.32.0", torch="2.13.0+cpu",
                              transformers="5.19.0")
    stack = Stack(vllm=">=0.10.1", torch="==2.7.1", cuda="12.8", extras=["flashinfer"])
    problems = preflight.check_stack(stack, runtime)
    assert [p.field for p in problems] == ["stack.torch", "stack.cuda", "stack.extras"]
    assert all(p.severity == "warning" for p in problems)
    assert preflight.check_stack(Stack(torch="==2.13.0", vllm="0.32.0"), runtime) == []


def test_a_stack_other_than_the_pinned_one_is_refused_unless_chosen() -> None:
    runtime = RuntimeVersions(python="/venv/bin/python", vllm="0.32.0", torch="2.13.0+cpu")
    problems = preflight.check_stack(Stack(vllm="0.30.0", torch="2.13.0"), runtime, "error")
    assert [(p.field, p.severity, p.message) for p in problems] == [
        ("stack.vllm", "error", "the candidate pins vllm 0.30.0; /venv/bin/python has 0.32.0; "
         "build the candidate's own environment (launch --build-envs, or stackdecide env build) "
         "or measure this one on purpose (--use-current-env)")]


def test_static_problems_of_the_report_configuration(rtx4090_path: Path) -> None:
    import stackdecide

    decision = stackdecide.load(rtx4090_path)
    candidate = decision.candidate("vllm-flashinfer-torch271")
    facts = engine_config.model_facts(candidate.engine, decision.model.decision.model)
    target = preflight.target_hardware((), decision.model.decision.hardware)
    problems = preflight.static_problems(candidate.engine, candidate.env, facts, target)
    assert sorted(_codes(problems)) == ["engine-loads-code", "fp8-e5m2-with-fp8-checkpoint",
                                        "kv-cache-too-small"]  # the first: trust_remote_code
    json.dumps([p.to_dict() for p in problems])  # ready for `check --format json`


def test_decision_problems_for_check(rtx4090_path: Path) -> None:
    import stackdecide

    report = stackdecide.load(rtx4090_path)
    assert sorted(p.code for p in engine_config.decision_problems(report, "vllm-cuda-torch271")) == [
        "engine-loads-code", "fp8-e5m2-with-fp8-checkpoint", "fp8-kv-unsupported-backend",
        "kv-cache-too-small"]
    hopper = stackdecide.load(rtx4090_path.parent / "hopper.yaml")
    # only infos: max_num_seqs 256 runs at once when sequences average under max_model_len
    assert {p.code for cid in hopper.candidate_ids
            for p in engine_config.decision_problems(hopper, cid)} == {"max-num-seqs-above-capacity"}
    cpu = stackdecide.load(rtx4090_path.parent / "cpu.yaml")
    assert all(engine_config.decision_problems(cpu, cid) == [] for cid in cpu.candidate_ids)
