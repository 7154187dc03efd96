"""What a launch ran, as prediction sees it: the axes configurations share, and the roofline setup.

A configuration is read from a decision's candidate (its model, engine config, env and pins) on
one GPU model. Its **levels** name it on each axis evidence is pooled over:

* ``gpu``: the GPU table's name (``facts.gpus``), else the name as given;
* ``model``: the model's geometry (architecture and parameters), the same for a checkpoint in
  BF16 and FP8;
* ``weights``: the checkpoint format (``audit.models``); ``kv_cache_dtype``; ``attention_backend``
  (``engine.attention_backend`` or ``VLLM_ATTENTION_BACKEND``; ``auto`` when vLLM chooses);
* ``layout``: tensor x pipeline x data parallel (``model.stack.layout_of``);
* ``vllm``: the version that ran (a record's), or the candidate's pin;
* ``config``: all of these with the engine config and env as written: the configuration itself,
  where whatever no other axis names (interactions, scheduler keys) shows;
* ``axis:KEY``, for a configuration of the decision's ``space:``: its value of each axis of the
  space that varies (``axis:engine.max_num_seqs`` = ``16``), but those another level names
  already (``NAMED_ELSEWHERE``: the GPU, vLLM, model and weights, attention backend, KV-cache
  dtype, parallel layout). A space asks which setting of its knobs is best, so each knob
  is a level evidence is pooled over: a launch at ``max_num_seqs`` 16 says something of every
  configuration with 16.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from stackdecide.audit.capacity import capacity_of
from stackdecide.audit.engine_config import (
    TargetHardware,
    engine_defaults,
    file_hardware,
    vllm_defaults_release,
)
from stackdecide.audit.models import ModelFacts, candidate_model
from stackdecide.facts.dtypes import UnknownDtypeError, weight_format
from stackdecide.facts.gpus import find_gpu, gpu_matches
from stackdecide.facts.pins import pin_specifier
from stackdecide.facts.roofline import GpuPeaks, hardware_from
from stackdecide.model.decision import DecisionMatrix
from stackdecide.model.schema import Hardware, config_digest
from stackdecide.model.space import configuration_of, expansion_of
from stackdecide.model.stack import attention_backend_named, engine_kv_cache_dtype, layout_of
from stackdecide.predict.ceilings import Load, ServingSetup

AXES = ("gpu", "model", "weights", "kv_cache_dtype", "attention_backend", "layout", "vllm",
        "config")
SPACE_AXIS = "axis:"  # the level of a space's axis: "axis:engine.max_num_seqs"
# axes another level names already: the GPU, the vLLM, the weights (model), the attention
# backend, the KV-cache dtype and the layout; counting them twice would double their prior width
NAMED_ELSEWHERE = ("hardware.gpu", "hardware.count", "stack.vllm", "engine.model",
                   "engine.quantization", "engine.attention_backend", "env.VLLM_ATTENTION_BACKEND",
                   "engine.kv_cache_dtype", "engine.tensor_parallel_size",
                   "engine.pipeline_parallel_size", "engine.data_parallel_size")


@dataclass(frozen=True)
class Configuration:
    """One candidate's configuration on one GPU model: its levels and its roofline setup (None,
    with ``missing`` saying why, when the model shape or the GPU's peaks are unknown)."""

    candidate: str
    levels: dict[str, str]
    setup: ServingSetup | None
    missing: str | None = None


def attention_backend(engine: dict, env: dict[str, str]) -> str:
    named = attention_backend_named(engine, env)
    return named[0].upper() if named else "auto"


def pinned_version(pin: str | None) -> str | None:
    """The one version a pin allows (``==0.26.0``, ``0.26.0``), else the pin as written."""
    if not pin:
        return None
    specifier = pin_specifier(pin)
    exact = [s.version for s in specifier or () if s.operator in ("==", "===")]
    return exact[0] if len(exact) == 1 and "*" not in exact[0] else pin.strip()


def model_geometry(facts: ModelFacts) -> str:
    if facts.shape is None:
        return facts.id or "unknown model"
    return f"{facts.shape.architecture} {facts.shape.params / 1e9:.1f}B"


def space_axes(decision: DecisionMatrix) -> tuple[str, ...]:
    """The levels a space adds (module doc): one per axis that varies, in id order."""
    space = decision.model.space
    if space is None:
        return ()
    return tuple(SPACE_AXIS + axis.id for axis in expansion_of(space).axes
                 if axis.varies and axis.id not in NAMED_ELSEWHERE)


def _binds_max_num_seqs(limit: int, load: Load) -> bool:
    return limit < load.concurrency


def _binds_max_num_batched_tokens(limit: int, load: Load) -> bool:
    # a step holds a token of every running stream and a prompt being prefilled: below that, a
    # prompt is prefilled in chunks
    return limit < load.input_len + load.concurrency


# scheduler limits (engine keys): a rate depends on such a setting only at the loads where it
# binds, where the batch it allows is smaller than the load asks for; above that every value
# schedules the same steps
SCHEDULER_LIMITS = {"max_num_seqs": _binds_max_num_seqs,
                    "max_num_batched_tokens": _binds_max_num_batched_tokens}
