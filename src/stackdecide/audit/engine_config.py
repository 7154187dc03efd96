"""Whether a candidate's engine configuration can start, from the decision file alone.

Every check is a function of plain facts returning ``Problem`` objects: the model (its shape and
checkpoint format, from the decision or a local ``config.json``), the target hardware (the
decision's ``hardware`` block, or a probed GPU that ``launch.preflight`` supplies) and the engine
keys. ``check``, ``score`` and the HTML report run them on every candidate through
``check_launchability``; ``launch`` runs the same functions before it starts anything, with the
installed vLLM's facts added (``launch.preflight``).

The same checks guard against a hostile file: values vLLM would read as options
(``check_values``), keys and variables that make the server load code (``CODE_LOADING_KEYS``,
``CODE_LOADING_VARIABLES``), and secrets (``is_secret_name``), which reach vLLM by environment
only and every output shows as ``***``.
"""

from __future__ import annotations

import json
import re
import unicodedata
from collections.abc import Collection, Mapping
from dataclasses import dataclass, replace
from importlib import metadata
from typing import TYPE_CHECKING, Any, Literal

from packaging.version import Version

from stackdecide.audit.models import FP8_NAME, ModelFacts, candidate_model, model_facts, model_label
from stackdecide.facts import backends, memory, parallel, vllm_defaults
from stackdecide.facts.dtypes import is_fp8
from stackdecide.facts.gpus import find_gpu
from stackdecide.facts.memory import gib
from stackdecide.facts.pins import vllm_version
from stackdecide.facts.shapes import ModelShape, text_config
from stackdecide.facts.vllm_defaults import VllmRelease
from stackdecide.model.findings import Finding
from stackdecide.model.problems import Problem
from stackdecide.model.schema import Hardware
from stackdecide.model.space import candidate_hardware
from stackdecide.model.stack import (
    attention_backend_named,
    bad_parallel_sizes,
    engine_dtype,
    engine_key,
    engine_kv_cache_dtype,
    engine_value,
    is_cpu_target,
    layout_of,
    option_name,
)

if TYPE_CHECKING:
    from stackdecide.model.decision import DecisionMatrix
    from stackdecide.model.ranking import Ranking

__all__ = ["FP8_NAME", "ModelFacts", "TargetHardware", "candidate_model", "model_facts"]

@dataclass(frozen=True)
class TargetHardware:
    """The machine the configuration is checked against, and where its numbers come from.

    ``total_bytes`` is what vLLM's memory budget multiplies by ``gpu_memory_utilization``: CUDA's
    total of the GPU (``facts.gpus.DriverMemory``), or ``decision.hardware.vram_gb`` as written.
    ``nvml_bytes`` is NVML's total, which vLLM picks its batch defaults by (None: the same)."""

    device: Literal["gpu", "cpu"]
    total_bytes: float | None
    compute_capability: str | None
    source: str
    filled: tuple[str, ...] = ()  # what came from the GPU table, not the decision file
    name: str = ""
    count: int | None = None  # GPUs available for one configuration; None: not known
    nvml_bytes: float | None = None
    capability_source: str = ""  # where compute_capability comes from (default: ``source``)

    @property
    def capability_from(self) -> str:
        return self.capability_source or self.source


def file_hardware(hardware: Hardware | None) -> TargetHardware | None:
    """The target a decision file's ``hardware`` block describes (no GPU probed); memory and
    compute capability it leaves out come from the GPU table (``facts.gpus``: the memory the
    driver reports, not the datasheet's GB), and ``filled`` says which. ``vram_gb`` given is
    taken as written, in GiB."""
    if hardware is None:
        return None
    if is_cpu_target(hardware):
        return TargetHardware("cpu", None, None, "decision.hardware (CPU)", name="cpu")
    spec = find_gpu(hardware.gpu)
    capability, filled = hardware.compute_capability, []
    total: float | None = None
    nvml: float | None = None
    if hardware.vram_gb is not None:
        total = hardware.vram_gb * memory.GIB
        source = (f"decision.hardware.vram_gb = {hardware.vram_gb:g} GiB, taken as written "
                  f"({hardware.gpu}; no GPU visible here)")
    elif spec is not None:
        total, nvml = spec.usable_memory_bytes, spec.nvml_memory_bytes
        filled.append(f"vram_gb {total / memory.GIB:.2f}, {spec.memory_basis()} "
                      f"({spec.memory_source})")
        source = (f"the GPU table's {gib(total)} for {spec.name}, {spec.memory_basis()} "
                  "(decision.hardware gives no vram_gb; no GPU visible here)")
    else:
        source = f"decision.hardware ({hardware.gpu}; no GPU visible here)"
    capability_source = f"decision.hardware.compute_capability ({hardware.gpu})"
    if capability is None and spec is not None and spec.compute_capability:
        capability = spec.compute_capability
        filled.append(f"compute_capability {capability}")
        capability_source = f"the GPU table's SM {capability} for {spec.name}"
    return TargetHardware("gpu", total, capability, source, tuple(filled),
                          spec.name if spec else hardware.gpu, hardware.count, nvml,
                          capability_source)


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

def installed_vllm() -> str | None:
    """The version of the vLLM distribution installed beside stackdecide, if any."""
    def version_of(name: str) -> str | None:
        try:
            return metadata.version(name)
        except metadata.PackageNotFoundError:
            return None
    return vllm_version(version_of)


def vllm_rules_version(pin: str | None) -> backends.RulesVersion:
    """The vLLM release the backend and KV-cache rules are applied for: the candidate's
    ``stack.vllm`` pin, else the installed vLLM, else the newest release the rules read."""
    return backends.rules_version(pin, installed_vllm())


def _cite(source: str, releases: str, version: backends.RulesVersion) -> str:
    return f"(vLLM {releases}: {source}; release from {version.said_by})"


def _checkpoint_kv(engine: Mapping[str, Any], model: ModelFacts,
                   version: backends.RulesVersion) -> backends.CheckpointKv | None:
    """How vLLM quantizes the checkpoint's KV cache; None when its quantization_config or the
    release is not known."""
    if model.quantization_unknown or version.version is None:
        return None
    return backends.checkpoint_kv(model.quantization_config, engine.get("quantization"),
                                  version.version)


