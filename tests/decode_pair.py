"""A decision of two candidates and one measured criterion (single-stream decode), and its
launches as evidence records: shared by the certainty and ranking-printout tests."""

from __future__ import annotations

from stackdecide.evidence import EvidenceRecord, EvidenceSet, HardwareInfo


def decode_pair(first: str, second: str, gpu: str) -> str:
    """The decision file: both candidates judged 5 of 10, decode measured 0..400 tok/s."""
    return f"""\
schema: stackdecide/v1
decision:
  title: two candidates, one measured criterion
  hardware: {{gpu: {gpu}}}
criteria:
  - id: decode
    weight: 1
    scale: [0, 10]
    measure: {{metric: decode_tok_s, value: linear, worst: 0, best: 400}}
candidates:
  - {{id: {first}, scores: {{decode: 5}}}}
  - {{id: {second}, scores: {{decode: 5}}}}
"""


def decode_launches(values: dict[str, list[float]], gpu: str, *,
                    per_launch: int = 1) -> EvidenceSet:
    """One launch per value (its run names the launch), each with ``per_launch`` records."""
    hardware = HardwareInfo(gpu=gpu)
    launches = [(candidate, launch, value) for candidate, values_of in values.items()
                for launch, value in enumerate(values_of) for _ in range(per_launch)]
    return EvidenceSet([EvidenceRecord(id=index, candidate=candidate, metric="decode_tok_s",
                                       value=value, hardware=hardware,
                                       source=f"run {candidate}-{launch}")
                        for index, (candidate, launch, value) in enumerate(launches, start=1)])
