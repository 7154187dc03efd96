"""Whether a candidate's engine configuration can start, from the decision file alone.

Every check is a function of plain facts returning ``Problem`` objects: the model (its shape and
checkpoint format, from the decision or a local ``config.json``), the target hardware (the
decision's ``hardware`` block, or a probed GPU that ``launch.preflight`` supplies) and the engine
keys. ``check``, ``score`` and the HTML report run them on every candidate through
``check_launchability``; ``launch`` runs the same functions before it starts anything, with the
installed vLLM's facts added (``launch.preflight``).
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Literal

from stackdecide.audit.models import FP8_NAME, ModelFacts, candidate_model, model_facts
from stackdecide.facts import memory, parallel
from stackdecide.facts.dtypes import dtype_name, is_fp8
from stackdecide.facts.gpus import find_gpu
from stackdecide.facts.memory import gib
from stackdecide.model.findings import Finding
from stackdecide.model.problems import Problem
from stackdecide.model.schema import Hardware
from stackdecide.model.stack import (
    bad_parallel_sizes,
    engine_dtype,
    engine_key,
    engine_kv_cache_dtype,
    is_cpu_target,
    layout_of,
)

if TYPE_CHECKING:
    from stackdecide.model.decision import DecisionMatrix
    from stackdecide.model.ranking import Ranking

__all__ = ["FP8_NAME", "ModelFacts", "TargetHardware", "candidate_model", "model_facts"]

DEFAULT_GPU_MEMORY_UTILIZATION = 0.9  # when the installed vLLM's default is unknown


@dataclass(frozen=True)
class TargetHardware:
    """The machine the configuration is checked against, and where its numbers come from."""

    device: Literal["gpu", "cpu"]
    total_bytes: float | None
    compute_capability: str | None
    source: str
    filled: tuple[str, ...] = ()  # what came from the GPU table, not the decision file
    name: str = ""
    count: int | None = None  # GPUs available for one configuration; None: not known


def file_hardware(hardware: Hardware | None) -> TargetHardware | None:
    """The target a decision file's ``hardware`` block describes (no GPU probed); memory and
    compute capability it leaves out come from the GPU table (``facts.gpus``), and ``filled``
    says which."""
    if hardware is None:
        return None
    if is_cpu_target(hardware):
        return TargetHardware("cpu", None, None, "decision.hardware (CPU)", name="cpu")
    spec = find_gpu(hardware.gpu)
    vram, capability, filled = hardware.vram_gb, hardware.compute_capability, []
    if vram is None and spec is not None:
        vram = spec.memory_gb
        filled.append(f"vram_gb {vram:g}")
    if capability is None and spec is not None and spec.compute_capability:
        capability = spec.compute_capability
        filled.append(f"compute_capability {capability}")
    if vram is None:
        source = f"decision.hardware ({hardware.gpu}; no GPU visible here)"
    elif hardware.vram_gb is None and spec is not None:
        source = (f"the GPU table's {vram:g} GiB for {spec.name} (decision.hardware gives no "
                  "vram_gb; no GPU visible here)")
    else:
        source = f"decision.hardware.vram_gb = {vram:g} GiB ({hardware.gpu}; no GPU visible here)"
    return TargetHardware("gpu", vram * memory.GIB if vram else None, capability, source,
                          tuple(filled), spec.name if spec else hardware.gpu, hardware.count)


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
    if dtype_name(engine_kv_cache_dtype(engine)) != "fp8_e5m2" or not model.fp8_checkpoint:
        return []
    return [Problem(
        "fp8-e5m2-with-fp8-checkpoint",
        f"vLLM refuses an fp8_e5m2 KV cache with an FP8 checkpoint ({model.fp8_reason}): "
        "\"fp8_e5m2 kv-cache is not supported with fp8 checkpoints\"; use fp8 (e4m3) or auto",
        f"engine.{engine_key(engine, 'kv_cache_dtype')}")]


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
    kv_dtype = engine_kv_cache_dtype(engine)
    backend = engine.get("attention_backend") or env.get("VLLM_ATTENTION_BACKEND")
    if not is_fp8(kv_dtype) or not backend:
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
                    f"engine.{engine_key(engine, 'kv_cache_dtype')}")]


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
    dtype = engine_dtype(engine)
    utilization = engine.get("gpu_memory_utilization")
    if not isinstance(utilization, int | float) or isinstance(utilization, bool):
        utilization = default_utilization
    batched = parse_token_count(engine.get("max_num_batched_tokens")) or \
        memory.ASSUMED_MAX_NUM_BATCHED_TOKENS
    seqs = parse_token_count(engine.get("max_num_seqs")) or memory.ASSUMED_MAX_NUM_SEQS
    return memory.KvBudget(
        target.total_bytes, float(utilization),
        gpu_weight_bytes(engine, model, dtype),
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
    kv_dtype = engine_kv_cache_dtype(engine)
    per_token = gpu_kv_bytes_per_token(engine, model)
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


def gpu_weight_bytes(engine: Mapping[str, Any], model: ModelFacts, dtype: str = "auto") -> float:
    """Weights on the fullest GPU of the engine's parallel layout (one GPU: all of them)."""
    assert model.shape is not None
    parts = memory.weight_parts(model.shape, model.weights, dtype)
    return parallel.gpu_weight_bytes(parts, model.shape, layout_of(engine)).total


