"""What a candidate's configuration holds: weights, KV cache per token, tokens and sequences that fit.

The numbers vLLM logs when it starts ("GPU KV cache size: N tokens", "Maximum concurrency for L
tokens per request: X.XXx"; on the CPU engine "CPU KV cache size"), estimated before anything
starts: from the candidate's model (``audit.models``), the target's memory (the decision's
``hardware``, a probed GPU, or the CPU engine's ``VLLM_CPU_KVCACHE_SPACE``) and the engine keys,
with the same budget ``check_kv_fits`` refuses a launch by (``engine_config.kv_budget``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import asdict, dataclass
from typing import TYPE_CHECKING, Any

from stackdecide.audit.engine_config import (
    TargetHardware,
    engine_defaults,
    file_hardware,
    gpu_kv_bytes_per_token,
    gpu_weight_bytes,
    in_flight_tokens,
    kv_budget,
    parse_token_count,
    skipped_checks,
    vllm_defaults_release,
)
from stackdecide.audit.models import ModelFacts, candidate_model, model_label
from stackdecide.facts import memory
from stackdecide.facts.dtypes import UnknownDtypeError
from stackdecide.facts.memory import gib
from stackdecide.facts.vllm_defaults import VllmRelease
from stackdecide.model.stack import engine_dtype, engine_kv_cache_dtype, layout_of

if TYPE_CHECKING:
    from stackdecide.model.decision import DecisionMatrix


@dataclass(frozen=True)
class Capacity:
    """One candidate's capacity estimate; ``skipped`` says why the KV numbers are missing."""

    candidate: str
    model: str  # shape (weights format)
    weights_bytes: float | None
    kv_cache_dtype: str
    kv_bytes_per_token: float | None
    max_model_len: int | None
    max_model_len_source: str  # "max_model_len" or the model's max_position_embeddings
    kv_budget_bytes: float | None  # what is left for the KV cache
    budget: str  # how the budget was reached
    tokens: int | None  # KV tokens that fit (vLLM: "KV cache size: N tokens")
    concurrency: float | None  # sequences of max_model_len at once ("Maximum concurrency")
    max_num_seqs: int | None  # as configured; None: vLLM's default
    target: str  # where the memory figure comes from
    skipped: str | None = None
    layout: str = "TP 1"  # tensor x pipeline x data parallel; weights and KV figures are per GPU
    gpus: int = 1  # GPUs the configuration occupies (all replicas)
    bytes_per_sequence: float | None = None  # one request of max_model_len: KV cache and state
    defaults: str = ""  # keys the model's config.json leaves out, and the defaults they took
    # the engine keys the budget took from vLLM (max_num_batched_tokens, max_num_seqs,
    # gpu_memory_utilization): their values, and which release and rule set them
    engine_defaults: str = ""

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def capacity_of(candidate_id: str, engine: Mapping[str, Any], env: Mapping[str, str],
                model: ModelFacts, target: TargetHardware | None,
                release: VllmRelease | None = None) -> Capacity:
    """The capacity estimate of one engine configuration on ``target``; keys the engine leaves
    out take vLLM ``release``'s defaults (``engine_config.engine_defaults``)."""
    dtype = engine_dtype(engine)
    kv_dtype = engine_kv_cache_dtype(engine)
    seqs = parse_token_count(engine.get("max_num_seqs"))
    source = target.source if target else "no hardware"
    label = model_label(model) if dtype == "auto" else f"{model_label(model)[:-1]}, --dtype {dtype})"
    shape = model.shape
    if shape is None:
        return Capacity(candidate_id, label, None, kv_dtype, None,
                        parse_token_count(engine.get("max_model_len")), "max_model_len", None, "",
                        None, None, seqs, source, model.missing or "no model shape")
    try:
        weights = gpu_weight_bytes(engine, model, dtype)
        per_token = gpu_kv_bytes_per_token(engine, model)
    except UnknownDtypeError as exc:
        return Capacity(candidate_id, label, None, kv_dtype, None, None, "", None,
                        "", None, None, seqs, source, str(exc), defaults=shape.defaults)
    length = parse_token_count(engine.get("max_model_len"))
    length_source = "max_model_len"
    if length is None:
        length, length_source = shape.max_position_embeddings, "max_position_embeddings"
    budget = kv_budget(engine, env, model, target, release) if target else None
    layout = layout_of(engine)
    if shape.unsized_layer_types or budget is None:
        why = [f"layers of kind {', '.join(shape.unsized_layer_types)} cannot be sized"] \
            if shape.unsized_layer_types else \
            [p.message for p in skipped_checks(engine or {"model": model.id}, env, model, target)]
        return Capacity(candidate_id, label, weights, kv_dtype, per_token, length,
                        length_source, None, "", None, None, seqs, source,
                        why[0] if why else "the KV-cache budget cannot be told",
                        defaults=shape.defaults)
    assert target is not None
    settings = engine_defaults(engine, model, target, release)
    assumed = settings.describe() if budget.explicit_kv_bytes is None and settings.assumed else ""
    if budget.explicit_kv_bytes is None and budget.kv_bytes <= 0:
        usable = budget.budget_bytes - budget.activation_bytes - budget.non_torch_bytes
        return Capacity(candidate_id, label, weights, kv_dtype, per_token, length,
                        length_source, None, budget.describe(), None, None, seqs, source,
                        f"the weights ({gib(weights)} per GPU) do not fit the {gib(usable)} usable: "
                        "no memory is left for the KV cache", layout.label, layout.gpus,
                        defaults=shape.defaults, engine_defaults=assumed)
    fit = memory.capacity(shape, budget, length, kv_dtype, dtype, layout=layout,
                          in_flight_tokens=in_flight_tokens(engine, model, target, release))
    return Capacity(candidate_id, label, weights, kv_dtype, per_token, length,
                    length_source, fit.kv_bytes, budget.describe(), fit.tokens, fit.concurrency,
                    seqs, source, layout=layout.label, gpus=layout.gpus,
                    bytes_per_sequence=fit.bytes_per_sequence, defaults=shape.defaults,
                    engine_defaults=assumed)


def candidate_capacity(decision: DecisionMatrix, candidate_id: str) -> Capacity:
    """A candidate's capacity on the decision's own hardware (no GPU probed)."""
    candidate = decision.candidate(candidate_id)
    return capacity_of(candidate_id, candidate.engine, candidate.env,
                       candidate_model(decision, candidate_id),
                       file_hardware(decision.model.decision.hardware),
                       vllm_defaults_release(candidate.stack.vllm))


def decision_capacity(decision: DecisionMatrix) -> tuple[Capacity, ...]:
    """Every candidate with an engine config (the others say nothing of how they run)."""
    return tuple(candidate_capacity(decision, c.id) for c in decision.candidates if c.engine)
