"""Benchmark a running OpenAI-compatible server (vLLM) with streaming ``/v1/completions``.

>>> from stackdecide.bench.runner import BenchConfig, run_bench
>>> result = run_bench(BenchConfig(url="http://127.0.0.1:8000", scenario="decode"))
>>> result.metric_rows()        # [(metric, value, unit, scenario), ...]

Scenarios: ``decode`` (one stream, 128 in / 256 out), ``prefill`` (one stream, long prompt, one
output token), ``throughput`` (a fixed number of prompts at each of several concurrency levels).
Prompts are random token ids (seeded), outputs have a fixed length (``ignore_eos`` and
``max_tokens``), warm-up requests are not counted, and every metric is defined as in
``vllm bench serve`` (docs/metrics.md). A run that cannot go on (server unreachable, gone, hung)
raises a ``BenchError`` that carries the results gathered so far. A server started with an API key
gets it as a bearer token on every request: the key given (``launch`` passes its server's), else
``$VLLM_API_KEY``, the variable vLLM itself reads it from.
"""

from __future__ import annotations

import asyncio
import json
import os
import time
from typing import Protocol

import aiohttp
import numpy as np

from stackdecide.audit.engine_config import API_KEY_VARIABLE, auth_header
from stackdecide.bench.prompts import Prompt, PromptMaker, TokenIdPrompts, text_prompts
from stackdecide.bench.results import (
    DEFAULTS,
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
    "DEFAULTS", "SCENARIOS", "BenchConfig", "BenchConfigError", "BenchError",
    "BenchResult", "BenchRunner", "LevelResult", "MetricRow", "NotOpenAICompatibleError",
    "Progress", "RunAbortedError", "ScenarioDefaults", "ServerUnreachableError", "load_result",
    "make_prompts", "normalize_url", "run_bench", "runner_for",
]


# below the keep-alive of vLLM's API server (VLLM_HTTP_TIMEOUT_KEEP_ALIVE, 5 s by default), so the
# pool never hands out a connection the server is closing
KEEPALIVE_S = 4.0


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
    return TokenIdPrompts(limit).make(rng, [length] * count)  # type: ignore[return-value]


def arrival_offsets(rng: np.random.Generator, count: int, rate: float | None) -> np.ndarray:
    """Seconds from a level's start at which each request is sent: all at once without a rate,
    else Poisson arrivals of mean ``rate`` (exponential gaps; the first request at 0)."""
    if not rate:
        return np.zeros(count)
    gaps = rng.exponential(1.0 / rate, size=count)
    return np.cumsum(gaps) - gaps[0]


