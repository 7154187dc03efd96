"""Each candidate's own model: rooflines, memory and targets use it, not the decision's."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import stackdecide
from stackdecide.audit.models import candidate_model
from stackdecide.audit.targets import RooflineSetup, roofline_setup
from stackdecide.cli import main
from stackdecide.facts.roofline import decode_ceiling, hardware_from
from stackdecide.facts.shapes import SHAPES
from stackdecide.report import build_report

DECISION = """\
schema: stackdecide/v1
decision:
  title: BF16 decision, one FP8 candidate
  hardware: {gpu: NVIDIA H100 80GB HBM3, vram_gb: 80, compute_capability: "9.0"}
  model: {id: Qwen/Qwen3-4B-Instruct-2507, shape: qwen3-4b, weights: bf16}
  targets: {decode_tok_s: [900, 1000]}
criteria:
  - {id: speed, weight: 1}
candidates:
  - id: bf16
    engine: {model: Qwen/Qwen3-4B-Instruct-2507, max_model_len: 32768}
    scores: {speed: 5}
  - id: fp8
    model: {id: Qwen/Qwen3-4B-Instruct-2507-FP8, shape: qwen3-4b-fp8}
    engine: {model: Qwen/Qwen3-4B-Instruct-2507-FP8, max_model_len: 32768}
    scores: {speed: 6}
  - id: fp8-online
    model: {weights: fp8}
    engine: {model: Qwen/Qwen3-4B-Instruct-2507, quantization: fp8, max_model_len: 32768}
    scores: {speed: 4}
