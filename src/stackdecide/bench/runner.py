"""Benchmark a running OpenAI-compatible server (vLLM) with streaming ``/v1/completions``.

>>> from stackdecide.bench.runner import BenchConfig, run_bench
>>> result = run_bench(BenchConfig(url="http://127.0.0.1:8000", scenario="decode"))
>>> result.metric_rows()        # [(metric, value, unit, scenario), ...]

Scenarios: ``decode`` (one stream, 128 in / 256 out), ``prefill`` (one stream, long prompt, one
output token), ``throughput`` (a fixed number of prompts at each of several concurrency levels).
Prompts are random token ids (seeded), outputs have a fixed length (``ignore_eos`` and
``max_tokens``), warm-up requests are not counted, and every metric is defined as in
``vllm bench serve`` (docs/metrics.md). A run that cannot go on (server unreachable, gone, hung)
raises a ``BenchError`` that carries the results gathered so far.
"""

from __future__ import annotations

import asyncio
import json
import time
from typing import Protocol

import aiohttp
import numpy as np

from stackdecide.bench.results import (
    DEFAULTS,
    RESULT_SCHEMA,
    SCENARIOS,
    BenchConfig,
    BenchConfigError,
    BenchError,
    BenchResult,
    LevelResult,
    MetricRow,
    NotOpenAICompatibleError,
    RunAbortedError,
    ScenarioDefaults,
    ServerUnreachableError,
    load_result,
    normalize_url,
)
from stackdecide.bench.server_metrics import MetricsWatcher
from stackdecide.bench.stats import RequestRecord
from stackdecide.bench.stream import (
    FATAL_KINDS,
    FailureKind,
    completion_payload,
    error_text,
    stream_completion,
)

# The results' names stay importable from here, where callers have always found them.
__all__ = [
    "DEFAULTS", "RESULT_SCHEMA", "SCENARIOS", "BenchConfig", "BenchConfigError", "BenchError",
    "BenchResult", "BenchRunner", "LevelResult", "MetricRow", "NotOpenAICompatibleError",
    "Progress", "RunAbortedError", "ScenarioDefaults", "ServerUnreachableError", "load_result",
    "make_prompts", "normalize_url", "run_bench",
]


class Progress(Protocol):
    """Where the runner reports progress (the CLI draws a tqdm bar; the library prints nothing)."""

    def start(self, label: str, total: int) -> None: ...

    def advance(self, n: int = 1) -> None: ...

    def finish(self) -> None: ...


class _NoProgress:
    def start(self, label: str, total: int) -> None:
        pass

    def advance(self, n: int = 1) -> None:
        pass

    def finish(self) -> None:
        pass



def make_prompts(rng: np.random.Generator, count: int, length: int, limit: int) -> list[list[int]]:
    """``count`` prompts of ``length`` token ids drawn uniformly from [0, limit)."""
    return rng.integers(0, limit, size=(count, length)).tolist()


