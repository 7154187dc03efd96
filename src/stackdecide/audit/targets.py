"""Targets against physics: a decode or prefill target above the roofline of the decision's own GPU.

``roofline_setup`` is the one rule for which model shape, weights format and GPU peaks a roofline
uses, and why it is skipped when one of them is missing; the HTML report uses it too. Each
candidate's roofline is its own model's (``audit.models.candidate_model``): a candidate serving an
FP8 checkpoint has the FP8 ceiling even when the decision's model is BF16.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from typing import TYPE_CHECKING

from stackdecide.audit.models import ModelFacts, candidate_model
from stackdecide.facts.dtypes import UnknownDtypeError, weight_format
from stackdecide.facts.roofline import (
    GpuPeaks,
    best_prefill_ceiling,
    decode_ceiling,
    hardware_from,
)
from stackdecide.facts.shapes import ModelShape
from stackdecide.model.findings import Finding
from stackdecide.model.stack import layout_of

if TYPE_CHECKING:
    from stackdecide.model.decision import DecisionMatrix
    from stackdecide.model.ranking import Ranking
    from stackdecide.model.schema import Hardware


@dataclass(frozen=True)
class RooflineSetup:
    shape: ModelShape
    hardware: GpuPeaks
    weights: str

    @property
    def label(self) -> str:
        return f"{self.shape.name} with {self.weights} weights"


@dataclass(frozen=True)
class RooflineSkipped:
    reason: str
    path: tuple[str | int, ...]  # the part of the decision file the reason is about


def hardware_of(hardware: Hardware | None) -> GpuPeaks | None:
    """Roofline hardware from a decision file's ``hardware`` block."""
    if hardware is None:
        return None
    return hardware_from(hardware.gpu, hardware.memory_bandwidth_gb_s, hardware.count)


def _model_path(decision: DecisionMatrix, candidate_id: str | None) -> tuple[str | int, ...]:
    if candidate_id is not None:
        index = decision.candidate_index(candidate_id)
        if decision.model.candidates[index].model is not None:
            return ("candidates", index, "model")
    return ("decision", "model")


def roofline_setup(decision: DecisionMatrix, candidate_id: str | None = None,
                   model: ModelFacts | None = None) -> RooflineSetup | RooflineSkipped:
    """Shape, GPU peaks and weights for a candidate's rooflines (its own model; without a
    candidate, the decision's model), or why there are none."""
    meta = decision.model.decision
    hardware = hardware_of(meta.hardware)
    if meta.hardware is None:
        return RooflineSkipped("the decision names no hardware", ("decision", "hardware"))
    if hardware is None:
        return RooflineSkipped(f"GPU '{meta.hardware.gpu}' is not in the roofline table; give "
                               "decision.hardware.memory_bandwidth_gb_s", ("decision", "hardware"))
    model = model or candidate_model(decision, candidate_id)
    path = _model_path(decision, candidate_id)
    if model.shape is None:
        return RooflineSkipped(model.missing or "no model shape", path)
    weights = model.weights_or_default
    try:
        weight_format(weights)
    except UnknownDtypeError as exc:
        return RooflineSkipped(str(exc), (*path, "weights"))
    engine = decision.candidate(candidate_id).engine if candidate_id is not None else {}
    if engine:  # one stream runs on one replica: its tensor-parallel GPUs, not the machine's
        hardware = replace(hardware, count=layout_of(engine).tp)
    return RooflineSetup(model.shape, hardware, weights)


def candidate_setups(decision: DecisionMatrix) -> dict[RooflineSetup | RooflineSkipped,
                                                      list[str]]:
    """Each distinct roofline setup (or reason for none) and the candidates it holds for, in the
    order of the file."""
    groups: dict[RooflineSetup | RooflineSkipped, list[str]] = {}
    for candidate_id in decision.candidate_ids:
        groups.setdefault(roofline_setup(decision, candidate_id), []).append(candidate_id)
    return groups


def _gb(value: float) -> str:
    return f"{value / 1e9:.2f} GB"


