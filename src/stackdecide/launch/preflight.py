"""Known-invalid serving configurations, refused with the reason before anything starts.

Every check is a function of plain facts returning ``Problem`` objects. The static ones
(``static_problems``) need only the decision file, so ``stackdecide check`` can run them; the
runtime ones take what was measured on this machine (free GPU memory, who holds a port, the
installed versions) as arguments. Gathering those facts (``port_state``) is kept apart.
"""

from __future__ import annotations

import errno
import json
import os
import re
import socket
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from stackdecide.facts import memory
from stackdecide.facts.memory import gib
from stackdecide.facts.shapes import SHAPES, ModelShape
from stackdecide.launch.scaffold import shape_from_config
from stackdecide.model.problems import Problem
from stackdecide.model.schema import Hardware, ModelSpec, Stack
from stackdecide.vllm.args import VllmArgSpec
from stackdecide.vllm.probe import GpuInfo, RuntimeVersions

if TYPE_CHECKING:
    from stackdecide.decision import Decision

# Quantization methods whose checkpoints hold FP8 weights (vLLM's names).
FP8_QUANTIZATION = frozenset({"fp8", "fp8_per_block", "fp8_per_tensor", "fp8_per_channel",
                              "fbgemm_fp8", "ptpc_fp8", "deepseek_v4_fp8"})
# Hub ids of FP8 checkpoints say so: Qwen/Qwen3-4B-Instruct-2507-FP8, RedHatAI/...-FP8-dynamic.
FP8_NAME = re.compile(r"(^|[-_.])fp8($|[-_.])", re.IGNORECASE)  # matched on the last path part
DEFAULT_GPU_MEMORY_UTILIZATION = 0.9  # when the parser's default is unknown
CPU_TARGETS = frozenset({"cpu", "none", "x86", "x86_64", "aarch64", "arm64"})


@dataclass(frozen=True)
class ModelFacts:
    """What preflight knows about the model being served."""

    id: str | None
    shape: ModelShape | None
    weights: str | None  # checkpoint format: bf16, fp8, fp8-block...
    fp8_checkpoint: bool
    fp8_reason: str | None  # which fact says the checkpoint is FP8
    shape_source: str | None  # "decision.model.shape" or "<dir>/config.json"


@dataclass(frozen=True)
class TargetHardware:
    """The machine the configuration is checked against, and where its numbers come from."""

    device: Literal["gpu", "cpu"]
    total_bytes: float | None
    compute_capability: str | None
    source: str


@dataclass(frozen=True)
class PortState:
    host: str
    port: int
    in_use: bool
    holders: tuple[tuple[int, str], ...] = ()  # (pid, command) of listening processes


def _local_config(model: Any) -> tuple[dict[str, Any] | None, str | None]:
    if not isinstance(model, str):
        return None, None
    path = Path(model) / "config.json"
    try:
        return json.loads(path.read_text()), str(path)
    except (OSError, ValueError):
        return None, None


def model_facts(engine: Mapping[str, Any], spec: ModelSpec | None) -> ModelFacts:
    """Combine the engine config, the decision's model block and a local config.json if any."""
    config, config_path = _local_config(engine.get("model"))
    shape: ModelShape | None = None
    shape_source = None
    if config is not None:
        shape = shape_from_config(config, name=str(engine.get("model")))
        shape_source = config_path if shape else None
    if shape is None and spec is not None and spec.shape in SHAPES:
        shape, shape_source = SHAPES[spec.shape], "decision.model.shape"
    weights = spec.weights if spec else None
    reason = None
    quantization = str(engine.get("quantization") or "").lower()
    quant_config = (config or {}).get("quantization_config") or {}
    model_name = str(engine.get("model") or "")
    # Facts about the candidate's own checkpoint outrank the decision-wide model.weights.
    if str(quant_config.get("quant_method", "")).lower() == "fp8":
        reason = f"{config_path} has quantization_config.quant_method fp8"
        weights = "fp8-block" if quant_config.get("weight_block_size") else "fp8"
    elif quantization in FP8_QUANTIZATION:
        reason = f"engine.quantization is {quantization}"
        weights = weights if weights and weights.lower().startswith("fp8") else "fp8"
    elif config is None and FP8_NAME.search(model_name.rstrip("/").rsplit("/", 1)[-1]):
        reason = f"the model id {model_name} names an FP8 checkpoint"
        weights = weights if weights and weights.lower().startswith("fp8") else "fp8"
    elif weights and weights.lower().startswith("fp8"):
        reason = f"decision.model.weights is {weights}"
    elif shape is not None and shape.quantization == "fp8-block":
        reason = f"model shape {shape.name} is block-FP8"
        weights = "fp8-block"
    return ModelFacts(spec.id if spec else engine.get("model"), shape, weights, reason is not None,
                      reason, shape_source)