class BenchRunner:
    """Runs one benchmark; ``result`` holds what has been measured so far, at any moment."""

    def __init__(self, config: BenchConfig, progress: Progress | None = None) -> None:
        self.config = config.resolved()
        self.progress: Progress = progress or _NoProgress()
        self.result = BenchResult(config=self.config)

    @property
    def completions_url(self) -> str:
        return f"{self.config.url}/v1/completions"

    def run(self) -> BenchResult:
        """Run to the end; raises ``BenchError`` (with ``partial``) when it cannot."""
        return asyncio.run(self.run_async())

    async def run_async(self) -> BenchResult:
        config = self.config
        connector = aiohttp.TCPConnector(limit=max(config.concurrency or (1,)),
                                         force_close=False, keepalive_timeout=60)
        # /metrics gets its own connection: in the benchmark's pool (one connection per stream)
        # a scrape would hold a slot and delay the next request, inflating its TTFT.
        async with aiohttp.ClientSession(connector=connector,
                                         timeout=config.timeouts.client_timeout()) as session, \
                aiohttp.ClientSession() as metrics_session:
            try:
                await self._discover(session)
                await self._warmup(session)
                rng = np.random.default_rng(config.seed)
                for concurrency in config.concurrency or ():
                    await self._run_level(session, metrics_session, concurrency, rng)
            except BenchError as exc:
                self.result.error = str(exc)
                exc.partial = self.result
                raise
            finally:
                self.progress.finish()
        return self.result

    # -- steps -----------------------------------------------------------------------------------
    async def _discover(self, session: aiohttp.ClientSession) -> None:
        """Find the model (``/v1/models``) and check the requested lengths fit the server."""
        url = f"{self.config.url}/v1/models"
        try:
            async with session.get(url, timeout=aiohttp.ClientTimeout(
                    total=self.config.timeouts.connect_s + 20)) as response:
                body = await response.read()
                status, reason = response.status, response.reason or ""
        except aiohttp.ClientConnectorError as exc:
            raise ServerUnreachableError(
                f"cannot connect to {self.config.url}: {exc.os_error or exc}; is the server "
                "running and listening there?") from None
        except (aiohttp.ClientError, TimeoutError) as exc:
            raise ServerUnreachableError(
                f"no answer from {url}: {type(exc).__name__}: {exc}".rstrip(": ")) from None
        if status != 200:
            raise NotOpenAICompatibleError(
                f"GET {url} answered {status} {reason}".rstrip()
                + (f" ({error_text(body, 120)})" if body.strip() else "")
                + "; an OpenAI-compatible server lists its models there")
        try:
            entries = json.loads(body)["data"]
            served = {str(e["id"]): e for e in entries}
        except (ValueError, KeyError, TypeError):
            raise NotOpenAICompatibleError(
                f"GET {url} did not return an OpenAI model list "
                f"({error_text(body, 80)!r}); is this an OpenAI-compatible server?") from None
        if not served:
            raise BenchError(f"the server at {self.config.url} serves no models")
        model = self.config.model or next(iter(served))
        if model not in served:
            raise BenchConfigError(f"model '{model}' is not served at {self.config.url}; it "
                                   f"serves: {', '.join(served)}")
        self.result.model = model
        max_len = served[model].get("max_model_len")
        self.result.max_model_len = int(max_len) if isinstance(max_len, int) else None
        needed = (self.config.input_len or 0) + (self.config.output_len or 0)
        if self.result.max_model_len is not None and needed > self.result.max_model_len:
            raise BenchConfigError(
                f"{self.config.input_len} input + {self.config.output_len} output tokens "
                f"exceed the server's max_model_len of {self.result.max_model_len}; lower "
                "--input-len or --output-len")

    async def _warmup(self, session: aiohttp.ClientSession) -> None:
        config = self.config
        if config.warmup == 0:
            return
        # Separate random stream: warm-up prompts never share a prefix with measured ones.
        rng = np.random.default_rng([config.seed, 1])
        prompts = make_prompts(rng, config.warmup, config.input_len or 1, config.token_id_limit)
        max_tokens = min(config.output_len or 1, 16)
        self.progress.start("warm-up", len(prompts))
        concurrency = max(config.concurrency or (1,))
        semaphore = asyncio.Semaphore(concurrency)

        async def one(index: int, prompt: list[int]) -> RequestRecord:
            async with semaphore:
                record = RequestRecord(index=index, prompt_len=len(prompt), max_tokens=max_tokens)
                self.result.warmup_records.append(record)
                await stream_completion(
                    session, self.completions_url,
                    completion_payload(self.result.model, prompt, max_tokens), record,
                    config.timeouts)
                self.progress.advance()
                return record

        records = await asyncio.gather(*(one(i, p) for i, p in enumerate(prompts)))
        failed = next((r for r in records if not r.success), None)
        if failed is not None:
            raise self._warmup_error(failed)

    def _warmup_error(self, record: RequestRecord) -> BenchError:
        url = self.completions_url
        if record.error_kind == FailureKind.UNREACHABLE:
            return ServerUnreachableError(f"POST {url}: {record.error}")
        if record.error_kind == FailureKind.HTTP and record.error.startswith(("HTTP 404",
                                                                             "HTTP 405")):
            return NotOpenAICompatibleError(
                f"POST {url} answered {record.error.removeprefix('HTTP ')}; the server has no "
                "OpenAI-compatible completions endpoint")
        if record.error_kind == FailureKind.PROTOCOL:
            return NotOpenAICompatibleError(
                f"POST {url} {record.error}; the server does not stream OpenAI-style "
                "completions")
        if record.error_kind == FailureKind.HTTP:
            hint = ("; lower --token-id-limit to the model's vocabulary size"
                    if "vocab" in record.error.lower() else "")
            return BenchError(f"the warm-up request was refused: {record.error}{hint}")
        return RunAbortedError(f"the warm-up request failed: {record.error}")

    async def _run_level(self, session: aiohttp.ClientSession,
                         metrics_session: aiohttp.ClientSession, concurrency: int,
                         rng: np.random.Generator) -> None:
        config = self.config
        input_len, output_len = config.input_len or 1, config.output_len or 1
        num_prompts = config.num_prompts or 1
        level = LevelResult(concurrency, input_len, output_len, num_prompts)
        self.result.levels.append(level)
        prompts = make_prompts(rng, num_prompts, input_len, config.token_id_limit)
        watcher = (MetricsWatcher(metrics_session, config.url, config.metrics_interval_s)
                   if config.server_metrics else None)
        if watcher is not None:
            await watcher.start()
        self.progress.start(f"concurrency {concurrency}", num_prompts)
        semaphore = asyncio.Semaphore(concurrency)
        start = time.perf_counter()

        stopping = False

        async def one(index: int, prompt: list[int]) -> None:
            nonlocal stopping
            async with semaphore:
                if stopping:
                    return  # woken by the failed request's released slot
                record = RequestRecord(index=index, prompt_len=len(prompt), max_tokens=output_len,
                                       start_s=time.perf_counter() - start)
                level.records.append(record)
                await stream_completion(
                    session, self.completions_url,
                    completion_payload(self.result.model, prompt, output_len), record,
                    config.timeouts)
                self.progress.advance()
                if record.error_kind in FATAL_KINDS:
                    stopping = True
                    raise _FatalRequest(record)

        fatal: RequestRecord | None = None
        try:
            async with asyncio.TaskGroup() as group:
                for index, prompt in enumerate(prompts):
                    group.create_task(one(index, prompt))
        except* _FatalRequest as failures:
            first = failures.exceptions[0]
            assert isinstance(first, _FatalRequest)
            fatal = first.record
        finally:
            level.duration_s = time.perf_counter() - start
            level.records.sort(key=lambda r: r.index)
            for record in level.records:
                if not record.success and not record.error:
                    record.error_kind = FailureKind.CANCELLED
                    record.error = "in flight when the run stopped"
            if watcher is not None:
                await watcher.stop()
        if fatal is not None:
            raise RunAbortedError(self._abort_message(level, fatal))
        level.complete = True
        if watcher is not None:
            good = [r for r in level.records if r.success]
            level.server = await watcher.finish(
                client_output_tokens=sum(r.output_tokens for r in good),
                client_prompt_tokens=sum(r.prompt_len for r in good),
                client_requests=len(good), client_failed=len(level.records) - len(good))
            level.server_notes = tuple(watcher.notes)

    def _abort_message(self, level: LevelResult, record: RequestRecord) -> str:
        done = sum(r.success for r in level.records)
        what = {
            FailureKind.UNREACHABLE: "the server stopped accepting connections",
            FailureKind.DISCONNECTED: "the server closed the connection (crashed or stopped?)",
            FailureKind.STALLED: "the server stopped sending (hung?)",
            FailureKind.TIMEOUT: "a request took too long",
        }.get(FailureKind(record.error_kind), "a request failed")
        return (f"{what} at concurrency {level.concurrency}, request {record.index}: "
                f"{record.error}; kept {done} finished of {level.num_prompts} requests at this "
                f"level and {len(self.result.levels) - 1} earlier levels")


class _FatalRequest(Exception):
    def __init__(self, record: RequestRecord) -> None:
        super().__init__(record.error)
        self.record = record


def run_bench(config: BenchConfig, progress: Progress | None = None) -> BenchResult:
    """Run a benchmark to the end (see ``BenchRunner``)."""
    return BenchRunner(config, progress).run()
