"""Peak numbers of the GPUs people serve LLMs on: memory bandwidth and dense tensor throughput.

Dense means without 2:4 structured sparsity: datasheets print the sparse figure with an asterisk,
and the dense one is half of it. Ada (GeForce) figures are with FP32 accumulation, which is what
vLLM's BF16 and FP8 GEMMs use; GeForce cards run FP16-accumulate at twice that rate.
These are ceilings, not expectations: real kernels reach a fraction of them.

Memory comes twice. ``memory_gb`` is the datasheet's label (80 GB), which is neither of the
figures software sees; ``memory`` is what the driver reports (``DriverMemory``): NVML's total,
which nvidia-smi prints and vLLM's batch defaults read, and CUDA's total, NVML's less what the
driver reserves, which vLLM's memory budget multiplies by ``gpu_memory_utilization``. Each figure
names where it was read: a probe in ``docs/results``, or published nvidia-smi, deviceQuery,
PyTorch or vLLM output of that card. Drivers differ by a few tens of MiB.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

GIB = 1024**3
MIB = 1024**2


@dataclass(frozen=True)
class DriverMemory:
    """A card's memory as the driver reports it, in bytes, and where each figure was read.

    ``nvml_bytes``: NVML's total, nvidia-smi's ``memory.total``. vLLM picks its batch defaults by
    it (vLLM 0.32 ``vllm/platforms/cuda.py`` ``NvmlCudaPlatform.get_device_total_memory``).
    ``cuda_bytes``: CUDA's total (``cudaMemGetInfo``, torch's ``total_memory``), NVML's less the
    driver's reservation. vLLM's budget is this x ``gpu_memory_utilization`` (vLLM 0.32
    ``vllm/v1/worker/utils.py`` ``request_memory``; it logs it as "Free memory on device
    (free/total GiB)"). None: no figure was found for the card.
    """

    nvml_bytes: int | None
    cuda_bytes: int | None
    source: str

    @property
    def usable_bytes(self) -> int | None:
        """What vLLM's budget starts from: CUDA's total, else NVML's (a few hundred MiB more)."""
        return self.cuda_bytes if self.cuda_bytes is not None else self.nvml_bytes


@dataclass(frozen=True)
class GpuSpec:
    name: str
    memory_gb: float  # the datasheet's label: "80 GB"
    memory_bandwidth_gb_s: float
    bf16_dense_tflops: float
    fp8_dense_tflops: float | None  # None: no FP8 tensor cores (before Ada / Hopper)
    source: str
    match: tuple[frozenset[str], ...]  # token sets; a GPU name containing all tokens of one matches
    note: str = ""
    compute_capability: str = ""  # CUDA SM version, e.g. "9.0" (CUDA GPUs list, developer.nvidia.com)
    memory: DriverMemory | None = None  # None: no driver figure found; only the label is known

    @property
    def usable_memory_bytes(self) -> float:
        """The bytes vLLM's memory budget starts from: the driver's figure where the table has
        one, else the datasheet's GB read as GiB (an overstatement of a few percent)."""
        usable = self.memory.usable_bytes if self.memory else None
        return float(usable) if usable is not None else self.memory_gb * GIB

    @property
    def nvml_memory_bytes(self) -> float:
        """NVML's total (what vLLM's batch defaults read); the usable figure where not known."""
        nvml = self.memory.nvml_bytes if self.memory else None
        return float(nvml) if nvml is not None else self.usable_memory_bytes

    def memory_basis(self) -> str:
        """What ``usable_memory_bytes`` is, in words, for a message."""
        if self.memory is None or self.memory.usable_bytes is None:
            return (f"its datasheet {self.memory_gb:g} GB read as GiB (no driver figure in the GPU "
                    "table; CUDA reports a few percent less)")
        if self.memory.cuda_bytes is None:
            return (f"NVML's total of its {self.memory_gb:g} GB (CUDA's, a few hundred MiB less, "
                    "is not in the GPU table)")
        nvml = f", NVML {self.memory.nvml_bytes / GIB:.2f} GiB" if self.memory.nvml_bytes else ""
        return f"what CUDA reports of its {self.memory_gb:g} GB{nvml}"

    @property
    def memory_source(self) -> str:
        return self.memory.source if self.memory is not None else self.source


# Words that say nothing about which card it is.
_FILLER_WORDS = frozenset({"nvidia", "geforce", "tesla", "gpu", "graphics", "corporation",
                           "tensor", "core"})
# Words that make a card a different GPU from the desktop one of the same number: a laptop part
# has its own memory, bandwidth and power limit. "Mobile" and "Notebook" are older names of
# "Laptop GPU"; Max-Q (power-limited laptop designs) is a laptop part too, but runs at a lower
# power than other laptops with that card.
_LAPTOP = "laptop"
_MAXQ = "maxq"
_SYNONYMS = {"mobile": _LAPTOP, "notebook": _LAPTOP}


def gpu_tokens(name: str) -> frozenset[str]:
    """The words of a GPU name that identify the card, lower case, filler words dropped.

    >>> sorted(gpu_tokens("NVIDIA GeForce RTX 4090 Laptop GPU Max-Q"))
    ['4090', 'laptop', 'maxq', 'rtx']
    """
    text = re.sub(r"max[-_ ]?q\b", _MAXQ, name.lower())
    words = {_SYNONYMS.get(word, word) for word in re.split(r"[^a-z0-9]+", text)}
    if _MAXQ in words:
        words.add(_LAPTOP)  # Max-Q exists only in laptops: "RTX 4090 Max-Q" is a laptop card
    return frozenset(word for word in words if word and word not in _FILLER_WORDS)


def _variant(tokens: frozenset[str]) -> frozenset[str]:
    return tokens & {_LAPTOP, _MAXQ}


def _m(*names: str) -> tuple[frozenset[str], ...]:
    return tuple(gpu_tokens(name) for name in names)


_H100 = ("NVIDIA H100 Tensor Core GPU datasheet (nvidia.com/en-us/data-center/h100), "
         "figures marked 'with sparsity' halved")
_H200 = "NVIDIA H200 Tensor Core GPU datasheet (nvidia.com/en-us/data-center/h200)"
_A100 = "NVIDIA A100 Tensor Core GPU datasheet (nvidia.com/en-us/data-center/a100)"
_ADA = ("NVIDIA Ada GPU Architecture whitepaper v2.1, appendix table of GeForce RTX 4090 "
        "(FP32-accumulate tensor TFLOPS)")

# Order matters: the first entry whose tokens all appear in a name wins, so the more specific
# variants (PCIe, NVL, 40GB) come before the general name. Laptop entries match only laptop names
# and desktop entries only desktop names (see find_gpu), whatever the order.
_L4 = "NVIDIA L4 Tensor Core GPU datasheet (nvidia.com/en-us/data-center/l4), figures with sparsity halved"
_A10G = ("AWS EC2 G5 (24 GB GDDR6, 600 GB/s); AWS publishes no tensor figure: 70 dense BF16 TFLOPS "
         "as in Baseten's 'NVIDIA A10 vs A10G for ML model inference' (the A10 has 125)")
_B200 = ("NVIDIA HGX B200 datasheet (nvidia.com/en-us/data-center/hgx): per GPU 180 GB HBM3e, "
         "8 TB/s; FP16/BF16 and FP8 figures with sparsity halved")

# What the driver reports, card by card (DriverMemory): measured here where a probe exists, else
# published output of that card. CUDA figures from PyTorch and vLLM messages are rounded to
# 0.01 GiB.
_MODAL = "nvidia-smi totals listed in github.com/modal-labs/modal-client pull 2797"
_H100_MEMORY = DriverMemory(
    85_520_809_984, 85_017_493_504,
    "probed: docs/results/h100-memory, an H100 80GB HBM3 with driver 580.159.04 (NVML total, "
    "480 MiB reserved, cudaMemGetInfo total)")
_H200_MEMORY = DriverMemory(
    150_754_820_096, 150_109_880_320,
    "probed: docs/results/hopper-h200/probe.json, driver 580.159.04 (NVML total, and free on the "
    "idle GPU, which is CUDA's total); vLLM 0.26 logs it as 139.8 GiB (\"Free memory on device "
    "(139.29/139.8 GiB)\", docs/results/hopper-h200/runs/*/server.log)")
_A100_80_MEMORY = DriverMemory(
    81_920 * MIB, round(79.32 * GIB),
    f"NVML: {_MODAL} and github.com/NVIDIA/mig-parted issue 31 (A100-SXM4-80GB, 81920 MiB); "
    "CUDA: vLLM's \"Free memory on device (0.49/79.32 GiB)\" on an A100 80GB in "
    "github.com/vllm-project/vllm-omni issue 276")

# Order matters: the first entry whose tokens all appear in a name wins, so the more specific
# variants (PCIe, NVL, 40GB) come before the general name. Laptop entries match only laptop names
# and desktop entries only desktop names (see find_gpu), whatever the order. Compute capabilities
# are NVIDIA's "CUDA GPUs" table (developer.nvidia.com/cuda-gpus).
GPUS: tuple[GpuSpec, ...] = (
    GpuSpec("NVIDIA H100 PCIe", 80, 2000, 756.5, 1513.0, _H100, _m("h100 pcie"),
            compute_capability="9.0"),
    GpuSpec("NVIDIA H100 NVL", 94, 3900, 835.5, 1670.5, _H100, _m("h100 nvl"),
            compute_capability="9.0",
            memory=DriverMemory(95_830 * MIB, None, "nvidia-smi 95830 MiB, driver 535.183.01, in "
                                "github.com/NVIDIA/gpu-admin-tools issue 4")),
    GpuSpec("NVIDIA H100 SXM", 80, 3350, 989.5, 1979.0, _H100, _m("h100"),
            compute_capability="9.0", memory=_H100_MEMORY),
    GpuSpec("NVIDIA H200 NVL", 141, 4800, 835.5, 1670.5, _H200, _m("h200 nvl"),
            compute_capability="9.0"),
    GpuSpec("NVIDIA H200 SXM", 141, 4800, 989.5, 1979.0, _H200, _m("h200"),
            compute_capability="9.0", memory=_H200_MEMORY),
    GpuSpec("NVIDIA B200", 180, 8000, 2250.0, 4500.0, _B200, _m("b200"),
            compute_capability="10.0",
            memory=DriverMemory(183_359 * MIB, round(178.35 * GIB),
                                "NVML: nvidia-smi 183359 MiB, driver 580.95.05, in "
                                "github.com/NVIDIA/TensorRT-LLM issue 10278; CUDA: total global "
                                "memory 178.35 (GiB, by its size) in github.com/pytorch/ao pull "
                                "4002")),
    GpuSpec("NVIDIA A100 40GB", 40, 1555, 312.0, None, _A100, _m("a100 40gb"),
            compute_capability="8.0",
            memory=DriverMemory(40_960 * MIB, 42_298_834_944,
                                f"NVML: {_MODAL}; CUDA: deviceQuery of an A100-SXM4-40GB (CUDA "
                                "driver 12.2) in github.com/bottlerocket-os/bottlerocket pull "
                                "3873")),
    GpuSpec("NVIDIA A100 80GB PCIe", 80, 1935, 312.0, None, _A100, _m("a100 pcie"),
            compute_capability="8.0", memory=_A100_80_MEMORY),
    GpuSpec("NVIDIA A100 80GB SXM", 80, 2039, 312.0, None, _A100, _m("a100"),
            compute_capability="8.0", memory=_A100_80_MEMORY),
    GpuSpec("NVIDIA L40S", 48, 864, 362.05, 733.0,
            "NVIDIA L40S datasheet (nvidia.com/en-us/data-center/l40s)", _m("l40s"),
            compute_capability="8.9",
            memory=DriverMemory(46_068 * MIB, round(44.42 * GIB),
                                "NVML: nvidia-smi 46068 MiB, driver 595.71.05, in "
                                f"github.com/akash-network/provider-configs pull 99, and {_MODAL}; "
                                "CUDA: PyTorch's \"total capacity of 44.42 GiB\" on 8 x L40S in "
                                "github.com/stepfun-ai/Step-Video-T2V issue 8")),
    GpuSpec("NVIDIA L4", 24, 300, 121.0, 242.5, _L4, _m("l4"), compute_capability="8.9",
            memory=DriverMemory(23_034 * MIB, None,
                                "nvidia-smi 23034 MiB, driver 570.133.20, in "
                                f"github.com/speaches-ai/speaches pull 438, and {_MODAL}")),
    GpuSpec("NVIDIA A10G", 24, 600, 70.0, None, _A10G, _m("a10g"), compute_capability="8.6",
            memory=DriverMemory(23_028 * MIB, None, "nvidia-smi 23028 MiB, driver 535.247.01, "
                                "in github.com/NVIDIA/DCGM issue 232")),
    GpuSpec("NVIDIA GeForce RTX 4090 Laptop GPU", 16, 576, 79.4, 158.8,
            "NVIDIA GeForce RTX 4090 Laptop GPU specifications (nvidia.com, 16 GB GDDR6, "
            "256-bit, 576 GB/s; 76 SMs, boost clock up to 2040 MHz)",
            _m("rtx 4090 laptop"),
            note="tensor TFLOPS derived: 76 SMs x 2.04 GHz x the AD10x per-SM rate "
                 "(512 BF16 / 1024 FP8 FLOP per clock, FP32 accumulate); depends on the "
                 "laptop's power limit", compute_capability="8.9"),
    GpuSpec("NVIDIA GeForce RTX 4090", 24, 1008, 165.2, 330.3, _ADA, _m("rtx 4090"),
            compute_capability="8.9",
            memory=DriverMemory(24_564 * MIB, round(23.64 * GIB),
                                "NVML: nvidia-smi 24564 MiB, driver 550.163.01, in "
                                "github.com/RLinf/RLinf issue 255; CUDA: PyTorch's \"total "
                                "capacity of 23.64 GiB\" in github.com/3DTopia/Phidias-Diffusion "
                                "issue 8")),
)


def gpu_matches(wanted: str, measured: str) -> bool:
    """Whether two GPU names denote the same card (for comparing measurements).

    One name's words must all appear in the other's ("H100" is "NVIDIA H100 80GB HBM3"), and both
    must be the same variant: "RTX 4090" is not "RTX 4090 Laptop GPU", and a Max-Q laptop is not
    another laptop with that card, since its power limit changes what it measures.
    """
    a, b = gpu_tokens(wanted), gpu_tokens(measured)
    if not a or not b or _variant(a) != _variant(b):
        return False
    return a <= b or b <= a


def find_gpu(name: str) -> GpuSpec | None:
    """The spec for a GPU name as nvidia-smi or a person writes it, or None when unknown.

    The same words as ``gpu_matches``; a laptop card (Laptop, Mobile, Max-Q) gets the laptop spec
    of its number or None, never the desktop card's.

    >>> find_gpu("NVIDIA GeForce RTX 4090 Laptop GPU").memory_bandwidth_gb_s
    576
    >>> find_gpu("RTX 3080 Max-Q") is None
    True
    """
    tokens = gpu_tokens(name)
    laptop = _LAPTOP in tokens
    # "A100-SXM4-80GB" -> a100 sxm4 80gb; "H100 80GB HBM3" -> h100 80gb hbm3
    for spec in GPUS:
        for required in spec.match:
            if (_LAPTOP in required) == laptop and required <= tokens:
                return spec
    return None
