"""A server with an API key: the readiness probes and the benchmark send it; run folders are their
owner's only; code loading refused at launch unless allowed, and such a refusal is no fault of the
candidate. The server is ``engine_inputs.FAKE_ENGINE``, which wants the key as vLLM does."""

from __future__ import annotations

import stat
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

import stackdecide
from engine_inputs import faked, plan, write_decision
from engine_support import require_vllm
from stackdecide import loop
from stackdecide.bench.runner import BenchConfig, BenchError, run_bench
from stackdecide.bench.stream import Timeouts
from stackdecide.cli import main
from stackdecide.launch.plan import LaunchOptions, LaunchRefused, free_port
from stackdecide.launch.runs import COMMAND_FILE, LOG_FILE, OUTCOME_FILE
from stackdecide.launch.server import ServerHandle, start_server
from stackdecide.loop import launch_records
from stackdecide.vllm.logs import fault_of

KEY = "sk-test-0123456789abcdef"
OPTIONS = LaunchOptions(timeout_s=30, grace_s=1.0)


@pytest.fixture(autouse=True)
def no_key_of_our_own(monkeypatch: pytest.MonkeyPatch) -> None:
    """The server inherits this process's environment: a VLLM_API_KEY here would be its key."""
    monkeypatch.delenv("VLLM_API_KEY", raising=False)


@pytest.fixture
def keyed_server(tmp_path: Path) -> Iterator[ServerHandle]:
    """A started server whose key comes from the candidate's env (``VLLM_API_KEY``)."""
    launch = faked(plan(write_decision(tmp_path, env={"VLLM_API_KEY": KEY})))
    server = start_server(launch, OPTIONS)
    try:
        yield server
    finally:
        server.stop()


def _bench_config(server: ServerHandle) -> BenchConfig:
    return BenchConfig(url=server.url, model=server.served_model_name, input_len=4, output_len=2,
                       num_prompts=2, warmup=0, server_metrics=False, metrics_interval_s=0.0,
                       timeouts=Timeouts(request_s=10, stall_s=5, connect_s=2))


@pytest.mark.slow
def test_the_readiness_probes_send_the_key(keyed_server: ServerHandle) -> None:
    """/v1/models and the one-token completion answer 401 without the key: the launch became
    ready only because the probes sent it."""
    assert keyed_server.outcome.ok and keyed_server.api_key == KEY
    assert KEY not in repr(keyed_server)


@pytest.mark.slow
def test_the_benchmark_sends_the_key(keyed_server: ServerHandle) -> None:
    result = run_bench(_bench_config(keyed_server), api_key=keyed_server.api_key)
    assert result.complete and not result.failed_requests
    with pytest.raises(BenchError, match="401"):
        run_bench(_bench_config(keyed_server))


@pytest.mark.slow
def test_the_benchmark_reads_the_key_vllm_reads(keyed_server: ServerHandle,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """``stackdecide bench --url`` against a server with a key: $VLLM_API_KEY."""
    monkeypatch.setenv("VLLM_API_KEY", KEY)
    assert run_bench(_bench_config(keyed_server)).complete


@pytest.mark.slow
def test_the_loop_benchmarks_a_server_with_the_engines_key(tmp_path: Path,
                                                           monkeypatch: pytest.MonkeyPatch) -> None:
    """``launch --bench``: the engine's api_key goes to the server as VLLM_API_KEY, and the
    probes and every benchmark request carry it."""
    path = write_decision(tmp_path, {"api_key": KEY}, benchmark={"scenarios": [
        {"scenario": "decode", "input_len": 4, "output_len": 2, "num_prompts": 2}]})
    launch = faked(plan(path))
    assert launch.command is not None and launch.command.env["VLLM_API_KEY"] == KEY
    assert KEY not in launch.command.argv
    monkeypatch.setattr(loop, "plan_launch", lambda decision, candidate, options: launch)
    measurement = loop.run_candidate(stackdecide.load(path), "a", OPTIONS)
    assert measurement.outcome.ok and measurement.error is None, measurement.error
    (result,) = measurement.results
    assert result.complete and not result.failed_requests


@pytest.mark.slow
def test_run_folders_are_their_owners_only(keyed_server: ServerHandle) -> None:
    assert stat.S_IMODE(keyed_server.run_dir.stat().st_mode) == 0o700
    for name in (COMMAND_FILE, OUTCOME_FILE, LOG_FILE):
        assert stat.S_IMODE((keyed_server.run_dir / name).stat().st_mode) == 0o600, name


def test_a_refused_run_folder_is_its_owners_only(tmp_path: Path) -> None:
    launch = plan(write_decision(tmp_path, {"trust_remote_code": True}))
    with pytest.raises(LaunchRefused) as refused:
        start_server(launch, OPTIONS)
    assert refused.value.outcome is not None
    run_dir = Path(refused.value.outcome.run_dir)
    assert stat.S_IMODE(run_dir.stat().st_mode) == 0o700
    assert {stat.S_IMODE((run_dir / name).stat().st_mode)
            for name in (COMMAND_FILE, OUTCOME_FILE)} == {0o600}


def test_refused_code_loading_says_nothing_of_the_candidate(tmp_path: Path) -> None:
    """A launch refused only because code loading was not allowed never ran the configuration:
    no launch_ok = 0 is recorded against it. With another error beside it, it is the
    candidate's."""
    launch = plan(write_decision(tmp_path, {"trust_remote_code": True},
                                 {"LD_PRELOAD": "/tmp/x.so"}))
    with pytest.raises(LaunchRefused) as refused:
        start_server(launch, OPTIONS)
    outcome = refused.value.outcome
    assert outcome is not None and outcome.fault == "environment"
    assert launch_records(outcome) == []
    assert fault_of("refused", ("engine-loads-code", "value-is-an-option")) == "candidate"


def test_the_launch_option_allows_code_loading(tmp_path: Path) -> None:
    require_vllm()
    path = write_decision(tmp_path, {"trust_remote_code": True, "load_format": "dummy"})
    port = str(free_port())
    result = CliRunner().invoke(main, ["launch", str(path), "--candidate", "a", "--dry-run",
                                       "--port", port])
    assert result.exit_code == 1
    assert "error: engine.trust_remote_code: trust_remote_code: True makes the server load" \
           in result.output
    allowed = CliRunner().invoke(main, ["launch", str(path), "--candidate", "a", "--dry-run",
                                        "--port", port, "--allow-code-loading"])
    assert allowed.exit_code == 0, allowed.output
    assert "warning: engine.trust_remote_code:" in allowed.output
    assert "--trust-remote-code" in allowed.output

