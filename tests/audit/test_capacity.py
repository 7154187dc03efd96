"""Capacity before anything starts: weights, KV bytes per token, tokens and sequences that fit,
checked against what vLLM itself logged (recorded H200 runs) and shown by check and launch."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import stackdecide
from engine_support import vllm_installed
from stackdecide.audit.capacity import Capacity, capacity_of, decision_capacity
from stackdecide.audit.engine_config import TargetHardware, check_max_num_seqs, model_facts
from stackdecide.cli import main
from stackdecide.facts import memory
from stackdecide.facts.memory import GIB
from stackdecide.facts.shapes import SHAPES
from stackdecide.model.schema import ModelSpec
from stackdecide.vllm.logs import LoggedCapacity, logged_capacity

ROOT = Path(__file__).resolve().parents[2]
CPU = ROOT / "criteria" / "cpu.yaml"
H200_RUNS = ROOT / "docs" / "results" / "hopper-h200" / "runs"


def test_the_cpu_decision_capacity() -> None:
    rows = [(c.candidate, c.model, c.weights_bytes, c.kv_bytes_per_token, c.kv_budget_bytes,
             c.tokens, c.max_model_len, c.concurrency, c.skipped)
            for c in decision_capacity(stackdecide.load(CPU))]
    tiny = SHAPES["tiny"].params
    assert rows == [
        ("cpu-bf16", "tiny (bf16, --dtype bfloat16)", 2 * tiny, 1024, GIB, 1_048_576, 1024,
         1024.0, None),
        ("cpu-fp32", "tiny (bf16, --dtype float32)", 4 * tiny, 2048, GIB, 524_288, 1024, 512.0,
         None),
        ("cpu-bf16-small-batch", "tiny (bf16, --dtype bfloat16)", 2 * tiny, 1024, GIB,
         1_048_576, 1024, 1024.0, None),
        ("cpu-bf16-no-prefix-cache", "tiny (bf16, --dtype bfloat16)", 2 * tiny, 1024, GIB,
         1_048_576, 1024, 1024.0, None),
    ]


@pytest.mark.parametrize("run", sorted(p.name for p in H200_RUNS.iterdir()))
def test_planned_capacity_is_what_vllm_logged_on_the_h200(run: str) -> None:
    """hopper.yaml's four candidates as vLLM 0.26 sized them on an H200 (140 GiB in the file,
    140.4 GiB on the card): planned tokens and concurrency within 1% of the logged ones."""
    logged = logged_capacity((H200_RUNS / run / "server.log").read_text().splitlines())
    assert logged is not None and logged.device == "GPU" and logged.max_model_len == 8192
    candidate = run.split("-", 1)[1]
    decision = stackdecide.load(ROOT / "criteria" / "hopper.yaml")
    planned = next(c for c in decision_capacity(decision) if c.candidate == candidate)
    assert planned.max_model_len == logged.max_model_len
    assert planned.tokens == pytest.approx(logged.tokens, rel=0.01)
    assert planned.concurrency == pytest.approx(logged.concurrency, rel=0.01)


def test_logged_capacity_in_either_layout() -> None:
    one_line = ["(EngineCore pid=1) INFO 11-28 06:20:57 [kv_cache_utils.py:2327] CPU KV cache "
                "size: 1,048,576 tokens, Maximum concurrency for 1,024 tokens per request: "
                "1024.00x"]
    assert logged_capacity(one_line) == LoggedCapacity("CPU", 1_048_576, 1024, 1024.0)
    two_lines = ["INFO [kv_cache_utils.py:2177] GPU KV cache size: 802,176 tokens",
                 "INFO [kv_cache_utils.py:2178] Maximum concurrency for 8,192 tokens per "
                 "request: 97.92x"]
    assert logged_capacity(two_lines) == LoggedCapacity("GPU", 802_176, 8192, 97.92)
    assert logged_capacity(["Starting vLLM API server"]) is None


H100 = TargetHardware("gpu", 80 * GIB, "9.0", "test H100")


def test_sliding_window_layers_raise_concurrency_not_tokens_per_layer() -> None:
    """vLLM 0.32 vllm/v1/kv_cache_interface.py SlidingWindowSpec.max_admission_blocks_per_request:
    a request holds min(window - 1 + in-flight tokens, max_model_len) on a sliding layer, where
    config/vllm.py max_in_flight_tokens is 2 x max_num_batched_tokens (async scheduling)."""
    facts = model_facts({}, ModelSpec(id="m", shape="mistral-7b-v0.1"))
    engine = {"max_model_len": 32768, "gpu_memory_utilization": 0.9,
              "max_num_batched_tokens": 2048}
    fit = capacity_of("m", engine, {}, facts, H100)
    per_sequence = memory.kv_bytes_per_sequence(SHAPES["mistral-7b-v0.1"], 32768,
                                                in_flight_tokens=2 * 2048)
    assert per_sequence == (4095 + 4096) * 131072  # every layer keeps the window and 2 batches
    assert fit.bytes_per_sequence == per_sequence
    assert fit.concurrency == pytest.approx(fit.kv_budget_bytes / per_sequence)
    assert fit.tokens == int(fit.concurrency * 32768)  # as vLLM counts them


def test_max_num_seqs_the_cache_cannot_hold() -> None:
    facts = model_facts({}, ModelSpec(id="m", shape="llama-3.1-8b"))
    engine = {"max_model_len": 131072, "gpu_memory_utilization": 0.9}
    assert check_max_num_seqs({**engine, "max_num_seqs": 2}, {}, facts, H100) == []
    [some] = check_max_num_seqs({**engine, "max_num_seqs": 64}, {}, facts, H100)
    assert some.severity == "info" and some.code == "max-num-seqs-above-capacity"
    assert "sequences of max_model_len 131072 fit" in some.message
    cpu = TargetHardware("cpu", None, None, "decision.hardware (CPU)")
    space = {"VLLM_CPU_KVCACHE_SPACE": "1"}  # 1 GiB: 8,192 tokens of 128 KiB
    [never] = check_max_num_seqs({"max_model_len": 2048, "max_num_seqs": 1024}, space, facts, cpu)
    assert never.severity == "warning" and never.code == "max-num-seqs-unreachable"
    assert never.message == ("max_num_seqs 1024 can never run at once: the KV cache holds 8,192 "
                             "tokens, fewer than 1024 sequences of one 16-token block each")


def test_capacity_without_a_shape_or_budget_says_why() -> None:
    unknown = capacity_of("x", {"model": "acme/m"}, {}, model_facts({"model": "acme/m"}, None),
                          H100)
    assert unknown.tokens is None and unknown.skipped is not None
    assert unknown.skipped.startswith("no shape for 'acme/m'")
    cpu = TargetHardware("cpu", None, None, "decision.hardware (CPU)")
    free = capacity_of("x", {"model": "m"}, {}, model_facts({}, ModelSpec(id="m", shape="tiny")),
                       cpu)
    assert free.kv_bytes_per_token == 1024 and free.tokens is None
    assert "VLLM_CPU_KVCACHE_SPACE" in (free.skipped or "")


def test_check_prints_and_serialises_capacity() -> None:
    text = CliRunner().invoke(main, ["check", str(CPU), "--no-engine-keys", "--no-stacks"])
    assert text.exit_code == 0, text.output
    row = next(line for line in text.output.splitlines() if line.startswith("cpu-fp32 "))
    assert row.split() == ["cpu-fp32", "tiny", "(bf16,", "--dtype", "float32)", "8.51", "MiB",
                           "2,048", "1.00", "GiB", "524,288", "1,024", "512.00x"]
    data = json.loads(CliRunner().invoke(main, ["check", str(CPU), "--no-engine-keys",
                                                "--no-stacks", "--format", "json"]).output)
    assert data["capacity"][0] == {
        "candidate": "cpu-bf16", "model": "tiny (bf16, --dtype bfloat16)",
        "weights_bytes": 2.0 * SHAPES["tiny"].params, "kv_cache_dtype": "auto",
        "kv_bytes_per_token": 1024, "max_model_len": 1024, "max_model_len_source": "max_model_len",
        "kv_budget_bytes": GIB, "budget": "the KV cache is set to 1.00 GiB", "tokens": 1_048_576,
        "concurrency": 1024.0, "max_num_seqs": None, "target": "decision.hardware (CPU)",
        "skipped": None, "layout": "TP 1", "gpus": 1, "bytes_per_sequence": 1024 * 1024,
        "defaults": "", "engine_defaults": ""}
    assert Capacity(**data["capacity"][0]).to_dict() == data["capacity"][0]


@pytest.mark.skipif(not vllm_installed(), reason="needs vLLM's arguments")
def test_dry_run_shows_capacity_and_the_portable_command() -> None:
    result = CliRunner().invoke(main, ["launch", str(CPU), "--candidate", "cpu-bf16",
                                       "--dry-run", "--port", "18779"])
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    start = lines.index(next(line for line in lines if line.startswith("on the host that")))
    assert lines[start].startswith("on the host that serves it (rendered for the installed vLLM ")
    assert lines[start].endswith("; the candidate pins vllm ==0.32.0):")
    assert lines[start + 1] == (
        "  PYTHONUNBUFFERED=1 VLLM_CPU_KVCACHE_SPACE=1 vllm serve stackdecide/tiny-qwen3 "
        "--load-format dummy --max-model-len 1024 --seed 0 --dtype bfloat16 --host 127.0.0.1 "
        "--port 18779")
    assert lines[start + 2:start + 8] == [
        "capacity (tiny (bf16, --dtype bfloat16); memory from decision.hardware (CPU)):",
        "  weights: 4.25 MiB",
        "  KV cache per token: 1,024 bytes (kv_cache_dtype auto)",
        "  KV cache: 1.00 GiB (the KV cache is set to 1.00 GiB)",
        "  KV tokens that fit: 1,048,576 (vLLM logs \"KV cache size: 1,048,576 tokens\")",
        "  sequences of 1,024 tokens (max_model_len) at once: 1024.00x (vLLM: \"Maximum "
        "concurrency for 1,024 tokens per request\")",
    ]