NOT_BINDING = "not binding"


def scheduler_limit(axis: str) -> str | None:
    """The engine key of a space axis that is a scheduler limit (``axis:engine.max_num_seqs``:
    ``max_num_seqs``), else None."""
    name = axis.removeprefix(SPACE_AXIS)
    key = name.removeprefix("engine.").replace("-", "_")
    return key if name.startswith("engine.") and key in SCHEDULER_LIMITS else None


def binds_at(axis: str, label: str, load: Load) -> bool | None:
    """Whether a space setting (``axis:engine.max_num_seqs`` = ``16``) limits what a load asks
    for; None for a setting that is no scheduler limit (or not a whole number)."""
    key = scheduler_limit(axis)
    if key is None or not label.isdigit():
        return None
    return SCHEDULER_LIMITS[key](int(label), load)


def config_label(levels: dict[str, str], engine: Mapping[str, Any], env: Mapping[str, str],
                 limits: set[str]) -> str:
    """The ``config`` level: the named axes and a digest of the engine config and env, without
    the scheduler limits ``limits`` a space varies (they count only at the loads they bind at:
    ``observations.with_load``)."""
    kept = {key: value for key, value in engine.items() if key.replace("-", "_") not in limits}
    return " | ".join([*(levels[a] for a in AXES[:-1]), config_digest(kept, env)[:16]])


def space_levels(decision: DecisionMatrix, candidate_id: str) -> dict[str, str]:
    """A space configuration's value of each of ``space_axes``; none for a candidate written by
    hand (or an axis whose condition does not hold for it)."""
    found = configuration_of(decision.model, candidate_id)
    if found is None:
        return {}
    wanted = set(space_axes(decision))
    return {SPACE_AXIS + s.axis: s.label for s in found.settings if SPACE_AXIS + s.axis in wanted}


def gpu_target(decision: DecisionMatrix, gpu: str | None, vram_gb: float | None = None,
               count: int = 1) -> tuple[GpuPeaks | None, TargetHardware | None, str]:
    """Peaks and memory of ``gpu`` (None: the decision's own GPU), and its name. A GPU the
    decision names is read from the decision's ``hardware`` block (its bandwidth and memory),
    any other from the GPU table."""
    own = decision.model.decision.hardware
    if own is not None and (gpu is None or gpu_matches(own.gpu, gpu)):
        peaks = hardware_from(own.gpu, own.memory_bandwidth_gb_s)
        return peaks, file_hardware(own), find_gpu(own.gpu).name if find_gpu(own.gpu) else own.gpu
    if gpu is None:
        return None, None, "no GPU"
    spec = find_gpu(gpu)
    return (hardware_from(gpu), file_hardware(Hardware(gpu=gpu, vram_gb=vram_gb, count=count)),
            spec.name if spec else gpu)


def configuration(decision: DecisionMatrix, candidate_id: str, gpu: str | None = None,
                  vram_gb: float | None = None, vllm: str | None = None) -> Configuration:
    """Candidate ``candidate_id`` of ``decision`` on ``gpu`` (None: the decision's GPU), running
    vLLM ``vllm`` (None: the candidate's pin)."""
    candidate = decision.candidate(candidate_id)
    engine, env = candidate.engine, candidate.env
    facts = candidate_model(decision, candidate_id)
    layout = layout_of(engine)
    peaks, target, gpu_name = gpu_target(decision, gpu, vram_gb, layout.gpus)
    weights = facts.weights_or_default
    kv_dtype = engine_kv_cache_dtype(engine)
    levels = {
        "gpu": gpu_name, "model": model_geometry(facts), "weights": weights,
        "kv_cache_dtype": kv_dtype.lower(), "attention_backend": attention_backend(engine, env),
        "layout": layout.label, "vllm": vllm or pinned_version(candidate.stack.vllm) or "any"}
    space = space_levels(decision, candidate_id)
    levels["config"] = config_label(levels, engine, env,
                                    {key for axis in space if (key := scheduler_limit(axis))})
    levels.update(space)
    if facts.shape is None:
        return Configuration(candidate_id, levels, None, facts.missing or "no model shape")
    if target is not None and target.device == "cpu":
        return Configuration(candidate_id, levels, None, "the CPU engine has no roofline here")
    if peaks is None:
        return Configuration(candidate_id, levels, None, f"GPU '{gpu_name}' is not in the GPU "
                             "table; give decision.hardware.memory_bandwidth_gb_s")
    try:
        weight_format(weights)
        release = vllm_defaults_release(vllm or candidate.stack.vllm)
        capacity = capacity_of(candidate_id, engine, env, facts, target, release)
    except UnknownDtypeError as exc:
        return Configuration(candidate_id, levels, None, str(exc))
    seqs = engine_defaults(engine, facts, target, release).scheduler.max_num_seqs \
        if target is not None else capacity.max_num_seqs
    setup = ServingSetup(facts.shape, peaks, weights, kv_dtype, layout, seqs, capacity.tokens)
    return Configuration(candidate_id, levels, setup)
