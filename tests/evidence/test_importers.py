"""Importing evidence files: our own format, ``vllm bench serve`` results, and malformed files."""

from __future__ import annotations

import json
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from stackdecide.errors import EvidenceError
from stackdecide.evidence.importers import (
    RunContext,
    parse_evidence_text,
    read_evidence_file,
)
from stackdecide.evidence.records import (
    EvidenceRecord,
    HardwareInfo,
    dump_json,
    dump_jsonl,
    parse_scenario_value,
)

from .conftest import RTX4090_LAPTOP, make_record


def vllm_bench_serve_result(max_concurrency: int | None = 1, **overrides: Any) -> dict[str, Any]:
    """A result dict with the keys, order and types that ``vllm bench serve --save-result`` writes.

    Followed: vLLM's vllm/benchmarks/serve.py at commit 009e6d4a1cd6 (``main_async`` builds the
    setup keys, ``benchmark`` the metrics; without --save-detailed the per-request lists input_lens,
    output_lens, start_times, ttfts, itls, generated_texts and errors are removed, while latencies
    and queue_times stay). The run: --backend vllm --dataset-name random --random-input-len 1024
    --random-output-len 128 --num-prompts 20, default --percentile-metrics ttft,tpot,itl and
    --metric-percentiles 99, no goodput SLOs, no --label.
    """
    result: dict[str, Any] = {
        "date": "20250821-142233",
        "endpoint_type": "vllm",
        "backend": "vllm",
        "label": None,
        "model_id": "Qwen/Qwen3-4B-Instruct-2507-FP8",
        "tokenizer_id": "Qwen/Qwen3-4B-Instruct-2507-FP8",
        "num_prompts": 20,
        "request_rate": "inf",
        "burstiness": 1.0,
        "max_concurrency": max_concurrency,
        "duration": 20.7542,
        "completed": 20,
        "failed": 0,
        "total_input_tokens": 20480,
        "total_output_tokens": 2560,
        "request_throughput": 0.96366,
        "request_goodput": None,
        "output_throughput": 123.348,
        "total_token_throughput": 1110.13,
        "latencies": [1.0312, 1.0398, 1.0351, 1.0287] * 5,
        "queue_times": [0.0] * 20,
        "max_output_tokens_per_s": 137.0,
        "max_concurrent_requests": 1,
        "rtfx": 0.0,
        "mean_ttft_ms": 96.41, "median_ttft_ms": 95.12, "std_ttft_ms": 3.07, "p99_ttft_ms": 104.88,
        "mean_tpot_ms": 7.39, "median_tpot_ms": 7.40, "std_tpot_ms": 0.05, "p99_tpot_ms": 7.52,
        "mean_itl_ms": 7.39, "median_itl_ms": 7.38, "std_itl_ms": 0.41, "p99_itl_ms": 8.61,
    }
    if max_concurrency is not None:  # with --max-concurrency, client queueing is reported too
        result.update({"mean_client_queue_time_ms": 0.02, "median_client_queue_time_ms": 0.02,
                       "std_client_queue_time_ms": 0.0, "p99_client_queue_time_ms": 0.04})
    result.update(overrides)
    return result


CONTEXT = RunContext(candidate="vllm-cuda-torch271", hardware=HardwareInfo(gpu=RTX4090_LAPTOP),
                     software={"vllm": "0.10.1.1", "torch": "2.7.1"})


def _write(path: Path, results: list[dict[str, Any]]) -> Path:
    # as serve.py saves: json.dump per run; --append-result puts a newline before each next run
    with path.open("w", encoding="utf-8") as handle:
        for index, result in enumerate(results):
            if index:
                handle.write("\n")
            json.dump(result, handle)
    return path


def test_vllm_bench_serve_result_imports_every_known_metric(tmp_path: Path) -> None:
    path = _write(tmp_path / "vllm-1024-128-c1.json", [vllm_bench_serve_result()])
    result = read_evidence_file(path, CONTEXT)
    assert result.kind == "vllm-bench-serve"
    by_metric = {r.metric: r for r in result.records}
    assert {m: r.value for m, r in by_metric.items()} == pytest.approx({
        "output_tok_s": 123.348, "total_tok_s": 1110.13, "request_per_s": 0.96366,
        "ttft_ms_mean": 96.41, "ttft_ms_p50": 95.12, "ttft_ms_p99": 104.88,
        "tpot_ms_mean": 7.39, "tpot_ms_p50": 7.40, "tpot_ms_p99": 7.52,
        "itl_ms_mean": 7.39, "itl_ms_p50": 7.38, "itl_ms_p99": 8.61,
        "decode_tok_s": 1000 / 7.40,  # one request's decode rate from the median TPOT
        "prefill_tok_s": 1024 / 0.09512,  # mean prompt / median TTFT, at concurrency 1 only
    })
    record = by_metric["ttft_ms_p99"]
    assert record.unit == "ms" and record.candidate == "vllm-cuda-torch271"
    assert record.scenario == {"concurrency": 1, "request_rate": "inf", "num_prompts": 20,
                               "input_len": 1024, "output_len": 128, "backend": "vllm",
                               "model": "Qwen/Qwen3-4B-Instruct-2507-FP8"}
    assert record.hardware == HardwareInfo(gpu=RTX4090_LAPTOP)
    assert record.software == {"vllm": "0.10.1.1", "torch": "2.7.1"}
    assert record.source == str(path)
    assert record.timestamp == datetime(2025, 8, 21, 14, 22, 33).astimezone()
    assert "derived: 1000 / median_tpot_ms" in (by_metric["decode_tok_s"].note or "")
    assert "goodput_req_s" not in by_metric  # request_goodput is null without SLOs
    assert result.notes == ()


