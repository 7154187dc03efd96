"""Which scheduler runs a tournament: this host's GPUs, or a Ray cluster."""

from __future__ import annotations

import os

from stackdecide.decision import Decision
from stackdecide.errors import StackdecideError
from stackdecide.launch.gpus import select_gpus
from stackdecide.launch.plan import LaunchOptions
from stackdecide.schedule.base import Scheduler
from stackdecide.schedule.local import LocalScheduler
from stackdecide.vllm.probe import nvidia_smi_indices, probe_gpus


def parse_parallel(value: str | None) -> int | None:
    """``--parallel``: a count, or ``auto`` (None: as many as fit)."""
    if value is None or value.strip().lower() == "auto":
        return None
    if value.strip().isdigit() and int(value) >= 1:
        return int(value)
    raise StackdecideError(f"--parallel {value!r}: give a number of candidates (1, 2, ...) or auto")


def make_scheduler(decision: Decision, options: LaunchOptions, cluster: str | None) -> Scheduler:
    """The local scheduler on the GPUs this process may use, or a Ray one."""
    if cluster is not None and cluster != "local":
        from stackdecide.schedule.ray_backend import RayScheduler, cluster_address

        return RayScheduler(decision, options, cluster_address(cluster))
    report = probe_gpus()
    selection = select_gpus(report, None, os.environ)
    # without NVML bindings (no GPUs in the report) nvidia-smi still lists them
    known = report.gpus or selection.source.startswith("CUDA_VISIBLE_DEVICES")
    return LocalScheduler(decision, options, selection.indices if known else nvidia_smi_indices())
