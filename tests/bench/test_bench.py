"""The benchmark client against small real HTTP servers on 127.0.0.1 (no engine needed).

Each server is an aiohttp app in its own thread and event loop, speaking just enough of the
OpenAI completions protocol (or deliberately not) to exercise one behaviour: normal streams, SSE
split at odd byte boundaries, a server that dies or stalls mid-run, one that is not OpenAI-
compatible, and /metrics under current and older vLLM names.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import socket
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest
from aiohttp import web
from click.testing import CliRunner

from stackdecide.bench.runner import (
    BenchConfig,
    BenchConfigError,
    BenchError,
    NotOpenAICompatibleError,
    RunAbortedError,
    ServerUnreachableError,
    load_result,
    normalize_url,
    run_bench,
)
from stackdecide.bench.server_metrics import cross_check, parse_metrics
from stackdecide.bench.stats import RequestRecord, Slo, parse_slo, summarize
from stackdecide.bench.stream import FailureKind, Timeouts
from stackdecide.cli import main
from stackdecide.errors import StackdecideError
from stackdecide.model.metrics import METRICS

ALLOWED_METRICS = {"decode_tok_s", "prefill_tok_s", "output_tok_s", "total_tok_s",
                   "request_per_s", "goodput_req_s"} | {
    f"{name}_ms_{p}" for name in ("ttft", "tpot", "itl", "e2el")
    for p in ("mean", "p50", "p90", "p99")}


@dataclass
class Behaviour:
    model: str = "fake-model"
    max_model_len: int = 4096
    token_delay_s: float = 0.0
    first_token_delay_s: float = 0.0
    byte_by_byte: bool = False  # write every SSE event in 7-byte pieces
    crlf: bool = False
    send_usage: bool = True
    models_status: int = 200
    models_body: str | None = None
    completions: str = "stream"  # stream | json | missing
    die_after: int | None = None  # requests beyond this many are cut after 2 chunks
    stall_after: int | None = None  # requests beyond this many go silent after 2 chunks
    trickle: bool = False  # one chunk every 50 ms, never ending
    refuse_index: set[int] = field(default_factory=set)  # nth request answered 400
    drop_index: set[int] = field(default_factory=set)  # nth request: connection closed, no answer
    metric_names: str = "new"  # new | old | none
    metrics_delay_s: float = 0.0  # a slow /metrics endpoint
    extra_generated: int = 0  # tokens the server counts that the client never saw...
    extra_after: int = 0  # ...once it has served this many requests


class FakeServer:
    """An aiohttp server in a background thread; counts what it serves like vLLM's /metrics."""

    def __init__(self, behaviour: Behaviour) -> None:
        self.b = behaviour
        self.served = 0
        self.generation_tokens = 0
        self.prompt_tokens = 0
        self.prompts: list[list[int]] = []
        self.loop = asyncio.new_event_loop()
        self.stopping: asyncio.Event | None = None
        self.thread = threading.Thread(target=self.loop.run_forever, daemon=True)
        self.runner: web.AppRunner | None = None
        self.url = ""

    def start(self) -> str:
        self.thread.start()
        future = asyncio.run_coroutine_threadsafe(self._start(), self.loop)
        self.url = future.result(timeout=10)
        return self.url

    async def _start(self) -> str:
        self.stopping = asyncio.Event()
        app = web.Application()
        app.router.add_get("/v1/models", self.models)
        if self.b.completions != "missing":
            app.router.add_post("/v1/completions", self.completions)
        app.router.add_get("/metrics", self.metrics)
        self.runner = web.AppRunner(app, shutdown_timeout=0.2)
        await self.runner.setup()
        site = web.TCPSite(self.runner, "127.0.0.1", 0)
        await site.start()
        port = self.runner.addresses[0][1]
        return f"http://127.0.0.1:{port}"

    def stop(self) -> None:
        async def _stop() -> None:
            assert self.stopping is not None and self.runner is not None
            self.stopping.set()
            await self.runner.cleanup()

        asyncio.run_coroutine_threadsafe(_stop(), self.loop).result(timeout=10)
        self.loop.call_soon_threadsafe(self.loop.stop)
        self.thread.join(timeout=10)

    async def models(self, request: web.Request) -> web.Response:
        if self.b.models_body is not None:
            return web.Response(text=self.b.models_body, status=self.b.models_status,
                                content_type="text/html")
        if self.b.models_status != 200:
            return web.Response(status=self.b.models_status, text="Not Found")
        return web.json_response({"object": "list", "data": [
            {"id": self.b.model, "object": "model", "max_model_len": self.b.max_model_len}]})

    def _event(self, data: dict | str) -> bytes:
        text = data if isinstance(data, str) else json.dumps(data)
        end = "\r\n\r\n" if self.b.crlf else "\n\n"
        return f"data: {text}{end}".encode()

    async def _write(self, response: web.StreamResponse, payload: bytes) -> None:
        if not self.b.byte_by_byte:
            await response.write(payload)
            return
        for i in range(0, len(payload), 7):
            await response.write(payload[i:i + 7])
            await asyncio.sleep(0)

    async def _sleep(self, seconds: float) -> None:
        assert self.stopping is not None
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.stopping.wait(), seconds)

    async def completions(self, request: web.Request) -> web.StreamResponse:
        body = await request.json()
        index = self.served
        self.served += 1
        if index in self.b.drop_index:
            assert request.transport is not None
            request.transport.close()  # as a server closing an idle keep-alive connection
            return web.Response()
        if index in self.b.refuse_index:
            return web.json_response({"error": {"message": "Token id 99999 is out of vocabulary",
                                                "type": "BadRequestError", "code": 400}},
                                     status=400)
        prompt, max_tokens = body["prompt"], body["max_tokens"]
        self.prompts.append(prompt)
        if self.b.completions == "json":
            return web.json_response({"choices": [{"text": "hello"}]})
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        self.prompt_tokens += len(prompt)
        await self._sleep(self.b.first_token_delay_s)
        count = 0
        while self.b.trickle or count < max_tokens:
            if count == 2 and self.b.die_after is not None and index >= self.b.die_after:
                assert request.transport is not None
                request.transport.close()  # abrupt: no chunked terminator
                return response
            if count == 2 and self.b.stall_after is not None and index >= self.b.stall_after:
                await self._sleep(3600)
                return response
            last = count == max_tokens - 1
            await self._write(response, self._event({
                "id": "cmpl-1", "object": "text_completion", "model": self.b.model,
                "choices": [{"index": 0, "text": f" t{count}",
                             "finish_reason": "length" if last else None}]}))
            count += 1
            self.generation_tokens += 1
            if self.b.trickle:
                await self._sleep(0.05)
                assert self.stopping is not None
                if self.stopping.is_set():
                    return response
            elif self.b.token_delay_s:
                await self._sleep(self.b.token_delay_s)
        if self.b.send_usage:
            await self._write(response, self._event({
                "id": "cmpl-1", "choices": [], "usage": {
                    "prompt_tokens": len(prompt), "completion_tokens": max_tokens,
                    "total_tokens": len(prompt) + max_tokens}}))
        await self._write(response, b": keep-alive comment\n\n")
        await self._write(response, self._event("[DONE]"))
        await response.write_eof()
        return response

    async def metrics(self, request: web.Request) -> web.Response:
        await self._sleep(self.b.metrics_delay_s)
        names = {
            "new": ("vllm:generation_tokens", "vllm:prompt_tokens", "vllm:kv_cache_usage_perc"),
            "old": ("vllm:generation_tokens", "vllm:prompt_tokens", "vllm:gpu_cache_usage_perc"),
        }.get(self.b.metric_names)
        if names is None:
            return web.Response(status=404, text="Not Found")
        gen, prompt, kv = names
        generated = self.generation_tokens + (
            self.b.extra_generated if self.served > self.b.extra_after else 0)
        lines = [
            f"# TYPE {gen} counter",
            f'{gen}_total{{engine="0",model_name="m"}} {generated * 0.75}',
            f'{gen}_total{{engine="1",model_name="m"}} {generated * 0.25}',
            f"# TYPE {prompt} counter",
            f'{prompt}_total{{engine="0",model_name="m"}} {self.prompt_tokens}',
            "# TYPE vllm:num_preemptions counter",
            'vllm:num_preemptions_total{engine="0",model_name="m"} 0.0',
            f"# TYPE {kv} gauge",
            f'{kv}{{engine="0",model_name="m"}} 0.25',
            f'{kv}{{engine="1",model_name="m"}} 0.5',
        ]
        return web.Response(text="\n".join(lines) + "\n",
                            content_type="text/plain")