def target_hardware(gpus: tuple[GpuInfo, ...] = (), hardware: Hardware | None = None,
                    visible_index: int = 0) -> TargetHardware | None:
    """The visible GPU when there is one, else the decision's ``hardware`` block."""
    if gpus:
        gpu = next((g for g in gpus if g.index == visible_index), gpus[0])
        return TargetHardware("gpu", gpu.total_bytes, gpu.compute_capability,
                              f"GPU {gpu.index} ({gpu.name}, read through NVML)")
    if hardware is None:
        return None
    if hardware.gpu.strip().lower() in CPU_TARGETS:
        return TargetHardware("cpu", None, None, "decision.hardware (CPU)")
    total = hardware.vram_gb * memory.GIB if hardware.vram_gb else None
    return TargetHardware("gpu", total, hardware.compute_capability,
                          f"decision.hardware.vram_gb = {hardware.vram_gb:g} GiB ({hardware.gpu}; "
                          "no GPU visible here)" if hardware.vram_gb else
                          f"decision.hardware ({hardware.gpu}; no GPU visible here)")


def parse_token_count(value: Any) -> int | None:
    """vLLM's human-readable integers: 131072, "128k" (x1000), "128K" (x1024); None for auto/-1."""
    if isinstance(value, bool) or value is None:
        return None
    if isinstance(value, int):
        return value if value > 0 else None
    match = re.fullmatch(r"\s*(\d+(?:\.\d+)?)\s*([kKmMgG]?)\s*", str(value))
    if not match:
        return None
    number, suffix = float(match.group(1)), match.group(2)
    scale = {"": 1, "k": 1e3, "m": 1e6, "g": 1e9, "K": 1024, "M": 1024**2, "G": 1024**3}[suffix]
    return int(number * scale)


def _capability(text: str | None) -> tuple[int, int] | None:
    if not text:
        return None
    match = re.fullmatch(r"\s*(\d+)\.(\d+)\s*", str(text))
    return (int(match.group(1)), int(match.group(2))) if match else None


# -- static checks -----------------------------------------------------------------------------

def check_fp8_kv_with_fp8_checkpoint(engine: Mapping[str, Any], model: ModelFacts) -> list[Problem]:
    if engine.get("kv_cache_dtype") != "fp8_e5m2" or not model.fp8_checkpoint:
        return []
    return [Problem(
        "fp8-e5m2-with-fp8-checkpoint",
        f"vLLM refuses an fp8_e5m2 KV cache with an FP8 checkpoint ({model.fp8_reason}): "
        "\"fp8_e5m2 kv-cache is not supported with fp8 checkpoints\"; use fp8 (e4m3) or auto",
        "engine.kv_cache_dtype")]