def check_roofline_targets(decision: DecisionMatrix, ranking: Ranking) -> list[Finding]:
    """Flag decode/prefill targets above the physical ceiling of the decision's own hardware,
    once per distinct model (shape and weights) among the candidates."""
    targets = decision.model.decision.targets
    if targets.decode_tok_s is None and targets.prefill_tok_s is None:
        return []
    groups = candidate_setups(decision)
    findings: list[Finding] = []
    for setup, ids in groups.items():
        # one finding for the decision when every candidate shares the model, else one for each
        # candidate of this model (a finding's subject is one candidate, so reports can mark it)
        for subject in ["decision"] if len(groups) == 1 else ids:
            if isinstance(setup, RooflineSkipped):
                findings.append(Finding("roofline-skipped", "info", subject,
                                        f"targets not checked against the roofline: "
                                        f"{setup.reason}", decision.locate(setup.path)))
            else:
                findings += _setup_findings(decision, setup, subject)
    return findings


def _setup_findings(decision: DecisionMatrix, setup: RooflineSetup,
                    subject: str) -> list[Finding]:
    targets = decision.model.decision.targets
    shape, hardware, weights = setup.shape, setup.hardware, setup.weights
    findings: list[Finding] = []
    gpus = f"{hardware.count} x {hardware.name}" if hardware.count > 1 else hardware.name
    if targets.decode_tok_s is not None:
        ceiling = decode_ceiling(shape, hardware, weights, "auto", 0)
        at_4k = decode_ceiling(shape, hardware, weights, "auto", 4096)
        finding = _target_finding(
            "decode_tok_s", targets.decode_tok_s.low, targets.decode_tok_s.high, ceiling.tok_s,
            "tok/s",
            f"the single-stream decode ceiling of {ceiling.tok_s:.1f} tok/s for {shape.name} "
            f"with {weights} weights on {gpus}: {hardware.memory_bandwidth_gb_s * hardware.count:g}"
            f" GB/s (from {hardware.bandwidth_source}) / {_gb(ceiling.weights_read.total)} read "
            f"per token ({_gb(ceiling.weights_read.linear_bytes)} attention/MLP weights + "
            f"{_gb(ceiling.weights_read.lm_head_bytes)} BF16 LM head)"
            + (f" split over {hardware.count} GPUs plus {ceiling.all_reduce_s * 1e3:.2f} ms of "
               f"all-reduces per token (tensor parallel, {hardware.interconnect})"
               if hardware.count > 1 else "") + ", before any KV-cache "
            f"reads; with 4,096 tokens of BF16 KV cache it is {at_4k.tok_s:.1f} tok/s. Several "
            "concurrent streams can exceed it in total, one stream cannot",
            decision.locate(("decision", "targets", "decode_tok_s")), subject)
        if finding is not None:
            findings.append(finding)
    if targets.prefill_tok_s is not None:
        limit = (targets.context_tokens or shape.max_position_embeddings)
        best = best_prefill_ceiling(shape, hardware, weights, "auto", limit)
        if best is not None:
            finding = _target_finding(
                "prefill_tok_s", targets.prefill_tok_s.low, targets.prefill_tok_s.high,
                best.tok_s, "tok/s",
                f"the prefill ceiling of {best.tok_s:,.0f} tok/s for {shape.name} with {weights} "
                f"weights on {gpus} (best over prompt lengths, at {best.prompt_tokens} tokens: "
                f"{(best.linear_flops + best.attention_flops) / best.prompt_tokens / 1e9:.2f} "
                f"GFLOP per token at {best.linear_tflops:g} dense TFLOPS, {best.bound}-bound)",
                decision.locate(("decision", "targets", "prefill_tok_s")), subject)
            if finding is not None:
                findings.append(finding)
    return findings


def _target_finding(metric: str, low: float, high: float, ceiling: float, unit: str,
                    explanation: str, where: str, subject: str = "decision") -> Finding | None:
    if high <= ceiling:
        return None
    if low > ceiling:
        return Finding("target-above-roofline", "error", subject,
                       f"target {metric} {low:g}..{high:g} {unit} lies entirely above {explanation}",
                       where, reported=low, computed=round(ceiling, 3))
    return Finding("target-above-roofline", "warning", subject,
                   f"target {metric} {low:g}..{high:g} {unit}: its upper end {high:g} is above "
                   f"{explanation}", where, reported=high, computed=round(ceiling, 3))