def test_appended_results_become_one_run_per_line(tmp_path: Path) -> None:
    runs = [vllm_bench_serve_result(1),
            vllm_bench_serve_result(8, date="20250821-143010", num_prompts=64, completed=62,
                                    failed=2, total_input_tokens=62 * 1024,
                                    total_output_tokens=62 * 128, median_tpot_ms=16.0,
                                    p99_tpot_ms=17.5,
                                    request_goodput=2.5, p99_ttft_ms=398.0,
                                    **{"p99.9_ttft_ms": 410.0, "p50_ttft_ms": 298.0,
                                       "median_ttft_ms": 298.7}),
            vllm_bench_serve_result(None, request_rate=4.0, burstiness=0.5)]
    path = _write(tmp_path / "appended.json", runs)
    result = read_evidence_file(path, CONTEXT)
    decode = [r for r in result.records if r.metric == "decode_tok_s"]
    assert [r.value for r in decode] == pytest.approx([1000 / 7.4, 1000 / 16.0, 1000 / 7.4])
    assert [r.scenario.get("concurrency") for r in decode] == [1, 8, None]
    assert [r.source for r in decode] == [f"{path}:1", f"{path}:2", f"{path}:3"]
    second = [r for r in result.records if r.source == f"{path}:2"]
    assert {r.metric: r.value for r in second}["ttft_ms_p50"] == 298.7  # median, not p50 twice
    assert sum(r.metric == "ttft_ms_p50" for r in second) == 1
    assert {r.metric: r.value for r in second}["goodput_req_s"] == 2.5
    assert "prefill_tok_s" not in {r.metric for r in second}  # TTFT at concurrency 8 queues
    assert all("2 of 64 requests failed" in (r.note or "") for r in second)
    assert any("p99.9_ttft_ms has no metric" in note for note in result.notes)
    third = [r for r in result.records if r.source == f"{path}:3"]
    assert third[0].scenario["request_rate"] == 4.0 and third[0].scenario["burstiness"] == 0.5


def test_metadata_and_given_scenario_join_the_scenario() -> None:
    text = json.dumps(vllm_bench_serve_result(4, gpu_clock="locked", kv_blocks="2048"))
    context = RunContext(candidate="x", scenario={"warm": True, "concurrency": 5})
    result = parse_evidence_text(text, "r.json", context)
    scenario = result.records[0].scenario
    assert scenario["gpu_clock"] == "locked" and scenario["kv_blocks"] == 2048
    assert scenario["warm"] is True and scenario["concurrency"] == 5  # given values win


def test_vllm_results_need_a_candidate_and_our_records_refuse_one(tmp_path: Path) -> None:
    path = _write(tmp_path / "r.json", [vllm_bench_serve_result()])
    with pytest.raises(EvidenceError, match=r"r.json: a vllm bench serve result names no candidate"):
        read_evidence_file(path)
    ours = tmp_path / "ours.json"
    ours.write_text(dump_json([make_record()]))
    with pytest.raises(EvidenceError, match="candidate, hardware, software only apply to vllm bench serve"):
        read_evidence_file(ours, CONTEXT)


def test_our_formats_are_detected(tmp_path: Path) -> None:
    records = [make_record("a", value=1.0), make_record("b", value=2.0)]
    for name, text in [("e.json", dump_json(records)), ("e.jsonl", dump_jsonl(records)),
                       ("list.json", json.dumps([r.to_dict() for r in records])),
                       ("one.json", json.dumps(records[0].to_dict()))]:
        path = tmp_path / name
        path.write_text(text)
        result = read_evidence_file(path)
        assert result.kind == "stackdecide"
        assert list(result.records) == (records[:1] if name == "one.json" else records)


def test_scenario_values_from_text() -> None:
    assert parse_scenario_value("8") == 8 and isinstance(parse_scenario_value("8"), int)
    assert parse_scenario_value("0.5") == 0.5
    assert parse_scenario_value("True") is True
    assert parse_scenario_value("inf") == "inf"
    assert parse_scenario_value(" random ") == "random"


