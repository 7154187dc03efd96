"""Per-GPU memory as planned before a launch against what vLLM logged once it started.

The plan (``audit.capacity``) estimates, per GPU of the candidate's parallel layout, the weights
and the KV cache; each vLLM worker logs "Model loading took X GiB" and "Available KV cache memory:
X GiB", and the engine "KV cache size: N tokens". Putting them side by side shows where the
estimate is off (activation peak, CUDA graphs, NCCL buffers) before anyone trusts it.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from stackdecide.audit.capacity import Capacity
from stackdecide.facts.memory import GIB
from stackdecide.launch.runs import LOG_FILE, read_lines
from stackdecide.vllm.logs import LoggedCapacity, LoggedGpuMemory, logged_capacity, logged_memory


@dataclass(frozen=True)
class MemoryCheck:
    """Planned per-GPU figures and what each worker logged (empty when nothing was logged)."""

    layout: str
    planned_weights_gib: float | None
    planned_kv_gib: float | None
    planned_tokens: int | None
    logged: tuple[LoggedGpuMemory, ...]
    logged_tokens: LoggedCapacity | None


def memory_check(capacity: Capacity | None, log_lines: list[str]) -> MemoryCheck:
    """The plan's per-GPU figures beside the log's."""
    if capacity is None:
        return MemoryCheck("TP 1", None, None, None, logged_memory(log_lines),
                           logged_capacity(log_lines))
    weights = capacity.weights_bytes / GIB if capacity.weights_bytes is not None else None
    kv = capacity.kv_budget_bytes / GIB if capacity.kv_budget_bytes is not None else None
    return MemoryCheck(capacity.layout, weights, kv, capacity.tokens, logged_memory(log_lines),
                       logged_capacity(log_lines))


def read_memory_check(capacity: Capacity | None, run_dir: str | Path) -> MemoryCheck:
    return memory_check(capacity, read_lines(Path(run_dir) / LOG_FILE))