"""
H100 = hardware_from("NVIDIA H100 80GB HBM3")
assert H100 is not None
BF16_CEILING = decode_ceiling(SHAPES["qwen3-4b"], H100, "bf16").tok_s  # ~416 tok/s
FP8_BLOCK_CEILING = decode_ceiling(SHAPES["qwen3-4b"], H100, "fp8-block").tok_s  # ~759 tok/s
FP8_CEILING = decode_ceiling(SHAPES["qwen3-4b"], H100, "fp8").tok_s


@pytest.fixture
def decision_file(tmp_path: Path) -> Path:
    path = tmp_path / "d.yaml"
    path.write_text(DECISION)
    return path


def test_a_candidate_model_overrides_the_decisions(decision_file: Path) -> None:
    decision = stackdecide.load(decision_file)
    facts = {cid: candidate_model(decision, cid) for cid in decision.candidate_ids}
    assert {cid: (f.shape.name if f.shape else None, f.weights, f.weights_source)
            for cid, f in facts.items()} == {
        "bf16": ("qwen3-4b", "bf16", "decision.model.weights"),
        "fp8": ("qwen3-4b-fp8", "fp8-block", "https://huggingface.co/Qwen/Qwen3-4B-Instruct-2507-"
                "FP8/blob/main/config.json (built in) has quantization_config.quant_method fp8"),
        "fp8-online": ("qwen3-4b", "fp8", "engine.quantization is fp8"),
    }
    assert facts["fp8"].weights == "fp8-block" and facts["fp8"].fp8_checkpoint
    assert decision.model_of("fp8-online").model_dump() == {
        "id": "Qwen/Qwen3-4B-Instruct-2507", "shape": "qwen3-4b", "weights": "fp8", "config": None}
    assert decision.model_of("fp8").model_dump() == {
        "id": "Qwen/Qwen3-4B-Instruct-2507-FP8", "shape": "qwen3-4b-fp8", "weights": None,
        "config": None}
    setup = roofline_setup(decision, "fp8")
    assert isinstance(setup, RooflineSetup) and setup.label == "qwen3-4b-fp8 with fp8-block weights"


def test_score_findings_give_each_candidate_its_own_ceiling(decision_file: Path) -> None:
    findings = [f for f in stackdecide.load(decision_file).score().findings
                if f.code == "target-above-roofline"]
    assert [(f.subject, f.severity, f.computed) for f in findings] == [
        ("bf16", "error", round(BF16_CEILING, 3)),
        ("fp8", "error", round(FP8_BLOCK_CEILING, 3)),
        ("fp8-online", "error", round(FP8_CEILING, 3)),
    ]
    assert "for qwen3-4b-fp8 with fp8-block weights" in findings[1].message
    assert 750 < FP8_BLOCK_CEILING < 770 and 410 < BF16_CEILING < 420


def test_check_json_shows_the_fp8_ceiling(decision_file: Path) -> None:
    result = CliRunner().invoke(main, ["check", str(decision_file), "--format", "json",
                                       "--no-engine-keys"])
    assert result.exit_code == 1, result.output  # the targets are above every ceiling
    findings = json.loads(result.output)["findings"]
    ceilings = {f["subject"]: f["computed"] for f in findings if f["code"] == "target-above-roofline"}
    assert ceilings == {"bf16": round(BF16_CEILING, 3), "fp8": round(FP8_BLOCK_CEILING, 3),
                        "fp8-online": round(FP8_CEILING, 3)}


def test_report_data_has_a_ceiling_row_per_model(decision_file: Path) -> None:
    roofline = build_report(stackdecide.load(decision_file), samples=200).roofline
    assert (roofline.shape, roofline.weights, roofline.skipped) == ("qwen3-4b", "bf16", None)
    assert [(c.shape, c.weights, c.kv_cache_dtype, c.candidates, round(c.decode_tok_s, 3))
            for c in roofline.ceilings] == [
        ("qwen3-4b", "bf16", "auto", ("bf16",), round(BF16_CEILING, 3)),
        ("qwen3-4b-fp8", "fp8-block", "auto", ("fp8",), round(FP8_BLOCK_CEILING, 3)),
        ("qwen3-4b", "fp8", "auto", ("fp8-online",), round(FP8_CEILING, 3)),
    ]


def test_a_candidate_model_config_path_is_read_relative_to_the_decision(tmp_path: Path) -> None:
    folder = tmp_path / "models" / "qwen3-8b"
    folder.mkdir(parents=True)
    (folder / "config.json").write_text(json.dumps(dict(SHAPES["qwen3-8b"].config)))
    text = DECISION.replace("  - id: fp8\n    model: {id: Qwen/Qwen3-4B-Instruct-2507-FP8, "
                            "shape: qwen3-4b-fp8}",
                            "  - id: fp8\n    model: {id: Qwen/Qwen3-8B, config: models/qwen3-8b}"
                            ).replace("model: Qwen/Qwen3-4B-Instruct-2507-FP8,", "model: Qwen/Qwen3-8B,")
    (tmp_path / "d.yaml").write_text(text)
    decision = stackdecide.load(tmp_path / "d.yaml")
    facts = candidate_model(decision, "fp8")
    assert facts.shape is not None and facts.shape.params == SHAPES["qwen3-8b"].params
    assert facts.shape_source == str(folder / "config.json") and facts.weights is None
    (tmp_path / "d.yaml").write_text(text.replace("models/qwen3-8b", "models/nothing"))
    missing = candidate_model(stackdecide.load(tmp_path / "d.yaml"), "fp8")
    assert missing.shape is None and "candidates[1].model.config" in (missing.missing or "")
    assert "no such file" in (missing.missing or "")


def test_memory_checks_use_the_candidate_model(decision_file: Path) -> None:
    text = decision_file.read_text().replace(
        "  - id: fp8-online\n    model: {weights: fp8}\n"
        "    engine: {model: Qwen/Qwen3-4B-Instruct-2507, quantization: fp8,",
        "  - id: fp8-online\n    model: {id: meta-llama/Llama-3.1-70B-Instruct}\n"
        "    engine: {model: /models/llama-70b,")
    decision_file.write_text(text)
    decision = stackdecide.load(decision_file)
    too_big = [(f.subject, f.code) for f in decision.score().findings
               if f.code == "launch:weights-do-not-fit"]
    assert too_big == [("fp8-online", "launch:weights-do-not-fit")]  # 141 GB of weights
    assert candidate_model(decision, "fp8-online").shape_source == (
        "candidates[2].model.id meta-llama/Llama-3.1-70B-Instruct is the built-in shape "
        "llama-3.1-70b")


def test_a_candidate_model_key_is_checked_like_any_other(tmp_path: Path) -> None:
    (tmp_path / "d.yaml").write_text(DECISION.replace("model: {weights: fp8}",
                                                      "model: {weight: fp8}"))
    with pytest.raises(stackdecide.DecisionFileError, match="unknown key 'weight'"):
        stackdecide.load(tmp_path / "d.yaml")
