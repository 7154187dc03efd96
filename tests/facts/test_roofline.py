"""Roofline ceilings worked by hand, the GPU table, and the audit check on real decision files."""

from __future__ import annotations

from pathlib import Path

import pytest

import stackdecide
from stackdecide.facts.gpus import GPUS, find_gpu
from stackdecide.facts.roofline import (
    RooflineError,
    best_prefill_ceiling,
    decode_ceiling,
    hardware_from,
    prefill_ceiling,
)
from stackdecide.facts.shapes import SHAPES

QWEN3_4B = SHAPES["qwen3-4b"]
LINEAR = 36 * (2560 * 128 * (2 * 32 + 2 * 8) + 3 * 2560 * 9728)  # 3,633,315,840
LM_HEAD = 151936 * 2560  # tied: the embedding table, read whole by the LM head
NORMS = 36 * (2 * 2560 + 2 * 128) + 2560


def test_shape_parts_add_up_to_the_parameter_count() -> None:
    assert QWEN3_4B.linear_params == LINEAR
    assert QWEN3_4B.lm_head_params == LM_HEAD
    assert QWEN3_4B.norm_params == NORMS
    assert QWEN3_4B.params == LINEAR + LM_HEAD + NORMS == 4_022_468_096
    llama = SHAPES["llama-3.1-8b"]  # untied: embeddings and LM head are two tables
    assert llama.params == llama.linear_params + 2 * llama.lm_head_params + llama.norm_params


@pytest.mark.parametrize(("name", "expected"), [
    ("NVIDIA GeForce RTX 4090 Laptop GPU", "NVIDIA GeForce RTX 4090 Laptop GPU"),
    ("NVIDIA GeForce RTX 4090", "NVIDIA GeForce RTX 4090"),
    ("NVIDIA H100 80GB HBM3", "NVIDIA H100 SXM"),
    ("NVIDIA H100 PCIe", "NVIDIA H100 PCIe"),
    ("NVIDIA H100 NVL", "NVIDIA H100 NVL"),
    ("NVIDIA H200", "NVIDIA H200 SXM"),
    ("NVIDIA H200 NVL", "NVIDIA H200 NVL"),
    ("NVIDIA A100-SXM4-80GB", "NVIDIA A100 80GB SXM"),
    ("NVIDIA A100-SXM4-40GB", "NVIDIA A100 40GB"),
    ("NVIDIA A100 80GB PCIe", "NVIDIA A100 80GB PCIe"),
    ("NVIDIA L40S", "NVIDIA L40S"),
])
def test_gpu_names_as_nvidia_smi_prints_them(name: str, expected: str) -> None:
    spec = find_gpu(name)
    assert spec is not None and spec.name == expected


def test_unknown_gpu_and_table_sanity() -> None:
    assert find_gpu("AMD Instinct MI300X") is None
    assert find_gpu("NVIDIA L40") is None  # not the L40S
    for spec in GPUS:
        assert spec.memory_bandwidth_gb_s > 0 and spec.bf16_dense_tflops > 0 and spec.source
        if spec.fp8_dense_tflops is not None:
            assert spec.fp8_dense_tflops == pytest.approx(2 * spec.bf16_dense_tflops, rel=0.02)


def test_decode_ceiling_bf16_on_h100_by_hand() -> None:
    hardware = hardware_from("NVIDIA H100 80GB HBM3")
    assert hardware is not None and hardware.memory_bandwidth_gb_s == 3350
    ceiling = decode_ceiling(QWEN3_4B, hardware, "bf16", "auto", context_tokens=0)
    weight_bytes = 2 * (LINEAR + LM_HEAD + NORMS)
    assert ceiling.bytes_per_token == weight_bytes
    assert ceiling.tok_s == pytest.approx(3350e9 / weight_bytes)  # ~416 tok/s
    assert 410 < ceiling.tok_s < 420


def test_decode_ceiling_fp8_weights_and_kv() -> None:
    hardware = hardware_from("NVIDIA H200")
    assert hardware is not None
    fp8 = decode_ceiling(QWEN3_4B, hardware, "fp8-block", "auto", 0)
    assert fp8.weights_read.linear_bytes == LINEAR
    assert fp8.weights_read.lm_head_bytes == 2 * LM_HEAD  # the LM head stays BF16
    assert fp8.weights_read.scale_bytes == pytest.approx(LINEAR / 128**2 * 4)
    at_8k_bf16 = decode_ceiling(QWEN3_4B, hardware, "fp8-block", "auto", 8192)
    at_8k_fp8 = decode_ceiling(QWEN3_4B, hardware, "fp8-block", "fp8_e4m3", 8192)
    assert at_8k_bf16.kv_bytes == 2 * 36 * 8 * 128 * 2 * 8192  # K and V, 36 layers, 8 heads
    assert at_8k_fp8.kv_bytes == at_8k_bf16.kv_bytes / 2
    assert fp8.tok_s > at_8k_fp8.tok_s > at_8k_bf16.tok_s
    with pytest.raises(RooflineError, match="unknown KV-cache dtype 'int3'"):
        decode_ceiling(QWEN3_4B, hardware, "bf16", "int3", 0)


