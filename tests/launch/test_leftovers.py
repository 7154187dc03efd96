"""Leftover servers: found from their run folders, named by preflight, stopped by `stackdecide stop`."""

from __future__ import annotations

import json
import subprocess
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from click.testing import CliRunner

from stackdecide.cli import main
from stackdecide.launch import preflight
from stackdecide.launch.leftovers import check_run, live_run, live_runs, process_of
from stackdecide.launch.process import group_members
from stackdecide.launch.runs import iso, utc_now
from stackdecide.vllm.probe import GpuInfo, GpuProcess

ARGV = ["sleep", "300"]


@pytest.fixture
def leftover(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Iterator[tuple[Path, int]]:
    """A 'server' (a sleeping process group) whose launcher died, as its run folder records it."""
    monkeypatch.chdir(tmp_path)
    run_dir = tmp_path / ".stackdecide" / "runs" / "20261128T000000Z-cpu-bf16"
    run_dir.mkdir(parents=True)
    started_at = iso(utc_now())  # as the launcher takes it, before the process starts
    server = subprocess.Popen(ARGV, start_new_session=True)
    (run_dir / "outcome.json").write_text(json.dumps({
        "ok": True, "candidate_id": "cpu-bf16", "pid": server.pid, "pgid": server.pid,
        "argv": ARGV, "url": "http://127.0.0.1:8000", "stop": None, "started_at": started_at}))
    try:
        yield run_dir, server.pid
    finally:
        if server.poll() is None:
            server.kill()
        server.wait(timeout=5)


def test_ps_lists_a_running_server_of_a_run(leftover: tuple[Path, int]) -> None:
    run_dir, pid = leftover
    (run,) = live_runs()
    assert run.run_dir.name == run_dir.name and run.pgid == pid and run.candidate_id == "cpu-bf16"
    result = CliRunner().invoke(main, ["ps"])
    assert result.exit_code == 0 and run_dir.name in result.output


def test_a_reused_pid_is_not_taken_for_our_server(leftover: tuple[Path, int]) -> None:
    run_dir, _ = leftover
    outcome = json.loads((run_dir / "outcome.json").read_text())
    (run_dir / "outcome.json").write_text(json.dumps({**outcome, "argv": ["python", "-m", "vllm"]}))
    assert live_run(run_dir) is None


def test_stop_stops_the_group_and_records_it(leftover: tuple[Path, int]) -> None:
    run_dir, pid = leftover
    result = CliRunner().invoke(main, ["stop", run_dir.name])
    assert result.exit_code == 0, result.output
    deadline = time.monotonic() + 10
    while group_members(pid) and time.monotonic() < deadline:
        time.sleep(0.1)
    assert group_members(pid) == []
    stop = json.loads((run_dir / "outcome.json").read_text())["stop"]
    assert stop["by"] == "stackdecide stop" and stop["left"] == []
    assert live_runs() == []
    assert CliRunner().invoke(main, ["stop", run_dir.name]).exit_code == 2  # nothing left to stop


def test_preflight_names_the_run_that_holds_the_gpu(leftover: tuple[Path, int]) -> None:
    run_dir, pid = leftover
    gpu = GpuInfo(index=0, name="NVIDIA H100 80GB HBM3", total_bytes=80 * 2**30,
                  free_bytes=2 * 2**30, compute_capability="9.0",
                  processes=(GpuProcess(pid=pid, name="python", used_bytes=70 * 2**30),))
    (problem,) = preflight.check_free_memory({"gpu_memory_utilization": 0.9}, gpu,
                                             runs=live_runs())
    assert problem.code == "gpu-memory-busy"
    assert f"a leftover server of run {run_dir.name}: `stackdecide stop {run_dir.name}`" in \
        problem.message


def _rewrite(run_dir: Path, **changes: object) -> None:
    outcome = json.loads((run_dir / "outcome.json").read_text())
    outcome.update(changes)
    for key in [key for key, value in changes.items() if value is None]:
        del outcome[key]
    (run_dir / "outcome.json").write_text(json.dumps(outcome))


@pytest.mark.parametrize(("changes", "why"), [
    ({"argv": None}, "records no command (argv)"),
    ({"argv": []}, "records no command (argv)"),
    ({"started_at": None}, "records no start time"),
    ({"started_at": "2001-01-01T00:00:00Z"}, "did not start when the run did"),
    ({"process_started": 978307200.0}, "did not start when the run did"),
    ({"argv": ["sleep", "301"]}, "is not the command the run started"),
])
def test_a_run_file_that_does_not_match_its_process_is_never_stopped(
        leftover: tuple[Path, int], changes: dict[str, object], why: str) -> None:
    run_dir, pid = leftover
    _rewrite(run_dir, **changes)
    assert live_runs() == []
    checked = check_run(run_dir)
    assert isinstance(checked, str) and why in checked
    assert CliRunner().invoke(main, ["stop", "--all"]).exit_code == 0  # nothing to stop
    result = CliRunner().invoke(main, ["stop", run_dir.name])
    assert result.exit_code == 2 and why in result.stderr
    assert group_members(pid) == [pid]  # never signalled


def test_a_run_file_naming_another_process_group_is_never_stopped(
        leftover: tuple[Path, int]) -> None:
    """The recorded process matches, but the group to signal is someone else's."""
    run_dir, pid = leftover
    other = subprocess.Popen(["sleep", "300"], start_new_session=True)
    try:
        _rewrite(run_dir, pgid=other.pid)
        assert live_runs() == []
        assert CliRunner().invoke(main, ["stop", "--all"]).exit_code == 0
        assert group_members(other.pid) == [other.pid] and group_members(pid) == [pid]
    finally:
        other.kill()
        other.wait(timeout=5)


def test_the_process_start_time_recorded_by_the_launch_is_matched_exactly(
        leftover: tuple[Path, int]) -> None:
    run_dir, pid = leftover
    process = process_of(pid)
    assert process is not None
    _rewrite(run_dir, started_at=None, process_started=process.started)
    assert [run.pid for run in live_runs()] == [pid]
    _rewrite(run_dir, process_started=process.started + 5)
    assert live_runs() == []
