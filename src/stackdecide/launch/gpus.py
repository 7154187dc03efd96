"""Which GPUs of this host a launch uses, and what that means for its environment.

A launch either runs on the GPUs the scheduler placed it on (``LaunchOptions.gpus``: NVML indices,
rendered as ``CUDA_VISIBLE_DEVICES``), or on what the launcher's own ``CUDA_VISIBLE_DEVICES``
exposes (all GPUs when unset). NVLink multicast stays as the launcher's environment has it: the
variables that switch it off are passed through to every engine and a candidate may not turn it
back on (on shared hosts, multicast can take the GPUs out of service).
"""

from __future__ import annotations

import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from stackdecide.model.problems import Problem
from stackdecide.vllm.probe import GpuReport

# The variables that keep NVLink multicast (NVLS / symmetric-memory multicast) off, and their
# "off" values.
MULTICAST_OFF = {"NCCL_NVLS_ENABLE": "0", "TORCH_SYMM_MEM_DISABLE_MULTICAST": "1",
                 "NVSHMEM_DISABLE_NVLS": "1"}


@dataclass(frozen=True)
class GpuSelection:
    """The GPUs a launch uses (NVML indices, in CUDA order) and how they were chosen."""

    indices: tuple[int, ...]
    source: str  # "placed by the scheduler", "CUDA_VISIBLE_DEVICES", "every GPU"

    @property
    def visible_devices(self) -> str:
        return ",".join(map(str, self.indices))


def select_gpus(report: GpuReport, placed: Sequence[int] | None,
                environ: Mapping[str, str]) -> GpuSelection:
    """The GPUs to use: those placed, else ``CUDA_VISIBLE_DEVICES`` (plain indices), else all."""
    if placed:
        return GpuSelection(tuple(placed), "placed by the scheduler")
    visible = environ.get("CUDA_VISIBLE_DEVICES")
    if visible is not None:
        words = [w.strip() for w in visible.split(",") if w.strip()]
        if all(w.isdigit() for w in words):
            return GpuSelection(tuple(int(w) for w in words), "CUDA_VISIBLE_DEVICES")
        return GpuSelection(tuple(range(len(words))), "CUDA_VISIBLE_DEVICES (UUIDs)")
    return GpuSelection(tuple(g.index for g in report.gpus), "every GPU")


def interconnect(report: GpuReport, indices: Sequence[int]) -> str | None:
    """How the selected GPUs reach each other: ``nvlink`` when every pair has NVLink, else
    ``pcie`` (the slowest pair decides an all-reduce); None for one GPU or unknown links."""
    pairs = [report.link(a, b) for i, a in enumerate(indices) for b in indices[i + 1:]]
    if not pairs or any(p is None for p in pairs):
        return None
    return "nvlink" if all(p.kind == "nvlink" for p in pairs if p) else "pcie"


def interconnect_note(report: GpuReport, indices: Sequence[int]) -> str | None:
    if len(indices) < 2:
        return None
    kind = interconnect(report, indices)
    if kind is None:
        return (f"GPUs {','.join(map(str, indices))}: interconnect unknown (NVML gave no "
                "topology); the tensor-parallel ceiling assumes PCIe")
    paths = sorted({link.path for link in report.links
                    if link.a in indices and link.b in indices})
    return f"GPUs {','.join(map(str, indices))}: {kind} between them (PCIe path: " \
           f"{', '.join(paths)}; read through NVML)"


def multicast_env(environ: Mapping[str, str]) -> dict[str, str]:
    """The multicast switches set in the launcher's environment, to pass to every engine
    (a Ray worker does not inherit the driver's environment)."""
    return {name: environ[name] for name in MULTICAST_OFF if name in environ}


def check_multicast(candidate_env: Mapping[str, str], environ: Mapping[str, str]) -> list[Problem]:
    """An error for each candidate variable that would turn multicast back on where the
    launcher's environment keeps it off."""
    return [Problem("multicast-enabled", f"{name}={candidate_env[name]!r} turns NVLink multicast "
                    f"on, which this machine keeps off ({name}={environ[name]}); remove it from "
                    "the candidate's env", f"env.{name}")
            for name, off in MULTICAST_OFF.items()
            if environ.get(name) == off and name in candidate_env and candidate_env[name] != off]


def _fusion_off(engine: Mapping[str, Any], candidate_env: Mapping[str, str]) -> bool:
    config = engine.get("compilation_config")
    if isinstance(config, str):
        try:
            config = json.loads(config)
        except ValueError:
            config = None
    passes = config.get("pass_config") if isinstance(config, Mapping) else None
    return (isinstance(passes, Mapping) and passes.get("fuse_allreduce_rms") is False) \
        or candidate_env.get("VLLM_FLASHINFER_ALLREDUCE_BACKEND") == "trtllm"


def check_fused_allreduce(engine: Mapping[str, Any], tensor_parallel: int,
                          candidate_env: Mapping[str, str], environ: Mapping[str, str]
                          ) -> list[Problem]:
    """A warning for tensor parallel where multicast is off and vLLM may fuse all-reduce with
    RMSNorm through FlashInfer's multicast (``mnnvl``) workspace. Seen on 2 x H200 with vLLM
    0.26.0 (docs/results/hopper-h200-x2-multi-gpu): TP 2 died in the profile run (an illegal
    memory access, then CUBLAS_STATUS_INTERNAL_ERROR), with vLLM's own all-reduce and with NCCL
    alone; both times vLLM had logged "Auto-selected flashinfer allreduce backend: mnnvl"."""
    off = [name for name, value in MULTICAST_OFF.items() if environ.get(name) == value]
    if tensor_parallel < 2 or not off or _fusion_off(engine, candidate_env):
        return []
    return [Problem("fused-allreduce-without-multicast",
                    f"tensor parallel {tensor_parallel} on a machine with NVLink multicast off "
                    f"({', '.join(f'{n}={environ[n]}' for n in off)}): vLLM's all-reduce + "
                    "RMSNorm fusion may pick FlashInfer's multicast workspace (mnnvl), and TP 2 "
                    "with vLLM 0.26.0 died in its profile run that way on 2 x H200; to avoid it, "
                    "set engine.compilation_config: {pass_config: {fuse_allreduce_rms: false}} "
                    "(or env VLLM_FLASHINFER_ALLREDUCE_BACKEND: trtllm)",
                    "engine.compilation_config", "warning")]


def check_gpu_count(needed: int, selection: GpuSelection) -> list[Problem]:
    """Placed GPUs must be exactly as many as the configuration needs."""
    if selection.source != "placed by the scheduler" or len(selection.indices) == needed:
        return []
    return [Problem("gpu-placement-mismatch", f"placed on {len(selection.indices)} GPUs "
                    f"({selection.visible_devices}) but the configuration needs {needed}",
                    "engine.tensor_parallel_size")]