@pytest.fixture
def serve() -> Iterator:
    servers: list[FakeServer] = []

    def start(**behaviour: object) -> FakeServer:
        server = FakeServer(Behaviour(**behaviour))  # type: ignore[arg-type]
        server.start()
        servers.append(server)
        return server

    yield start
    for server in servers:
        server.stop()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


FAST = Timeouts(request_s=10, stall_s=2, connect_s=2)


def config(url: str = "", **kwargs: object) -> BenchConfig:
    base: dict[str, object] = {"url": url, "input_len": 16, "output_len": 8, "num_prompts": 6,
                               "timeouts": FAST, "metrics_interval_s": 0.0}
    base.update(kwargs)
    return BenchConfig(**base)  # type: ignore[arg-type]


# -- normal runs ---------------------------------------------------------------------------------
def test_decode_run_measures_every_request_and_skips_warmup(serve) -> None:
    server = serve(token_delay_s=0.002)
    result = run_bench(config(server.url, warmup=2))
    assert result.complete and result.model == "fake-model"
    level = result.levels[0]
    assert len(level.records) == 6 and all(r.success for r in level.records)
    assert len(result.warmup_records) == 2
    assert server.served == 8  # 2 warm-up + 6 measured
    for record in level.records:
        assert record.output_tokens == 8 and record.usage_reported and record.chunks == 8
        assert len(record.itl_s) == 7
        assert record.latency_s == pytest.approx(record.ttft_s + sum(record.itl_s), abs=1e-9)
        assert record.tpot_s == pytest.approx((record.latency_s - record.ttft_s) / 7)
        assert record.latency_s >= 0.014  # the server sleeps 2 ms after each of 7 tokens
    summary = level.summary()
    assert summary.total_output_tokens == 48 and summary.total_input_tokens == 96
    assert summary.output_tok_s == pytest.approx(48 / level.duration_s)
    assert summary.ttft is not None and summary.ttft.median == pytest.approx(
        1000 * float(np.median([r.ttft_s for r in level.records])))
    rows = {row.metric: row for row in result.metric_rows()}
    assert set(rows) <= ALLOWED_METRICS <= set(METRICS)  # names the evidence store knows
    assert rows["decode_tok_s"].value == pytest.approx(1000 / rows["tpot_ms_p50"].value)
    assert rows["decode_tok_s"].scenario == {"concurrency": 1, "input_len": 16, "output_len": 8,
                                             "num_prompts": 6}
    assert "prefill_tok_s" not in rows and "goodput_req_s" not in rows


