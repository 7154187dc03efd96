"""The feedback loop's choices: whom to measure next and when the ranking is settled."""

from __future__ import annotations

from pathlib import Path

import pytest

import stackdecide
from stackdecide import orchestrate
from stackdecide.evidence.records import EvidenceRecord, EvidenceSet, HardwareInfo
from stackdecide.evidence.store import EvidenceStore
from stackdecide.launch.runs import LaunchOutcome
from stackdecide.loop import Measurement, is_measured
from stackdecide.race import optimistic_totals
from stackdecide.stable import next_to_measure, until_stable

DECISION = """\
schema: stackdecide/v1
decision:
  title: Loop
  hardware: {gpu: cpu}
criteria:
  - {id: speed, weight: 0.5, measure: {metric: output_tok_s, value: relative_to_best}}
  - {id: judged_only, weight: 0.3}
  - {id: starts, weight: 0.2, measure: {metric: launch_ok, value: pass_fail}}
candidates:
  - {id: a, scores: {speed: 9, judged_only: 5, starts: 9}}
  - {id: b, scores: {speed: 8, judged_only: 9, starts: 9}}
  - {id: c, scores: {speed: 2, judged_only: 1, starts: 5}}
constraints: [launch_ok >= 1]
"""


def record(candidate: str, metric: str, value: float, **extra: object) -> EvidenceRecord:
    return EvidenceRecord(candidate=candidate, metric=metric, value=value,
                          hardware=HardwareInfo(gpu="cpu"), **extra)


@pytest.fixture
def decision() -> stackdecide.Decision:
    return stackdecide.parse(DECISION, "loop.yaml")


def test_unmeasured_leader_is_measured_first(decision: stackdecide.Decision) -> None:
    ranking = decision.score()
    assert ranking.winner == "b"  # 0.5*8 + 0.3*9 + 0.2*9 = 8.5 vs a: 7.3
    assert next_to_measure(ranking)[0] == "b"


def test_optimistic_totals_lift_only_unmeasured_measurable_cells(decision) -> None:
    evidence = EvidenceSet([record("b", "output_tok_s", 100.0), record("b", "launch_ok", 1.0)])
    ranking = decision.score(evidence=evidence)
    # b is measured (speed 10 as its own best, starts 10); a and c may still reach 10 on both.
    assert ranking.total("b") == pytest.approx(50 + 27 + 20)
    assert optimistic_totals(ranking) == pytest.approx([0.50 + 0.15 + 0.20, 0.97, 0.50 + 0.03 + 0.20])
    assert is_measured(ranking, "b") and not is_measured(ranking, "a")
    # Nobody can reach 97 any more: the ranking is settled although a and c were never launched.
    candidate, why = next_to_measure(ranking)
    assert candidate is None and "no unmeasured candidate could overtake" in why


def test_a_rival_that_could_still_win_is_measured_next(decision) -> None:
    slow = EvidenceSet([record("b", "output_tok_s", 10.0), record("b", "launch_ok", 1.0),
                        record("a", "output_tok_s", 100.0), record("a", "launch_ok", 1.0)])
    ranking = decision.score(evidence=slow)
    # a measured at 10x b's speed: a = 50 + 15 + 20 = 85 leads, b = 5 + 27 + 20 = 52.
    assert ranking.winner == "a"
    assert next_to_measure(ranking)[0] is None  # c at best: 50 + 3 + 20 = 73 < 85
    only_b = EvidenceSet([record("b", "output_tok_s", 10.0), record("b", "launch_ok", 1.0)])
    ranking = decision.score(evidence=only_b)
    assert ranking.winner == "b"  # b measured at its own best, 97
    failed = EvidenceSet([record("b", "launch_ok", 0.0, note="engine_died: boom")])
    ranking = decision.score(evidence=failed)
    assert "b" in ranking.infeasible  # a failed launch makes b infeasible, a leads unmeasured
    assert next_to_measure(ranking)[0] == "a"


def launches_of(decision: stackdecide.Decision, speeds: dict[str, float], launched: list[str],
                seeds: list[int]):
    """``measure`` as a launch that starts and measures ``speeds[candidate]``."""
    def measure(decision_, candidate_id, store, options=None, *, notify=None, bench_progress=None,
                seed=0):
        launched.append(candidate_id)
        seeds.append(seed)
        config = decision.candidate(candidate_id).config_sha256
        records = [record(candidate_id, "launch_ok", 1.0, config_sha256=config),
                   record(candidate_id, "output_tok_s", speeds[candidate_id],
                          config_sha256=config)]
        store.add(records)
        outcome = LaunchOutcome(ok=True, candidate_id=candidate_id, decision_file=None,
                                engine_sha256=config or "0" * 64, run_dir=f"run-{len(launched)}")
        return Measurement(candidate_id, outcome, (), tuple(records))
    return measure


def test_the_loop_measures_until_the_leader_rests_on_measurements(
        decision, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    launched: list[str] = []
    seeds: list[int] = []
    monkeypatch.setattr(orchestrate, "measure",
                        launches_of(decision, {"a": 100.0, "b": 10.0, "c": 5.0}, launched,
                                    seeds))
    said: list[str] = []
    with EvidenceStore(tmp_path / "evidence.db") as store:
        result = until_stable(decision, store, notify=said.append)
        assert launched == ["b"] and result.stop.kind == "settled"
        assert said == ["next: b leads on judged scores", "re-scored: leader is now b"]
        assert result.stop.reason == ("the leader b rests on measurements and no unmeasured "
                                      "candidate could overtake it")
        # measured ten times faster, a takes the lead; c cannot reach it even at its best
        again = until_stable(decision, store, first="a")
        assert launched == ["b", "a"] and again.after.winner == "a"
        assert again.certainty.verdict.winner == "a" and again.stop.kind == "settled"
        once = until_stable(decision, store, stable=False, first="c")
    assert launched[2:] == ["c"] and once.stop.reason == "measured c"
    assert len(set(seeds)) == 3  # every run on the store sends prompts of its own