def fp8_kv_unsupported(backend: str, kv_dtype: str, capability: tuple[int, int] | None,
                       backend_dtypes: tuple[str, ...] | None = None) -> str | None:
    """Why ``backend`` cannot hold an FP8 KV cache of ``kv_dtype`` on ``capability``, or None.

    ``backend_dtypes`` is the backend's ``supported_kv_cache_dtypes`` read from the installed vLLM
    when its kernels could be imported. The compute-capability rules follow vLLM 0.32's
    FlashAttention (FP8 KV needs FA3 on SM 9.x or FA4 on SM 10.x; never e5m2) and FlashInfer
    (SM 8.0 to 12.1) backends.
    """
    if backend_dtypes is not None and kv_dtype not in backend_dtypes:
        return f"{backend} supports KV-cache dtypes {', '.join(backend_dtypes)}"
    if backend == "FLASH_ATTN":
        if kv_dtype == "fp8_e5m2":
            return "FLASH_ATTN has no fp8_e5m2 KV cache (FlashAttention's FP8 is e4m3)"
        if capability is not None and capability[0] not in (9, 10):
            return (f"FLASH_ATTN's FP8 KV cache needs FlashAttention 3 (SM 9.x) or 4 (SM 10.x); "
                    f"SM {capability[0]}.{capability[1]} runs FlashAttention 2, which has none")
    if backend == "FLASHINFER" and capability is not None and not (8, 0) <= capability <= (12, 1):
        return f"FLASHINFER runs on SM 8.0 to 12.1, not SM {capability[0]}.{capability[1]}"
    return None


def check_fp8_kv_backend(engine: Mapping[str, Any], env: Mapping[str, str],
                         target: TargetHardware | None,
                         spec: VllmArgSpec | None = None) -> list[Problem]:
    kv_dtype = str(engine.get("kv_cache_dtype") or "auto")
    backend = engine.get("attention_backend") or env.get("VLLM_ATTENTION_BACKEND")
    if not kv_dtype.startswith("fp8") or not backend:
        return []
    backend = str(backend)
    capability = _capability(target.compute_capability) if target else None
    dtypes = spec.attention_backends.get(backend) if spec else None
    reason = fp8_kv_unsupported(backend, kv_dtype, capability, dtypes)
    if reason is None:
        return []
    where = f" (SM from {target.source})" if target and "SM " in reason else ""
    return [Problem("fp8-kv-unsupported-backend",
                    f"kv_cache_dtype {kv_dtype} with attention backend {backend}: {reason}{where}",
                    "engine.kv_cache_dtype")]


def check_max_model_len(engine: Mapping[str, Any], env: Mapping[str, str],
                        model: ModelFacts) -> list[Problem]:
    length = parse_token_count(engine.get("max_model_len"))
    if length is None or model.shape is None or env.get("VLLM_ALLOW_LONG_MAX_MODEL_LEN") == "1":
        return []
    limit = model.shape.max_position_embeddings
    if length <= limit:
        return []
    return [Problem("max-model-len-above-model",
                    f"max_model_len {length} is above the model's max_position_embeddings {limit} "
                    f"({model.shape_source}); vLLM refuses it unless "
                    "VLLM_ALLOW_LONG_MAX_MODEL_LEN=1", "engine.max_model_len")]


def kv_budget(engine: Mapping[str, Any], env: Mapping[str, str], model: ModelFacts,
              target: TargetHardware, default_utilization: float) -> memory.KvBudget | None:
    """What the configuration leaves for the KV cache on ``target``; None when it can't be told."""
    explicit = engine.get("kv_cache_memory_bytes")
    if isinstance(explicit, int) and not isinstance(explicit, bool) and explicit > 0:
        return memory.KvBudget(0, 0, 0, 0, 0, float(explicit))
    if target.device == "cpu":
        space = env.get("VLLM_CPU_KVCACHE_SPACE", "")
        if space.strip().isdigit() and int(space) > 0:
            return memory.KvBudget(0, 0, 0, 0, 0, int(space) * memory.GIB)
        return None  # vLLM sizes the CPU KV cache from free memory itself
    if target.total_bytes is None or model.shape is None:
        return None
    dtype = str(engine.get("dtype") or "auto")
    utilization = engine.get("gpu_memory_utilization")
    if not isinstance(utilization, int | float) or isinstance(utilization, bool):
        utilization = default_utilization
    batched = parse_token_count(engine.get("max_num_batched_tokens")) or \
        memory.ASSUMED_MAX_NUM_BATCHED_TOKENS
    seqs = parse_token_count(engine.get("max_num_seqs")) or memory.ASSUMED_MAX_NUM_SEQS
    return memory.KvBudget(
        target.total_bytes, float(utilization),
        memory.weight_bytes(model.shape, model.weights, dtype),
        memory.activation_peak_bytes(model.shape, batched, seqs, dtype),
        memory.NON_TORCH_BYTES)


