"""The capacity scenario on the real CPU engine: the tiny model of criteria/cpu.yaml under a loose
SLO, launched, searched and stored by the loop, the cost included."""

from __future__ import annotations

from pathlib import Path

import pytest

import stackdecide
from engine_support import CPU_DECISION, ENGINE_TIMEOUT_S, require_vllm
from stackdecide.evidence.store import EvidenceStore
from stackdecide.launch.plan import LaunchOptions
from stackdecide.loop import measure
from stackdecide.report.bench import capacity_lines

pytestmark = pytest.mark.engine

BENCHMARK = """
benchmark:
  slo: {e2el_ms_p99: 1500, min_goodput: 0.9}
  workload: {input_len: 32, output_len: 32}
  scenarios:
    - {scenario: capacity, search: concurrency, start: 4, growth: 4, max_load: 4096,
       precision: 0.5, num_prompts: 8, max_probes: 10}
"""


def test_capacity_of_the_tiny_model_is_found_and_stored(tmp_path: Path) -> None:
    require_vllm()
    text = CPU_DECISION.read_text()
    text = text[:text.index("\nbenchmark:")] + BENCHMARK
    text = text.replace("    gpu: cpu\n", "    gpu: cpu\n    price_per_gpu_hour: 0.5\n", 1)
    decision = stackdecide.parse(text, str(CPU_DECISION))
    options = LaunchOptions(port=None, timeout_s=ENGINE_TIMEOUT_S, runs_dir=tmp_path)
    with EvidenceStore(tmp_path / "evidence.db") as store:
        result = measure(decision, "cpu-bf16", store, options)
        stored = store.load(candidate="cpu-bf16")
    assert result.error is None, result.error
    capacity = result.results[0].capacity
    assert capacity is not None
    print("\n".join(capacity_lines(capacity)))
    assert capacity.last_pass is not None, capacity.stopped_because
    # the loose SLO is met at low load and missed well below the highest allowed load: past
    # saturation the end-to-end latency grows with the queue, so even a fast machine misses 1.5 s
    # long before 4,096 requests in flight (a CI machine met it at 256)
    assert capacity.first_fail is not None, capacity.stopped_because
    assert capacity.first_fail.load > capacity.last_pass.load
    # near saturation the p99 of a few hundred requests is noisy, so a fast machine's margins need
    # not fall with the load and the probe budget may close the search first (a CI machine's did,
    # at [293, 441]); then the search says so and the bracket it stored is the one it measured
    if capacity.converged:
        assert capacity.first_fail.load / capacity.last_pass.load <= 1.5 or \
            capacity.first_fail.load - capacity.last_pass.load == 1
    else:
        assert capacity.stopped_because.startswith("probe budget of 10 spent")
        assert len(capacity.probes) == 10
    metrics = {r.metric: r for r in stored if "probe" not in r.scenario}
    assert metrics["capacity_concurrency"].value == capacity.capacity_concurrency
    assert metrics["capacity_req_s"].value == pytest.approx(capacity.capacity_req_s)
    assert metrics["cost_per_mtok_out"].value == pytest.approx(
        0.5 / 3600 / (capacity.capacity_output_tok_s / 1e6))
    probes = {r.scenario["probe"] for r in stored if "probe" in r.scenario}
    assert probes == set(range(len(capacity.probes)))
    assert all(r.scenario["prompt_mode"] == "token-ids" for r in stored if "probe" in r.scenario)
