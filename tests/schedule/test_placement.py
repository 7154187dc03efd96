"""Placement on declared GPUs, without any GPU: disjoint sets, multi-GPU candidates, too few GPUs."""

from __future__ import annotations

from stackdecide.schedule.base import TaskOutcome, with_neighbours
from stackdecide.schedule.placement import Placement, Request, place, unplaceable


def test_as_many_as_fit_get_disjoint_gpus() -> None:
    requests = [Request("a", 1), Request("b", 1), Request("c", 1), Request("d", 1)]
    assert place(requests, [0, 1, 2, 3], running=0, limit=None) == [
        Placement("a", (0,)), Placement("b", (1,)), Placement("c", (2,)), Placement("d", (3,))]
    assert place(requests, [0, 1, 2, 3], running=0, limit=2) == [
        Placement("a", (0,)), Placement("b", (1,))]
    assert place(requests, [3, 1], running=2, limit=None) == [
        Placement("a", (1,)), Placement("b", (3,))]


def test_multi_gpu_candidates_take_several_and_smaller_ones_backfill() -> None:
    requests = [Request("tp2", 2), Request("tp4", 4), Request("tp1", 1)]
    assert place(requests, [0, 1, 2, 3], running=0, limit=None) == [
        Placement("tp2", (0, 1)), Placement("tp1", (2,))]
    # tp4 waits for all four; nothing else is pending, so nothing starts beside it
    assert place([Request("tp4", 4)], [2, 3], running=1, limit=None) == []
    assert place([Request("tp4", 4)], [0, 1, 2, 3], running=0, limit=None) == [
        Placement("tp4", (0, 1, 2, 3))]


def test_not_enough_gpus_is_said_before_anything_runs() -> None:
    requests = [Request("tp1", 1), Request("tp8", 8), Request("dp2", 2)]
    assert unplaceable(requests, 2) == [(Request("tp8", 8), "needs 8 GPUs; 2 available")]
    assert unplaceable(requests, 8) == []


def test_cpu_engines_run_one_at_a_time_unless_told() -> None:
    requests = [Request("a", 0), Request("b", 0)]
    assert place(requests, [], running=0, limit=None) == [Placement("a", ())]
    assert place(requests, [], running=1, limit=None) == []
    assert place(requests, [], running=0, limit=2) == [Placement("a", ()), Placement("b", ())]


def test_neighbours_are_runs_that_overlapped_on_the_same_host() -> None:
    outcomes = [TaskOutcome("a", (0,), "h", 0.0, 10.0), TaskOutcome("b", (1,), "h", 5.0, 20.0),
                TaskOutcome("c", (0,), "h", 10.0, 15.0), TaskOutcome("d", (0,), "other", 0.0, 30.0)]
    assert [o.neighbours for o in with_neighbours(outcomes)] == [("b",), ("a", "c"), ("b",), ()]
