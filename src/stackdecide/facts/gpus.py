"""Peak numbers of the GPUs people serve LLMs on: memory bandwidth and dense tensor throughput.

Dense means without 2:4 structured sparsity: datasheets print the sparse figure with an asterisk,
and the dense one is half of it. Ada (GeForce) figures are with FP32 accumulation, which is what
vLLM's BF16 and FP8 GEMMs use; GeForce cards run FP16-accumulate at twice that rate.
These are ceilings, not expectations: real kernels reach a fraction of them.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True)
class GpuSpec:
    name: str
    memory_gb: float
    memory_bandwidth_gb_s: float
    bf16_dense_tflops: float
    fp8_dense_tflops: float | None  # None: no FP8 tensor cores (before Ada / Hopper)
    source: str
    match: tuple[frozenset[str], ...]  # token sets; a GPU name containing all tokens of one matches
    note: str = ""


def _m(*names: str) -> tuple[frozenset[str], ...]:
    return tuple(frozenset(name.split()) for name in names)


_H100 = ("NVIDIA H100 Tensor Core GPU datasheet (nvidia.com/en-us/data-center/h100), "
         "figures marked 'with sparsity' halved")
_H200 = "NVIDIA H200 Tensor Core GPU datasheet (nvidia.com/en-us/data-center/h200)"
_A100 = "NVIDIA A100 Tensor Core GPU datasheet (nvidia.com/en-us/data-center/a100)"
_ADA = ("NVIDIA Ada GPU Architecture whitepaper v2.1, appendix table of GeForce RTX 4090 "
        "(FP32-accumulate tensor TFLOPS)")

# Order matters: the first entry whose tokens all appear in a name wins, so the more specific
# variants (PCIe, NVL, Laptop, 40GB) come before the general name.
GPUS: tuple[GpuSpec, ...] = (
    GpuSpec("NVIDIA H100 PCIe", 80, 2000, 756.5, 1513.0, _H100, _m("h100 pcie")),
    GpuSpec("NVIDIA H100 NVL", 94, 3900, 835.5, 1670.5, _H100, _m("h100 nvl")),
    GpuSpec("NVIDIA H100 SXM", 80, 3350, 989.5, 1979.0, _H100, _m("h100")),
    GpuSpec("NVIDIA H200 NVL", 141, 4800, 835.5, 1670.5, _H200, _m("h200 nvl")),
    GpuSpec("NVIDIA H200 SXM", 141, 4800, 989.5, 1979.0, _H200, _m("h200")),
    GpuSpec("NVIDIA A100 40GB", 40, 1555, 312.0, None, _A100, _m("a100 40gb")),
    GpuSpec("NVIDIA A100 80GB PCIe", 80, 1935, 312.0, None, _A100, _m("a100 pcie")),
    GpuSpec("NVIDIA A100 80GB SXM", 80, 2039, 312.0, None, _A100, _m("a100")),
    GpuSpec("NVIDIA L40S", 48, 864, 362.05, 733.0,
            "NVIDIA L40S datasheet (nvidia.com/en-us/data-center/l40s)", _m("l40s")),
    GpuSpec("NVIDIA GeForce RTX 4090 Laptop GPU", 16, 576, 79.4, 158.8,
            "NVIDIA GeForce RTX 4090 Laptop GPU specifications (nvidia.com, 16 GB GDDR6, "
            "256-bit, 576 GB/s; 76 SMs, boost clock up to 2040 MHz)",
            _m("rtx 4090 laptop", "rtx 4090 mobile"),
            note="tensor TFLOPS derived: 76 SMs x 2.04 GHz x the AD10x per-SM rate "
                 "(512 BF16 / 1024 FP8 FLOP per clock, FP32 accumulate); depends on the "
                 "laptop's power limit"),
    GpuSpec("NVIDIA GeForce RTX 4090", 24, 1008, 165.2, 330.3, _ADA, _m("rtx 4090")),
)


def _tokens(name: str) -> set[str]:
    words = re.sub(r"[^a-z0-9]+", " ", name.lower()).split()
    return {w for w in words if w not in {"nvidia", "geforce", "gpu", "tensor", "core"}}


def find_gpu(name: str) -> GpuSpec | None:
    """The spec for a GPU name as nvidia-smi or a person writes it, or None when unknown.

    >>> find_gpu("NVIDIA GeForce RTX 4090 Laptop GPU").memory_bandwidth_gb_s
    576
    """
    tokens = _tokens(name)
    # "A100-SXM4-80GB" -> a100 sxm4 80gb; "H100 80GB HBM3" -> h100 80gb hbm3
    for spec in GPUS:
        if any(required <= tokens for required in spec.match):
            return spec
    return None
