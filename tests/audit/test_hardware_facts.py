"""GPU facts from the table when the decision leaves them out, and checks that say they skipped."""

from __future__ import annotations

import pytest

import stackdecide
from stackdecide.audit.engine_config import file_hardware
from stackdecide.facts.gpus import find_gpu
from stackdecide.facts.memory import GIB
from stackdecide.model.schema import Hardware

DECISION = """\
schema: stackdecide/v1
decision:
  title: t
  hardware: {{{hardware}}}
  model: {{id: {model_id}{shape}}}
criteria:
  - {{id: speed, weight: 1}}
candidates:
  - id: a
    engine: {{model: {model_id}, max_model_len: {length}{engine}}}
    scores: {{speed: 5}}
  - id: b
    engine: {{model: {model_id}, max_model_len: 4096}}
    scores: {{speed: 4}}
"""


def findings(hardware: str = "gpu: NVIDIA H100 80GB HBM3", model_id: str = "Qwen/Qwen3-8B",
             shape: str = "", length: int = 4096, engine: str = "") -> list[tuple]:
    decision = stackdecide.parse(DECISION.format(hardware=hardware, model_id=model_id,
                                                 shape=shape, length=length, engine=engine))
    return [(f.code, f.severity, f.subject, f.message) for f in decision.score().findings]


# the datasheet's GB (the label), and what vLLM's budget starts from: CUDA's total where the table
# has it (H100 SXM probed: 85,017,493,504 bytes), else NVML's, else the datasheet's GB as GiB
@pytest.mark.parametrize(("name", "table_name", "label_gb", "usable_gib", "capability"), [
    ("NVIDIA L4", "NVIDIA L4", 24, 22.49, "8.9"),
    ("NVIDIA A10G", "NVIDIA A10G", 24, 22.49, "8.6"),
    ("NVIDIA B200", "NVIDIA B200", 180, 178.35, "10.0"),
    ("NVIDIA H100 PCIe", "NVIDIA H100 PCIe", 80, 80.00, "9.0"),
    ("NVIDIA H100 80GB HBM3", "NVIDIA H100 SXM", 80, 79.18, "9.0"),
    ("NVIDIA H100 NVL", "NVIDIA H100 NVL", 94, 93.58, "9.0"),
    ("NVIDIA H200", "NVIDIA H200 SXM", 141, 139.80, "9.0"),
    ("NVIDIA A100-SXM4-40GB", "NVIDIA A100 40GB", 40, 39.39, "8.0"),
    ("NVIDIA A100-SXM4-80GB", "NVIDIA A100 80GB SXM", 80, 79.32, "8.0"),
    ("NVIDIA L40S", "NVIDIA L40S", 48, 44.42, "8.9"),
    ("NVIDIA GeForce RTX 4090", "NVIDIA GeForce RTX 4090", 24, 23.64, "8.9"),
    ("NVIDIA GeForce RTX 4090 Laptop GPU", "NVIDIA GeForce RTX 4090 Laptop GPU", 16, 16.00, "8.9"),
])
def test_the_gpu_table_fills_what_the_file_leaves_out(name: str, table_name: str, label_gb: float,
                                                       usable_gib: float, capability: str) -> None:
    spec = find_gpu(name)
    assert spec is not None and (spec.name, spec.memory_gb, spec.compute_capability) == (
        table_name, label_gb, capability)
    target = file_hardware(Hardware(gpu=name))
    assert target is not None and round(target.total_bytes / GIB, 2) == usable_gib
    assert target.compute_capability == capability
    assert target.filled[0].startswith(f"vram_gb {usable_gib:.2f}, ")
    assert target.filled[1:] == (f"compute_capability {capability}",)
    given = file_hardware(Hardware(gpu=name, vram_gb=10, compute_capability="7.5"))
    assert given is not None and given.filled == () and given.total_bytes == 10 * GIB
    assert "vram_gb = 10 GiB, taken as written" in given.source


def test_a_note_says_which_numbers_came_from_the_table() -> None:
    assert findings() == [(
        "hardware-from-table", "info", "decision",
        "decision.hardware leaves out vram_gb, compute_capability, memory_bandwidth_gb_s: using "
        "the GPU table's NVIDIA H100 SXM (vram_gb 79.18, what CUDA reports of its 80 GB, NVML "
        "79.65 GiB (probed: docs/results/h100-memory, an H100 80GB HBM3 with driver 580.159.04 "
        "(NVML total, 480 MiB reserved, cudaMemGetInfo total)), compute_capability 9.0, "
        "memory_bandwidth_gb_s 3350; NVIDIA H100 Tensor Core GPU datasheet "
        "(nvidia.com/en-us/data-center/h100), figures marked 'with sparsity' halved)")]


def test_memory_and_backend_checks_run_on_table_values() -> None:
    too_long = findings(hardware="gpu: NVIDIA L4", model_id="meta-llama/Llama-3.1-8B-Instruct",
                        length=131072, engine=", kv_cache_dtype: fp8, attention_backend: FLASH_ATTN")
    codes = [(code, subject) for code, _, subject, _ in too_long]
    assert codes == [("hardware-from-table", "decision"),
                     ("launch:fp8-kv-unsupported-backend", "a"),
                     ("launch:kv-cache-too-small", "a")]
    assert "SM 8.9" in too_long[1][3]
    assert "the GPU table's 22.49 GiB for NVIDIA L4, NVML's total of its 24 GB" in too_long[2][3]


def test_checks_that_cannot_run_say_so() -> None:
    unknown_gpu = findings(hardware="gpu: Mystery Accelerator",
                           engine=", kv_cache_dtype: fp8, attention_backend: FLASH_ATTN")
    assert unknown_gpu == [
        ("hardware-unknown", "info", "decision",
         "GPU 'Mystery Accelerator' is not in the GPU table and decision.hardware gives no "
         "vram_gb, compute_capability, memory_bandwidth_gb_s: checks that need them are skipped"),
        ("launch:check-skipped", "info", "a", "skipped the check of attention backend "
         "FLASH_ATTN against the GPU (its FP8 KV cache and the GPUs it runs on): the GPU's "
         "compute capability is unknown; give decision.hardware.compute_capability"),
        ("launch:check-skipped", "info", "decision", "skipped memory checks: GPU 'Mystery "
         "Accelerator' is not in the GPU table; give decision.hardware.vram_gb"),
    ]
    no_shape = findings(model_id="acme/secret-model")  # the hub (none in tests) cannot give it
    [(code, severity, subject, message)] = no_shape[1:]
    assert (code, severity, subject) == ("launch:check-skipped", "info", "decision")
    assert message.startswith("skipped memory and context-length checks: no shape for "
                              "'acme/secret-model': http://127.0.0.1:9 could not be reached")
    assert message.endswith("give decision.model.config (a config.json or model folder) or "
                            "decision.model.shape")
    unknown_shape = findings(shape=", shape: gpt-9")
    assert "unknown model shape 'gpt-9'" in unknown_shape[1][3]
    assert unknown_shape[1][3].endswith("give decision.model.config (a config.json)")
    cpu = findings(hardware="gpu: cpu", model_id="stackdecide/tiny-qwen3")
    assert cpu == [("launch:check-skipped", "info", "decision",
                    "skipped KV-cache checks: vLLM sizes the CPU KV cache from free memory; set "
                    "VLLM_CPU_KVCACHE_SPACE (GiB) in the candidate's env")]
