"""The capacity scenario against a small real HTTP server that serves four requests at a time."""

from __future__ import annotations

import asyncio
import json
from collections.abc import Iterator
from pathlib import Path

import pytest
from aiohttp import web
from test_bench import FAST, Behaviour, FakeServer

from stackdecide.bench.capacity import SearchSettings, SloLimits
from stackdecide.bench.capacity_plan import CapacityPlan
from stackdecide.bench.capacity_run import saturated
from stackdecide.bench.runner import BenchConfig, BenchConfigError, load_result, run_bench
from stackdecide.bench.stats import RequestRecord
from stackdecide.bench.workload import Lengths


class SlotServer(FakeServer):
    """Serves ``slots`` requests at once; the others wait, which shows up in their TTFT."""

    def __init__(self, behaviour: Behaviour, slots: int) -> None:
        super().__init__(behaviour)
        self.slots_count = slots
        self.slots: asyncio.Semaphore | None = None

    async def completions(self, request: web.Request) -> web.StreamResponse:
        if self.slots is None:
            self.slots = asyncio.Semaphore(self.slots_count)
        async with self.slots:
            return await super().completions(request)


# 8 tokens 50 ms apart: a queued request waits 400 ms for a slot, far past the 200 ms limit, while
# one served at once sees a few ms. The server shares the test's process (and its GIL), so a busy
# 2-core machine can stall either side for well over 100 ms: both margins are 200 ms.
TTFT_LIMIT_MS = 200


@pytest.fixture
def slot_server() -> Iterator[SlotServer]:
    server = SlotServer(Behaviour(token_delay_s=0.05), slots=4)
    server.start()
    yield server
    server.stop()


def capacity_config(url: str, **search: object) -> BenchConfig:
    settings = SearchSettings(**{"kind": "concurrency", "start": 1, "max_load": 64,
                                 "precision": 0.1, **search})  # type: ignore[arg-type]
    return BenchConfig(url=url, scenario="capacity", input_len=16, output_len=8, num_prompts=8,
                       timeouts=FAST, metrics_interval_s=0.0, warmup=1,
                       capacity=CapacityPlan(settings, SloLimits({"ttft_ms_p99": TTFT_LIMIT_MS})))


def test_capacity_by_concurrency_finds_the_slots(slot_server: SlotServer, tmp_path: Path) -> None:
    result = run_bench(capacity_config(slot_server.url))
    capacity = result.capacity
    assert capacity is not None and capacity.converged
    assert capacity.capacity_concurrency == 4
    assert capacity.first_fail is not None and capacity.first_fail.load == 5
    assert [p.load for p in capacity.probes][:4] == [1, 2, 4, 8]
    # every probe is one level, with at least two requests per slot
    assert [lv.concurrency for lv in result.levels] == [p.load for p in capacity.probes]
    assert [lv.num_prompts for lv in result.levels][:4] == [8, 8, 8, 16]
    rows = {(r.metric, r.scenario.get("probe")): r for r in result.metric_rows()}
    assert rows[("capacity_concurrency", None)].value == 4
    assert rows[("capacity_req_s", None)].scenario == {
        "search": "concurrency", "input_len": 16, "output_len": 8,
        "slo": "ttft_ms_p99<=200", "precision": 0.1}
    assert rows[("ttft_ms_p99", 3)].scenario["passed"] is False
    assert rows[("ttft_ms_p99", 3)].scenario["prompt_mode"] == "token-ids"
    # the whole search round-trips through the result file
    path = result.write_json(tmp_path / "capacity.json")
    again = load_result(path)
    assert again.capacity is not None
    assert again.capacity.capacity_concurrency == 4
    assert [p.verdict for p in again.capacity.probes] == [p.verdict for p in capacity.probes]
    assert again.metric_rows() == result.metric_rows()
    assert json.loads(path.read_text())["capacity"]["bracket"] == [4.0, 5.0]


def test_capacity_by_request_rate_with_varying_lengths(slot_server: SlotServer) -> None:
    base = capacity_config(slot_server.url, kind="request_rate", start=4.0, min_load=0.5,
                           max_load=400.0, precision=0.25)
    config = BenchConfig(**{**base.__dict__, "num_prompts": 24,
                            "lengths": Lengths(16, 8, input_range=0.5)})
    result = run_bench(config)
    capacity = result.capacity
    assert capacity is not None and capacity.last_pass is not None
    # four slots of 400 ms requests: 10 req/s at most; a 200 ms TTFT limit leaves less
    assert 1.0 <= capacity.capacity_req_s < 10.0
    assert all(lv.request_rate == p.load for lv, p in zip(result.levels, capacity.probes,
                                                          strict=True))
    lengths = {r.prompt_len for lv in result.levels for r in lv.records}
    assert min(lengths) >= 8 and max(lengths) <= 24 and len(lengths) > 3


def test_capacity_needs_an_slo() -> None:
    with pytest.raises(BenchConfigError, match="the capacity scenario needs an SLO"):
        BenchConfig(url="http://127.0.0.1:1", scenario="capacity").resolved()