class BenchRunner:
    """Runs one benchmark; ``result`` holds what has been measured so far, at any moment."""

    def __init__(self, config: BenchConfig, progress: Progress | None = None) -> None:
        self.config = config.resolved()
        self.progress: Progress = progress or _NoProgress()
        self.result = BenchResult(config=self.config)
        self.prompts: PromptMaker = TokenIdPrompts(self.config.token_id_limit)
        self.api_key: str | None = os.environ.get(API_KEY_VARIABLE) or None

    def headers(self) -> dict[str, str]:
        """What every request carries: the server's API key as a bearer token, when it has one."""
        return auth_header(self.api_key)

    def connection_limit(self) -> int:
        """Connections the pool may open: one per stream of the largest level."""
        return max(self.config.concurrency or (1,))

    @property
    def completions_url(self) -> str:
        return f"{self.config.url}/v1/completions"

    def run(self) -> BenchResult:
        """Run to the end; raises ``BenchError`` (with ``partial``) when it cannot."""
        return asyncio.run(self.run_async())

    async def run_async(self) -> BenchResult:
        config = self.config
        # a connection reused as the server closes it was lost as "server disconnected" (at 362
        # and 1,024 streams on a 2-core CPU engine): idle ones are dropped here first
        connector = aiohttp.TCPConnector(limit=self.connection_limit(), force_close=False,
                                         keepalive_timeout=KEEPALIVE_S)
        # /metrics gets its own connection: in the benchmark's pool (one connection per stream)
        # a scrape would hold a slot and delay the next request, inflating its TTFT.
        async with aiohttp.ClientSession(connector=connector, headers=self.headers(),
                                         timeout=config.timeouts.client_timeout()) as session, \
                aiohttp.ClientSession(headers=self.headers()) as metrics_session:
            try:
                await self._discover(session)
                self.prompts = await self._prompt_maker(session)
                await self._warmup(session)
                await self._levels(session, metrics_session)
            except BenchError as exc:
                self.result.error = str(exc)
                exc.partial = self.result
                raise
            finally:
                self.progress.finish()
        return self.result

    async def _levels(self, session: aiohttp.ClientSession,
                      metrics_session: aiohttp.ClientSession) -> None:
        """The measured part: each concurrency level in turn (``CapacityRunner`` searches)."""
        rng = np.random.default_rng(self.config.seed)
        for concurrency in self.config.concurrency or ():
            await self._run_level(session, metrics_session, concurrency, rng)

    async def _prompt_maker(self, session: aiohttp.ClientSession) -> PromptMaker:
        """Token ids (the default), or text that the server must tokenize (``prompt_mode``)."""
        if self.config.prompt_mode == "token-ids":
            return TokenIdPrompts(self.config.token_id_limit)
        return await text_prompts(session, self.config, self.result.model)

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
        needed = (sum(self.config.lengths.largest) if self.config.lengths else
                  (self.config.input_len or 0) + (self.config.output_len or 0))
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
        prompts = self.prompts.make(rng, [config.input_len or 1] * config.warmup)
        max_tokens = min(config.output_len or 1, 16)
        self.progress.start("warm-up", len(prompts))
        concurrency = max(config.concurrency or (1,))
        semaphore = asyncio.Semaphore(concurrency)

        async def one(index: int, prompt: Prompt) -> RequestRecord:
            async with semaphore:
                record = RequestRecord(index=index, prompt_len=self.prompts.length(prompt),
                                       max_tokens=max_tokens)
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
                         rng: np.random.Generator, *, request_rate: float | None = None,
                         num_prompts: int | None = None) -> LevelResult:
        """One level: ``num_prompts`` requests, at most ``concurrency`` in flight, sent at once
        or, with ``request_rate``, at Poisson arrivals of that mean rate (as ``vllm bench serve
        --request-rate`` with burstiness 1)."""
        config = self.config
        input_len, output_len = config.input_len or 1, config.output_len or 1
        num_prompts = num_prompts or config.num_prompts or 1
        level = LevelResult(concurrency, input_len, output_len, num_prompts,
                            request_rate=request_rate)
        self.result.levels.append(level)
        lengths = (config.lengths.sample(rng, num_prompts) if config.lengths
                   else [(input_len, output_len)] * num_prompts)
        prompts = self.prompts.make(rng, [length for length, _ in lengths])
        arrivals = arrival_offsets(rng, num_prompts, request_rate)
        watcher = (MetricsWatcher(metrics_session, config.url, config.metrics_interval_s)
                   if config.server_metrics else None)
        if watcher is not None:
            await watcher.start()
        label = (f"rate {request_rate:g}/s" if request_rate else f"concurrency {concurrency}")
        self.progress.start(label, num_prompts)
        semaphore = asyncio.Semaphore(concurrency)
        start = time.perf_counter()

        stopping = False

        async def one(index: int, prompt: Prompt, max_tokens: int, arrival: float) -> None:
            nonlocal stopping
            delay = arrival - (time.perf_counter() - start)
            if delay > 0:
                await asyncio.sleep(delay)
            async with semaphore:
                if stopping:
                    return  # woken by the failed request's released slot
                record = RequestRecord(index=index, prompt_len=self.prompts.length(prompt),
                                       max_tokens=max_tokens, start_s=time.perf_counter() - start)
                level.records.append(record)
                await stream_completion(
                    session, self.completions_url,
                    completion_payload(self.result.model, prompt, max_tokens), record,
                    config.timeouts)
                self.progress.advance()
                if record.error_kind in FATAL_KINDS:
                    stopping = True
                    raise _FatalRequest(record)

        fatal: RequestRecord | None = None
        try:
            async with asyncio.TaskGroup() as group:
                for index, (prompt, (_, max_tokens)) in enumerate(zip(prompts, lengths,
                                                                       strict=True)):
                    group.create_task(one(index, prompt, max_tokens, float(arrivals[index])))
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
        return level

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


def runner_for(config: BenchConfig, progress: Progress | None = None,
               api_key: str | None = None) -> BenchRunner:
    """The runner of ``config``'s scenario: ``CapacityRunner`` searches, the others measure;
    ``api_key``: the server's (default: ``$VLLM_API_KEY``)."""
    runner: BenchRunner
    if config.scenario == "capacity":
        from stackdecide.bench.capacity_run import CapacityRunner  # it builds on this module
        runner = CapacityRunner(config, progress)
    else:
        runner = BenchRunner(config, progress)
    if api_key:
        runner.api_key = api_key
    return runner


def run_bench(config: BenchConfig, progress: Progress | None = None,
              api_key: str | None = None) -> BenchResult:
    """Run a benchmark to the end (see ``BenchRunner`` and ``bench.capacity_run``) against a
    server that requires ``api_key`` (default: ``$VLLM_API_KEY``), if any."""
    return runner_for(config, progress, api_key).run()