def test_bandwidth_override_and_unknown_gpu() -> None:
    override = hardware_from("NVIDIA GeForce RTX 4090 Laptop GPU", 500)
    assert override is not None and override.memory_bandwidth_gb_s == 500
    assert "the table says 576 GB/s" in override.bandwidth_source
    assert hardware_from("Some Accelerator") is None
    custom = hardware_from("Some Accelerator", 1000, count=2)
    assert custom is not None and custom.bandwidth_bytes_s == 2000e9
    assert prefill_ceiling(QWEN3_4B, custom) is None  # no tensor peak known


def test_prefill_ceiling_by_hand() -> None:
    hardware = hardware_from("NVIDIA H100 SXM")
    assert hardware is not None
    length = 2048
    ceiling = prefill_ceiling(QWEN3_4B, hardware, "bf16", "auto", length)
    assert ceiling is not None
    linear = 2 * LINEAR * length
    attention = 2 * 36 * 32 * 128 * length**2
    assert ceiling.linear_flops == linear and ceiling.attention_flops == attention
    expected_s = (linear + attention + 2 * LM_HEAD) / 989.5e12
    assert ceiling.compute_s == pytest.approx(expected_s)
    assert ceiling.bound == "compute"
    assert ceiling.tok_s == pytest.approx(length / expected_s)
    fp8 = prefill_ceiling(QWEN3_4B, hardware, "fp8-block", "auto", length)
    assert fp8 is not None and fp8.linear_tflops == 1979.0 and fp8.tok_s > ceiling.tok_s
    short = prefill_ceiling(QWEN3_4B, hardware, "bf16", "auto", 16)
    assert short is not None and short.bound == "memory"  # reading the weights dominates
    best = best_prefill_ceiling(QWEN3_4B, hardware, "bf16", "auto", 131072)
    assert best is not None and best.tok_s >= ceiling.tok_s and best.tok_s >= short.tok_s


def test_rtx4090_decision_flags_the_decode_target(rtx4090_path: Path) -> None:
    findings = [f for f in stackdecide.load(rtx4090_path).score().findings
                if f.code == "target-above-roofline"]
    assert len(findings) == 1  # prefill 800..1300 tok/s is far below its ceiling
    finding = findings[0]
    weights = LINEAR + LINEAR / 128**2 * 4 + 2 * LM_HEAD + 2 * NORMS
    assert finding.severity == "warning"  # 100 tok/s is possible, 160 is not
    assert finding.reported == 160
    assert finding.computed == pytest.approx(576e9 / weights, abs=1e-3)  # ~130.5 tok/s
    assert "upper end 160 is above the single-stream decode ceiling of 130.5 tok/s" in (
        finding.message)
    assert "576 GB/s" in finding.message and "RTX 4090 Laptop" in finding.message
    assert finding.where is not None and "decision.targets.decode_tok_s" in finding.where
    assert ":24:" in finding.where  # the line of the target in the file


DECISION = """\
schema: stackdecide/v1
decision:
  title: t
  hardware: {{gpu: "{gpu}"{extra}}}
  model: {{id: m, shape: {shape}, weights: {weights}}}
  targets: {{decode_tok_s: [{low}, {high}], prefill_tok_s: [{plow}, {phigh}]}}
criteria:
  - {{id: speed, weight: 1}}
candidates:
  - {{id: a, scores: {{speed: 5}}}}
"""


def roofline_findings(**values: object) -> list:
    fields = {"gpu": "NVIDIA H100 80GB HBM3", "extra": "", "shape": "qwen3-4b",
              "weights": "bf16", "low": 100, "high": 200, "plow": 1000, "phigh": 2000}
    fields.update(values)
    decision = stackdecide.parse(DECISION.format(**fields))
    return [f for f in decision.score().findings
            if f.code in ("target-above-roofline", "roofline-skipped")]


def test_audit_severity_follows_the_target_range() -> None:
    assert roofline_findings() == []  # 200 < ~416 tok/s
    [error] = roofline_findings(low=500, high=600)
    assert error.severity == "error" and "entirely above" in error.message
    [prefill] = roofline_findings(plow=10_000_000, phigh=20_000_000)
    assert prefill.severity == "error" and "prefill ceiling" in prefill.message
    # the decision's bandwidth overrides the table: 1000 GB/s -> ~124 tok/s
    [slow] = roofline_findings(extra=", memory_bandwidth_gb_s: 1000")
    assert slow.severity == "warning" and slow.computed == pytest.approx(1000e9 / 8.0449e9,
                                                                         rel=1e-3)
    # two GPUs (tensor parallel 2): each reads half the weights, but 2 x 36 all-reduces of ~8 us
    # stay on the critical path: ~563 tok/s, not 2 x 416
    [tp2] = roofline_findings(extra=", count: 2", low=500, high=800)
    assert tp2.severity == "warning" and tp2.computed == pytest.approx(
        1 / (8.0449e9 / 2 / 3350e9 + 72 * 8e-6), rel=1e-3)
    assert "split over 2 GPUs plus 0.58 ms of all-reduces per token" in tp2.message


def test_audit_says_when_it_cannot_check() -> None:
    [unknown_gpu] = roofline_findings(gpu="Mystery GPU")
    assert unknown_gpu.severity == "info" and "memory_bandwidth_gb_s" in unknown_gpu.message
    [unknown_shape] = roofline_findings(shape="gpt-9")
    assert "unknown model shape 'gpt-9'" in unknown_shape.message
    assert roofline_findings(gpu="Mystery GPU", extra=", memory_bandwidth_gb_s: 100",
                             low=1, high=2) == []
