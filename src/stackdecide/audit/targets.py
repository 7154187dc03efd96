"""Targets against physics: a decode or prefill target above the roofline of the decision's own GPU.

``roofline_setup`` is the one rule for which model shape, weights format and GPU peaks a roofline
uses, and why it is skipped when one of them is missing; the HTML report uses it too.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

from stackdecide.facts.dtypes import UnknownDtypeError, weight_format_bytes
from stackdecide.facts.roofline import (
    GpuPeaks,
    best_prefill_ceiling,
    decode_ceiling,
    hardware_from,
)
from stackdecide.facts.shapes import SHAPES, ModelShape
from stackdecide.model.findings import Finding

if TYPE_CHECKING:
    from stackdecide.model.decision import DecisionMatrix
    from stackdecide.model.ranking import Ranking
    from stackdecide.model.schema import Hardware


@dataclass(frozen=True)
class RooflineSetup:
    shape: ModelShape
    hardware: GpuPeaks
    weights: str


@dataclass(frozen=True)
class RooflineSkipped:
    reason: str
    path: tuple[str, ...]  # the part of the decision file the reason is about


def hardware_of(hardware: Hardware | None) -> GpuPeaks | None:
    """Roofline hardware from a decision file's ``hardware`` block."""
    if hardware is None:
        return None
    return hardware_from(hardware.gpu, hardware.memory_bandwidth_gb_s, hardware.count)


def decision_weights(decision: DecisionMatrix, shape: ModelShape) -> str:
    """The weight format a roofline assumes: ``model.weights``, else the shape's own, else BF16."""
    model = decision.model.decision.model
    return (model.weights if model and model.weights else None) or shape.quantization or "bf16"


def roofline_setup(decision: DecisionMatrix) -> RooflineSetup | RooflineSkipped:
    """Shape, GPU peaks and weights for the decision's rooflines, or why there are none."""
    meta = decision.model.decision
    shape_name = meta.model.shape if meta.model else None
    hardware = hardware_of(meta.hardware)
    if meta.hardware is None:
        return RooflineSkipped("the decision names no hardware", ("decision", "hardware"))
    if hardware is None:
        return RooflineSkipped(f"GPU '{meta.hardware.gpu}' is not in the roofline table; give "
                               "decision.hardware.memory_bandwidth_gb_s", ("decision", "hardware"))
    if not shape_name:
        return RooflineSkipped("decision.model.shape is not set", ("decision", "model"))
    if shape_name not in SHAPES:
        return RooflineSkipped(f"unknown model shape '{shape_name}' (known: {', '.join(SHAPES)})",
                               ("decision", "model", "shape"))
    shape = SHAPES[shape_name]
    weights = decision_weights(decision, shape)
    try:
        weight_format_bytes(weights)
    except UnknownDtypeError as exc:
        return RooflineSkipped(str(exc), ("decision", "model", "weights"))
    return RooflineSetup(shape, hardware, weights)


def _gb(value: float) -> str:
    return f"{value / 1e9:.2f} GB"


def check_roofline_targets(decision: DecisionMatrix, ranking: Ranking) -> list[Finding]:
    """Flag decode/prefill targets above the physical ceiling of the decision's own hardware."""
    targets = decision.model.decision.targets
    if targets.decode_tok_s is None and targets.prefill_tok_s is None:
        return []
    setup = roofline_setup(decision)
    if isinstance(setup, RooflineSkipped):
        return [Finding("roofline-skipped", "info", "decision",
                        f"targets not checked against the roofline: {setup.reason}",
                        decision.locate(setup.path))]
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
            f" GB/s (from {hardware.bandwidth_source}) / {_gb(ceiling.bytes_per_token)} read per "
            f"token ({_gb(ceiling.weights_read.linear_bytes)} attention/MLP weights + "
            f"{_gb(ceiling.weights_read.lm_head_bytes)} BF16 LM head), before any KV-cache "
            f"reads; with 4,096 tokens of BF16 KV cache it is {at_4k.tok_s:.1f} tok/s. Several "
            "concurrent streams can exceed it in total, one stream cannot",
            decision.locate(("decision", "targets", "decode_tok_s")))
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
                decision.locate(("decision", "targets", "prefill_tok_s")))
            if finding is not None:
                findings.append(finding)
    return findings


def _target_finding(metric: str, low: float, high: float, ceiling: float, unit: str,
                    explanation: str, where: str) -> Finding | None:
    if high <= ceiling:
        return None
    if low > ceiling:
        return Finding("target-above-roofline", "error", "decision",
                       f"target {metric} {low:g}..{high:g} {unit} lies entirely above {explanation}",
                       where, reported=low, computed=round(ceiling, 3))
    return Finding("target-above-roofline", "warning", "decision",
                   f"target {metric} {low:g}..{high:g} {unit}: its upper end {high:g} is above "
                   f"{explanation}", where, reported=high, computed=round(ceiling, 3))
