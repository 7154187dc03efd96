"""Candidates as Ray tasks on a Ray cluster (``--cluster ray`` or ``ray://address``).

Each candidate's launch-and-benchmark is one Ray task asking for the GPUs it needs: ``num_gpus``
for a one-GPU candidate, a one-bundle placement group (``STRICT_PACK``: its GPUs on one node) for
a multi-GPU one. Ray sets ``CUDA_VISIBLE_DEVICES`` in the worker; the launcher uses those GPUs.
The task stores nothing: its measurement (records without ids) comes back to the driver, which
stores it in its own evidence store. A task that Ray loses (its worker or node died, the object
is gone, it was cancelled) is a failure of the run, recorded as such, never ``launch_ok = 0``.

The multicast switches of the driver's environment (``launch.gpus.MULTICAST_OFF``) travel to
every task through ``runtime_env.env_vars``: a Ray worker does not inherit the driver's
environment. The engine runs with ``LaunchOptions.python`` (``--python``; default
``$STACKDECIDE_VLLM_PYTHON`` or the worker's interpreter): per-candidate environments plug in
there and in ``runtime_env``.

Ray is optional (``pip install stackdecide[cluster]``) and imported only when asked for.
"""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Sequence
from dataclasses import replace
from typing import Any

from stackdecide.decision import Decision
from stackdecide.errors import StackdecideError
from stackdecide.launch.gpus import multicast_env
from stackdecide.launch.plan import LaunchOptions
from stackdecide.launch.process import DEFAULT_GRACE_S, signals_interrupt
from stackdecide.launch.runs import runs_dir
from stackdecide.loop import Measurement
from stackdecide.schedule.base import CandidateTask, Event, OnEvent, TaskOutcome
from stackdecide.schedule.worker import host_name, run_task


def import_ray() -> Any:
    try:
        import ray
    except ImportError:
        raise StackdecideError("--cluster ray needs Ray: pip install 'stackdecide[cluster]' "
                               "(or pip install ray)") from None
    return ray


def cluster_address(cluster: str) -> str | None:
    """``ray`` -> None (a cluster this process starts or finds via RAY_ADDRESS); ``ray://host:port``
    (Ray Client) or ``ray:auto`` as given."""
    if cluster == "ray":
        return os.environ.get("RAY_ADDRESS") or None
    if cluster.startswith("ray://"):
        return cluster
    if cluster.startswith("ray:"):
        return cluster.removeprefix("ray:")
    raise StackdecideError(f"--cluster {cluster!r}: give ray or ray://HOST:PORT")


def _ray_task(decision: Decision, task: CandidateTask, options: LaunchOptions,
              events: Any) -> tuple[Measurement, tuple[int, ...], str, float, float]:
    """Runs on a Ray worker: one candidate; returns its measurement, GPUs, node and times."""
    import ray

    started = time.time()
    gpus = tuple(int(g) for g in ray.get_gpu_ids() if str(g).isdigit())
    node = f"{host_name()} ({ray.get_runtime_context().get_node_id()[:8]})"

    def emit(phase: str, elapsed_s: float) -> None:
        with contextlib.suppress(Exception):  # progress is best effort; the result is not
            events.put_nowait((task.candidate_id, phase, elapsed_s, gpus, node))

    with signals_interrupt():
        measurement = run_task(decision, task, options, None, emit)
    return measurement, gpus, node, started, time.time()


