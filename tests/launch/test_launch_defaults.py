"""A launch's GPU memory and vLLM defaults: the probed GPU's memory as CUDA reports it, the vLLM
that will run the candidate, and the free memory vLLM asks for at start-up."""

from __future__ import annotations

from types import SimpleNamespace

from packaging.version import Version

from stackdecide.facts.memory import GIB
from stackdecide.launch import preflight
from stackdecide.vllm import probe
from stackdecide.vllm.args import ArgAction, VllmArgSpec
from stackdecide.vllm.probe import GpuInfo

MIB = 1024**2
# the probed H100 of docs/results/h100-memory: NVML 81,559 MiB, 480 MiB reserved by the driver
H100 = GpuInfo(0, "NVIDIA H100 80GB HBM3", 85_520_809_984, 85_017_493_504, "9.0",
               reserved_bytes=480 * MIB)


def _spec(version: str, utilization: float | None) -> VllmArgSpec:
    action = ArgAction("gpu_memory_utilization", ("--gpu-memory-utilization",), "store",
                       type="float", default=utilization)
    return VllmArgSpec(version, "/opt/vllm/bin/python", "vllm.entrypoints.openai.api_server",
                       {"gpu_memory_utilization": action})


def test_a_probed_gpus_memory_is_what_cuda_can_hand_out() -> None:
    """vLLM 0.32 vllm/v1/worker/utils.py request_memory multiplies MemorySnapshot.total_memory
    (cudaMemGetInfo: NVML's total less the reserved memory, 85,017,493,504 bytes measured on an
    H100) by gpu_memory_utilization; its batch defaults read NVML's total."""
    assert H100.cuda_total_bytes == 85_017_493_504
    target = preflight.target_hardware((H100,))
    assert target is not None
    assert (target.total_bytes, target.nvml_bytes) == (85_017_493_504, 85_520_809_984)
    assert target.name == "NVIDIA H100 80GB HBM3"
    assert target.source == ("GPU 0 (NVIDIA H100 80GB HBM3, read through NVML, 0.47 GiB of its "
                             "79.65 GiB reserved by the driver)")


def test_the_launch_release_is_the_vllm_that_runs_it() -> None:
    running = preflight.launch_release("==0.26.0", _spec("0.32.0", 0.92))
    assert (running.version, running.parser_utilization) == (Version("0.32.0"), 0.92)
    assert running.said_by == "the vLLM that runs it (0.32.0 in /opt/vllm/bin/python)"
    probed = preflight.launch_release("==0.26.0", None, "0.30.0")
    assert probed.version == Version("0.30.0") and probed.parser_utilization is None
    planned = preflight.launch_release("==0.26.0", None)  # a laptop without vLLM
    assert (planned.version, planned.said_by) == (Version("0.26.0"), "stack.vllm ==0.26.0")


def test_a_parser_without_a_number_leaves_the_default_to_the_release() -> None:
    # vLLM 0.34 vllm/config/cache.py: gpu_memory_utilization: float | None = Field(default=None)
    assert preflight.parser_default_utilization(_spec("0.34.0", None)) is None
    assert preflight.parser_default_utilization(_spec("0.32.0", 0.92)) == 0.92
    assert preflight.parser_default_utilization(None) is None


def test_free_memory_is_checked_against_cuda_total_times_the_releases_default() -> None:
    """request_memory: "Free memory on device ... is less than desired GPU memory utilization"
    when free < total_memory x utilization; unset, the utilization is the release's default."""
    busy = GpuInfo(0, "NVIDIA H100 80GB HBM3", 85_520_809_984, 73 * GIB, "9.0",
                   reserved_bytes=480 * MIB)
    newer = preflight.launch_release(None, None, "0.32.0")  # 0.92 x 79.18 = 72.84 GiB
    older = preflight.launch_release(None, None, "0.19.1")  # 0.9 x 79.18 = 71.26 GiB
    assert preflight.check_free_memory({}, busy, newer) == []
    tighter = GpuInfo(0, busy.name, busy.total_bytes, 72 * GIB, "9.0", reserved_bytes=480 * MIB)
    (problem,) = preflight.check_free_memory({}, tighter, newer)
    assert problem.code == "gpu-memory-busy"
    assert "gpu_memory_utilization 0.92 asks for 72.84 GiB of GPU 0" in problem.message
    assert preflight.check_free_memory({}, tighter, older) == []
    assert preflight.check_free_memory({"gpu_memory_utilization": 0.5}, tighter, newer) == []


class _Nvml:
    """NVML bindings as nvidia-ml-py has them: memory info v2 says what the driver reserves."""

    nvmlMemory_v2 = 0x02000028

    class NVMLError(Exception):
        pass

    def __init__(self, v2: bool = True) -> None:
        self.v2 = v2

    def nvmlDeviceGetMemoryInfo(self, handle: object, version: int | None = None) -> SimpleNamespace:
        if version is not None and not self.v2:
            raise self.NVMLError("Function Not Found")  # a driver older than 510
        return SimpleNamespace(total=85_520_809_984, reserved=503_316_480, free=85_017_493_504)


def test_the_probe_reads_what_the_driver_reserves() -> None:
    assert probe._reserved_bytes(_Nvml(), object()) == 480 * MIB
    assert probe._reserved_bytes(_Nvml(v2=False), object()) == 0
    old_bindings = _Nvml()
    old_bindings.nvmlMemory_v2 = None  # type: ignore[assignment]
    assert probe._reserved_bytes(old_bindings, object()) == 0
