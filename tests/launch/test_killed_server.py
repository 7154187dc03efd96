"""A server killed from outside after start-up is the environment's fault, and says so."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import pytest

from stackdecide.launch.runs import LaunchOutcome
from stackdecide.launch.server import LaunchFailed, ServerHandle


def _handle(tmp_path: Path, log: str) -> ServerHandle:
    (tmp_path / "server.log").write_text(log)
    process = subprocess.Popen(["sleep", "60"], start_new_session=True)
    outcome = LaunchOutcome(ok=True, candidate_id="a", decision_file=None, engine_sha256="0" * 64,
                            run_dir=str(tmp_path), startup_s=1.0)
    return ServerHandle("http://127.0.0.1:1", "m", process.pid, process.pid, tmp_path, 1.0,
                        outcome, process)


def test_a_kill_from_outside_is_classified_as_killed(tmp_path: Path) -> None:
    server = _handle(tmp_path, "INFO Application startup complete.\n")
    server.process.send_signal(signal.SIGKILL)  # somebody else's kill -9
    server.process.wait(timeout=5)
    with pytest.raises(LaunchFailed) as caught:
        server.check()
    outcome = caught.value.outcome
    assert (outcome.failure, outcome.exit_code) == ("killed", -9)
    assert outcome.reason == "the server died after start-up: killed from outside by signal 9 " \
        "after start-up"
    assert outcome.fault == "environment"


def test_a_crash_with_its_own_error_stays_the_candidates_fault(tmp_path: Path) -> None:
    server = _handle(tmp_path, "ERROR torch.OutOfMemoryError: CUDA out of memory. Tried to allocate\n")
    server.process.send_signal(signal.SIGKILL)
    server.process.wait(timeout=5)
    with pytest.raises(LaunchFailed) as caught:
        server.check()
    assert caught.value.outcome.failure == "cuda_out_of_memory"
    assert caught.value.outcome.fault == "candidate"
