"""The feedback loop's choices: whom to measure next and when the ranking is settled."""

from __future__ import annotations

import pytest

import stackdecide
from stackdecide.evidence.records import EvidenceRecord, EvidenceSet, HardwareInfo
from stackdecide.loop import is_measured, next_to_measure, optimistic_totals

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
    assert optimistic_totals(ranking) == pytest.approx([50 + 15 + 20, 97, 50 + 3 + 20])
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
