"""The tournament's choices with a scheduler that runs nothing: every candidate at once, then the
top contenders alone, ranked on what they did alone; every record says where it ran and beside
whom, and every launch sends prompts of its own."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import stackdecide
from stackdecide.evidence.store import EvidenceStore
from stackdecide.launch.runs import LaunchOutcome
from stackdecide.loop import Measurement
from stackdecide.schedule.base import CandidateTask, OnEvent, TaskOutcome
from stackdecide.schedule.tournament import run_tournament

THREE = """\
schema: stackdecide/v1
decision: {title: tournament, hardware: {gpu: cpu}}
criteria:
  - {id: starts, weight: 0.5, measure: {metric: launch_ok, value: pass_fail}}
  - {id: judged, weight: 0.5}
candidates:
  - {id: a, scores: {starts: 5, judged: 9}}
  - {id: b, scores: {starts: 5, judged: 7}}
  - {id: c, scores: {starts: 5, judged: 3}}
"""


class InstantScheduler:
    """Runs every task of a round at once (one at a time with ``limit=1``), each one a launch
    that started."""

    name = "instant"

    def __init__(self, decision: stackdecide.Decision) -> None:
        self.configs = {c.id: c.config_sha256 for c in decision.candidates}
        self.rounds: list[tuple[tuple[str, ...], int | None]] = []
        self.seeds: list[int] = []

    def gpu_count(self) -> int:
        return 0

    def run(self, tasks: Sequence[CandidateTask], limit: int | None,
            on_event: OnEvent | None = None) -> list[TaskOutcome]:
        self.rounds.append((tuple(t.candidate_id for t in tasks), limit))
        self.seeds += [t.seed for t in tasks]
        outcomes = []
        for index, task in enumerate(tasks):
            started = 10.0 * index if limit == 1 else 0.0
            outcome = LaunchOutcome(ok=True, candidate_id=task.candidate_id, decision_file=None,
                                    engine_sha256=self.configs[task.candidate_id],
                                    run_dir=f"/runs/{len(self.rounds)}-{task.candidate_id}")
            outcomes.append(TaskOutcome(task.candidate_id, (), "host", started, started + 9.0,
                                        measurement=Measurement(task.candidate_id, outcome)))
        return outcomes


def test_the_top_contenders_are_measured_again_alone_and_ranked_on_that(tmp_path: Path) -> None:
    decision = stackdecide.parse(THREE)
    scheduler = InstantScheduler(decision)
    said: list[str] = []
    with EvidenceStore(tmp_path / "evidence.db") as store:
        result = run_tournament(decision, store, scheduler, ["a", "b", "c"],
                                limit=None, seed=7, notify=said.append)
        stored = list(store.load())
    assert scheduler.rounds == [(("a", "b", "c"), None), (("a", "b"), 1)]
    assert said == ["measuring 3 candidates on instant, as many at once as fit",
                    "re-measuring the top contenders alone before naming a winner: a, b (they "
                    "were measured beside other candidates)"]
    assert result.stop.reason == (
        "measured 3 candidates, up to 3 at once; re-measured a, b alone, and ranked them on those "
        "measurements only (the others on measurements beside neighbours); leader a")
    assert [len(r.outcomes) for r in result.rounds] == [3, 2] and len(result.measurements) == 5
    assert len(set(scheduler.seeds)) == 5 and result.seed == 7
    beside = [(r.candidate, r.scenario["gpus"], r.scenario["beside"]) for r in stored]
    assert beside == [("a", "cpu", "b,c"), ("b", "cpu", "a,c"), ("c", "cpu", "a,b"),
                      ("a", "cpu", "none"), ("b", "cpu", "none")]
    assert [(r.candidate, r.scenario["beside"]) for r in result.evidence] == [
        ("c", "a,b"), ("a", "none"), ("b", "none")]
    assert all(r.id is not None for m in result.measurements for r in m.records)


def test_a_resumed_tournament_sends_new_prompts(tmp_path: Path) -> None:
    decision = stackdecide.parse(THREE)
    scheduler = InstantScheduler(decision)
    with EvidenceStore(tmp_path / "evidence.db") as store:
        for _ in range(2):
            run_tournament(decision, store, scheduler, ["a", "b", "c"], limit=1, seed=0)
    assert len(scheduler.rounds) == 2  # one at a time: nothing to re-measure alone
    assert len(set(scheduler.seeds)) == 6
