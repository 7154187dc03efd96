"""Replicates that mean something: every scenario of every launch sends prompts of its own."""

from __future__ import annotations

import numpy as np

from stackdecide.bench.runner import make_prompts
from stackdecide.loop import bench_configs, derive_seed
from stackdecide.model.schema import BenchmarkSpec, BenchScenario
from stackdecide.orchestrate import launch_seeds


def test_no_two_scenarios_or_launches_share_a_seed() -> None:
    """Launches numbered by what the store already holds (a run resumed on it goes on counting),
    scenarios by their place: under two run seeds, no two scenarios of 100 launches share prompts."""
    launches = [seed for run_seed in (0, 1) for launched in range(0, 50, 5)
                for seed in launch_seeds(run_seed, launched, ["a", "b", "c", "d", "e"]).values()]
    assert len(set(launches)) == 100
    scenarios = {derive_seed(launch, index) for launch in launches for index in range(4)}
    assert len(scenarios) == 400


def test_repeated_benchmarks_send_different_prompts() -> None:
    """Same seed twice would let the prefix cache serve the repeat (7,048 -> 8,504 tok/s on an
    H100); prompts of different launches and scenarios must not even share a first block."""
    scenarios = [BenchScenario(scenario="decode", input_len=32, output_len=8, num_prompts=4),
                 BenchScenario(scenario="throughput", concurrency=[4], input_len=64,
                               output_len=8, num_prompts=4)]
    firsts = []
    for launch_seed in (11, 12):
        for config in bench_configs("http://127.0.0.1:1", "m", scenarios, seed=launch_seed):
            prompts = make_prompts(np.random.default_rng(config.seed), 4, config.input_len or 1,
                                   4096)
            firsts += [tuple(p[:16]) for p in prompts]  # one KV block of 16 tokens
    assert len(set(firsts)) == len(firsts)


def test_the_decisions_prompt_mode_reaches_every_load_scenario() -> None:
    """A decision on real weights sends text its server tokenizes; the default stays token ids."""
    scenarios = [BenchScenario(scenario="decode"), BenchScenario(scenario="throughput"),
                 BenchScenario(scenario="quality", reference="ref")]
    text = BenchmarkSpec(scenarios=scenarios, prompt_mode="text")
    assert [c.prompt_mode for c in bench_configs("http://h:1", "m", scenarios, 0, text)] == \
        ["text", "text"]
    assert {c.prompt_mode for c in bench_configs("http://h:1", "m", scenarios, 0)} == {"token-ids"}
    assert BenchmarkSpec().prompt_mode == "token-ids"