def test_prompts_are_seeded_token_ids_of_the_requested_length(serve) -> None:
    server = serve()
    run_bench(config(server.url, seed=7, warmup=0, token_id_limit=100))
    first = list(server.prompts)
    run_bench(config(server.url, seed=7, warmup=0, token_id_limit=100))
    assert server.prompts[6:] == first
    assert all(len(p) == 16 and all(isinstance(t, int) and 0 <= t < 100 for t in p)
               for p in first)
    assert len({tuple(p) for p in first}) == 6  # distinct prompts: no prefix-cache reuse
    run_bench(config(server.url, seed=8, warmup=0, token_id_limit=100))
    assert server.prompts[12:] != first


def test_sse_split_into_odd_pieces_with_crlf_and_comments_parses(serve) -> None:
    server = serve(byte_by_byte=True, crlf=True)
    result = run_bench(config(server.url, num_prompts=3, warmup=0))
    assert all(r.success and r.chunks == 8 and r.output_tokens == 8
               for r in result.levels[0].records)


def test_without_usage_chunk_tokens_are_counted_from_chunks(serve) -> None:
    server = serve(send_usage=False)
    result = run_bench(config(server.url, num_prompts=2, warmup=0))
    records = result.levels[0].records
    assert all(r.success and not r.usage_reported and r.output_tokens == 8 for r in records)


