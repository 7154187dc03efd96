"""stackdecide's own benchmark results (``bench --json``, schema stackdecide/bench-v1) as evidence:
imported, they give the records ``bench --store`` would have stored."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from stackdecide.bench.capacity import SearchSettings, SloLimits, run_search
from stackdecide.bench.capacity_plan import CapacityPlan
from stackdecide.bench.capacity_run import measurement_of
from stackdecide.bench.results import BenchConfig, BenchResult, LevelResult
from stackdecide.bench.stats import RequestRecord, Slo
from stackdecide.cli import main
from stackdecide.errors import EvidenceError
from stackdecide.evidence.importers import RunContext, read_evidence_file
from stackdecide.evidence.records import EvidenceRecord, HardwareInfo
from stackdecide.evidence.store import EvidenceStore
from stackdecide.loop import result_records

URL = "http://127.0.0.1:1"


def requests(count: int, ttft_s: float, output_len: int = 8) -> list[RequestRecord]:
    """Successful requests streaming one token per chunk, 10 ms apart."""
    return [RequestRecord(index=i, prompt_len=16, max_tokens=output_len, start_s=0.01 * i,
                          success=True, ttft_s=ttft_s + 0.001 * i,
                          latency_s=ttft_s + 0.001 * i + 0.01 * (output_len - 1),
                          itl_s=[0.01] * (output_len - 1), output_tokens=output_len,
                          chunks=output_len, usage_reported=True)
            for i in range(count)]


def level(concurrency: int, ttft_s: float, count: int = 6) -> LevelResult:
    return LevelResult(concurrency=concurrency, input_len=16, output_len=8, num_prompts=count,
                       records=requests(count, ttft_s), duration_s=0.5, complete=True)


def throughput_result() -> BenchResult:
    config = BenchConfig(url=URL, scenario="throughput", concurrency=(1, 4), input_len=16,
                         output_len=8, num_prompts=6, seed=7, slo=Slo(ttft_ms=60.0)).resolved()
    return BenchResult(config, model="m", levels=[level(1, 0.02), level(4, 0.05)])


def capacity_result() -> BenchResult:
    """A capacity search whose TTFT grows with the concurrency: 10 ms per stream."""
    plan = CapacityPlan(SearchSettings(start=1, max_load=16), SloLimits({"ttft_ms_p99": 55.0}))
    config = BenchConfig(url=URL, scenario="capacity", input_len=16, output_len=8, num_prompts=6,
                         seed=3, capacity=plan).resolved()
    levels: list[LevelResult] = []

    def probe(load: float) -> object:
        levels.append(level(int(load), 0.01 * load, count=max(6, 2 * int(load))))
        return measurement_of(levels[-1], config, plan, load)

    search = run_search(plan.settings, plan.slo, probe)
    return BenchResult(config, model="m", levels=levels, capacity=search)


def imported(result: BenchResult, tmp_path: Path, *options: str) -> list[EvidenceRecord]:
    """``result`` written as ``bench --json`` writes it, then ``evidence import``-ed."""
    path = result.write_json(tmp_path / "result.json")
    store = tmp_path / "evidence.db"
    out = CliRunner().invoke(main, ["evidence", "import", str(path), "--evidence", str(store),
                                    "--candidate", "a", *options])
    assert out.exit_code == 0, out.output
    assert "stackdecide bench result" in out.output
    with EvidenceStore(store) as opened:
        return list(opened.load())


def fields(records: list[EvidenceRecord]) -> list[tuple[object, ...]]:
    return [(r.metric, r.value, r.unit, r.scenario, r.note) for r in records]


@pytest.mark.parametrize("make", [throughput_result, capacity_result])
def test_an_imported_result_stores_what_bench_store_would(make: object, tmp_path: Path) -> None:
    result = make()  # type: ignore[operator]
    stored = imported(result, tmp_path, "--gpu", "NVIDIA H100")
    expected = result_records(result, "a")
    assert fields(stored) == fields(expected)
    assert len(stored) == len(result.metric_rows()) > 0
    assert {r.hardware for r in stored} == {HardwareInfo(gpu="NVIDIA H100")}
    assert all(r.source and r.source.startswith(f"stackdecide bench {result.started_at} sha256:")
               for r in stored)


def test_records_carry_metric_value_unit_and_scenario(tmp_path: Path) -> None:
    result = throughput_result()
    by_key = {(r.metric, r.scenario["concurrency"]): r for r in imported(result, tmp_path)}
    ttft = by_key[("ttft_ms_p50", 4)]
    summary = result.levels[1].summary(result.config.slo, result.config.percentiles)
    assert summary.ttft is not None
    assert (ttft.value, ttft.unit) == (summary.ttft.percentiles["p50"], "ms")
    assert ttft.scenario == {"scenario": "throughput", "concurrency": 4, "input_len": 16,
                             "output_len": 8, "num_prompts": 6, "seed": 7}
    rate = by_key[("output_tok_s", 1)]
    assert (rate.value, rate.unit) == (6 * 8 / 0.5, "tok/s")
    assert by_key[("goodput_req_s", 1)].value == 6 / 0.5  # every TTFT is under 60 ms


def test_capacity_records_name_the_search(tmp_path: Path) -> None:
    result = capacity_result()
    assert result.capacity is not None and result.capacity.capacity_concurrency == 4
    capacity = {r.metric: r for r in imported(result, tmp_path) if "probe" not in r.scenario}
    assert capacity["capacity_concurrency"].value == 4
    assert capacity["capacity_concurrency"].unit == "requests"
    assert capacity["capacity_req_s"].scenario == {
        "scenario": "capacity", "search": "concurrency", "input_len": 16, "output_len": 8,
        "slo": "ttft_ms_p99<=55", "precision": 0.1, "seed": 3}
    assert capacity["capacity_req_s"].note is not None
    assert capacity["capacity_req_s"].note.startswith("concurrency bracket [4, 5] after")


def test_a_partial_run_is_marked_incomplete(tmp_path: Path) -> None:
    result = throughput_result()
    result.levels[1].complete = False
    result.error = "the server closed the connection"
    stored = imported(result, tmp_path)
    assert fields(stored) == fields(result_records(result, "a"))
    assert all(r.scenario["complete"] is False for r in stored)
    assert all(r.note == "partial run: the server closed the connection" for r in stored)


def test_the_same_result_twice_is_skipped(tmp_path: Path) -> None:
    result = throughput_result()
    first = imported(result, tmp_path)
    out = CliRunner().invoke(main, ["evidence", "import", str(tmp_path / "result.json"),
                                    "--evidence", str(tmp_path / "evidence.db"),
                                    "--candidate", "a"])
    assert out.exit_code == 0 and "skipped, the same content" in out.output
    with EvidenceStore(tmp_path / "evidence.db") as store:
        assert len(store.load()) == len(first)


def test_scenario_options_are_added_and_win(tmp_path: Path) -> None:
    result = throughput_result()
    path = result.write_json(tmp_path / "r.json")
    records = read_evidence_file(path, RunContext(candidate="a",
                                                  scenario={"seed": 9, "site": "lab"})).records
    assert {(r.scenario["seed"], r.scenario["site"]) for r in records} == {(9, "lab")}


@pytest.mark.parametrize(("change", "context", "expected"), [
    ({}, RunContext(), ": a stackdecide bench result names no candidate"),
    ({"schema": "stackdecide/bench-v9"}, RunContext(candidate="a"),
     ":1 schema: unknown benchmark result schema 'stackdecide/bench-v9'; this version reads "
     "'stackdecide/bench-v1'"),
    ({"metrics": []}, RunContext(candidate="a"), ":1 metrics: no metric rows"),
    ({"metrics": [{"metric": "ttft_ms_p50", "value": -1.0, "unit": "ms", "scenario": {}}]},
     RunContext(candidate="a"), ":1 metrics[0].value: -1 ms is not a possible ttft_ms_p50"),
    ({"metrics": [{"metric": "ttft_ms_p50", "value": 1.0, "unit": "s", "scenario": {}}]},
     RunContext(candidate="a"), ":1 metrics[0]: unit 's' does not fit metric 'ttft_ms_p50'"),
    ({"metrics": [3]}, RunContext(candidate="a"), ":1 metrics[0]: expected a metric row"),
    ({"config": None}, RunContext(candidate="a"), ":1 config: expected an object"),
    ({"started_at": "yesterday"}, RunContext(candidate="a"),
     ":1 started_at: 'yesterday' is not an ISO 8601 time"),
])
def test_malformed_results_name_the_field(change: dict[str, object], context: RunContext,
                                          expected: str, tmp_path: Path) -> None:
    path = tmp_path / "r.json"
    path.write_text(json.dumps({**throughput_result().to_dict(), **change}))
    with pytest.raises(EvidenceError) as info:
        read_evidence_file(path, context)
    message = str(info.value)
    assert message.startswith(str(path)) and message[len(str(path)):].startswith(expected), message
