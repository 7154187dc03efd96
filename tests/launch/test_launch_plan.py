"""`stackdecide launch` before anything starts: choosing the decision, dry runs, refusals."""

from __future__ import annotations

import json
import socket
import sys
from pathlib import Path

import pytest
from click.testing import CliRunner

import stackdecide
from engine_support import CPU_DECISION, ROOT, require_vllm
from stackdecide.audit import engine_config
from stackdecide.cli import main
from stackdecide.errors import StackdecideError
from stackdecide.launch import plan as launcher
from stackdecide.launch.plan import LaunchOptions, LaunchRefused, plan_launch
from stackdecide.launch.runs import read_outcome
from stackdecide.launch.server import start_server
from stackdecide.model.schema import ModelSpec
from stackdecide.state import record_last_decision
from stackdecide.vllm.probe import GpuReport

NO_GPU = GpuReport((), unavailable="test: no GPU")


def test_dry_run_refuses_the_reports_recommendation() -> None:
    """The report's recommendation cannot start: e5m2 with an FP8 checkpoint, and 128k tokens of
    KV cache do not fit 16 GiB; use_v2_block_manager is dropped (vLLM removed it in 0.10.0), and
    trust_remote_code is refused without --allow-code-loading. None of its candidates can, so
    there is no winner to launch."""
    require_vllm()
    decision = str(ROOT / "criteria/rtx4090.yaml")
    result = CliRunner().invoke(main, ["launch", decision, "--winner", "--dry-run",
                                       "--use-current-env"])
    assert result.exit_code == 1, result.output
    assert "no candidate is feasible, so there is no winner to launch" in result.output
    result = CliRunner().invoke(main, ["launch", decision, "--candidate",
                                       "vllm-flashinfer-torch271", "--dry-run",
                                       "--use-current-env"])
    assert result.exit_code == 1, result.output
    out = result.output
    assert "candidate: vllm-flashinfer-torch271\n" in out
    assert "error: engine.kv_cache_dtype: vLLM refuses an fp8_e5m2 KV cache with an FP8 " \
           "checkpoint" in out
    assert "[kv-cache-too-small]" in out and "max_model_len 131072 needs 9.00 GiB" in out
    assert "16.00 GiB x 0.85" in out
    assert "warning: engine.use_v2_block_manager: dropped: vLLM removed 'use_v2_block_manager' " \
           "in 0.10.0" in out
    assert "--attention-backend FLASHINFER" in out and "--kv-cache-dtype fp8_e5m2" in out
    assert "error: engine.trust_remote_code: trust_remote_code: True makes the server load " \
           "Python code shipped with the model" in out
    assert "refused: 3 problems above; nothing was started" in out


def test_dry_run_without_vllm_still_shows_the_static_problems(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["launch", str(ROOT / "criteria/rtx4090.yaml"),
                                       "--candidate", "vllm-cuda-torch271", "--dry-run",
                                       "--python", str(tmp_path / "no-python")])
    assert result.exit_code == 1
    assert "[vllm-unavailable]" in result.output
    assert "[fp8-e5m2-with-fp8-checkpoint]" in result.output
    assert "FLASH_ATTN has no fp8_e5m2 KV cache" in result.output


def test_dry_run_of_the_cpu_decision_shows_the_exact_command() -> None:
    require_vllm()
    result = CliRunner().invoke(main, ["launch", str(CPU_DECISION), "--winner", "--dry-run",
                                       "--port", "18777"])
    assert result.exit_code == 0, result.output
    command = next(line for line in result.output.splitlines()
                   if "-m vllm.entrypoints" in line and "=" not in line.split()[0])
    words = command.split()
    assert words[0] == sys.executable and words[words.index("--load-format") + 1] == "dummy"
    assert words[words.index("--served-model-name") + 1] == "stackdecide/tiny-qwen3"
    assert words[-4:] == ["--host", "127.0.0.1", "--port", "18777"]
    assert "  VLLM_CPU_KVCACHE_SPACE=1" in result.output


def test_which_decision_file(tmp_path: Path) -> None:
    with pytest.raises(StackdecideError, match="pass FILE, or run `stackdecide score FILE`"):
        launcher.resolve_decision_file(None, tmp_path)
    (tmp_path / "criteria").mkdir()
    (tmp_path / "criteria" / "only.yaml").write_text("x")
    path, why = launcher.resolve_decision_file(None, tmp_path)
    assert path.name == "only.yaml" and "only decision file in criteria/" in why
    (tmp_path / "criteria" / "second.yaml").write_text("x")
    with pytest.raises(StackdecideError, match="criteria/ holds 2 files"):
        launcher.resolve_decision_file(None, tmp_path)
    record_last_decision(CPU_DECISION, tmp_path)
    path, why = launcher.resolve_decision_file(None, tmp_path)
    assert path == CPU_DECISION and "last scored here" in why
    assert launcher.resolve_decision_file("a.yaml", tmp_path)[0] == Path("a.yaml")


