"""What counts against a candidate: its own failures, not the environment's; partial runs flagged."""

from __future__ import annotations

import pytest

import stackdecide
from stackdecide.evidence import EvidenceRecord, EvidenceSet, HardwareInfo
from stackdecide.launch.runs import LaunchOutcome
from stackdecide.loop import launch_records, measurement_records
from stackdecide.vllm.logs import fault_of


def _outcome(**values: object) -> LaunchOutcome:
    return LaunchOutcome(candidate_id="a", decision_file=None, engine_sha256="0" * 64,
                         run_dir="/tmp/run-a", **values)  # type: ignore[arg-type]


@pytest.mark.parametrize(("failure", "codes", "fault"), [
    ("port_in_use", (), "environment"),
    ("insufficient_free_memory", (), "environment"),
    ("interrupted", (), "environment"),
    ("killed", (), "environment"),
    ("launcher_died", (), "environment"),
    ("refused", ("port-in-use",), "environment"),
    ("refused", ("port-in-use", "fp8-e5m2-with-fp8-checkpoint"), "candidate"),
    ("refused", ("kv-cache-too-small",), "candidate"),
    ("unsupported", (), "candidate"),
    ("cuda_out_of_memory", (), "candidate"),
    ("timeout", (), "candidate"),
    (None, (), None),
])
def test_whose_fault(failure: str | None, codes: tuple[str, ...], fault: str | None) -> None:
    assert fault_of(failure, codes) == fault


def test_a_busy_port_is_not_recorded_against_the_candidate() -> None:
    """Another program's port once made a candidate infeasible (launch_ok = 0)."""
    busy = _outcome(ok=False, failure="refused", reason="port busy",
                    problems=({"code": "port-in-use", "severity": "error"},))
    assert busy.fault == "environment" and launch_records(busy) == []
    bad = _outcome(ok=False, failure="unsupported", reason="fp8_e5m2 with an FP8 checkpoint")
    (record,) = launch_records(bad)
    assert (record.metric, record.value) == ("launch_ok", 0.0)


def test_start_ups_say_cold_or_warm() -> None:
    records = launch_records(_outcome(ok=True, startup_s=131.3, compile_cache="warm"))
    assert [(r.metric, r.value, r.scenario) for r in records] == [
        ("launch_ok", 1.0, {}), ("startup_s", 131.3, {"start": "warm"})]


PARTIAL = """\
schema: stackdecide/v1
decision: {title: partial runs, hardware: {gpu: cpu}}
criteria:
  - {id: throughput, weight: 1, measure: {metric: output_tok_s, value: linear, worst: 0, best: 1000}}
candidates:
  - {id: a, scores: {throughput: 5}}
"""


def test_a_benchmark_cut_short_is_left_out_unless_asked_for() -> None:
    """An engine killed under the benchmark once fed a throughput from 42 of 2,000 requests."""
    cpu = HardwareInfo(gpu="cpu")
    evidence = EvidenceSet([
        EvidenceRecord(id=1, candidate="a", metric="output_tok_s", value=900.0, hardware=cpu,
                       scenario={"concurrency": 4, "complete": False}, note="partial run"),
        EvidenceRecord(id=2, candidate="a", metric="output_tok_s", value=500.0, hardware=cpu,
                       scenario={"concurrency": 4})])
    decision = stackdecide.parse(PARTIAL)
    assert decision.score(evidence=evidence).cells[0][0].raw == 500.0
    assert decision.score(evidence=evidence, include_partial=True).cells[0][0].raw == 700.0


def test_where_a_launch_ran_joins_every_record_of_it() -> None:
    """A tournament's records say which GPUs they ran on and beside whom, after what they measured."""
    decision = stackdecide.parse(PARTIAL)
    records = measurement_records(decision, _outcome(ok=True, startup_s=12.0, compile_cache="cold"),
                                  placement={"gpus": "0", "beside": "b"})
    assert [(r.metric, r.scenario) for r in records] == [
        ("launch_ok", {"gpus": "0", "beside": "b"}),
        ("startup_s", {"start": "cold", "gpus": "0", "beside": "b"})]
    assert all(r.source == "run run-a" for r in records)
