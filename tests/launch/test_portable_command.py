"""`launch --dry-run` prints the portable `vllm serve` line for the vLLM a candidate pins, with no
vLLM installed (a planning laptop) or another one installed: the flag history renders it
(``vllm.flags``: --attention-backend came with 0.13.0, vllm/engine/arg_utils.py EngineArgs; before
it only VLLM_ATTENTION_BACKEND chose the backend, vllm/envs.py), and each note says what that
release needed changed. Where the installed vLLM is the pinned one, its parser renders it."""

from __future__ import annotations

from pathlib import Path

import pytest
from click.testing import CliRunner

import stackdecide
from engine_support import require_vllm
from stackdecide.cli import main
from stackdecide.launch.plan import LaunchOptions, plan_launch
from stackdecide.vllm.args import load_arg_spec
from stackdecide.vllm.probe import GpuReport

NO_GPU = GpuReport((), unavailable="test: no GPU")
DECISION = """\
schema: stackdecide/v1
decision:
  title: One engine config, pinned to three vLLMs
  hardware: {gpu: NVIDIA H100 80GB HBM3}
  model: {id: meta-llama/Llama-3.1-8B-Instruct}
criteria:
  - {id: speed, weight: 1}
candidates:
  - id: old
    stack: {vllm: "==0.10.1.1"}
    engine: &engine
      model: meta-llama/Llama-3.1-8B-Instruct
      attention_backend: FLASHINFER
      max_model_len: 8192
      use_v2_block_manager: true
    scores: {speed: 5}
  - id: new
    stack: {vllm: "==0.32.0"}
    engine: *engine
    scores: {speed: 5}
  - id: ranged
    stack: {vllm: ">=0.9,<0.13"}
    engine: *engine
    scores: {speed: 5}
"""
COMMAND = "vllm serve meta-llama/Llama-3.1-8B-Instruct --max-model-len 8192"


@pytest.fixture
def decision_file(tmp_path: Path) -> Path:
    path = tmp_path / "pinned.yaml"
    path.write_text(DECISION)
    return path


def _plan(decision_file: Path, candidate: str, tmp_path: Path, **kwargs):
    options = LaunchOptions(python=str(tmp_path / "no-python"), port=8000)  # no vLLM here
    return plan_launch(stackdecide.load(decision_file), candidate, options, gpu=NO_GPU, **kwargs)


def test_without_vllm_a_pin_before_0_13_gets_the_environment_variable(
        decision_file: Path, tmp_path: Path) -> None:
    plan = _plan(decision_file, "old", tmp_path)
    assert plan.command is None and "vllm-unavailable" in [p.code for p in plan.problems]
    assert plan.portable == (f"PYTHONUNBUFFERED=1 VLLM_ATTENTION_BACKEND=FLASHINFER {COMMAND} "
                             "--host 127.0.0.1 --port 8000")
    assert plan.portable_note == ("rendered for vLLM 0.10.1.1 from stackdecide's flag history: "
                                  "stack.vllm ==0.10.1.1; no vLLM installed here")
    said = [note for note in plan.notes if note.startswith("portable command for vLLM")]
    assert said == [
        "portable command for vLLM 0.10.1.1: engine.attention_backend: vLLM 0.10.1.1 has no "
        "--attention-backend (it came with 0.13.0); set through VLLM_ATTENTION_BACKEND",
        "portable command for vLLM 0.10.1.1: warning: engine.use_v2_block_manager: dropped: "
        "vLLM removed 'use_v2_block_manager' in 0.10.0 (last accepted by 0.9.2; the v2 block "
        "manager has been the only one since 0.6.x; the flag had no effect); vLLM 0.10.1.1 has "
        "no such argument"]


def test_without_vllm_a_pin_of_0_32_gets_the_flag(decision_file: Path, tmp_path: Path) -> None:
    plan = _plan(decision_file, "new", tmp_path)
    assert plan.portable == ("PYTHONUNBUFFERED=1 vllm serve meta-llama/Llama-3.1-8B-Instruct "
                             "--attention-backend FLASHINFER --max-model-len 8192 --host 127.0.0.1 "
                             "--port 8000")
    assert plan.portable_note.startswith("rendered for vLLM 0.32.0 from stackdecide's flag "
                                         "history: stack.vllm ==0.32.0")
    ranged = _plan(decision_file, "ranged", tmp_path)  # the newest 0.9-0.12 release read
    assert "VLLM_ATTENTION_BACKEND=FLASHINFER" in (ranged.portable or "")
    assert ranged.portable_note.startswith(
        "rendered for vLLM 0.12.0 from stackdecide's flag history: stack.vllm >=0.9,<0.13: the "
        "newest release read that it admits")


def test_the_dry_run_prints_it(decision_file: Path, tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["launch", str(decision_file), "--candidate", "old",
                                       "--dry-run", "--port", "8000",
                                       "--python", str(tmp_path / "no-python")])
    assert result.exit_code == 1  # nothing can start here: no vLLM
    lines = result.output.splitlines()
    at = lines.index("on the host that serves it (rendered for vLLM 0.10.1.1 from stackdecide's "
                     "flag history: stack.vllm ==0.10.1.1; no vLLM installed here):")
    assert lines[at + 1] == (f"  PYTHONUNBUFFERED=1 VLLM_ATTENTION_BACKEND=FLASHINFER {COMMAND} "
                             "--host 127.0.0.1 --port 8000")
    assert "note: portable command for vLLM 0.10.1.1: engine.attention_backend: vLLM 0.10.1.1 " \
           "has no --attention-backend (it came with 0.13.0); set through " \
           "VLLM_ATTENTION_BACKEND" in lines


def test_an_installed_vllm_renders_its_own_pin_and_the_table_others(decision_file: Path,
                                                                    tmp_path: Path) -> None:
    require_vllm()
    spec = load_arg_spec()
    decision = stackdecide.load(decision_file)
    options = LaunchOptions(port=8000, use_current_env=True)
    other = plan_launch(decision, "old", options, spec=spec, gpu=NO_GPU)
    assert other.command is not None and "--attention-backend" in other.command.argv
    assert "VLLM_ATTENTION_BACKEND=FLASHINFER" in (other.portable or "")
    assert other.portable_note.endswith(f"; the installed vLLM is {spec.vllm_version}")
    if not spec.vllm_version.startswith("0.32.0"):
        pytest.skip(f"the installed vLLM is {spec.vllm_version}, not the pinned 0.32.0")
    own = plan_launch(decision, "new", options, spec=spec, gpu=NO_GPU)
    assert own.portable_note.startswith(f"rendered for the installed vLLM {spec.vllm_version} (")
    assert "--attention-backend FLASHINFER" in (own.portable or "")