def test_throughput_levels_prefill_and_goodput(serve) -> None:
    server = serve(token_delay_s=0.001)
    result = run_bench(config(server.url, scenario="throughput", concurrency=(1, 3),
                              num_prompts=6, slo=Slo(ttft_ms=10_000, tpot_ms=10_000)))
    assert [lv.concurrency for lv in result.levels] == [1, 3]
    rows = result.metric_rows()
    goodput = [r for r in rows if r.metric == "goodput_req_s"]
    req = [r for r in rows if r.metric == "request_per_s"]
    # generous objectives: every request is good, so goodput equals the request rate
    assert [g.value for g in goodput] == pytest.approx([r.value for r in req])
    assert {r.scenario["concurrency"] for r in rows} == {1, 3}
    strict = summarize(result.levels[0].records, result.levels[0].duration_s,
                       Slo(ttft_ms=0.0))
    assert strict.goodput_req_s == 0.0

    prefill = run_bench(config(server.url, scenario="prefill", input_len=512, output_len=None,
                                num_prompts=3))
    names = {r.metric: r.value for r in prefill.metric_rows()}
    records = prefill.levels[0].records
    assert all(r.output_tokens == 1 and r.tpot_s is None for r in records)
    assert names["prefill_tok_s"] == pytest.approx(
        float(np.median([512 / r.ttft_s for r in records])))
    assert "tpot_ms_p50" not in names and "decode_tok_s" not in names


def test_concurrency_is_respected(serve) -> None:
    server = serve(token_delay_s=0.01)
    result = run_bench(config(server.url, scenario="throughput", concurrency=(2,),
                              num_prompts=6, output_len=5, warmup=0))
    records = result.levels[0].records
    # with 2 in flight and 6 requests of equal length, requests start in three waves
    starts = sorted(r.start_s for r in records)
    assert starts[2] > starts[1] + 0.03 and starts[4] > starts[3] + 0.03


# -- server metrics ------------------------------------------------------------------------------
def test_server_counters_match_client_counts(serve, tmp_path: Path) -> None:
    server = serve(token_delay_s=0.001)
    result = run_bench(config(server.url, warmup=1))
    check = result.levels[0].server
    assert check is not None
    assert check.generation_tokens == 48 and check.prompt_tokens == 96  # warm-up excluded
    assert load_result(result.write_json(tmp_path / "r.json")).levels[0].server == check
    assert check.output_tokens_difference == 0 and check.agrees
    assert check.kv_cache_usage_peak == 0.5  # the larger of the two engines
    assert check.metric_names["kv_cache_usage"] == "vllm:kv_cache_usage_perc"


def test_server_metrics_old_names_and_extra_traffic(serve) -> None:
    # someone else's 5 tokens appear in the counter mid-run
    server = serve(metric_names="old", extra_generated=5, extra_after=3, token_delay_s=0.005)
    result = run_bench(config(server.url, warmup=0, metrics_interval_s=0.02))
    check = result.levels[0].server
    assert check is not None
    assert check.scrapes > 2 and check.kv_cache_usage_peak == 0.5
    assert check.metric_names["kv_cache_usage"] == "vllm:gpu_cache_usage_perc"
    assert check.output_tokens_difference == 5
    assert not check.agrees
    assert any("older metric names" in n for n in check.notes)
    assert any("differ" in n for n in check.notes)


def test_metrics_scrapes_do_not_delay_requests(serve) -> None:
    # A slow /metrics scraped often must not take the connection a request is waiting for.
    server = serve(metrics_delay_s=0.3, token_delay_s=0.01)
    result = run_bench(config(server.url, num_prompts=5, output_len=10, warmup=0,
                              metrics_interval_s=0.05))
    check = result.levels[0].server
    assert check is not None and check.scrapes > 2
    assert max(r.ttft_s for r in result.levels[0].records) < 0.15


