"""A criterion's records come from the scenario its metric means, and the others say why not."""

from __future__ import annotations

import stackdecide
from stackdecide.evidence.apply import apply_evidence
from stackdecide.evidence.records import EvidenceSet

from .conftest import make_record

DECISION = """\
schema: stackdecide/v1
decision:
  title: t
  hardware: {{gpu: NVIDIA GeForce RTX 4090 Laptop GPU}}
criteria:
  - {{id: decode, weight: 1, measure: {{metric: decode_tok_s, value: relative_to_best{scenario}}}}}
candidates:
  - {{id: a, scores: {{decode: 5}}}}
  - {{id: b, scores: {{decode: 5}}}}
"""


def _apply(scenario: str = ""):
    decision = stackdecide.parse(DECISION.format(scenario=scenario))
    records = EvidenceSet([
        make_record("a", value=100, scenario={"concurrency": 1}),
        make_record("a", value=40, scenario={"concurrency": 16}),
        make_record("b", value=90, scenario={"concurrency": 1}),
        make_record("b", value=30, scenario={"concurrency": 16}),
        make_record("b", value=35, scenario={"concurrency": 16}),
        make_record("b", value=80),  # says no concurrency: it cannot tell, and is kept
    ])
    return apply_evidence(decision, records)


def test_decode_tok_s_means_one_stream_unless_the_criterion_says() -> None:
    applied = _apply()
    assert [cell.raw for cell in (applied.cells[0][0], applied.cells[1][0])] == [100, 85]
    assert applied.notes[:2] == [
        "evidence: 3 of 6 evidence records used",
        "decode: 3 evidence records of decode_tok_s unused, from other scenarios (concurrency 16:"
        " 3); the criterion asks for concurrency=1 (concurrency=1: what decode_tok_s means; set "
        "measure.scenario to choose another)",
    ]


def test_measure_scenario_chooses_another_concurrency() -> None:
    applied = _apply(", scenario: {concurrency: 16}")
    assert [cell.raw for cell in (applied.cells[0][0], applied.cells[1][0])] == [40, 32.5]
    assert applied.notes[1] == (
        "decode: 3 evidence records of decode_tok_s unused, from other scenarios (concurrency 1: "
        "2, no concurrency: 1); the criterion asks for concurrency=16")
