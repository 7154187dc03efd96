"""The supervisor stops a process group when the launcher's pipe closes unsaid, and only then."""

from __future__ import annotations

import json
import os
import subprocess
import time
from pathlib import Path

import pytest

from stackdecide.launch.leftovers import process_of
from stackdecide.launch.process import group_members
from stackdecide.launch.supervision import start_supervisor
from stackdecide.launch.supervisor import supervise


def _group(tmp_path: Path) -> subprocess.Popen[bytes]:
    """A process group of two sleeping processes, standing in for an engine and its worker."""
    (tmp_path / "outcome.json").write_text(json.dumps({"ok": False, "failure": None,
                                                       "stop": None}))
    return subprocess.Popen(["sh", "-c", "sleep 60 & sleep 60"], start_new_session=True)


def _wait_members(pgid: int, count: int, seconds: float = 15.0) -> list[int]:
    """The group's members once it has ``count`` (the shell forks its children after it starts)."""
    deadline = time.monotonic() + seconds
    while len(group_members(pgid)) < count and time.monotonic() < deadline:
        time.sleep(0.05)
    return group_members(pgid)


def _wait_gone(pgid: int, seconds: float = 15.0) -> list[int]:
    deadline = time.monotonic() + seconds
    while group_members(pgid) and time.monotonic() < deadline:
        time.sleep(0.1)
    return group_members(pgid)


def test_end_of_file_without_a_word_stops_the_group_and_records_it(tmp_path: Path) -> None:
    engine = _group(tmp_path)
    supervisor = start_supervisor(engine.pid, tmp_path, grace_s=2.0)
    assert len(_wait_members(engine.pid, 2)) >= 2
    assert supervisor.pipe is not None
    os.close(supervisor.pipe)  # what the kernel does when the launcher is SIGKILLed
    supervisor.pipe = None
    assert _wait_gone(engine.pid) == []
    engine.wait(timeout=5)
    supervisor.process.wait(timeout=15)
    outcome = json.loads((tmp_path / "outcome.json").read_text())
    assert outcome["failure"] == "launcher_died" and outcome["stop"]["by"] == "supervisor"
    assert outcome["stop"]["left"] == []


@pytest.mark.parametrize("word", ["done", "detach"])
def test_a_launcher_that_says_goodbye_keeps_its_server(tmp_path: Path, word: str) -> None:
    engine = _group(tmp_path)
    try:
        supervisor = start_supervisor(engine.pid, tmp_path, grace_s=2.0)
        supervisor.release(word)
        assert supervisor.process.returncode == 0
        assert len(group_members(engine.pid)) >= 2  # not the supervisor's to stop
        assert json.loads((tmp_path / "outcome.json").read_text())["failure"] is None
    finally:
        os.killpg(engine.pid, 9)
        engine.wait(timeout=5)


def _closed_pipe() -> int:
    """The read end of a pipe whose writer is gone: what a killed launcher leaves."""
    read_end, write_end = os.pipe()
    os.close(write_end)
    return read_end


def test_a_group_whose_leader_started_at_another_time_is_not_stopped(tmp_path: Path) -> None:
    """The group's number went to another process group: not the supervisor's to stop."""
    engine = _group(tmp_path)
    try:
        leader = process_of(engine.pid)
        assert leader is not None and len(_wait_members(engine.pid, 2)) >= 2
        pipe = _closed_pipe()
        assert supervise(engine.pid, tmp_path, 2.0, pipe, started=leader.started - 60) == "eof"
        os.close(pipe)
        assert len(group_members(engine.pid)) >= 2
        assert json.loads((tmp_path / "outcome.json").read_text())["stop"] is None
        pipe = _closed_pipe()
        assert supervise(engine.pid, tmp_path, 2.0, pipe, started=leader.started) == "eof"
        os.close(pipe)
        assert _wait_gone(engine.pid) == []
    finally:
        if group_members(engine.pid):
            os.killpg(engine.pid, 9)
        engine.wait(timeout=5)
