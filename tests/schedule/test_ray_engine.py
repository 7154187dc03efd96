"""Candidates as Ray tasks on a local Ray cluster (one for the module; two GPUs declared, none
present): two CPU-engine candidates measured as Ray tasks with their evidence stored by the
driver, and an interrupted run that leaves no engine behind (checked by PID)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest
from parallel_support import PAIR, InterruptWhenAllReady, engine_groups

from engine_support import ENGINE_TIMEOUT_S, assert_group_gone, require_vllm
from stackdecide.decision import Decision
from stackdecide.evidence.store import EvidenceStore
from stackdecide.launch.plan import LaunchOptions
from stackdecide.schedule.base import CandidateTask
from stackdecide.schedule.tournament import run_tournament

ray = pytest.importorskip("ray")


@pytest.fixture(scope="module")
def ray_cluster() -> Iterator[None]:
    ray.init(num_cpus=4, num_gpus=2, include_dashboard=False, log_to_driver=False)
    yield
    ray.shutdown()


def scheduler(decision: Decision, runs: Path):  # type: ignore[no-untyped-def]
    from stackdecide.schedule.ray_backend import RayScheduler

    options = LaunchOptions(timeout_s=ENGINE_TIMEOUT_S, runs_dir=runs, grace_s=10.0)
    return RayScheduler(decision, options, grace_s=10.0)


@ray.remote
def visible_gpus() -> tuple[list[int], str | None, str | None]:
    import os

    return ([int(g) for g in ray.get_gpu_ids()], os.environ.get("CUDA_VISIBLE_DEVICES"),
            os.environ.get("NCCL_NVLS_ENABLE"))


@pytest.mark.engine
def test_declared_gpus_are_placed_as_candidates_need_them(ray_cluster: None,
                                                          cpu_decision: Decision,
                                                          tmp_path: Path,
                                                          monkeypatch: pytest.MonkeyPatch) -> None:
    """No GPU here: the two GPUs are declared; a TP-2 candidate's placement group gets both,
    a TP-1 candidate one, and the multicast switches travel in the task's environment."""
    from ray.util.placement_group import remove_placement_group

    monkeypatch.setenv("NCCL_NVLS_ENABLE", "0")
    rays = scheduler(cpu_decision, tmp_path)
    assert rays.gpu_count() == 2
    options, group = rays.resources(CandidateTask("tp2", 2, 0))
    assert group is not None and options["num_gpus"] == 2
    assert ray.get(visible_gpus.options(**options).remote(), timeout=120) == (
        [0, 1], "0,1", "0")
    remove_placement_group(group)
    options, group = rays.resources(CandidateTask("tp1", 1, 0))
    assert group is None and options["num_gpus"] == 1
    gpus, visible, nvls = ray.get(visible_gpus.options(**options).remote(), timeout=120)
    assert len(gpus) == 1 and visible == str(gpus[0]) and nvls == "0"


@pytest.mark.engine
def test_two_cpu_candidates_run_as_ray_tasks(ray_cluster: None, cpu_decision: Decision,
                                             tmp_path: Path) -> None:
    require_vllm()
    with EvidenceStore(tmp_path / "evidence.db") as store:
        result = run_tournament(cpu_decision, store, scheduler(cpu_decision, tmp_path / "runs"),
                                PAIR, limit=None, confirm_top=0)
        records = store.load()
    outcomes = {o.candidate_id: o for o in result.rounds[0].outcomes}
    assert sorted(outcomes) == sorted(PAIR)
    for candidate_id, outcome in outcomes.items():
        assert outcome.failure is None and outcome.measurement is not None
        assert outcome.measurement.launched, outcome.measurement.outcome.reason
        other = next(c for c in PAIR if c != candidate_id)
        assert outcome.neighbours == (other,)  # both ran at once on this node
        mine = [r for r in records if r.candidate == candidate_id]
        assert {r.metric for r in mine} >= {"launch_ok", "startup_s", "output_tok_s"}
        assert all(r.id is not None and r.scenario["beside"] == other
                   and r.scenario["gpus"] == "cpu" for r in mine)
    for pgid in engine_groups(tmp_path / "runs").values():
        assert_group_gone(pgid)


@pytest.mark.engine
def test_interrupting_the_driver_stops_every_ray_engine(ray_cluster: None,
                                                        cpu_decision: Decision,
                                                        tmp_path: Path) -> None:
    require_vllm()
    listener = InterruptWhenAllReady(PAIR)
    with pytest.raises(KeyboardInterrupt):
        scheduler(cpu_decision, tmp_path).run(
            [CandidateTask(c, 0, i) for i, c in enumerate(PAIR)], limit=None, on_event=listener)
    groups = engine_groups(tmp_path)
    assert sorted(groups) == sorted(PAIR)
    for pgid in groups.values():
        assert_group_gone(pgid)