def test_missing_metrics_endpoint_is_a_note_not_a_failure(serve) -> None:
    server = serve(metric_names="none")
    result = run_bench(config(server.url, num_prompts=2))
    assert result.complete and result.levels[0].server is None
    assert any("404" in note for note in result.levels[0].server_notes)


def test_parse_metrics_sums_labels_and_prefers_new_names() -> None:
    text = "\n".join([
        "# TYPE vllm:generation_tokens counter",
        'vllm:generation_tokens_total{engine="0"} 10',
        'vllm:generation_tokens_total{engine="1"} 5',
        'vllm:generation_tokens_created{engine="0"} 1.7e9',
        "# TYPE vllm:gpu_cache_usage_perc gauge",
        "vllm:gpu_cache_usage_perc 0.2",
        "# TYPE vllm:kv_cache_usage_perc gauge",
        "vllm:kv_cache_usage_perc 0.3",
        "# TYPE vllm:request_success counter",
        'vllm:request_success_total{finished_reason="length"} 4',
        'vllm:request_success_total{finished_reason="stop"} 1',
        "# TYPE vllm:prompt_tokens_by_source counter",
        'vllm:prompt_tokens_by_source_total{source="local_compute"} 99',
        "# TYPE vllm:time_per_output_token_seconds histogram",  # the older name of ITL
        'vllm:time_per_output_token_seconds_bucket{le="+Inf"} 10',
        "vllm:time_per_output_token_seconds_sum 0.5",
        "vllm:time_per_output_token_seconds_count 10",
    ]) + "\n"
    snap = parse_metrics(text)
    assert snap.values["generation_tokens"] == 15  # _created samples ignored
    assert snap.values["kv_cache_usage"] == 0.3
    assert snap.names["kv_cache_usage"] == "vllm:kv_cache_usage_perc"
    assert snap.values["requests_finished"] == 5
    assert "prompt_tokens" not in snap.values  # a lookalike family is not the counter
    after = parse_metrics(text.replace("} 10", "} 30").replace("_sum 0.5", "_sum 1.5")
                          .replace("_count 10", "_count 20"))
    check = cross_check(snap, after, [], client_output_tokens=18, client_prompt_tokens=0,
                        client_requests=1)
    assert check.generation_tokens == 20 and check.output_tokens_difference == 2
    assert check.prompt_tokens is None and check.prompt_tokens_difference is None
    assert check.output_tokens_relative_difference == pytest.approx(2 / 18)
    assert check.server_itl_ms_mean == pytest.approx(100.0)  # 1.0 s over 10 more gaps
    assert check.server_ttft_ms_mean is None


# -- failures ------------------------------------------------------------------------------------
def test_unreachable_url() -> None:
    url = f"http://127.0.0.1:{free_port()}"
    with pytest.raises(ServerUnreachableError, match=r"cannot connect to .*running"):
        run_bench(config(url))


def test_not_openai_compatible_servers(serve) -> None:
    missing_models = serve(models_status=404)
    with pytest.raises(NotOpenAICompatibleError, match=r"/v1/models answered 404"):
        run_bench(config(missing_models.url))
    html = serve(models_body="<html>hello</html>")
    with pytest.raises(NotOpenAICompatibleError, match="model list"):
        run_bench(config(html.url))
    no_completions = serve(completions="missing")
    with pytest.raises(NotOpenAICompatibleError, match=r"404.*no OpenAI-compatible completions"):
        run_bench(config(no_completions.url))
    not_streaming = serve(completions="json")
    with pytest.raises(NotOpenAICompatibleError, match="streamed no completion chunks"):
        run_bench(config(not_streaming.url))


def test_server_dying_mid_run_keeps_finished_requests(serve, tmp_path: Path) -> None:
    server = serve(die_after=4)  # 1 warm-up + 3 measured succeed, the 4th measured is cut off
    with pytest.raises(RunAbortedError, match="closed the connection") as caught:
        run_bench(config(server.url, num_prompts=6))
    partial = caught.value.partial
    assert partial is not None and not partial.complete and partial.error
    records = partial.levels[0].records
    assert [r.success for r in records] == [True, True, True, False]
    assert records[3].error_kind == FailureKind.DISCONNECTED
    assert [row for row in partial.metric_rows() if row.metric == "output_tok_s"]
    written = load_result(partial.write_json(tmp_path / "partial.json"))
    assert written.error == partial.error and not written.complete
    assert [r.success for r in written.levels[0].records] == [True, True, True, False]