_RECORD = {"candidate": "a", "metric": "decode_tok_s", "value": 1.0}
MALFORMED: list[tuple[str, str, str]] = [
    ("empty.json", "", ": empty file"),
    ("blank.jsonl", "\n\n  \n", ": empty file"),
    ("syntax.json", '{"format": "stackdecide-evidence/v1",\n "records": [\n  {"candidate": }\n]}',
     ":3: invalid JSON: Expecting value (column 17)"),
    ("trailing.json", json.dumps(_RECORD) + "\n]", ":2: invalid JSON: Expecting value (column 1)"),
    ("scalar.json", "42", ":1: expected a JSON object or list, got int"),
    ("format.json", json.dumps({"format": "stackdecide-evidence/v9", "records": []}),
     ":1: unknown format 'stackdecide-evidence/v9'; this version reads 'stackdecide-evidence/v1'"),
    ("records.json", json.dumps({"format": "stackdecide-evidence/v1", "records": {}}),
     ":1 records: 'records' must be a list of evidence records"),
    ("extra-key.json", json.dumps({"format": "stackdecide-evidence/v1", "records": [],
                                   "recs": []}),
     ":1: unknown key 'recs' in a stackdecide-evidence/v1 file"),
    ("bad-record.json", json.dumps({"format": "stackdecide-evidence/v1",
                                    "records": [_RECORD, {**_RECORD, "metric": "tok_s"}]}),
     " records[1].metric: unknown metric 'tok_s'"),
    ("bad-line.jsonl", "\n".join([json.dumps(_RECORD), "", json.dumps({**_RECORD, "value": "x"})]),
     ":3 value: 'x': Input should be a valid number"),
    ("broken-line.jsonl", json.dumps(_RECORD) + "\n" + json.dumps(_RECORD)[:-5] + "\n",
     ":2: invalid JSON: "),
    ("array-line.jsonl", json.dumps(_RECORD) + "\n[1, 2]\n",
     ":2: each line must be a JSON object, got list"),
    ("unknown.json", json.dumps({"name": "run", "tokens": 3}),
     ":1: not a kind of file stackdecide reads: stackdecide evidence (records with 'candidate', "
     "'metric', 'value'), a vllm bench serve result (with 'completed', 'request_throughput' and "
     "'backend', 'date' or mean_*_ms latencies), a GuideLLM report ('benchmarks' with 'metrics') "
     "or an AIPerf export ('aiperf_version', 'time_to_first_token' or 'records' by metric); its "
     "keys: name, tokens"),
    ("mixed.jsonl", json.dumps(_RECORD) + "\n" + json.dumps(vllm_bench_serve_result()) + "\n",
     ":2: this line is a different kind of record from the lines above"),
    ("vllm-none-completed.json", json.dumps(vllm_bench_serve_result(completed=0)),
     ":1 completed: no request completed in this run, so it measured nothing"),
    ("vllm-text-number.json", json.dumps(vllm_bench_serve_result(output_throughput="fast")),
     ":1 output_throughput: expected a number, got 'fast'"),
    ("vllm-fraction.json", json.dumps(vllm_bench_serve_result(max_concurrency=1.5)),
     ":1 max_concurrency: expected a whole number, got 1.5"),
    ("vllm-date.json", json.dumps(vllm_bench_serve_result(date="yesterday")),
     ":1 date: date 'yesterday' is not vLLM's %Y%m%d-%H%M%S"),
    ("vllm-second-line.json", json.dumps(vllm_bench_serve_result()) + "\n"
     + json.dumps(vllm_bench_serve_result(failed=-1)),
     ":2 failed: expected a whole number, got -1"),
]


@pytest.mark.parametrize(("name", "text", "expected"), MALFORMED, ids=[m[0] for m in MALFORMED])
def test_malformed_files_name_the_file_line_and_field(tmp_path: Path, name: str, text: str,
                                                      expected: str) -> None:
    path = tmp_path / name
    path.write_text(text)
    context = RunContext(candidate="a") if name.startswith(("vllm", "mixed")) else None
    with pytest.raises(EvidenceError) as info:
        read_evidence_file(path, context)
    message = str(info.value)
    assert message.startswith(str(path))
    assert message[len(str(path)):].startswith(expected)


def test_unreadable_files(tmp_path: Path) -> None:
    with pytest.raises(EvidenceError, match="no such file"):
        read_evidence_file(tmp_path / "missing.json")
    with pytest.raises(EvidenceError, match="is a directory"):
        read_evidence_file(tmp_path)
    binary = tmp_path / "results.json"
    binary.write_bytes(b'{"a":\n 1}\n\xff\xfe')
    with pytest.raises(EvidenceError, match=r"results.json:3: not UTF-8 text"):
        read_evidence_file(binary)


def test_records_from_files_are_full_records() -> None:
    result = parse_evidence_text(json.dumps(_RECORD), "x.json")
    assert result.records == (EvidenceRecord(**_RECORD, timestamp=result.records[0].timestamp),)
