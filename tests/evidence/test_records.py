"""Evidence records: validation with located errors, and an exact JSON round trip."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta, timezone

import pytest

from stackdecide.errors import EvidenceError, Location
from stackdecide.evidence.records import (
    EXPORT_FORMAT,
    EvidenceRecord,
    EvidenceSet,
    HardwareInfo,
    dump_csv,
    dump_json,
    dump_jsonl,
)
from stackdecide.model.metrics import METRICS, get_metric

from .conftest import make_record


def full_record() -> EvidenceRecord:
    return EvidenceRecord(
        candidate="vllm-flashinfer-torch271", metric="ttft_ms_p99", value=104.875, repeats=3,
        spread=2.5, scenario={"concurrency": 1, "input_len": 1024, "request_rate": "inf",
                              "burstiness": 1.5, "warm": True},
        hardware=HardwareInfo(gpu="NVIDIA H100 80GB HBM3", vram_gb=79.6, compute_capability="9.0",
                              driver="570.124.06", count=2),
        software={"vllm": "0.10.1.1", "torch": "2.7.1", "flashinfer-python": "0.2.11"},
        config_sha256="a" * 64, timestamp=datetime(2025, 8, 21, 14, 22, 33, 123456, tzinfo=UTC),
        source="run-20250821-142233", note="three runs")


def test_record_round_trips_through_json_text() -> None:
    record = full_record()
    text = json.dumps(record.to_dict())
    again = EvidenceRecord.from_dict(json.loads(text))
    assert again == record
    assert again.timestamp == record.timestamp and again.scenario["warm"] is True
    assert isinstance(again.scenario["concurrency"], int)


def test_export_formats_round_trip() -> None:
    records = [full_record(), make_record(value=1.5e-7), make_record(metric="launch_ok", value=0,
                                                                     note="CUDA OOM at startup")]
    document = json.loads(dump_json(records))
    assert document["format"] == EXPORT_FORMAT
    assert [EvidenceRecord.from_dict(d) for d in document["records"]] == records
    lines = dump_jsonl(records).splitlines()
    assert [EvidenceRecord.from_dict(json.loads(line)) for line in lines] == records


def test_csv_has_one_row_per_record_with_exact_values() -> None:
    rows = dump_csv([full_record(), make_record(value=0.1)]).splitlines()
    assert rows[0].startswith("id,candidate,metric,value,unit")
    assert len(rows) == 3
    assert ",0.1,tok/s," in rows[2]


def test_unit_defaults_to_the_metrics_unit_and_other_units_are_refused() -> None:
    assert make_record(metric="vram_gb", value=14.2).unit == "GiB"
    with pytest.raises(EvidenceError, match=r"unit 'GB' does not fit metric 'vram_gb'.*'GiB'"):
        make_record(metric="vram_gb", value=14.2, unit="GB")


def test_unknown_metric_names_the_known_ones() -> None:
    with pytest.raises(EvidenceError) as info:
        make_record(metric="decode_tokens_s")
    message = str(info.value)
    assert message.startswith("metric: unknown metric 'decode_tokens_s'")
    assert "did you mean 'decode_tok_s'?" in message
    for name in METRICS:
        assert name in message
    with pytest.raises(EvidenceError, match="unknown metric 'bogus'"):
        get_metric("bogus")


def test_errors_from_files_name_file_line_and_field() -> None:
    where = Location("results.jsonl", 7)
    with pytest.raises(EvidenceError) as info:
        EvidenceRecord.from_dict({"candidate": "a", "metric": "vram_gb", "value": "lots"}, where)
    assert str(info.value).startswith("results.jsonl:7 value: 'lots': ")
    with pytest.raises(EvidenceError) as info:
        EvidenceRecord.from_dict({"candidate": "a", "metric": "vram_gb", "value": 1,
                                  "hardware": {"gpu": "H100", "memory": 80}}, where)
    assert str(info.value) == "results.jsonl:7 hardware.memory: unknown field 'memory'"
    with pytest.raises(EvidenceError) as info:
        EvidenceRecord.from_dict({"candidate": "a", "metric": "vram_gb", "value": 1, "colour": 1},
                                 Location("x.json", None, None, "records[3]"))
    assert str(info.value).startswith("x.json records[3].colour: unknown field 'colour'; fields: id,")
    with pytest.raises(EvidenceError, match=r"^x.json:2 candidate: required field is missing"):
        EvidenceRecord.from_dict({"metric": "vram_gb", "value": 1}, Location("x.json", 2))
    with pytest.raises(EvidenceError, match=r"^x.json:2: expected an evidence record"):
        EvidenceRecord.from_dict([1, 2], Location("x.json", 2))


@pytest.mark.parametrize(("fields", "expected"), [
    ({"value": float("nan")}, "value: nan: Input should be a finite number"),
    ({"value": float("inf")}, "value: inf: Input should be a finite number"),
    ({"repeats": 0}, "repeats: 0: Input should be greater than or equal to 1"),
    ({"spread": -1.0}, "spread: -1.0: Input should be greater than or equal to 0"),
    ({"config_sha256": "abc"}, "config_sha256: 'abc': String should match pattern"),
    ({"candidate": "has space"}, "candidate: 'has space': String should match pattern"),
    ({"scenario": {"prompts": [1, 2]}}, "scenario: scenario 'prompts' must be a number, text or "
                                        "true/false, got list"),
    ({"scenario": {"rate": float("inf")}}, "scenario: scenario 'rate' is inf; write it as text"),
])
def test_invalid_fields_are_refused(fields: dict, expected: str) -> None:
    with pytest.raises(EvidenceError) as info:
        make_record(**fields)
    assert str(info.value).startswith(expected)


def test_launch_ok_is_one_or_zero_with_a_reason() -> None:
    assert make_record(metric="launch_ok", value=1).value == 1.0
    with pytest.raises(EvidenceError, match=r"'launch_ok' is 1 \(yes\) or 0 \(no\), got 0.5"):
        make_record(metric="launch_ok", value=0.5)
    with pytest.raises(EvidenceError, match="'launch_ok' = 0 needs the reason in 'note'"):
        make_record(metric="launch_ok", value=0)


def test_timestamps_are_utc_aware() -> None:
    naive = make_record(timestamp=datetime(2025, 1, 2, 3, 4, 5))
    assert naive.timestamp.tzinfo is UTC
    plus_two = make_record(timestamp=datetime(2025, 1, 2, 5, 4, 5,
                                              tzinfo=timezone(timedelta(hours=2))))
    assert plus_two.timestamp == naive.timestamp
    assert datetime.now(UTC) - make_record().timestamp < timedelta(minutes=1)


def test_records_are_immutable() -> None:
    record = make_record()
    with pytest.raises(ValueError, match="frozen"):
        record.value = 3.0  # type: ignore[misc]


def test_evidence_set_filters_and_names() -> None:
    evidence = EvidenceSet.of([make_record("a"), make_record("b", "vram_gb", 3.0),
                               make_record("a", "vram_gb", 4.0)])
    assert len(evidence) == 3
    assert evidence.candidates == ("a", "b")
    assert evidence.metrics == ("decode_tok_s", "vram_gb")
    assert [r.value for r in evidence.filter(candidate="a", metric="vram_gb")] == [4.0]
    with pytest.raises(EvidenceError, match="unknown metric 'vram'"):
        evidence.filter(metric="vram")
    again = EvidenceSet.of(EvidenceRecord.from_dict(d)
                           for d in json.loads(evidence.to_json())["records"])
    assert again == evidence