def test_a_connection_closed_before_any_answer_is_sent_once_more(serve) -> None:
    """A keep-alive connection the server closes as the client reuses it: the request never ran,
    so it is sent again and measured; a second close in a row is the server's failure."""
    server = serve(drop_index={2})  # the warm-up, one measured request, then a dropped one
    result = run_bench(config(server.url, num_prompts=4))
    records = result.levels[0].records
    assert [r.success for r in records] == [True, True, True, True]
    assert server.served == 1 + 4 + 1
    again = serve(drop_index={2, 3})
    with pytest.raises(RunAbortedError, match="closed the connection") as caught:
        run_bench(config(again.url, num_prompts=4))
    failed = [r for r in caught.value.partial.levels[0].records if not r.success]  # type: ignore[union-attr]
    assert failed[0].error_kind == FailureKind.DISCONNECTED


@pytest.mark.parametrize(("failures", "succeeds"), [(1, True), (2, False)])
def test_a_request_body_that_cannot_be_written_is_sent_once_more(serve, failures: int,
                                                                 succeeds: bool) -> None:
    """The keep-alive race found on writing the request rather than on reading its answer
    (aiohttp: "Can not write request body", seen at 256 streams on 2 cores): the request never
    ran, so it is sent again; a second failure in a row is the server's."""
    import aiohttp

    from stackdecide.bench.stream import completion_payload, stream_completion

    server = serve()

    class WriteFails:
        def __init__(self, session: aiohttp.ClientSession) -> None:
            self.session, self.calls = session, 0

        def post(self, url: str, **kwargs: object):
            self.calls += 1
            if self.calls <= failures:
                raise aiohttp.ClientOSError(32, f"Can not write request body for {url}")
            return self.session.post(url, **kwargs)

    async def send() -> tuple[RequestRecord, int]:
        record = RequestRecord(index=0, prompt_len=4, max_tokens=8)
        async with aiohttp.ClientSession() as session:
            flaky = WriteFails(session)
            await stream_completion(flaky, f"{server.url}/v1/completions",  # type: ignore[arg-type]
                                    completion_payload("m", [1, 2, 3, 4], 8), record, Timeouts())
        return record, flaky.calls

    record, calls = asyncio.run(send())
    assert calls == 2 and record.success is succeeds
    if not succeeds:
        assert record.error_kind == FailureKind.DISCONNECTED
        assert "Can not write request body" in record.error


def test_stalled_stream_stops_run_and_cancels_others(serve) -> None:
    server = serve(stall_after=3)
    timeouts = Timeouts(request_s=30, stall_s=0.5, connect_s=2)
    started = time.perf_counter()
    with pytest.raises(RunAbortedError, match="stopped sending") as caught:
        run_bench(config(server.url, scenario="throughput", concurrency=(2,), num_prompts=8,
                         timeouts=timeouts))
    assert time.perf_counter() - started < 10
    records = caught.value.partial.levels[0].records  # type: ignore[union-attr]
    kinds = [r.error_kind for r in records if not r.success]
    assert FailureKind.STALLED in kinds
    assert set(kinds) <= {FailureKind.STALLED, FailureKind.CANCELLED}
    assert sum(r.success for r in records) == 2  # requests 1 and 2 (after the warm-up)


def test_request_timeout_on_a_never_ending_stream(serve) -> None:
    server = serve(trickle=True)
    timeouts = Timeouts(request_s=0.6, stall_s=5, connect_s=2)
    with pytest.raises(BenchError, match="request timeout"):
        run_bench(config(server.url, warmup=0, timeouts=timeouts))