def test_cli_needs_exactly_one_of_winner_and_candidate(tmp_path: Path,
                                                      monkeypatch: pytest.MonkeyPatch) -> None:
    runner = CliRunner()
    both = runner.invoke(main, ["launch", str(CPU_DECISION), "--winner", "--candidate", "x"])
    neither = runner.invoke(main, ["launch", str(CPU_DECISION)])
    assert both.exit_code == neither.exit_code == 2
    unknown = runner.invoke(main, ["launch", str(CPU_DECISION), "--candidate", "nope",
                                   "--dry-run"])
    assert unknown.exit_code == 2 and "no candidate 'nope'" in unknown.output
    monkeypatch.chdir(tmp_path)
    lost = runner.invoke(main, ["launch", "--winner", "--dry-run"])
    assert lost.exit_code == 2 and "which decision? pass FILE" in lost.output


def test_a_busy_port_is_refused_before_anything_starts(tmp_path: Path) -> None:
    decision = stackdecide.load(CPU_DECISION)
    with socket.socket() as holder:
        holder.bind(("127.0.0.1", 0))
        holder.listen()
        port = holder.getsockname()[1]
        options = LaunchOptions(port=port, runs_dir=tmp_path)
        plan = plan_launch(decision, "cpu-bf16", options, gpu=NO_GPU)
        assert "port-in-use" in [p.code for p in plan.problems] and not plan.ok
        with pytest.raises(LaunchRefused, match="already in use") as refused:
            start_server(plan, options)
    outcome = read_outcome(refused.value.outcome.run_dir)
    assert outcome["ok"] is False and outcome["failure"] == "refused"
    assert outcome["pid"] is None  # nothing was started
    assert "already in use" in outcome["reason"]
    assert json.loads((Path(outcome["run_dir"]) / "command.json").read_text())["candidate_id"] \
        == "cpu-bf16"


def test_deep_gemm_is_off_for_block_fp8_on_hopper_unless_the_candidate_says() -> None:
    facts = engine_config.model_facts({}, ModelSpec(id="q", shape="qwen3-4b", weights="fp8-block"))
    hopper = engine_config.TargetHardware("gpu", 80e9, "9.0", "test")
    env, notes = launcher.launcher_env({}, facts, hopper)
    assert env["VLLM_USE_DEEP_GEMM"] == "0" and "DeepGEMM" in notes[0]
    chosen, _ = launcher.launcher_env({"VLLM_USE_DEEP_GEMM": "1"}, facts, hopper)
    assert chosen["VLLM_USE_DEEP_GEMM"] == "1"
    ada = engine_config.TargetHardware("gpu", 16e9, "8.9", "test")
    assert "VLLM_USE_DEEP_GEMM" not in launcher.launcher_env({}, facts, ada)[0]
    bf16 = engine_config.model_facts({}, ModelSpec(id="q", shape="qwen3-4b", weights="bf16"))
    assert "VLLM_USE_DEEP_GEMM" not in launcher.launcher_env({}, bf16, hopper)[0]


def test_dummy_weights_need_a_model_shape(tmp_path: Path) -> None:
    decision = stackdecide.load(ROOT / "criteria/rtx4090.yaml")
    plain = decision.model.decision.model
    assert plain is not None and plain.shape == "qwen3-4b"
    plan = plan_launch(decision, "vllm-cuda-torch271",
                       LaunchOptions(dummy_weights=True, port=None, runs_dir=tmp_path,
                                     python=str(tmp_path / "none")), gpu=NO_GPU)
    assert any("scaffolded into its folder under" in note and "compile cache is reused" in note
               for note in plan.notes)
    assert plan.scaffold_shape == "qwen3-4b" and plan.scaffold_fp8


HANGING_ENGINE = """
import sys, time
print("(EngineCore pid=1) ERROR 11-28 09:31:05 [core.py:1330] RuntimeError: Worker failed with "
      "error 'CUDA error: CUBLAS_STATUS_INTERNAL_ERROR when calling `cublasCreate(handle)`'",
      flush=True)
time.sleep(300)  # the API server outlives its dead engine
"""


@pytest.mark.slow
def test_an_engine_that_logs_a_fatal_error_but_hangs_fails_fast(tmp_path: Path) -> None:
    require_vllm()
    from dataclasses import replace

    from stackdecide.launch import server as launch_server_module
    from stackdecide.launch.server import LaunchFailed

    decision = stackdecide.load(CPU_DECISION)
    options = LaunchOptions(runs_dir=tmp_path, timeout_s=120, grace_s=1.0)
    plan = plan_launch(decision, "cpu-bf16", options, gpu=NO_GPU)
    assert plan.command is not None
    hanging = replace(plan, command=replace(plan.command,
                                            argv=(sys.executable, "-c", HANGING_ENGINE)))
    started = launch_server_module.time.monotonic()
    with pytest.raises(LaunchFailed) as failed:
        start_server(hanging, options)
    waited = launch_server_module.time.monotonic() - started
    outcome = failed.value.outcome
    assert outcome.failure == "engine_died"
    assert any("CUBLAS_STATUS_INTERNAL_ERROR" in line for line in outcome.evidence)
    assert waited < 60  # the fatal line plus its grace, not the 120 s timeout
