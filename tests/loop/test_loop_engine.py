"""The loop on the real CPU engine: launch, benchmark, store evidence, re-score, stop everything."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from engine_support import CPU_DECISION, assert_group_gone, require_vllm
from stackdecide.evidence.store import EvidenceStore

pytestmark = pytest.mark.engine


def stackdecide_cli(*args: str, cwd: Path, timeout: float = 900) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "stackdecide", *args], cwd=cwd, text=True,
                          capture_output=True, timeout=timeout, check=False)


def test_launch_winner_bench_feeds_measurements_back(tmp_path: Path) -> None:
    require_vllm()
    store = tmp_path / "evidence.db"
    result = stackdecide_cli("launch", str(CPU_DECISION), "--winner", "--bench",
                             "--dummy-weights", "--evidence", str(store), cwd=tmp_path)
    assert result.returncode == 0, result.stderr[-3000:]
    out = result.stdout
    assert "before -> after:" in out and "measured cells" in out
    with EvidenceStore(store) as evidence:
        records = list(evidence.load(candidate="cpu-bf16"))
    metrics = {r.metric for r in records}
    assert {"launch_ok", "startup_s", "output_tok_s", "ttft_ms_p50"} <= metrics
    launch_ok = next(r for r in records if r.metric == "launch_ok")
    assert launch_ok.value == 1.0 and launch_ok.hardware is not None
    assert launch_ok.software["vllm"].startswith("0.")
    # The winner's measured cells are marked in the final ranking, with their raw values.
    assert "output_tok_s" in out.split("measured cells (*")[1]
    # Nothing of the server is left: its process group is gone.
    run_dir = Path(launch_ok.source.removeprefix("run ")).name
    outcome = json.loads(next(tmp_path.glob(f".stackdecide/runs/{run_dir}/outcome.json"))
                         .read_text())
    assert outcome["ok"] and outcome["stop"] is not None
    assert_group_gone(outcome["pgid"])


def test_refused_launch_is_recorded_as_evidence(tmp_path: Path) -> None:
    require_vllm()
    text = CPU_DECISION.read_text().replace("  seed: 0\n", "  seed: 0\n  kv_cache_dtype: fp8_e5m2\n"
                                            "  quantization: fp8\n", 1)
    decision = tmp_path / "refused.yaml"
    decision.write_text(text)
    store = tmp_path / "evidence.db"
    result = stackdecide_cli("launch", str(decision), "--candidate", "cpu-bf16",
                             "--evidence", str(store), cwd=tmp_path, timeout=300)
    assert result.returncode == 1
    assert "fp8_e5m2" in result.stderr
    with EvidenceStore(store) as evidence:
        [record] = list(evidence.load(metric="launch_ok"))
    assert record.value == 0.0 and record.note.startswith("refused")