def test_refused_requests_are_recorded_and_the_run_goes_on(serve) -> None:
    server = serve(refuse_index={2, 4})
    result = run_bench(config(server.url, warmup=0))
    assert result.complete
    failed = result.failed_requests
    assert [r.index for r in failed] == [2, 4]
    assert failed[0].error_kind == FailureKind.HTTP and "out of vocabulary" in failed[0].error
    summary = result.levels[0].summary()
    assert summary.completed == 4 and summary.failed == 2


def test_refused_warmup_names_the_reason(serve) -> None:
    server = serve(refuse_index={0})
    with pytest.raises(BenchError, match=r"refused.*out of vocabulary.*--token-id-limit"):
        run_bench(config(server.url))


def test_lengths_beyond_max_model_len_are_refused_before_sending(serve) -> None:
    server = serve(max_model_len=100)
    with pytest.raises(BenchConfigError, match="exceed the server's max_model_len of 100"):
        run_bench(config(server.url, input_len=96, output_len=8))
    assert server.served == 0


def test_unknown_model_lists_the_served_ones(serve) -> None:
    server = serve()
    with pytest.raises(BenchConfigError, match="serves: fake-model"):
        run_bench(config(server.url, model="other"))


@pytest.mark.parametrize("bad", [{"scenario": "burst"}, {"concurrency": (0,)},
                                 {"num_prompts": 0}, {"url": "127.0.0.1:8000"},
                                 {"timeouts": Timeouts(stall_s=0)}])
def test_bad_settings(bad: dict) -> None:
    with pytest.raises(BenchConfigError):
        config(**{"url": "http://127.0.0.1:1", **bad}).resolved()


def test_normalize_url() -> None:
    assert normalize_url("http://h:8000/v1/") == "http://h:8000"
    assert normalize_url(" https://h ") == "https://h"


# -- statistics ----------------------------------------------------------------------------------
def test_summary_by_hand() -> None:
    records = [
        RequestRecord(0, 10, 5, success=True, ttft_s=0.1, latency_s=0.5,
                      itl_s=[0.1, 0.1, 0.1, 0.1], output_tokens=5, chunks=5),
        RequestRecord(1, 10, 5, success=True, ttft_s=0.3, latency_s=1.1,
                      itl_s=[0.2, 0.2, 0.2, 0.2], output_tokens=5, chunks=5),
        RequestRecord(2, 10, 5, error="HTTP 500", error_kind="http"),
    ]
    s = summarize(records, duration_s=2.0, slo=Slo(ttft_ms=200, tpot_ms=150))
    assert (s.completed, s.failed) == (2, 1)
    assert s.total_input_tokens == 20 and s.total_output_tokens == 10
    assert s.output_tok_s == 5.0 and s.total_tok_s == 15.0 and s.request_per_s == 1.0
    assert s.tpot is not None and s.tpot.mean == pytest.approx(150.0)  # (100 + 200) / 2 ms
    assert s.ttft is not None and s.ttft.percentiles["p90"] == pytest.approx(280.0)  # linear
    assert s.itl is not None and s.itl.median == pytest.approx(150.0)
    assert s.e2el is not None and s.e2el.median == pytest.approx(800.0)
    assert s.goodput_req_s == 0.5  # only the first request meets both objectives
    assert s.prefill_tok_s is not None and s.prefill_tok_s.median == pytest.approx(
        (100 + 10 / 0.3) / 2)


def test_parse_slo() -> None:
    assert parse_slo(["ttft:500 tpot:50"]) == Slo(ttft_ms=500, tpot_ms=50)
    assert parse_slo(["e2el:1000"]) == Slo(e2el_ms=1000)
    assert not parse_slo([])
    for bad in (["ttft"], ["speed:5"], ["ttft:fast"], ["ttft:-1"]):
        with pytest.raises(ValueError):
            parse_slo(bad)


