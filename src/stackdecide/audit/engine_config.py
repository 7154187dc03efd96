"""Whether a candidate's engine configuration can start, from the decision file alone.

Every check is a function of plain facts returning ``Problem`` objects: the model (its shape and
checkpoint format, from the decision or a local ``config.json``), the target hardware (the
decision's ``hardware`` block, or a probed GPU that ``launch.preflight`` supplies) and the engine
keys. ``check``, ``score`` and the HTML report run them on every candidate through
``check_launchability``; ``launch`` runs the same functions before it starts anything, with the
installed vLLM's facts added (``launch.preflight``).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from stackdecide.facts import memory
from stackdecide.facts.memory import gib
from stackdecide.facts.shapes import SHAPES, ModelShape, shape_from_config
from stackdecide.model.findings import Finding
from stackdecide.model.problems import Problem
from stackdecide.model.schema import Hardware, ModelSpec

if TYPE_CHECKING:
    from stackdecide.model.decision import DecisionMatrix
    from stackdecide.model.ranking import Ranking

# Quantization methods whose checkpoints hold FP8 weights (vLLM's names).
FP8_QUANTIZATION = frozenset({"fp8", "fp8_per_block", "fp8_per_tensor", "fp8_per_channel",
                              "fbgemm_fp8", "ptpc_fp8", "deepseek_v4_fp8"})
# Hub ids of FP8 checkpoints say so: Qwen/Qwen3-4B-Instruct-2507-FP8, RedHatAI/...-FP8-dynamic.
FP8_NAME = re.compile(r"(^|[-_.])fp8($|[-_.])", re.IGNORECASE)  # matched on the last path part
DEFAULT_GPU_MEMORY_UTILIZATION = 0.9  # when the installed vLLM's default is unknown
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


def file_hardware(hardware: Hardware | None) -> TargetHardware | None:
    """The target a decision file's ``hardware`` block describes (no GPU probed)."""
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
                         backend_dtypes: Mapping[str, tuple[str, ...]] | None = None) -> list[Problem]:
    kv_dtype = str(engine.get("kv_cache_dtype") or "auto")
    backend = engine.get("attention_backend") or env.get("VLLM_ATTENTION_BACKEND")
    if not kv_dtype.startswith("fp8") or not backend:
        return []
    backend = str(backend)
    capability = _capability(target.compute_capability) if target else None
    dtypes = backend_dtypes.get(backend) if backend_dtypes else None
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


# Variables that decide which code the server process loads (shared libraries, Python modules,
# programs). A decision file that sets them runs whatever its author points them at: allowed, since
# a custom build may need them, but never without a word.
CODE_LOADING_VARIABLES = ("LD_PRELOAD", "LD_LIBRARY_PATH", "LD_AUDIT", "PYTHONPATH", "PYTHONHOME",
                          "PATH")


def check_env(env: Mapping[str, str]) -> list[Problem]:
    """A warning for each variable of the candidate's ``env`` that changes which code runs."""
    return [Problem("env-changes-loaded-code",
                    f"{name}={value!r} changes which libraries, Python modules or programs the "
                    "server loads; use it only with a decision file from someone you trust",
                    f"env.{name}", "warning")
            for name, value in env.items() if name in CODE_LOADING_VARIABLES]


def static_problems(engine: Mapping[str, Any], env: Mapping[str, str], model: ModelFacts,
                    target: TargetHardware | None,
                    backend_dtypes: Mapping[str, tuple[str, ...]] | None = None,
                    default_utilization: float = DEFAULT_GPU_MEMORY_UTILIZATION) -> list[Problem]:
    """Checks that need only the decision file; ``backend_dtypes`` (each attention backend's
    supported KV-cache dtypes) comes from the installed vLLM when there is one."""
    return [*check_env(env),
            *check_fp8_kv_with_fp8_checkpoint(engine, model),
            *check_fp8_kv_backend(engine, env, target, backend_dtypes),
            *check_max_model_len(engine, env, model),
            *check_kv_fits(engine, env, model, target, default_utilization)]


def decision_problems(decision: DecisionMatrix, candidate_id: str) -> list[Problem]:
    """The static checks of one candidate of a decision, against its ``hardware`` block only
    (what ``stackdecide check`` can report without a GPU or vLLM)."""
    candidate = decision.candidate(candidate_id)
    meta = decision.model.decision
    facts = model_facts(candidate.engine, meta.model)
    return static_problems(candidate.engine, candidate.env, facts, file_hardware(meta.hardware))


def check_launchability(decision: DecisionMatrix, ranking: Ranking) -> list[Finding]:
    """An audit check: each candidate whose engine configuration cannot start as written."""
    findings = []
    for index, candidate_id in enumerate(decision.candidate_ids):
        for problem in decision_problems(decision, candidate_id):
            if problem.severity == "info":
                continue
            section, _, key = (problem.field or "").partition(".")
            where = decision.locate(("candidates", index, section, key)) \
                if section in ("engine", "env") and key else problem.field
            findings.append(problem.finding(candidate_id, where))
    return findings