def gpu_kv_bytes_per_token(engine: Mapping[str, Any], model: ModelFacts) -> float:
    """KV-cache bytes per token on the fullest GPU: heads split by TP (replicated past
    num_kv_heads), layers split by PP."""
    assert model.shape is not None
    per_token = memory.kv_bytes_per_token(model.shape, engine_kv_cache_dtype(engine),
                                          engine_dtype(engine))
    return per_token * parallel.kv_share(model.shape, layout_of(engine))


def check_parallel(engine: Mapping[str, Any], model: ModelFacts,
                   target: TargetHardware | None) -> list[Problem]:
    """Parallel sizes vLLM refuses for this model, and a layout needing more GPUs than there are."""
    problems = [Problem("bad-parallel-size", f"{key} must be a positive integer, not "
                        f"{engine.get(key)!r}", f"engine.{key}")
                for key in bad_parallel_sizes(engine)]
    layout = layout_of(engine)
    if model.shape is not None:
        problems += [Problem("parallel-split-refused", f"{why} ({model.shape.name}); vLLM "
                             "refuses this split", f"engine.{key}")
                     for key, why in parallel.layout_problems(model.shape, layout)]
    if target is not None and target.device == "gpu" and target.count is not None \
            and layout.gpus > target.count:
        # the size that alone would fit, the outermost first; else tensor parallel
        option = next((option for option, size in (("data_parallel_size", layout.dp),
                                                   ("pipeline_parallel_size", layout.pp),
                                                   ("tensor_parallel_size", layout.tp))
                       if layout.gpus // size <= target.count), "tensor_parallel_size")
        problems.append(Problem(
            "not-enough-gpus", f"{layout.label} needs {layout.gpus} GPUs "
            f"(tensor x pipeline x data parallel); {target.count} available ({target.source})",
            f"engine.{engine_key(engine, option)}"))
    return problems


# vLLM's default KV-cache block size on GPUs: a running sequence holds at least one block.
KV_BLOCK_TOKENS = 16


def check_max_num_seqs(engine: Mapping[str, Any], env: Mapping[str, str], model: ModelFacts,
                       target: TargetHardware | None,
                       default_utilization: float = DEFAULT_GPU_MEMORY_UTILIZATION
                       ) -> list[Problem]:
    """A ``max_num_seqs`` the KV cache cannot hold: a warning when not even that many sequences
    of one block each fit, an info when fewer than that many full-length sequences fit."""
    seqs = parse_token_count(engine.get("max_num_seqs"))
    if seqs is None or target is None or model.shape is None:
        return []
    budget = kv_budget(engine, env, model, target, default_utilization)
    if budget is None or budget.kv_bytes <= 0:
        return []  # check_kv_fits says that nothing fits
    length = parse_token_count(engine.get("max_model_len")) or \
        model.shape.max_position_embeddings
    fit = memory.capacity(model.shape, budget, length, engine_kv_cache_dtype(engine),
                          engine_dtype(engine), parallel.kv_share(model.shape, layout_of(engine)))
    if not fit.fits_one:
        return []  # check_kv_fits refuses max_model_len itself
    if fit.tokens < seqs * KV_BLOCK_TOKENS:
        return [Problem("max-num-seqs-unreachable",
                        f"max_num_seqs {seqs} can never run at once: the KV cache holds "
                        f"{fit.tokens:,} tokens, fewer than {seqs} sequences of one "
                        f"{KV_BLOCK_TOKENS}-token block each", "engine.max_num_seqs", "warning")]
    if fit.concurrency < seqs:
        return [Problem("max-num-seqs-above-capacity",
                        f"max_num_seqs {seqs} runs at once only when sequences average at most "
                        f"{fit.tokens // seqs:,} tokens: {fit.concurrency:.2f} sequences of "
                        f"max_model_len {length} fit in the KV cache ({fit.tokens:,} tokens)",
                        "engine.max_num_seqs", "info")]
    return []


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


def skipped_checks(engine: Mapping[str, Any], env: Mapping[str, str], model: ModelFacts,
                   target: TargetHardware | None) -> list[Problem]:
    """An info problem for each check that cannot run on this candidate, saying what the decision
    file should give: a check is never skipped in silence."""
    if not engine:  # a decision may rank stacks without saying how to launch them
        return []
    skipped = []
    if model.shape is None:
        skipped.append(("memory and context-length checks", model.missing or "no model shape",
                        "model"))
    elif target is None:
        skipped.append(("memory checks", "the decision names no hardware; give "
                        "decision.hardware (gpu, and vram_gb if it is not in the GPU table)",
                        "decision.hardware"))
    elif target.device == "gpu" and target.total_bytes is None:
        skipped.append(("memory checks", f"GPU '{target.name}' is not in the GPU table; give "
                        "decision.hardware.vram_gb", "decision.hardware.vram_gb"))
    elif target.device == "cpu" and kv_budget(engine, env, model, target, 0) is None:
        skipped.append(("KV-cache checks", "vLLM sizes the CPU KV cache from free memory; set "
                        "VLLM_CPU_KVCACHE_SPACE (GiB) in the candidate's env", "env"))
    kv_dtype = engine_kv_cache_dtype(engine)
    backend = engine.get("attention_backend") or env.get("VLLM_ATTENTION_BACKEND")
    if is_fp8(kv_dtype) and backend and (target is None or (
            target.device == "gpu" and _capability(target.compute_capability) is None)):
        skipped.append((f"the FP8 KV-cache check of backend {backend}",
                        "the GPU's compute capability is unknown; give "
                        "decision.hardware.compute_capability", "decision.hardware"))
    return [Problem("check-skipped", f"skipped {what}: {why}", field, "info")
            for what, why, field in skipped]


def static_problems(engine: Mapping[str, Any], env: Mapping[str, str], model: ModelFacts,
                    target: TargetHardware | None,
                    backend_dtypes: Mapping[str, tuple[str, ...]] | None = None,
                    default_utilization: float = DEFAULT_GPU_MEMORY_UTILIZATION) -> list[Problem]:
    """Checks that need only the decision file; ``backend_dtypes`` (each attention backend's
    supported KV-cache dtypes) comes from the installed vLLM when there is one. Checks that
    cannot run are info problems (``skipped_checks``)."""
    return [*check_env(env),
            *check_parallel(engine, model, target),
            *check_fp8_kv_with_fp8_checkpoint(engine, model),
            *check_fp8_kv_backend(engine, env, target, backend_dtypes),
            *check_max_model_len(engine, env, model),
            *check_kv_fits(engine, env, model, target, default_utilization),
            *check_max_num_seqs(engine, env, model, target, default_utilization),
            *skipped_checks(engine, env, model, target)]


def check_hardware_facts(decision: DecisionMatrix, ranking: Ranking) -> list[Finding]:
    """An audit check (info): which numbers of the decision's GPU come from the GPU table
    rather than the file, or that the GPU is not in the table at all."""
    hardware = decision.model.decision.hardware
    target = file_hardware(hardware)
    if hardware is None or target is None or target.device != "gpu":
        return []
    where = decision.locate(("decision", "hardware"))
    spec = find_gpu(hardware.gpu)
    if spec is None:
        missing = [key for key in ("vram_gb", "compute_capability", "memory_bandwidth_gb_s")
                   if getattr(hardware, key) is None]
        if not missing:
            return []
        return [Finding("hardware-unknown", "info", "decision",
                        f"GPU '{hardware.gpu}' is not in the GPU table and decision.hardware "
                        f"gives no {', '.join(missing)}: checks that need them are skipped",
                        where)]
    filled = list(target.filled)
    if hardware.memory_bandwidth_gb_s is None:
        filled.append(f"memory_bandwidth_gb_s {spec.memory_bandwidth_gb_s:g}")
    if not filled:
        return []
    return [Finding("hardware-from-table", "info", "decision",
                    f"decision.hardware leaves out {', '.join(f.split()[0] for f in filled)}: "
                    f"using the GPU table's {spec.name} ({', '.join(filled)}; {spec.source})",
                    where)]


def decision_problems(decision: DecisionMatrix, candidate_id: str) -> list[Problem]:
    """The static checks of one candidate of a decision (its own model), against the decision's
    ``hardware`` block only (what ``stackdecide check`` can report without a GPU or vLLM)."""
    candidate = decision.candidate(candidate_id)
    facts = candidate_model(decision, candidate_id)
    return static_problems(candidate.engine, candidate.env, facts,
                           file_hardware(decision.model.decision.hardware))


def problem_location(decision: DecisionMatrix, index: int, problem: Problem) -> str | None:
    """``file:line:col field`` of a problem about candidate ``index``'s ``engine`` or ``env`` key;
    the problem's own field (``--port``, ``decision.model.shape``) for anything else."""
    section, _, key = (problem.field or "").partition(".")
    if section in ("engine", "env") and key:
        return decision.locate(("candidates", index, section, key))
    return problem.field


def check_launchability(decision: DecisionMatrix, ranking: Ranking) -> list[Finding]:
    """An audit check: each candidate whose engine configuration cannot start as written, and
    each check that could not run (info; said once for the decision when every candidate shares
    the reason)."""
    findings: list[Finding] = []
    skipped: dict[tuple[str, str], list[str]] = {}
    for index, candidate_id in enumerate(decision.candidate_ids):
        for problem in decision_problems(decision, candidate_id):
            where = problem_location(decision, index, problem)
            if problem.severity == "info" and where == problem.field:  # about no engine key
                skipped.setdefault((problem.code, problem.message), []).append(candidate_id)
                continue
            findings.append(problem.finding(candidate_id, where))
    every = len(decision.candidate_ids)
    for (code, message), ids in skipped.items():
        subjects = ["decision"] if len(ids) == every and every > 1 else ids
        findings += [Finding(f"launch:{code}", "info", subject, message) for subject in subjects]
    return findings
