"""Per-GPU memory as planned beside what each vLLM worker logged (the lines of a TP-2 start)."""

from __future__ import annotations

from stackdecide.audit.capacity import Capacity
from stackdecide.facts.memory import GIB
from stackdecide.launch.memory_check import memory_check
from stackdecide.report.launch import memory_check_lines
from stackdecide.vllm.logs import LoggedCapacity, LoggedGpuMemory, logged_memory

TP2_LOG = [
    "(Worker_TP0 pid=11) INFO 11-27 02:16:52 [model_runner.py:305] Model loading took 3.80 GiB "
    "and 3.698548 seconds",
    "(Worker_TP1 pid=12) INFO 11-27 02:16:52 [model_runner.py:305] Model loading took 3.80 GiB "
    "and 3.701 seconds",
    "(Worker_TP0 pid=11) INFO 11-27 02:17:47 [gpu_worker.py:560] Available KV cache memory: "
    "112.40 GiB",
    "(Worker_TP1 pid=12) INFO 11-27 02:17:47 [gpu_worker.py:560] Available KV cache memory: "
    "112.41 GiB",
    "(EngineCore_DP0 pid=10) INFO 11-27 02:17:47 [kv_cache_utils.py:2177] GPU KV cache size: "
    "1,637,000 tokens",
]


def test_each_worker_reports_its_own_gpu() -> None:
    assert logged_memory(TP2_LOG) == (LoggedGpuMemory("Worker_TP0", 3.80, 112.40),
                                      LoggedGpuMemory("Worker_TP1", 3.80, 112.41))
    assert logged_memory(["Model loading took 7.6 GiB and 2 seconds"]) == (
        LoggedGpuMemory("", 7.6, None),)


def test_planned_beside_logged() -> None:
    capacity = Capacity("tp2", "qwen3-4b (bf16)", 3.75 * GIB, "auto", 73728, 8192,
                        "max_model_len", 113.99 * GIB, "", 1_660_121, 202.65, 256, "test",
                        layout="TP 2", gpus=2)
    check = memory_check(capacity, TP2_LOG)
    assert check.logged_tokens == LoggedCapacity("GPU", 1_637_000, None, None)
    assert memory_check_lines(check) == [
        "memory per GPU (TP 2), planned vs logged by vLLM:",
        "  planned: weights 3.75 GiB, KV cache 113.99 GiB, 1,660,121 KV tokens",
        "  logged by Worker_TP0: weights 3.80 GiB, KV cache 112.40 GiB",
        "  logged by Worker_TP1: weights 3.80 GiB, KV cache 112.41 GiB",
        "  logged: GPU KV cache size 1,637,000 tokens"]


def test_a_kv_budget_logged_by_one_worker_of_the_group() -> None:
    """vLLM 0.26 on two H200s (docs/results/hopper-h200-x2-multi-gpu/run3): only rank 0 logs the
    KV cache memory."""
    only_rank0 = [line for line in TP2_LOG
                  if not ("Worker_TP1" in line and "Available KV cache" in line)]
    lines = memory_check_lines(memory_check(None, only_rank0))
    assert lines[2:4] == [
        "  logged by Worker_TP0: weights 3.80 GiB, KV cache 112.40 GiB",
        "  logged by Worker_TP1: weights 3.80 GiB, KV cache not logged by this worker "
        "(Worker_TP0 logged it)"]
    no_kv = [line for line in TP2_LOG if "Available KV cache" not in line]
    assert memory_check_lines(memory_check(None, no_kv))[2:4] == [
        "  logged by Worker_TP0: weights 3.80 GiB, KV cache -",
        "  logged by Worker_TP1: weights 3.80 GiB, KV cache -"]