def test_saturation_compares_finishing_with_arrival_rates() -> None:
    def records(finish_gap: float) -> list[RequestRecord]:
        return [RequestRecord(index=i, prompt_len=1, max_tokens=1, start_s=0.1 * i,
                              success=True, latency_s=1.0 + (finish_gap - 0.1) * i)
                for i in range(50)]
    assert not saturated(records(0.1), 0.8)
    assert not saturated(records(0.12), 0.8)
    assert saturated(records(0.2), 0.8)


def test_cli_capacity_stores_probes_and_cost(slot_server: SlotServer, tmp_path: Path) -> None:
    from click.testing import CliRunner

    from stackdecide.cli import main
    from stackdecide.evidence.store import EvidenceStore

    store = tmp_path / "evidence.db"
    out = CliRunner().invoke(main, [
        "bench", "--url", slot_server.url, "--scenario", "capacity", "--slo", f"ttft_ms_p99:{TTFT_LIMIT_MS}",
        "--input-len", "16", "--output-len", "8", "--num-prompts", "8", "--max-load", "64",
        "--metrics-interval", "0", "--no-progress", "--store", str(store), "--candidate", "fake",
        "--gpu", "NVIDIA H200", "--price-per-gpu-hour", "3.6", "--json",
        str(tmp_path / "r.json")])
    assert out.exit_code == 0, out.output
    assert "capacity: " in out.output and "concurrency 4," in out.output
    with EvidenceStore(store) as s:
        records = s.load(candidate="fake")
    by_metric = {r.metric: r for r in records if r.scenario.get("probe") is None}
    capacity = by_metric["capacity_concurrency"]
    assert capacity.value == 4 and capacity.scenario["scenario"] == "capacity"
    assert capacity.note.startswith("concurrency bracket [4, 5] after")
    cost = by_metric["cost_per_mtok_out"]
    rate = by_metric["capacity_output_tok_s"].value
    assert cost.value == pytest.approx(3.6 / 3600 / (rate / 1e6))
    probes = {r.scenario["probe"] for r in records if "probe" in r.scenario}
    assert probes == set(range(len(json.loads((tmp_path / "r.json").read_text())
                                   ["capacity"]["probes"])))


def test_cli_capacity_refuses_a_bad_slo() -> None:
    from click.testing import CliRunner

    from stackdecide.cli import main

    out = CliRunner().invoke(main, ["bench", "--url", "http://127.0.0.1:1", "--scenario",
                                    "capacity", "--slo", "ttft_ms_p98:10"])
    assert out.exit_code == 2
    assert "unknown SLO key 'ttft_ms_p98'" in out.output


def test_capacity_check_script_against_the_slot_server(slot_server: SlotServer,
                                                       tmp_path: Path) -> None:
    import capacity_check

    code = capacity_check.main([
        "--url", slot_server.url, "--out", str(tmp_path), "--slo", f"ttft_ms_p99:{TTFT_LIMIT_MS}",
        "--input-len", "16", "--output-len", "8", "--num-prompts", "8", "--start", "2",
        "--growth", "2", "--max-load", "12", "--dense", "1:8:1"])
    assert code == 0
    summary = json.loads((tmp_path / "summary.json").read_text())
    assert summary["search"]["capacity_concurrency"] == 4
    assert summary["dense"]["capacity_concurrency"] == 4
    assert summary["dense"]["first_fail"] == 5 and summary["dense"]["probes"] == 8
    assert summary["relative_difference_concurrency"] == 0.0
    assert (tmp_path / "search.json").exists() and (tmp_path / "dense.json").exists()
    levels = (tmp_path / "dense-levels.jsonl").read_text().splitlines()
    assert [json.loads(line)["concurrency"] for line in levels] == list(range(1, 9))


def test_report_draws_the_stored_search(slot_server: SlotServer) -> None:
    from stackdecide.loop import result_records
    from stackdecide.report.capacity import capacity_curves, capacity_section

    result = run_bench(capacity_config(slot_server.url))
    records = result_records(result, "fake", price_per_gpu_hour=2.0)
    [curve] = capacity_curves(records)
    assert curve.limits == {"ttft_ms_p99": TTFT_LIMIT_MS}
    assert [p.index for p in curve.probes] == list(range(len(result.levels)))
    assert [p.passed for p in curve.probes] == [p.verdict.passed
                                                for p in result.capacity.probes]
    assert curve.capacity_concurrency == 4
    assert curve.capacity_req_s == pytest.approx(result.capacity.capacity_req_s)
    html = capacity_section(records)
    assert html is not None and html.count("<svg") == 1
    assert "SLO 200 ms" in html and "capacity " in html and "ttft_ms_p99&lt;=200" in html
    assert capacity_section([r for r in records if "probe" not in r.scenario]) is None


def test_poisson_arrivals() -> None:
    import numpy as np

    from stackdecide.bench.runner import arrival_offsets

    offsets = arrival_offsets(np.random.default_rng(0), 20_000, 50.0)
    gaps = np.diff(offsets)
    assert offsets[0] == 0.0 and (gaps >= 0).all()
    assert gaps.mean() == pytest.approx(1 / 50, rel=0.03)
    assert gaps.std() == pytest.approx(1 / 50, rel=0.03)  # exponential: sd = mean
    assert (arrival_offsets(np.random.default_rng(0), 5, None) == 0).all()