class RayScheduler:
    """Runs tasks on a Ray cluster; ``init`` arguments go to ``ray.init`` when it starts one."""

    name = "ray"

    def __init__(self, decision: Decision, options: LaunchOptions, address: str | None = None,
                 grace_s: float = DEFAULT_GRACE_S, **init: Any) -> None:
        self.ray = import_ray()
        if not self.ray.is_initialized():
            self.ray.init(address=address, include_dashboard=False, log_to_driver=False, **init)
        # run folders where the driver keeps them (on other nodes, the same path on that node)
        self.options = replace(options, on_progress=None,
                               runs_dir=(options.runs_dir or runs_dir()).resolve())
        self.decision_ref = self.ray.put(decision)
        self.grace_s = grace_s
        self.env = multicast_env(os.environ)

    def gpu_count(self) -> int:
        """GPUs of the largest alive node: the most one task can be given."""
        nodes = [n for n in self.ray.nodes() if n.get("Alive")]
        return int(max((n.get("Resources", {}).get("GPU", 0) for n in nodes), default=0))

    def resources(self, task: CandidateTask) -> tuple[dict[str, Any], Any]:
        """Ray task options for ``task`` and the placement group made for it (None for one GPU
        or none): ``num_gpus``, and for several GPUs one ``STRICT_PACK`` bundle holding them."""
        from ray.util.placement_group import placement_group
        from ray.util.scheduling_strategies import PlacementGroupSchedulingStrategy

        options: dict[str, Any] = {"num_cpus": 1, "num_gpus": task.gpus, "max_retries": 0,
                                   "runtime_env": {"env_vars": self.env}}
        group = None
        if task.gpus > 1:  # one bundle: all its GPUs on one node
            group = placement_group([{"GPU": task.gpus, "CPU": 1}], strategy="STRICT_PACK")
            options["scheduling_strategy"] = PlacementGroupSchedulingStrategy(group)
        return options, group

    def _submit(self, task: CandidateTask, events: Any) -> tuple[Any, Any]:
        options, group = self.resources(task)
        ref = self.ray.remote(_ray_task).options(**options).remote(
            self.decision_ref, task, self.options, events)
        return ref, group

    def run(self, tasks: Sequence[CandidateTask], limit: int | None,
            on_event: OnEvent | None = None) -> list[TaskOutcome]:
        from ray.util.queue import Queue

        report = on_event or (lambda event: None)
        events = Queue()
        pending = list(tasks)
        flying: dict[Any, tuple[CandidateTask, Any, float]] = {}
        outcomes: dict[str, TaskOutcome] = {}
        start_wall, start = time.time(), time.monotonic()
        try:
            with signals_interrupt():
                while pending or flying:
                    while pending and (limit is None or len(flying) < limit):
                        task = pending.pop(0)
                        ref, group = self._submit(task, events)
                        flying[ref] = (task, group, time.monotonic() - start)
                        report(Event(task.candidate_id, "submitted to Ray", 0.0))
                    done, _ = self.ray.wait(list(flying), num_returns=1, timeout=0.5)
                    self._drain(events, report)
                    for ref in done:
                        task, group, submitted = flying.pop(ref)
                        outcomes[task.candidate_id] = self._outcome(ref, task, submitted,
                                                                    start_wall, start)
                        if group is not None:
                            from ray.util.placement_group import remove_placement_group

                            remove_placement_group(group)
                        report(outcomes[task.candidate_id].end_event())
        except KeyboardInterrupt:
            self._cancel(flying)
            raise
        finally:
            with contextlib.suppress(Exception):
                events.shutdown()
        return [outcomes[t.candidate_id] for t in tasks if t.candidate_id in outcomes]

    def _drain(self, events: Any, report: OnEvent) -> None:
        while True:
            try:
                candidate_id, phase, elapsed, gpus, node = events.get_nowait()
            except Exception:  # empty
                return
            report(Event(candidate_id, phase, elapsed, tuple(gpus), node))

    def _outcome(self, ref: Any, task: CandidateTask, submitted: float, start_wall: float,
                 start: float) -> TaskOutcome:
        now = time.monotonic() - start
        try:
            measurement, gpus, node, began, ended = self.ray.get(ref)
        except self.ray.exceptions.RayTaskError as exc:  # our code raised on the worker
            cause = exc.cause if getattr(exc, "cause", None) is not None else exc
            message = getattr(cause, "message", None) or str(cause).splitlines()[0]
            return TaskOutcome(task.candidate_id, (), "", submitted, now,
                               failure=f"the task failed: {message}")
        except self.ray.exceptions.RayError as exc:  # lost worker or node, cancelled task
            return TaskOutcome(task.candidate_id, (), "", submitted, now,
                               failure=f"lost by Ray ({type(exc).__name__}): "
                                       f"{str(exc).splitlines()[0] if str(exc) else ''}")
        return TaskOutcome(task.candidate_id, gpus, node, began - start_wall,
                           ended - start_wall, measurement=measurement)

    def _cancel(self, flying: dict[Any, tuple[CandidateTask, Any, float]]) -> None:
        """Interrupt every task (its engine is stopped by the task's own cleanup), then force
        what is left; each engine's supervisor stops it if its worker is killed."""
        from ray.util.placement_group import remove_placement_group

        for ref in flying:
            with contextlib.suppress(Exception):
                self.ray.cancel(ref, force=False)
        deadline = time.monotonic() + self.grace_s + 15
        waiting = list(flying)
        while waiting and time.monotonic() < deadline:
            _done, waiting = self.ray.wait(waiting, num_returns=len(waiting), timeout=0.5)
        for ref in waiting:
            with contextlib.suppress(Exception):
                self.ray.cancel(ref, force=True)
        for _, group, _ in flying.values():
            if group is not None:
                with contextlib.suppress(Exception):
                    remove_placement_group(group)