def check_fp8_kv_with_fp8_checkpoint(engine: Mapping[str, Any], model: ModelFacts,
                                     version: backends.RulesVersion | None = None) -> list[Problem]:
    """vLLM refuses an fp8_e5m2 KV cache when the checkpoint's quantization gives its attention
    layers a KV-cache method (``facts.backends.checkpoint_kv``); a checkpoint whose
    quantization_config is not known gets a warning saying what to give."""
    if str(engine_kv_cache_dtype(engine)).lower() != "fp8_e5m2":
        return []
    version = version or vllm_rules_version(None)
    field = f"engine.{engine_key(engine, 'kv_cache_dtype')}"
    if model.quantization_unknown:
        # most FP8 checkpoints are refused: a warning; other formats rarely are: a note
        return [Problem(
            "fp8-e5m2-checkpoint-unchecked" if model.fp8_checkpoint else "check-skipped",
            "could not check whether the checkpoint refuses an fp8_e5m2 KV cache (vLLM does "
            "with quant_method fp8, quark, modelopt with a KV-cache algorithm, compressed-tensors "
            f"with a kv_cache_scheme): {model.quantization_unknown}", field,
            "warning" if model.fp8_checkpoint else "info")]
    checkpoint = _checkpoint_kv(engine, model, version)
    if checkpoint is None or not checkpoint.refuses_e5m2 or not version.covered:
        return []
    return [Problem(
        "fp8-e5m2-with-fp8-checkpoint",
        f"vLLM refuses an fp8_e5m2 KV cache with an FP8 checkpoint ({checkpoint.reason}): "
        "\"fp8_e5m2 kv-cache is not supported with fp8 checkpoints\"; use fp8 (e4m3) or auto "
        + _cite(checkpoint.source, checkpoint.releases, version), field)]


def fp8_kv_unsupported(backend: str, kv_dtype: str, capability: tuple[int, int] | None,
                       backend_dtypes: tuple[str, ...] | None = None,
                       version: Version | None = None) -> str | None:
    """Why ``backend`` cannot hold a KV cache of ``kv_dtype`` on ``capability``, or None.

    ``backend_dtypes`` is the backend's ``supported_kv_cache_dtypes`` read from the installed vLLM
    when its kernels could be imported; it wins. Otherwise the rules of ``facts.backends`` for
    vLLM ``version`` (default: the newest release they read): FlashAttention's FP8 KV cache needs
    FA3 on SM 9.x (FA4 on SM 10.x too from 0.27) and is never e5m2.
    """
    if backend_dtypes is not None and kv_dtype not in backend_dtypes:
        return f"{backend} supports KV-cache dtypes {', '.join(backend_dtypes)}"
    rules = backends.backend_rules(backend, version or Version(backends.NEWEST_READ))
    return None if rules is None else backends.fp8_kv_refusal(rules, kv_dtype, capability)


def check_fp8_kv_backend(engine: Mapping[str, Any], env: Mapping[str, str],
                         target: TargetHardware | None,
                         backend_dtypes: Mapping[str, tuple[str, ...]] | None = None,
                         model: ModelFacts | None = None,
                         version: backends.RulesVersion | None = None) -> list[Problem]:
    """The KV cache the candidate runs (``auto`` as the checkpoint declares it) against the
    attention backend it names, on its GPU. vLLM ignores the backend on a CPU."""
    named = attention_backend_named(engine, env)
    if named is None or (target is not None and target.device == "cpu"):
        return []
    version = version or vllm_rules_version(None)
    written = engine_kv_cache_dtype(engine)
    checkpoint = _checkpoint_kv(engine, model, version) if model is not None else None
    kv_dtype = backends.effective_kv_cache_dtype(written, checkpoint)
    if not is_fp8(kv_dtype) or version.version is None:
        return []
    backend = named[0]
    capability = _capability(target.compute_capability) if target else None
    dtypes = backend_dtypes.get(backend) if backend_dtypes else None
    reason = fp8_kv_unsupported(backend, kv_dtype, capability, dtypes, version.version)
    if reason is None:
        return []
    where = f" (SM from {target.capability_from})" if target and "SM " in reason else ""
    rules = backends.backend_rules(backend, version.version)
    kv_span = backends.span_of(rules, "fp8_kv", "fp8_kv_capabilities") if rules is not None else ""
    cite = f" {_cite(rules.source + '.supports_kv_cache_dtype', kv_span, version)}" \
        if rules is not None and dtypes is None else ""
    declared = f" (auto: the checkpoint's {checkpoint.reason})" \
        if kv_dtype != written and checkpoint is not None else ""
    return [Problem("fp8-kv-unsupported-backend",
                    f"kv_cache_dtype {kv_dtype}{declared} with attention backend {backend}: "
                    f"{reason}{where}{cite}", f"engine.{engine_key(engine, 'kv_cache_dtype')}")]


def check_attention_backend(engine: Mapping[str, Any], env: Mapping[str, str], model: ModelFacts,
                            target: TargetHardware | None,
                            version: backends.RulesVersion | None = None) -> list[Problem]:
    """The attention backend the candidate names against the GPU's compute capability and the
    model's attention (MLA or not, head size, sliding window), as vLLM validates it before it
    starts (``facts.backends``); with no backend named, a KV cache no backend vLLM could pick
    takes. What the rules do not know is an info problem, never a silent pass. The FP8 KV-cache
    dtype of the backend named is ``check_fp8_kv_backend``'s."""
    if not engine or (target is not None and target.device == "cpu"):
        return []  # vLLM ignores the backend on a CPU (vllm/platforms/cpu.py)
    version = version or vllm_rules_version(None)
    named = attention_backend_named(engine, env)
    shape = model.shape
    needs = backends.attention_needs(text_config(shape.config), shape.head_dim,
                                     bool(shape.sliding_window and shape.sliding_layers), env) \
        if shape is not None else None
    capability = _capability(target.compute_capability) if target else None
    if named is None:
        return _check_picked_backend(engine, model, needs, version)
    backend, field = named
    checkpoint = _checkpoint_kv(engine, model, version)
    kv_dtype = backends.effective_kv_cache_dtype(engine_kv_cache_dtype(engine), checkpoint)
    verdict = backends.check_backend(backend, needs, kv_dtype, capability, version)
    problems = [Problem("attention-backend-unsupported",
                        f"attention backend {backend}: {refusal.reason}"
                        + (f" (SM from {target.capability_from})" if target and refusal.about == "capability"
                           else "") + f" {_cite(refusal.source, refusal.releases, version)}",
                        field)
                for refusal in verdict.refusals if refusal.about != "kv_cache_dtype"]
    unchecked = list(verdict.unchecked)
    if needs is None:
        unchecked.append(f"the model's attention is not known ({model.missing or 'no model shape'})")
    problems += [Problem("check-skipped", f"could not check attention backend {backend}: {why}",
                         field, "info") for why in unchecked]
    rules = backends.backend_rules(backend, version.version) if version.covered and \
        version.version is not None else None
    gpu_bound = rules is not None and (rules.capabilities != backends.ANY_GPU or (
        is_fp8(kv_dtype) and rules.fp8_kv_capabilities is not None))
    if capability is None and gpu_bound:
        what = "its FP8 KV cache and the GPUs it runs on" if is_fp8(kv_dtype) else "the GPUs it runs on"
        problems.append(Problem(
            "check-skipped", f"skipped the check of attention backend {backend} against the GPU "
            f"({what}): the GPU's compute capability is unknown; give "
            "decision.hardware.compute_capability", "decision.hardware", "info"))
    return problems


