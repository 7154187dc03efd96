"""The memory a decision's GPU has as the driver reports it, and the vLLM defaults its memory checks
and capacity plan assume for the engine keys a candidate leaves out (docs/rules.md, "GPU memory
and vLLM defaults"). Each decision pins vLLM exactly, so the defaults do not move with the vLLM
installed here."""

from __future__ import annotations

import pytest

import stackdecide
from stackdecide.audit.capacity import candidate_capacity, decision_capacity
from stackdecide.audit.engine_config import (
    engine_defaults,
    file_hardware,
    kv_budget,
    model_facts,
    vllm_defaults_release,
)
from stackdecide.facts.memory import GIB
from stackdecide.model.schema import Hardware, ModelSpec
from stackdecide.report.launch import capacity_lines, capacity_table

QWEN3_8B = ModelSpec(id="Qwen/Qwen3-8B", shape="qwen3-8b", weights="bf16")
ENGINE = {"model": "Qwen/Qwen3-8B", "max_model_len": 8192}


def _decision(hardware: str, engine: str = "", vllm: str = "==0.32.0"):
    return stackdecide.parse(f"""\
schema: stackdecide/v1
decision:
  title: memory
  hardware: {{{hardware}}}
  model: {{id: Qwen/Qwen3-8B, shape: qwen3-8b, weights: bf16}}
criteria:
  - {{id: speed, weight: 1}}
candidates:
  - id: a
    stack: {{vllm: "{vllm}"}}
    engine: {{model: Qwen/Qwen3-8B, max_model_len: 8192{engine}}}
    scores: {{speed: 1}}
""")


def test_an_h100_budget_starts_from_what_cuda_reports_not_80() -> None:
    """vLLM 0.32 vllm/v1/worker/utils.py request_memory: ``init_snapshot.total_memory *
    gpu_memory_utilization``, total_memory from cudaMemGetInfo: 85,017,493,504 bytes on the
    probed H100 (docs/results/h100-memory), NVML's 79.65 GiB less the driver's 480 MiB."""
    target = file_hardware(Hardware(gpu="NVIDIA H100 80GB HBM3"))
    assert target is not None and target.total_bytes == 85_017_493_504
    assert target.nvml_bytes == 85_520_809_984  # what the batch defaults read: 79.65 GiB
    budget = kv_budget(ENGINE, {}, model_facts(ENGINE, QWEN3_8B), target,
                       vllm_defaults_release("==0.32.0"))
    assert budget is not None and budget.total_bytes == 85_017_493_504 != 80 * GIB
    assert budget.describe().startswith("79.18 GiB x 0.92 = 72.84 GiB")
    assert "the GPU table's 79.18 GiB for NVIDIA H100 SXM, what CUDA reports of its 80 GB, " \
        "NVML 79.65 GiB" in target.source


def test_vram_gb_given_is_taken_as_written() -> None:
    target = file_hardware(Hardware(gpu="NVIDIA H100 80GB HBM3", vram_gb=80))
    assert target is not None and target.total_bytes == 80 * GIB
    assert target.filled == ("compute_capability 9.0",)  # memory from the file, not the table
    assert target.source == ("decision.hardware.vram_gb = 80 GiB, taken as written "
                             "(NVIDIA H100 80GB HBM3; no GPU visible here)")


@pytest.mark.parametrize(("gpu", "tokens", "seqs"), [
    # vLLM 0.32 vllm/engine/arg_utils.py EngineArgs.get_batch_defaults, OPENAI_API_SERVER
    ("NVIDIA L40S", 2048, 256),  # else-branch: under 70 GiB
    ("NVIDIA L4", 2048, 256),
    ("NVIDIA A100-SXM4-80GB", 2048, 256),  # `"a100" not in device_name` fails
    ("NVIDIA H100 80GB HBM3", 8192, 1024),  # `device_memory >= 70 * GiB_bytes`
    ("NVIDIA H200", 8192, 1024),
    ("NVIDIA B200", 16384, 1024),  # `device_memory >= 160 * GiB_bytes` (0.28 on)
])
def test_the_budget_takes_the_gpu_classes_defaults(gpu: str, tokens: int, seqs: int) -> None:
    target = file_hardware(Hardware(gpu=gpu))
    assert target is not None
    defaults = engine_defaults(ENGINE, model_facts(ENGINE, QWEN3_8B), target,
                               vllm_defaults_release("==0.32.0"))
    assert (defaults.scheduler.max_num_batched_tokens, defaults.scheduler.max_num_seqs) == \
        (tokens, seqs)
    assert defaults.utilization.value == 0.92  # vllm/config/cache.py, 0.20.0 on


def test_the_capacity_plan_says_what_it_assumed_and_from_where() -> None:
    capacity = candidate_capacity(_decision("gpu: NVIDIA L40S"), "a")
    assert capacity.engine_defaults == (
        "max_num_batched_tokens 2048 (vLLM's default), max_num_seqs 256 (vLLM's default), "
        "gpu_memory_utilization 0.92 (vLLM's default): vLLM 0.32.0 default for a GPU of 44.99 "
        "GiB by NVML (GPUs under 70 GiB, and A100s; vllm/engine/arg_utils.py "
        "EngineArgs.get_batch_defaults); gpu_memory_utilization: vLLM 0.32.0 default "
        "(vllm/config/cache.py CacheConfig.gpu_memory_utilization); release from stack.vllm "
        "==0.32.0")
    assert capacity.budget.startswith("44.42 GiB x 0.92 = 40.87 GiB")
    assert f"  vLLM settings: {capacity.engine_defaults}" in capacity_lines(capacity)
    table = capacity_table([capacity])
    assert table.endswith(f"vLLM settings of a: {capacity.engine_defaults}\n")


def test_the_pinned_release_decides_the_defaults() -> None:
    old = candidate_capacity(_decision("gpu: NVIDIA L40S", vllm="==0.19.1"), "a")
    assert "gpu_memory_utilization 0.9 (vLLM's default)" in old.engine_defaults
    assert old.budget.startswith("44.42 GiB x 0.9 = 39.98 GiB")


def test_nothing_is_said_when_the_engine_sets_all_three() -> None:
    engine = ", gpu_memory_utilization: 0.85, max_num_batched_tokens: 8192, max_num_seqs: 256"
    (capacity,) = decision_capacity(_decision("gpu: NVIDIA L40S", engine))
    assert capacity.engine_defaults == ""
    assert not any("vLLM settings" in line for line in capacity_lines(capacity))
    assert "vLLM settings" not in capacity_table([capacity])


def test_a_partly_set_configuration_says_which_came_from_vllm() -> None:
    capacity = candidate_capacity(
        _decision("gpu: NVIDIA H200", ", gpu_memory_utilization: 0.85, max_num_seqs: 256"), "a")
    assert capacity.engine_defaults.startswith(
        "max_num_batched_tokens 8192 (vLLM's default), max_num_seqs 256 (set), "
        "gpu_memory_utilization 0.85 (set): vLLM 0.32.0 default for a GPU of 140.40 GiB by NVML")


def test_a_gpu_without_a_driver_figure_says_it_read_the_datasheet() -> None:
    target = file_hardware(Hardware(gpu="NVIDIA H100 PCIe"))
    assert target is not None and target.total_bytes == 80 * GIB
    assert "its datasheet 80 GB read as GiB (no driver figure in the GPU table" in target.source