def check_kv_fits(engine: Mapping[str, Any], env: Mapping[str, str], model: ModelFacts,
                  target: TargetHardware | None,
                  default_utilization: float = DEFAULT_GPU_MEMORY_UTILIZATION) -> list[Problem]:
    """One sequence of ``max_model_len`` tokens must fit the KV cache left after the weights."""
    if target is None or model.shape is None:
        return []
    length = parse_token_count(engine.get("max_model_len"))
    length_source = "max_model_len"
    if length is None:
        length, length_source = model.shape.max_position_embeddings, \
            "the model's max_position_embeddings (max_model_len unset)"
    budget = kv_budget(engine, env, model, target, default_utilization)
    if budget is None:
        return []
    kv_dtype = str(engine.get("kv_cache_dtype") or "auto")
    per_token = memory.kv_bytes_per_token(model.shape, kv_dtype, str(engine.get("dtype") or "auto"))
    needed = length * per_token
    if needed <= budget.kv_bytes:
        return []
    fits = memory.tokens_that_fit(budget, per_token)
    return [Problem(
        "kv-cache-too-small",
        f"{length_source} {length} needs {gib(needed)} of KV cache for one sequence "
        f"({kv_dtype}: {per_token:,.0f} bytes/token for {model.shape.name}), but {budget.describe()}"
        f" (memory from {target.source}; weights and activations estimated from the shape); "
        f"about {fits} tokens fit", "engine.max_model_len")]


def static_problems(engine: Mapping[str, Any], env: Mapping[str, str], model: ModelFacts,
                    target: TargetHardware | None, spec: VllmArgSpec | None = None,
                    default_utilization: float | None = None) -> list[Problem]:
    """Checks that need only the decision file (and, if given, the installed vLLM's arguments)."""
    if default_utilization is None:
        default_utilization = parser_default_utilization(spec)
    return [*check_fp8_kv_with_fp8_checkpoint(engine, model),
            *check_fp8_kv_backend(engine, env, target, spec),
            *check_max_model_len(engine, env, model),
            *check_kv_fits(engine, env, model, target, default_utilization)]


def decision_problems(decision: Decision, candidate_id: str,
                      spec: VllmArgSpec | None = None) -> list[Problem]:
    """The static checks of one candidate of a decision, against its ``hardware`` block only
    (what ``stackdecide check`` can report without a GPU or vLLM)."""
    candidate = decision.candidate(candidate_id)
    meta = decision.model.decision
    facts = model_facts(candidate.engine, meta.model)
    return static_problems(candidate.engine, candidate.env, facts,
                           target_hardware((), meta.hardware), spec)


def parser_default_utilization(spec: VllmArgSpec | None) -> float:
    action = spec.action("gpu_memory_utilization") if spec else None
    default = action.default if action else None
    return float(default) if isinstance(default, int | float) and not isinstance(default, bool) \
        else DEFAULT_GPU_MEMORY_UTILIZATION


# -- runtime checks ----------------------------------------------------------------------------

def check_free_memory(engine: Mapping[str, Any], gpu: GpuInfo | None,
                      default_utilization: float = DEFAULT_GPU_MEMORY_UTILIZATION,
                      process_groups: Mapping[int, int] | None = None) -> list[Problem]:
    """vLLM needs ``gpu_memory_utilization`` x total to be free when it starts."""
    if gpu is None:
        return []
    utilization = engine.get("gpu_memory_utilization", default_utilization)
    if not isinstance(utilization, int | float) or isinstance(utilization, bool):
        return []
    if utilization <= gpu.free_fraction:
        return []
    holders = []
    for process in gpu.processes:
        used = f" holds {gib(process.used_bytes)}" if process.used_bytes else ""
        group = (process_groups or {}).get(process.pid)
        group_text = f", process group {group}" if group else ""
        holders.append(f"PID {process.pid} ({process.name or 'unknown'}{group_text}){used}")
    who = ("; " + "; ".join(holders) + " — a leftover server? stop its process group "
           "(kill -TERM -- -PGID)") if holders else ""
    return [Problem(
        "gpu-memory-busy",
        f"gpu_memory_utilization {utilization:g} asks for {gib(gpu.total_bytes * utilization)} of "
        f"GPU {gpu.index} ({gpu.name}), but only {gib(gpu.free_bytes)} "
        f"({gpu.free_fraction:.2f}) is free{who}", "engine.gpu_memory_utilization")]