# -- command line --------------------------------------------------------------------------------
def test_cli_bench_table_json_and_csv(serve, tmp_path: Path) -> None:
    server = serve()
    out = tmp_path / "result.json"
    runner = CliRunner()
    result = runner.invoke(main, ["bench", "--url", server.url, "--scenario", "throughput",
                                  "--concurrency", "1,2", "--num-prompts", "4", "--input-len",
                                  "8", "--output-len", "4", "--json", str(out),
                                  "--goodput", "ttft:10000", "--no-progress"])
    assert result.exit_code == 0, result.output
    assert "out tok/s" in result.output and "gen tok server/client" in result.output
    data = json.loads(out.read_text())
    assert data["schema"] == "stackdecide/bench-v1" and data["complete"]
    assert [lv["concurrency"] for lv in data["levels"]] == [1, 2]
    assert len(data["levels"][1]["requests"]) == 4
    assert {m["metric"] for m in data["metrics"]} <= ALLOWED_METRICS
    csv = runner.invoke(main, ["bench", "--url", server.url, "--output-len", "4",
                               "--num-prompts", "2", "--format", "csv", "--no-progress"])
    assert csv.exit_code == 0
    assert csv.output.splitlines()[0] == ("metric,value,unit,concurrency,input_len,output_len,"
                                          "num_prompts")
    assert any(line.startswith("decode_tok_s,") for line in csv.output.splitlines())


def test_cli_failures_and_exit_codes(serve, tmp_path: Path) -> None:
    runner = CliRunner()
    unreachable = runner.invoke(main, ["bench", "--url", f"http://127.0.0.1:{free_port()}"])
    assert unreachable.exit_code == 1
    assert "error: cannot connect to" in unreachable.output
    assert "Traceback" not in unreachable.output
    bad = runner.invoke(main, ["bench", "--url", "http://x", "--concurrency", "1,a"])
    assert bad.exit_code == 2
    bad_goodput = runner.invoke(main, ["bench", "--url", "http://x", "--goodput", "fast"])
    assert bad_goodput.exit_code == 2

    server = serve(die_after=3)
    out = tmp_path / "partial.json"
    died = runner.invoke(main, ["bench", "--url", server.url, "--num-prompts", "6",
                                "--output-len", "4", "--json", str(out), "--no-progress"])
    assert died.exit_code == 1
    assert "closed the connection" in died.output and "partial results written" in died.output
    data = json.loads(out.read_text())
    assert not data["complete"] and "closed the connection" in data["error"]
    assert sum(r["success"] for r in data["levels"][0]["requests"]) == 2

    refused = serve(refuse_index={3})
    some_failed = runner.invoke(main, ["bench", "--url", refused.url, "--num-prompts", "4",
                                       "--output-len", "4", "--no-progress"])
    assert some_failed.exit_code == 1
    assert "1 of 4 requests failed" in some_failed.output


def test_errors_are_stackdecide_errors() -> None:
    for cls in (ServerUnreachableError, NotOpenAICompatibleError, RunAbortedError, BenchError,
                BenchConfigError):
        assert issubclass(cls, StackdecideError)


def test_bursty_streams_give_no_decode_rate() -> None:
    # 64 tokens per request in 2 chunks: the client's TPOT measures the HTTP path, not decoding.
    from stackdecide.bench.runner import BenchConfig, BenchResult, LevelResult
    from stackdecide.bench.stats import RequestRecord

    def request(index: int, chunks: int) -> RequestRecord:
        return RequestRecord(index=index, prompt_len=32, max_tokens=64, success=True,
                             ttft_s=0.2, latency_s=0.2005, itl_s=[0.0005] * (chunks - 1),
                             output_tokens=64, chunks=chunks, usage_reported=True)

    def rows(chunks: int) -> dict[str, float]:
        level = LevelResult(concurrency=1, input_len=32, output_len=64, num_prompts=3,
                            records=[request(i, chunks) for i in range(3)], duration_s=0.7,
                            complete=True)
        result = BenchResult(BenchConfig(url="http://127.0.0.1:1", scenario="decode"),
                             levels=[level])
        return {row.metric: row.value for row in result.metric_rows()}

    bursty = rows(chunks=2)
    assert "decode_tok_s" not in bursty and bursty["output_tok_s"] == pytest.approx(64 * 3 / 0.7)
    assert rows(chunks=64)["decode_tok_s"] == pytest.approx(1000 / (0.0005 / 63 * 1000))