def _check_picked_backend(engine: Mapping[str, Any], model: ModelFacts,
                          needs: backends.AttentionNeeds | None,
                          version: backends.RulesVersion) -> list[Problem]:
    """With no backend named vLLM picks one that takes the configuration, and refuses to start
    when none does (vllm/platforms/cuda.py CudaPlatform.get_attn_backend_cls: "No valid attention
    backend found"): an MLA model's FP8 KV cache of a dtype no MLA backend takes."""
    if needs is None or needs.unknown or not needs.mla or not version.covered:
        return []
    assert version.version is not None
    checkpoint = _checkpoint_kv(engine, model, version)
    kv_dtype = str(backends.effective_kv_cache_dtype(engine_kv_cache_dtype(engine), checkpoint))
    if kv_dtype.lower() not in backends.FP8_KV_DTYPES:
        return []
    mla_backends = [rules for name in backends.BACKENDS
                    if (rules := backends.backend_rules(name, version.version)) is not None
                    and rules.mla]
    if any(kv_dtype.lower() in rules.fp8_kv for rules in mla_backends):
        return []
    takes = "; ".join(f"{rules.name}: {', '.join(rules.fp8_kv) or 'none'}" for rules in mla_backends)
    return [Problem("no-attention-backend",
                    f"no MLA attention backend of vLLM takes a {kv_dtype} KV cache (FP8 ones: "
                    f"{takes}), so vLLM finds no valid attention backend for this MLA model "
                    + _cite("vllm/platforms/cuda.py CudaPlatform.get_valid_backends",
                            backends.COVERED_LABEL, version),
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


def vllm_defaults_release(pin: str | None = None) -> VllmRelease:
    """The vLLM whose defaults a candidate gets (``facts.vllm_defaults.vllm_release``): its exact
    ``stack.vllm`` pin, else the vLLM installed beside stackdecide, else the newest release read."""
    return vllm_defaults.vllm_release(pin, installed_vllm())


@dataclass(frozen=True)
class EngineDefaults:
    """What vLLM runs a configuration with where its engine keys leave them out, and which rule
    gave each (``facts.vllm_defaults``): the budget uses them, the capacity plan prints them."""

    scheduler: vllm_defaults.SchedulerLimits
    utilization: vllm_defaults.Utilization
    release: VllmRelease

    @property
    def assumed(self) -> bool:
        """Whether any of the three came from vLLM rather than the engine config."""
        return not (self.scheduler.batched_set and self.scheduler.seqs_set
                    and self.utilization.said_by == "set")

    def describe(self) -> str:
        """Each value, whether the engine config set it, and the rules that gave the others."""
        scheduler, utilization = self.scheduler, self.utilization

        def given(value: bool) -> str:
            return "set" if value else "vLLM's default"
        values = (f"max_num_batched_tokens {scheduler.max_num_batched_tokens} "
                  f"({given(scheduler.batched_set)}), max_num_seqs {scheduler.max_num_seqs} "
                  f"({given(scheduler.seqs_set)}), gpu_memory_utilization {utilization.value:g} "
                  f"({given(utilization.said_by == 'set')})")
        rules = [scheduler.rule] if scheduler.rule else []
        if utilization.said_by != "set":
            rules.append(f"gpu_memory_utilization: {utilization.said_by}")
        if rules:
            rules.append(f"release from {self.release.said_by}")
        return values + (": " + "; ".join(rules) if rules else "")


def _switched_off(value: Any) -> bool:
    return str(value).strip().lower() in ("false", "0", "no")


def engine_defaults(engine: Mapping[str, Any], model: ModelFacts, target: TargetHardware,
                    release: VllmRelease | None = None) -> EngineDefaults:
    """``max_num_batched_tokens``, ``max_num_seqs`` and ``gpu_memory_utilization`` as vLLM
    ``release`` (default: ``vllm_defaults_release()``) sets them for this configuration on
    ``target``: the batch defaults by the GPU's NVML total and name, adjusted by the keys that
    move them (``enable_chunked_prefill``, ``performance_mode``, batched data-parallel MoE)."""
    release = release or vllm_defaults_release()
    layout = layout_of(engine)
    length = parse_token_count(engine_value(engine, "max_model_len")) or \
        (model.shape.max_position_embeddings if model.shape is not None else None)
    batch = vllm_defaults.batch_defaults(
        release, target.device, target.nvml_bytes or target.total_bytes, target.name,
        target.compute_capability, layout.tp * layout.pp)
    all2all = str(engine_value(engine, "all2all_backend") or "").lower()
    scheduler = vllm_defaults.scheduler_limits(
        release, batch, length, parse_token_count(engine_value(engine, "max_num_batched_tokens")),
        parse_token_count(engine_value(engine, "max_num_seqs")),
        chunked_prefill=not _switched_off(engine_value(engine, "enable_chunked_prefill")),
        throughput_mode=str(engine_value(engine, "performance_mode")).lower() == "throughput",
        batched_dp_moe=all2all in vllm_defaults.BATCHED_DP_ALL2ALL and layout.expert_parallel
        and layout.dp > 1)
    configured = engine_value(engine, "gpu_memory_utilization")
    if not isinstance(configured, int | float) or isinstance(configured, bool):
        configured = None
    return EngineDefaults(scheduler, vllm_defaults.memory_utilization(release, configured),
                          release)


def kv_budget(engine: Mapping[str, Any], env: Mapping[str, str], model: ModelFacts,
              target: TargetHardware, release: VllmRelease | None = None
              ) -> memory.KvBudget | None:
    """What the configuration leaves for the KV cache on ``target``; None when it can't be told.
    Keys the engine leaves out take vLLM ``release``'s defaults (``engine_defaults``)."""
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
    defaults = engine_defaults(engine, model, target, release)
    return memory.KvBudget(
        target.total_bytes, float(defaults.utilization.value),
        gpu_weight_bytes(engine, model, dtype),
        memory.activation_peak_bytes(model.shape, defaults.scheduler.max_num_batched_tokens,
                                     defaults.scheduler.max_num_seqs, dtype),
        memory.NON_TORCH_BYTES)


def in_flight_tokens(engine: Mapping[str, Any], model: ModelFacts, target: TargetHardware,
                     release: VllmRelease | None = None) -> int:
    """Tokens of the scheduler's steps in flight under this engine config, which sliding-window
    layers hold besides their window (``facts.memory.in_flight_tokens``): its
    ``max_num_batched_tokens`` (else vLLM's default, ``engine_defaults``) over its pipeline
    stages, async scheduling unless ``async_scheduling`` is false."""
    batched = engine_defaults(engine, model, target, release).scheduler.max_num_batched_tokens
    synchronous = _switched_off(engine_value(engine, "async_scheduling"))
    return memory.in_flight_tokens(batched, layout_of(engine).pp, not synchronous)


def _shape_notes(model: ModelFacts) -> list[Problem]:
    """What the memory checks say of the shape itself: the defaults it took for keys its
    config.json leaves out (info), and layers whose memory it cannot size (a warning: the
    checks that need it do not run)."""
    shape = model.shape
    assert shape is not None
    notes = []
    if shape.defaults:
        notes.append(Problem("config-defaults", f"{shape.name}: {shape.defaults}", "model", "info"))
    if shape.unsized_layer_types:
        notes.append(Problem(
            "kv-cache-unsized",
            f"could not check the KV cache: {shape.name} has layers of kind "
            f"{', '.join(shape.unsized_layer_types)}, which stackdecide cannot size (it sizes "
            "full_attention, sliding_attention, multi-latent attention and linear_attention with "
            "its linear_* sizes, as vLLM 0.32 does); the memory checks of this candidate are "
            "skipped", "model", "warning"))
    return notes


def _layer_note(shape: ModelShape, in_flight: int, state_share: float, model_dtype: str) -> str:
    """How the layers other than full attention count in one sequence, for a message."""
    parts = []
    if shape.sliding_layers and shape.sliding_window:
        parts.append(f"its {shape.sliding_layers} sliding-window layers hold at most "
                     f"{shape.sliding_window - 1 + in_flight:,} tokens (the window and the "
                     f"{in_flight:,} tokens of the steps in flight)")
    if shape.linear_layers:
        state = memory.state_bytes_per_sequence(shape, model_dtype) * state_share
        parts.append(f"its {shape.linear_layers} linear-attention layers a fixed state of "
                     f"{gib(state)}")
    return "; " + " and ".join(parts) if parts else ""


def check_kv_fits(engine: Mapping[str, Any], env: Mapping[str, str], model: ModelFacts,
                  target: TargetHardware | None,
                  release: VllmRelease | None = None) -> list[Problem]:
    """The weights must leave memory for the KV cache, and that must hold one request of
    ``max_model_len`` tokens, each layer kind sized as vLLM sizes it (``facts.memory``): vLLM
    0.32 ``vllm/v1/core/kv_cache_utils.py`` ``_check_enough_kv_cache_memory`` stops with "No
    available memory for the cache blocks" (``weights-do-not-fit``) or "To serve at least one
    request with the model's max seq len ..." (``kv-cache-too-small``)."""
    if model.shape is None:
        return []
    shape = model.shape
    notes = _shape_notes(model)
    if target is None or shape.unsized_layer_types:
        return notes
    length = parse_token_count(engine.get("max_model_len"))
    length_source = "max_model_len"
    if length is None:
        length, length_source = shape.max_position_embeddings, \
            "the model's max_position_embeddings (max_model_len unset)"
    budget = kv_budget(engine, env, model, target, release)
    if budget is None:
        return notes
    if budget.explicit_kv_bytes is None and budget.kv_bytes <= 0:
        return [*notes, _weights_do_not_fit(engine, env, model, target, release, budget, length)]
    kv_dtype, dtype, layout = engine_kv_cache_dtype(engine), engine_dtype(engine), layout_of(engine)
    in_flight = in_flight_tokens(engine, model, target, release)
    fit = memory.capacity(shape, budget, length, kv_dtype, dtype, layout=layout,
                          in_flight_tokens=in_flight)
    if fit.fits_one:
        return notes
    longest = memory.longest_sequence(shape, budget, length, kv_dtype, dtype, layout=layout,
                                      in_flight_tokens=in_flight)
    note = _layer_note(shape, in_flight, parallel.state_share(shape, layout), dtype)
    return [*notes, Problem(
        "kv-cache-too-small",
        f"{length_source} {length} needs {gib(fit.bytes_per_sequence)} of KV cache for one sequence "
        f"({kv_dtype}: {fit.kv_bytes_per_token:,.0f} bytes/token for {shape.name}{note}), but "
        f"{budget.describe()} (memory from {target.source}; weights and activations estimated "
        f"from the shape); about {longest} tokens fit", "engine.max_model_len")]


def _weights_do_not_fit(engine: Mapping[str, Any], env: Mapping[str, str], model: ModelFacts,
                        target: TargetHardware, release: VllmRelease | None,
                        budget: memory.KvBudget, length: int) -> Problem:
    """The weights leave no memory for the KV cache: no max_model_len helps; say what would."""
    assert model.shape is not None
    layout = layout_of(engine)
    usable = budget.budget_bytes - budget.activation_bytes - budget.non_torch_bytes
    stops = "loading them runs out of GPU memory" if budget.weight_bytes > budget.total_bytes \
        else "vLLM stops with \"No available memory for the cache blocks\""
    return Problem(
        "weights-do-not-fit",
        f"the weights take {gib(budget.weight_bytes)} per GPU ({layout.label}, {model_label(model)})"
        f" of {gib(usable)} usable ({gib(budget.total_bytes)} x {budget.utilization:g}, minus an "
        f"activation peak of ~{gib(budget.activation_bytes)} and ~{gib(budget.non_torch_bytes)} "
        f"outside PyTorch; memory from {target.source}): nothing is left for the KV cache and "
        f"{stops}, whatever max_model_len is; "
        + _what_would_fit(engine, env, model, target, release, length),
        f"engine.{engine_key(engine, 'tensor_parallel_size')}")


def _what_would_fit(engine: Mapping[str, Any], env: Mapping[str, str], model: ModelFacts,
                    target: TargetHardware, release: VllmRelease | None, length: int) -> str:
    """What each of the smallest tensor-parallel size that holds one request of ``length``
    tokens (up to 8 GPUs a replica) and FP8 weights would leave for the KV cache."""
    assert model.shape is not None
    shape, layout = model.shape, layout_of(engine)

    def left(trial_engine: Mapping[str, Any], trial_model: ModelFacts) -> tuple[float, int] | None:
        """KV-cache bytes per GPU and the longest request they hold; None when none is left."""
        trial = kv_budget(trial_engine, env, trial_model, target, release)
        if trial is None or trial.kv_bytes <= 0:
            return None
        return trial.kv_bytes, memory.longest_sequence(
            shape, trial, length, engine_kv_cache_dtype(engine), engine_dtype(engine),
            layout=layout_of(trial_engine),
            in_flight_tokens=in_flight_tokens(trial_engine, trial_model, target, release))

    options = []
    tp = layout.tp * 2
    while tp * layout.pp <= 8:
        wider = {**engine, engine_key(engine, "tensor_parallel_size"): tp}
        room = None if parallel.layout_problems(shape, layout_of(wider)) else left(wider, model)
        if room is not None and room[1] >= length:
            gpus = layout_of(wider).gpus
            have = f"; the hardware has {target.count}" if target.count and target.count < gpus else ""
            options.append(f"tensor_parallel_size {tp} ({gpus} GPUs{have}) would leave "
                           f"{gib(room[0])} per GPU for the KV cache")
            break
        tp *= 2
    if model.weights_or_default in ("bf16", "fp16"):
        room = left(engine, replace(model, weights="fp8"))
        if room is not None:
            options.append(f"FP8 weights (an FP8 checkpoint, or quantization: fp8) would leave "
                           f"{gib(room[0])} for the KV cache" + (
                               "" if room[1] >= length else
                               f", about {room[1]:,} tokens: max_model_len {length} would not fit"))
    if not options:
        return "neither more tensor parallelism (up to 8 GPUs a replica) nor FP8 weights leave " \
            f"room for one request of {length} tokens on this GPU"
    return "; ".join(options)


def gpu_weight_bytes(engine: Mapping[str, Any], model: ModelFacts, dtype: str = "auto") -> float:
    """Weights on the fullest GPU of the engine's parallel layout (one GPU: all of them)."""
    assert model.shape is not None
    parts = memory.weight_parts(model.shape, model.weights, dtype)
    return parallel.gpu_weight_bytes(parts, model.shape, layout_of(engine)).total


def gpu_kv_bytes_per_token(engine: Mapping[str, Any], model: ModelFacts) -> float:
    """KV-cache bytes per token on the fullest GPU, attention layers only: heads split by TP
    (replicated past num_kv_heads), layers split by PP."""
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
                       target: TargetHardware | None, release: VllmRelease | None = None
                       ) -> list[Problem]:
    """A ``max_num_seqs`` the KV cache cannot hold: a warning when not even that many sequences
    of one block each fit, an info when fewer than that many full-length sequences fit."""
    seqs = parse_token_count(engine.get("max_num_seqs"))
    if seqs is None or target is None or model.shape is None or model.shape.unsized_layer_types:
        return []  # check_kv_fits says why layers it cannot size are not checked
    budget = kv_budget(engine, env, model, target, release)
    if budget is None or budget.kv_bytes <= 0:
        return []  # check_kv_fits says that nothing fits
    length = parse_token_count(engine.get("max_model_len")) or \
        model.shape.max_position_embeddings
    fit = memory.capacity(model.shape, budget, length, engine_kv_cache_dtype(engine),
                          engine_dtype(engine), layout=layout_of(engine),
                          in_flight_tokens=in_flight_tokens(engine, model, target, release))
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


# -- hostile input: values that would be options, code the server would load, secrets -----------

# vLLM's parser (argparse) reads a word that starts with "-" as an option unless it looks like a
# negative number, and its FlexibleArgumentParser also reads a "-" word holding a "." as a dotted
# option (-O.mode 3, --compilation-config.mode 3): only negative whole numbers pass as values.
NEGATIVE_INTEGER = re.compile(r"-\d+")


def is_option_word(word: str) -> bool:
    """Whether vLLM's parser would read ``word`` as an option rather than as a value."""
    return word.startswith("-") and NEGATIVE_INTEGER.fullmatch(word) is None


def _dash_name(char: str) -> str | None:
    """How a character people paste in place of "-" is called (word processors turn "--" into a
    dash), or None for any other character."""
    name = unicodedata.name(char, "")
    if char != "-" and (unicodedata.category(char) == "Pd" or "MINUS" in name):
        return f"{name} (U+{ord(char):04X})"
    return None


def _shown(value: Any, secret: bool) -> str:
    """A value as a message quotes it: redacted when secret, shortened when long."""
    if secret:
        return REDACTED
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def value_problem(key: str, index: int | None, word: str, secret: bool = False) -> Problem | None:
    """What is wrong with ``word`` as a value of engine key ``key`` (item ``index`` of a list), or
    None: an error when vLLM would read it as an option, a warning when it only looks like one.
    Rendering (``vllm.render``) and the static checks both ask this, so both say the same."""
    field = f"engine.{key}" + ("" if index is None else f"[{index}]")
    shown = _shown(word, secret)
    if is_option_word(word):
        return Problem("value-is-an-option",
                       f"{shown} would reach vLLM as an option, not as a value: its parser reads "
                       "a word that starts with '-' as an option (one holding a '.' as a dotted "
                       "option), so only negative whole numbers such as -1 pass; give each option "
                       "as an engine key of its own", field)
    stripped = word.lstrip()
    dash = _dash_name(stripped[0]) if stripped else None
    if dash or (stripped.startswith("-") and stripped != word):
        return Problem("value-looks-like-an-option",
                       f"{shown} starts with {dash or 'spaces and a -'}, which vLLM reads as part "
                       "of a value, not as an option; if an option was meant, give it as an "
                       "engine key of its own", field, "warning")
    return None


def check_values(engine: Mapping[str, Any], marked: Collection[str] = ()) -> list[Problem]:
    """Each value of ``engine`` that vLLM would read as an option (an error) or that only looks
    like one (a warning): scalars and the items of lists, each of which becomes a word of its own
    in the command. A mapping becomes one JSON word and a boolean a flag: neither can carry one;
    a secret vLLM reads from its environment (``SECRET_VARIABLES``) never is a word."""
    problems = []
    for key, value in engine.items():
        if option_name(key) in SECRET_VARIABLES and is_secret_name(key, marked):
            continue
        items = list(enumerate(value)) if isinstance(value, list) else [(None, value)]
        for index, item in items:
            if isinstance(item, bool) or not isinstance(item, str | int | float):
                continue
            problem = value_problem(str(key), index, str(item), is_secret_name(key, marked))
            if problem is not None:
                problems.append(problem)
    return problems


@dataclass(frozen=True)
class CodeSource:
    """An engine key (``a.b``: field ``b`` of the JSON-valued key ``a``) or env var that makes the
    server load code, or serve files, from wherever its value points; ``inert``: values of vLLM's
    own that load nothing."""

    name: str
    loads: str
    inert: tuple[str, ...] = ()


# What the server loads because a decision file says so. A custom build may need any of them, so
# they are allowed, but never in silence: ``check`` and ``score`` warn, and ``launch`` refuses them
# unless ``--allow-code-loading`` or ``decision.allow_code_loading: true``. Read from vLLM 0.32's
# argument definitions and its users of import_module / resolve_obj_by_qualname; docs/launch.md
# lists them.
CODE_LOADING_KEYS: dict[str, CodeSource] = {source.name: source for source in (
    CodeSource("trust_remote_code", "Python code shipped with the model (the modeling files of "
               "its repository or folder)"),
    CodeSource("allowed_local_media_path", "files of this machine under that folder, to any "
               "client that asks for a file:// URL"),
    CodeSource("middleware", "Python objects imported by name into the API server"),
    CodeSource("tool_parser_plugin", "that Python file, run as a tool-call parser"),
    CodeSource("reasoning_parser_plugin", "that Python file, run as a reasoning parser"),
    CodeSource("logits_processors", "Python classes imported by name, run at every sampling step"),
    CodeSource("worker_cls", "a Python class imported by name in place of vLLM's worker",
               ("auto",)),
    CodeSource("worker_extension_cls", "a Python class imported by name into every worker"),
    CodeSource("scheduler_cls", "a Python class imported by name in place of vLLM's scheduler"),
    CodeSource("distributed_executor_backend", "a Python class imported by name as the executor",
               ("mp", "ray", "uni", "external_launcher")),
    CodeSource("model_class_overrides", "model classes imported by 'module:class'"),
    CodeSource("io_processor_plugin", "an input/output processor plugin of the installed "
               "packages"),
    CodeSource("log_config_file", "a logging configuration, which can import and run any "
               "Python class"),
    CodeSource("config", "vLLM arguments from that YAML file, which stackdecide neither sees nor "
               "checks"),
    CodeSource("compilation_config.backend", "a compiler backend imported by name",
               ("inductor", "eager")),
    CodeSource("kv_transfer_config.kv_connector_module_path", "that Python module, imported as "
               "the KV-cache connector"),
    CodeSource("ec_transfer_config.ec_connector_module_path", "that Python module, imported as "
               "the encoder-cache connector"),
)}
# The same for environment variables: the C library's and Python's own, compilers, and the caches
# compiled code is loaded from. Only the decision's ``env`` is checked: a variable set in the
# launcher's own environment is the operator's choice.
CODE_LOADING_VARIABLES: dict[str, CodeSource] = {source.name: source for source in (
    CodeSource("LD_PRELOAD", "shared libraries loaded into every process"),
    CodeSource("LD_AUDIT", "shared libraries loaded into every process to watch it"),
    CodeSource("LD_LIBRARY_PATH", "shared libraries from those folders first"),
    CodeSource("GCONV_PATH", "character-set modules of the C library from those folders"),
    CodeSource("PATH", "programs from those folders first"),
    CodeSource("CC", "that program, run to compile Triton's kernel launchers"),
    CodeSource("CXX", "that program, run to compile torch.compile's C++ kernels"),
    CodeSource("PYTHONPATH", "Python modules from those folders first"),
    CodeSource("PYTHONHOME", "the Python standard library from that folder"),
    CodeSource("PYTHONUSERBASE", "Python packages from that user site"),
    CodeSource("PYTHONSTARTUP", "that Python file, in every interactive interpreter it starts"),
    CodeSource("HF_MODULES_CACHE", "model code (trust_remote_code modules) imported from that "
               "folder"),
    CodeSource("TRITON_CACHE_DIR", "compiled Triton kernels from that folder"),
    CodeSource("TORCHINDUCTOR_CACHE_DIR", "torch.compile's compiled kernels from that folder"),
    CodeSource("TORCH_EXTENSIONS_DIR", "compiled PyTorch extensions from that folder"),
    CodeSource("VLLM_CACHE_ROOT", "vLLM's compiled graphs (torch_compile_cache) from that folder"),
    CodeSource("VLLM_LOGGING_CONFIG_PATH", "a logging configuration, which can import and run "
               "any Python class"),
    CodeSource("VLLM_ALLOW_INSECURE_SERIALIZATION", "pickled objects sent by clients, which run "
               "code as they are read", ("0", "false")),
    CodeSource("VLLM_SERVER_DEV_MODE", "development endpoints that let clients call into the "
               "engine's workers", ("0", "false")),
)}
# Their findings' codes: warnings in ``check`` and ``score``; ``launch`` makes them errors unless
# code loading is allowed (``launch.preflight.code_loading``).
CODE_LOADING_CODES = frozenset({"engine-loads-code", "env-changes-loaded-code"})
ALLOW_HINT = ("`launch` refuses it unless --allow-code-loading or decision.allow_code_loading: "
              "true; use it only with a decision file from someone you trust")


def _loads(value: Any, source: CodeSource) -> bool:
    """Whether ``value`` makes ``source`` load anything: not off, empty or one of vLLM's own."""
    if value is None or value is False or value in ("", [], {}):
        return False
    return not (isinstance(value, str) and value.strip().lower() in source.inert)


def _json_field(value: Any, field: str) -> Any:
    """Field ``field`` of a JSON-valued engine key, given as a mapping or as JSON text."""
    if isinstance(value, str):
        try:
            value = json.loads(value)
        except ValueError:
            return None
    return value.get(field) if isinstance(value, dict) else None


def check_code_loading(engine: Mapping[str, Any], env: Mapping[str, str],
                       marked: Collection[str] = ()) -> list[Problem]:
    """A warning for each engine key and env var of the candidate that makes the server load code
    (``CODE_LOADING_KEYS``, ``CODE_LOADING_VARIABLES``), naming what it would load."""
    problems = []
    for source in CODE_LOADING_KEYS.values():
        head, _, field = source.name.partition(".")
        key = engine_key(engine, head)
        value = _json_field(engine.get(key), field) if field else engine.get(key)
        if _loads(value, source):
            shown = _shown(value, is_secret_name(key, marked))
            problems.append(Problem("engine-loads-code", f"{source.name}: {shown} makes the server "
                                    f"load {source.loads}; {ALLOW_HINT}", f"engine.{key}",
                                    "warning"))
    return problems + check_env(env, marked)


# Variables that move where the server connects: the Hugging Face hub client sends the user's
# token (from the launcher's environment or its token file) with every hub request, unasked.
CREDENTIAL_ROUTES = {
    **dict.fromkeys(("HF_ENDPOINT", "HF_HUB_ENDPOINT"), "hub requests, with your Hugging Face "
                    "token, go to that server"),
    **dict.fromkeys(("HTTP_PROXY", "HTTPS_PROXY", "ALL_PROXY", "http_proxy", "https_proxy",
                     "all_proxy"), "the server's requests, your Hugging Face token included, go "
                    "through that proxy"),
    **dict.fromkeys(("REQUESTS_CA_BUNDLE", "CURL_CA_BUNDLE", "SSL_CERT_FILE", "SSL_CERT_DIR"),
                    "the certificates it trusts are that file's: whoever holds their keys can read "
                    "its requests, your Hugging Face token included"),
}


def check_env(env: Mapping[str, str], marked: Collection[str] = ()) -> list[Problem]:
    """A warning for each variable of the candidate's ``env`` that changes which code runs, and
    for each that moves where its requests, and the user's hub token, go (``CREDENTIAL_ROUTES``)."""
    loads = [Problem("env-changes-loaded-code",
                     f"{name}={_shown(value, is_secret_name(name, marked))} changes which code the "
                     f"server loads: {CODE_LOADING_VARIABLES[name].loads}; {ALLOW_HINT}",
                     f"env.{name}", "warning")
             for name, value in env.items()
             if name in CODE_LOADING_VARIABLES and _loads(value, CODE_LOADING_VARIABLES[name])]
    routes = [Problem("env-routes-credentials",
                      f"{name}={_shown(value, is_secret_name(name, marked))}: {CREDENTIAL_ROUTES[name]}"
                      "; launch it only with a decision file from someone you trust",
                      f"env.{name}", "warning")
              for name, value in env.items() if name in CREDENTIAL_ROUTES and str(value).strip()]
    return loads + routes


# How outputs show a secret's value.
REDACTED = "***"
# Engine keys vLLM also reads from an environment variable (vllm/envs.py VLLM_API_KEY; the
# Hugging Face hub's HF_TOKEN when hf_token is unset): a secret is passed there, never in the
# command, which every user of the machine can read (ps, /proc/PID/cmdline).
SECRET_VARIABLES = {"api_key": "VLLM_API_KEY", "hf_token": "HF_TOKEN"}
API_KEY_VARIABLE = SECRET_VARIABLES["api_key"]


def auth_header(api_key: str | None) -> dict[str, str]:
    """What a request to a server with ``api_key`` carries: vLLM refuses /v1 requests without
    it once it has a key."""
    return {"Authorization": f"Bearer {api_key}"} if api_key else {}
# A name is a secret's when one of its words is one of these, when it ends in "token" (hf_token,
# GITHUB_TOKEN; not max_num_batched_tokens), or in "api key", "access key", "private key".
_SECRET_WORDS = frozenset({"secret", "secrets", "password", "passwd", "passphrase", "credential",
                           "credentials", "apikey"})
_SECRET_ENDINGS = frozenset({("api", "key"), ("access", "key"), ("private", "key")})
# Secrets shorter than this are redacted where they stand as values, but not looked for in free
# text (log lines, messages), where a short one would blank out ordinary words.
MIN_SCRUBBED = 4


def _name_words(name: object) -> tuple[str, ...]:
    return tuple(word for word in re.split(r"[^a-z0-9]+", str(name).lower()) if word)


def is_secret_name(name: object, marked: Collection[str] = ()) -> bool:
    """Whether an engine key or env var holds a secret: named like one (``api_key``, ``hf_token``,
    ``HF_TOKEN``, ``*_SECRET*``, ``*_PASSWORD``, ...), or named in ``marked`` (the decision's
    ``secrets``; case, ``-`` and ``_`` aside)."""
    words = _name_words(name)
    if not words:
        return False
    if any(_name_words(other) == words for other in marked):
        return True
    return bool(_SECRET_WORDS.intersection(words)) or words[-1] == "token" or \
        words[-2:] in _SECRET_ENDINGS


def _holds_secret(value: Any) -> bool:
    return value is not None and not isinstance(value, bool) and value not in ("", [], {})


def redact(value: Any) -> Any:
    """A secret's value as every output shows it: each text or number ``***``, the shape (a list,
    a mapping) and booleans kept (``hf_token: true`` names no secret)."""
    if isinstance(value, list):
        return [redact(item) for item in value]
    if isinstance(value, dict):
        return {key: redact(item) for key, item in value.items()}
    return REDACTED if _holds_secret(value) else value


def redacted_engine(engine: Mapping[str, Any], marked: Collection[str] = ()) -> dict[str, Any]:
    """``engine`` with the value of every secret key redacted, inside JSON-valued keys too."""
    def walk(value: Any) -> Any:
        if isinstance(value, dict):
            return {key: redact(item) if is_secret_name(key, marked) else walk(item)
                    for key, item in value.items()}
        return [walk(item) for item in value] if isinstance(value, list) else value
    return walk(dict(engine))


def redacted_env(env: Mapping[str, str], marked: Collection[str] = ()) -> dict[str, str]:
    """``env`` with the value of every secret variable redacted."""
    return {name: REDACTED if value and is_secret_name(name, marked) else value
            for name, value in env.items()}


def secret_values(engine: Mapping[str, Any], env: Mapping[str, str],
                  marked: Collection[str] = ()) -> tuple[str, ...]:
    """Every secret value of a candidate, as text, longest first: what ``redact_text`` blanks out
    of free text."""
    found: set[str] = set()

    def collect(value: Any, secret: bool) -> None:
        if isinstance(value, dict):
            for key, item in value.items():
                collect(item, secret or is_secret_name(key, marked))
        elif isinstance(value, list):
            for item in value:
                collect(item, secret)
        elif secret and _holds_secret(value):
            found.add(str(value))
    collect(dict(engine), False)
    collect(dict(env), False)
    return tuple(sorted(found, key=lambda text: (-len(text), text)))


def redact_text(text: str, values: Collection[str]) -> str:
    """``text`` with every secret of ``values`` (``secret_values``) of at least ``MIN_SCRUBBED``
    characters replaced by ``***``."""
    for value in sorted(values, key=len, reverse=True):
        if len(value) >= MIN_SCRUBBED:
            text = text.replace(value, REDACTED)
    return text


def secret_problems(key: str, value: Any, env: Mapping[str, str],
                    marked: Collection[str] = ()) -> list[Problem]:
    """What keeps engine key ``key`` from reaching vLLM without its secret in the command: a
    secret with no environment variable vLLM reads it from, several API keys (``VLLM_API_KEY``
    holds one), one that ``env`` sets otherwise, a secret inside a JSON-valued key."""
    field = f"engine.{key}"
    option = option_name(key)
    if not is_secret_name(key, marked):
        inside = _secret_inside(value, marked)
        return [Problem("secret-on-command-line", f"{inside} inside it would reach vLLM in its "
                        "command, which every user of this machine can read; pass it in the "
                        "candidate's env instead, if vLLM reads it from there", field)] \
            if inside else []
    if not _holds_secret(value):
        return []
    variable = SECRET_VARIABLES.get(option)
    if option in ("model", "served_model_name"):
        return [Problem("secret-on-command-line", "marked a secret, but it cannot be one: vLLM "
                        "takes it only in its command, and the name the server is served as "
                        "(served_model_name, else model) is sent in every request and recorded in "
                        "every run file; take it off decision.secrets", field)]
    if variable is None:
        return [Problem("secret-on-command-line", "a secret: vLLM would only get it in its "
                        "command, which every user of this machine can read; stackdecide passes "
                        "secrets in the environment only (api_key as VLLM_API_KEY, hf_token as "
                        "HF_TOKEN): set the variable vLLM reads it from in the candidate's env",
                        field)]
    items = value if isinstance(value, list) else [value]
    if len(items) != 1 or not isinstance(items[0], str | int | float):
        return [Problem("secret-not-one-value", f"give one: vLLM reads one from {variable}, "
                        "which stackdecide passes it in", field)]
    if env.get(variable, str(items[0])) != str(items[0]):
        return [Problem("secret-conflict", f"the candidate's env sets {variable} otherwise; keep "
                        "one of them", field)]
    return []


def _secret_inside(value: Any, marked: Collection[str]) -> str | None:
    """The first field named like a secret that holds one, inside a mapping value."""
    if isinstance(value, dict):
        for key, item in value.items():
            if is_secret_name(key, marked) and _holds_secret(item):
                return f"'{key}'"
            inner = _secret_inside(item, marked)
            if inner:
                return inner
    if isinstance(value, list):
        return next((inner for item in value if (inner := _secret_inside(item, marked))), None)
    return None


# Codes of problems that rendering (``vllm.render``) and these static checks both find, from the
# same functions: a view that shows both says each once.
SHARED_CODES = frozenset({"value-is-an-option", "secret-on-command-line", "secret-conflict",
                          "secret-not-one-value"})


def check_secrets(engine: Mapping[str, Any], env: Mapping[str, str],
                  marked: Collection[str] = ()) -> list[Problem]:
    """``secret_problems`` of every engine key."""
    return [problem for key, value in engine.items()
            for problem in secret_problems(str(key), value, env, marked)]


def canonical_engine(engine: Mapping[str, Any]) -> dict[str, Any]:
    """``engine`` with each key spelled as vLLM's option (``max-model-len`` -> ``max_model_len``),
    as rendering reads it, so that every check reads what the command says (the loader refuses
    one option written twice)."""
    return {option_name(key): value for key, value in engine.items()}


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
    elif target.device == "cpu" and kv_budget(engine, env, model, target) is None:
        skipped.append(("KV-cache checks", "vLLM sizes the CPU KV cache from free memory; set "
                        "VLLM_CPU_KVCACHE_SPACE (GiB) in the candidate's env", "env"))
    return [Problem("check-skipped", f"skipped {what}: {why}", field, "info")
            for what, why, field in skipped]


def static_problems(engine: Mapping[str, Any], env: Mapping[str, str], model: ModelFacts,
                    target: TargetHardware | None,
                    backend_dtypes: Mapping[str, tuple[str, ...]] | None = None,
                    release: VllmRelease | None = None,
                    vllm_pin: str | None = None,
                    secrets: Collection[str] = ()) -> list[Problem]:
    """Checks that need only the decision file; ``backend_dtypes`` (each attention backend's
    supported KV-cache dtypes) comes from the installed vLLM when there is one, ``vllm_pin`` (the
    candidate's ``stack.vllm``) says which release's backend rules apply, and ``release`` whose
    defaults fill the engine keys left out (default: ``vllm_defaults_release(vllm_pin)``; a
    launch passes the vLLM that will run it); ``secrets``: the decision's names of secrets besides
    those named like one. Keys are read as vLLM's options (``canonical_engine``), so each check
    reads what the command says. Checks that cannot run are info problems (``skipped_checks``)."""
    engine = canonical_engine(engine)
    installed = installed_vllm()  # asked once: both versioned tables read it
    rules = backends.rules_version(vllm_pin, installed)
    release = release or vllm_defaults.vllm_release(vllm_pin, installed)
    return [*check_values(engine, secrets),
            *check_secrets(engine, env, secrets),
            *check_code_loading(engine, env, secrets),
            *check_parallel(engine, model, target),
            *check_fp8_kv_with_fp8_checkpoint(engine, model, rules),
            *check_fp8_kv_backend(engine, env, target, backend_dtypes, model, rules),
            *check_attention_backend(engine, env, model, target, rules),
            *check_max_model_len(engine, env, model),
            *check_kv_fits(engine, env, model, target, release),
            *check_max_num_seqs(engine, env, model, target, release),
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
    ``hardware`` block only, or a space's configuration against its own hardware (what
    ``stackdecide check`` can report without a GPU or vLLM)."""
    candidate = decision.candidate(candidate_id)
    facts = candidate_model(decision, candidate_id)
    return static_problems(candidate.engine, candidate.env, facts,
                           file_hardware(candidate_hardware(decision.model, candidate_id)),
                           vllm_pin=candidate.stack.vllm, secrets=decision.model.decision.secrets)


ITEM = re.compile(r"(?P<key>.+)\[(?P<index>\d+)\]")


def problem_location(decision: DecisionMatrix, index: int, problem: Problem) -> str | None:
    """``file:line:col field`` of a problem about candidate ``index``'s ``engine`` or ``env`` key
    (``engine.key[2]``: an item of its list), the key spelled as the file spells it; the problem's
    own field (``--port``, ``decision.model.shape``) for anything else."""
    section, _, key = (problem.field or "").partition(".")
    if section not in ("engine", "env") or not key:
        return problem.field
    item = ITEM.fullmatch(key)
    path: tuple[str | int, ...] = (item["key"], int(item["index"])) if item else (key,)
    if section == "engine":
        path = (engine_key(decision.candidates[index].engine, option_name(path[0])), *path[1:])
    return decision.locate(("candidates", index, section, *path))


def check_launchability(decision: DecisionMatrix) -> list[Finding]:
    """Each candidate whose engine configuration cannot start as written, and each check that
    could not run (info; said once for the decision when every candidate shares the reason).
    Scoring runs it once, before ranking: an error here makes the candidate infeasible."""
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