def port_state(host: str, port: int) -> PortState:
    """Whether ``host:port`` can be bound now, and who listens on it if not."""
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    with socket.socket(family, socket.SOCK_STREAM) as probe:
        probe.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as uvicorn does
        try:
            probe.bind((host, port))
            return PortState(host, port, False)
        except OSError as exc:
            if exc.errno != errno.EADDRINUSE:
                raise
    return PortState(host, port, True, _listeners(port))


def _listeners(port: int) -> tuple[tuple[int, str], ...]:
    try:
        import psutil

        found = []
        for connection in psutil.net_connections(kind="inet"):
            if (connection.status == psutil.CONN_LISTEN and connection.laddr
                    and connection.laddr.port == port and connection.pid):
                try:
                    command = " ".join(psutil.Process(connection.pid).cmdline()[:4])
                except psutil.Error:
                    command = "?"
                found.append((connection.pid, command))
        return tuple(sorted(set(found)))
    except Exception:  # no psutil or no permission: the port number alone still says enough
        return ()


def check_port(state: PortState) -> list[Problem]:
    if not state.in_use:
        return []
    who = "; held by " + ", ".join(f"PID {pid} ({command})" for pid, command in state.holders) \
        if state.holders else ""
    return [Problem("port-in-use", f"{state.host}:{state.port} is already in use{who}; pass "
                    "--port with a free port", "--port")]


def _matches(pin: str, installed: str) -> bool | None:
    from packaging.specifiers import InvalidSpecifier, SpecifierSet
    from packaging.version import InvalidVersion, Version

    text = pin.strip()
    if text and text[0].isdigit():
        text = f"=={text}"
    try:
        return SpecifierSet(text).contains(Version(installed), prereleases=True)
    except (InvalidSpecifier, InvalidVersion):
        return None


def check_stack(stack: Stack, runtime: RuntimeVersions) -> list[Problem]:
    """Warn where the installed stack is not the one the candidate pins."""
    problems = []
    installed = {"vllm": runtime.vllm, "torch": runtime.torch, "flashinfer": runtime.flashinfer,
                 "transformers": runtime.transformers}
    for name, version in installed.items():
        pin = getattr(stack, name)
        if pin is None:
            continue
        if version is None:
            problems.append(Problem("stack-differs", f"the candidate pins {name} {pin}; "
                                    f"{runtime.python} has no {name}", f"stack.{name}", "warning"))
        elif _matches(pin, version) is False:
            problems.append(Problem("stack-differs", f"the candidate pins {name} {pin}; "
                                    f"{runtime.python} has {version}: results describe the "
                                    "installed stack", f"stack.{name}", "warning"))
    if stack.cuda and runtime.torch and runtime.torch_cuda != stack.cuda:
        built = f"CUDA {runtime.torch_cuda}" if runtime.torch_cuda else "no CUDA (a CPU build)"
        problems.append(Problem("stack-differs", f"the candidate pins CUDA {stack.cuda}; torch "
                                f"{runtime.torch} is built for {built}", "stack.cuda", "warning"))
    if "flashinfer" in stack.extras and runtime.flashinfer is None:
        problems.append(Problem("stack-differs", "the candidate uses the flashinfer extra; "
                                f"{runtime.python} has no flashinfer", "stack.extras", "warning"))
    return problems


def visible_gpu_index() -> int:
    """The first device CUDA_VISIBLE_DEVICES exposes (NVML numbering), when it is a plain index."""
    first = os.environ.get("CUDA_VISIBLE_DEVICES", "").split(",")[0].strip()
    return int(first) if first.isdigit() else 0
