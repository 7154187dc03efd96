"""The ranking printed after `launch --bench` and after a tournament says how sure it is, with the
rule `score --evidence` uses: a lead inside the measurement noise is a tie, not a winner."""

from __future__ import annotations

import pytest

import stackdecide
from decode_pair import decode_launches, decode_pair
from stackdecide.cli._loop import echo_after
from stackdecide.evidence import EvidenceSet

H200 = "NVIDIA H200"
TWO = decode_pair("new", "old", H200)


def _evidence(values: dict[str, list[float]]) -> EvidenceSet:
    return decode_launches(values, H200)


def test_a_lead_inside_the_noise_is_printed_as_a_tie(capsys: pytest.CaptureFixture[str]) -> None:
    """278.0 vs 276.9 tok/s, two launches each (the H200 stack tournament): no winner."""
    decision = stackdecide.parse(TWO)
    evidence = _evidence({"new": [277.7, 278.0], "old": [276.4, 277.4]})
    before = decision.score()
    after = decision.score(evidence=evidence)
    assert after.winner == "new"
    echo_after((), before, after, "after the tournament (t.db)")
    out = capsys.readouterr().out
    assert "\nwinner:" not in out
    assert "leader: new (69.46), not certified: statistical tie between new and old (P 0." in out
    assert "P(best)" in out


def test_a_lead_beyond_the_noise_is_a_winner(capsys: pytest.CaptureFixture[str]) -> None:
    decision = stackdecide.parse(TWO)
    evidence = _evidence({"new": [356.0, 357.1, 355.2, 356.4], "old": [278.0, 277.4, 276.9, 278.3]})
    after = decision.score(evidence=evidence)
    echo_after((), decision.score(), after, "after measurement (t.db)")
    out = capsys.readouterr().out
    assert "winner: new (" in out and "statistical tie" not in out
