"""Two CPU-engine candidates at once on this host, interrupted once both are ready: every engine
the workers started is stopped (checked by PID), and the interrupt reaches the caller."""

from __future__ import annotations

from pathlib import Path

import pytest
from parallel_support import PAIR, InterruptWhenAllReady, engine_groups

from engine_support import ENGINE_TIMEOUT_S, assert_group_gone, require_vllm
from stackdecide.decision import Decision
from stackdecide.launch.plan import LaunchOptions
from stackdecide.schedule.base import CandidateTask
from stackdecide.schedule.local import LocalScheduler


@pytest.mark.engine
def test_interrupting_a_parallel_round_stops_every_engine(cpu_decision: Decision,
                                                          tmp_path: Path) -> None:
    require_vllm()
    options = LaunchOptions(timeout_s=ENGINE_TIMEOUT_S, runs_dir=tmp_path, grace_s=10.0)
    scheduler = LocalScheduler(cpu_decision, options, gpus=(), grace_s=10.0)
    listener = InterruptWhenAllReady(PAIR)
    with pytest.raises(KeyboardInterrupt):
        scheduler.run([CandidateTask(c, 0, i) for i, c in enumerate(PAIR)], limit=2,
                      on_event=listener)
    groups = engine_groups(tmp_path)
    assert sorted(groups) == sorted(PAIR)
    for pgid in groups.values():
        assert_group_gone(pgid)
    ready = [e.candidate_id for e in listener.events if e.phase == "ready: completion"]
    assert sorted(ready) == sorted(PAIR)
