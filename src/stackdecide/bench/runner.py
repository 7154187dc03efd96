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
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple, Protocol
from urllib.parse import urlsplit

import aiohttp
import numpy as np

from stackdecide.bench.server_metrics import MetricsWatcher, ServerCheck
from stackdecide.bench.stats import PERCENTILES, RequestRecord, Slo, Summary, summarize
from stackdecide.bench.stream import (
    FATAL_KINDS,
    FailureKind,
    Timeouts,
    completion_payload,
    error_text,
    stream_completion,
)
from stackdecide.errors import EngineError, StackdecideError

RESULT_SCHEMA = "stackdecide/bench-v1"
SCENARIOS = ("decode", "prefill", "throughput")


@dataclass(frozen=True)
class ScenarioDefaults:
    input_len: int
    output_len: int
    num_prompts: int
    concurrency: tuple[int, ...]


DEFAULTS: dict[str, ScenarioDefaults] = {
    "decode": ScenarioDefaults(input_len=128, output_len=256, num_prompts=5, concurrency=(1,)),
    "prefill": ScenarioDefaults(input_len=4096, output_len=1, num_prompts=5, concurrency=(1,)),
    "throughput": ScenarioDefaults(input_len=512, output_len=256, num_prompts=64,
                                   concurrency=(1, 4, 16)),
}


class BenchError(EngineError):
    """A benchmark that could not run or finish; ``partial`` holds what was measured."""

    def __init__(self, message: str, partial: BenchResult | None = None) -> None:
        super().__init__(message)
        self.partial = partial


class BenchConfigError(StackdecideError):
    """Benchmark settings that cannot work (exit code 2)."""


class ServerUnreachableError(BenchError):
    """Nothing answers at the URL."""


class NotOpenAICompatibleError(BenchError):
    """Something answers, but not like an OpenAI-compatible completions server."""


class RunAbortedError(BenchError):
    """The server died, hung or timed out during the run."""


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


def normalize_url(url: str) -> str:
    """``http://host:port`` from what users type (trailing ``/`` or ``/v1`` allowed)."""
    text = url.strip().rstrip("/")
    if text.endswith("/v1"):
        text = text[:-3]
    parts = urlsplit(text)
    if parts.scheme not in ("http", "https") or not parts.netloc:
        raise BenchConfigError(f"--url '{url}' is not an http(s) URL such as "
                               "http://127.0.0.1:8000")
    return text


@dataclass(frozen=True)
class BenchConfig:
    """What to run. ``None`` fields take the scenario's defaults (``DEFAULTS``)."""

    url: str
    scenario: str = "decode"
    model: str | None = None
    concurrency: tuple[int, ...] | None = None
    input_len: int | None = None
    output_len: int | None = None
    num_prompts: int | None = None
    seed: int = 0
    warmup: int = 1  # requests sent and discarded before the first level
    slo: Slo = field(default_factory=Slo)
    timeouts: Timeouts = field(default_factory=Timeouts)
    token_id_limit: int = 4096  # prompt ids are drawn from [0, limit): inside any real vocabulary
    # /metrics scrapes during a level (for KV-cache and queue peaks); 0: before and after only.
    # Each scrape costs the server's API process some milliseconds, hence not more often.
    metrics_interval_s: float = 5.0
    server_metrics: bool = True
    percentiles: tuple[float, ...] = PERCENTILES

    def resolved(self) -> BenchConfig:
        """This config with defaults filled in and every value checked."""
        if self.scenario not in DEFAULTS:
            raise BenchConfigError(f"unknown scenario '{self.scenario}'; choose one of "
                                   f"{', '.join(SCENARIOS)}")
        base = DEFAULTS[self.scenario]
        config = replace(
            self, url=normalize_url(self.url),
            concurrency=tuple(self.concurrency) if self.concurrency else base.concurrency,
            input_len=self.input_len if self.input_len is not None else base.input_len,
            output_len=self.output_len if self.output_len is not None else base.output_len,
            num_prompts=self.num_prompts if self.num_prompts is not None else base.num_prompts)
        checks = [
            ("--input-len", config.input_len, 1), ("--output-len", config.output_len, 1),
            ("--num-prompts", config.num_prompts, 1), ("--warmup", config.warmup, 0),
            ("--token-id-limit", config.token_id_limit, 1),
        ]
        checks += [("--concurrency", c, 1) for c in config.concurrency or ()]
        for name, value, low in checks:
            if value is None or value < low:
                raise BenchConfigError(f"{name} must be at least {low}, got {value}")
        for name, seconds in (("request timeout", config.timeouts.request_s),
                              ("stall timeout", config.timeouts.stall_s),
                              ("connect timeout", config.timeouts.connect_s)):
            if not seconds > 0:
                raise BenchConfigError(f"the {name} must be positive, got {seconds}")
        if config.metrics_interval_s < 0:
            raise BenchConfigError("the metrics interval must be 0 (off) or positive")
        return config

    def to_dict(self) -> dict[str, Any]:
        return {
            "url": self.url, "scenario": self.scenario, "model": self.model,
            "concurrency": list(self.concurrency or ()), "input_len": self.input_len,
            "output_len": self.output_len, "num_prompts": self.num_prompts, "seed": self.seed,
            "warmup": self.warmup, "slo_ms": self.slo.to_dict(),
            "timeouts_s": {"request": self.timeouts.request_s, "stall": self.timeouts.stall_s,
                           "connect": self.timeouts.connect_s},
            "token_id_limit": self.token_id_limit, "metrics_interval_s": self.metrics_interval_s,
            "server_metrics": self.server_metrics, "percentiles": list(self.percentiles),
        }


class MetricRow(NamedTuple):
    """One measured number, ready to become an evidence record."""

    metric: str
    value: float
    unit: str
    scenario: dict[str, int]


@dataclass
class LevelResult:
    """One concurrency level: its requests, wall time and the server's own count."""

    concurrency: int
    input_len: int
    output_len: int
    num_prompts: int
    records: list[RequestRecord] = field(default_factory=list)
    duration_s: float = 0.0
    complete: bool = False
    server: ServerCheck | None = None
    server_notes: tuple[str, ...] = ()

    @property
    def scenario(self) -> dict[str, int]:
        return {"concurrency": self.concurrency, "input_len": self.input_len,
                "output_len": self.output_len, "num_prompts": self.num_prompts}

    def summary(self, slo: Slo | None = None,
                percentiles: Sequence[float] = PERCENTILES) -> Summary:
        return summarize(self.records, self.duration_s, slo, percentiles)

    @property
    def failures(self) -> list[RequestRecord]:
        return [r for r in self.records if not r.success]


@dataclass
class BenchResult:
    """Everything one ``run_bench`` measured; also what a failed run had measured so far."""

    config: BenchConfig
    model: str = ""
    max_model_len: int | None = None
    started_at: str = field(default_factory=lambda: datetime.now(UTC).isoformat(
        timespec="seconds"))
    warmup_records: list[RequestRecord] = field(default_factory=list)
    levels: list[LevelResult] = field(default_factory=list)
    error: str | None = None  # why the run stopped early; None when it finished

    @property
    def scenario(self) -> str:
        return self.config.scenario

    @property
    def complete(self) -> bool:
        return self.error is None and all(level.complete for level in self.levels)

    @property
    def failed_requests(self) -> list[RequestRecord]:
        return [r for level in self.levels for r in level.failures]

    def metric_rows(self) -> list[MetricRow]:
        """Measured metrics per level, from successful requests only (docs/metrics.md)."""
        rows: list[MetricRow] = []
        for level in self.levels:
            summary = level.summary(self.config.slo, self.config.percentiles)
            if summary.completed == 0:
                continue
            scenario = level.scenario

            def add(metric: str, value: float | None, unit: str,
                    scenario: dict[str, int] = scenario) -> None:
                if value is not None and np.isfinite(value):
                    rows.append(MetricRow(metric, float(value), unit, dict(scenario)))

            if self.scenario == "decode" and summary.tpot is not None and \
                    summary.tpot.median > 0 and not summary.bursty:
                # A bursty stream's TPOT is not a decode time: no decode_tok_s then
                # (output_tok_s of the one stream still holds); see docs/metrics.md.
                add("decode_tok_s", 1000.0 / summary.tpot.median, "tok/s")
            if self.scenario == "prefill" and summary.prefill_tok_s is not None:
                add("prefill_tok_s", summary.prefill_tok_s.median, "tok/s")
            for name in ("ttft", "tpot", "itl", "e2el"):
                dist = getattr(summary, name)
                if dist is None:
                    continue
                add(f"{name}_ms_mean", dist.mean, "ms")
                for key, value in dist.percentiles.items():
                    add(f"{name}_ms_{key}", value, "ms")
            add("output_tok_s", summary.output_tok_s, "tok/s")
            add("total_tok_s", summary.total_tok_s, "tok/s")
            add("request_per_s", summary.request_per_s, "req/s")
            add("goodput_req_s", summary.goodput_req_s, "req/s")
        return rows

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, versioned (``schema``); per-request records included."""
        slo, percentiles = self.config.slo, self.config.percentiles
        return {
            "schema": RESULT_SCHEMA,
            "started_at": self.started_at,
            "complete": self.complete,
            "error": self.error,
            "model": self.model,
            "max_model_len": self.max_model_len,
            "config": self.config.to_dict(),
            "levels": [{
                **level.scenario,
                "complete": level.complete,
                "duration_s": level.duration_s,
                "summary": level.summary(slo, percentiles).to_dict(),
                "server": level.server.to_dict() if level.server else None,
                "server_notes": list(level.server_notes),
                "requests": [r.to_dict() for r in level.records],
            } for level in self.levels],
            "warmup_requests": [r.to_dict() for r in self.warmup_records],
            "metrics": [row._asdict() for row in self.metric_rows()],
        }

    def write_json(self, path: str | Path) -> Path:
        path = Path(path)
        path.write_text(json.dumps(self.to_dict(), indent=1) + "\n", encoding="utf-8")
        return path


def load_result(path: str | Path) -> BenchResult:
    """Read a result written by ``BenchResult.write_json``."""
    from stackdecide.errors import EvidenceError

    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EvidenceError(f"{path}: cannot read a benchmark result: {exc}") from None
    if not isinstance(data, dict) or data.get("schema") != RESULT_SCHEMA:
        raise EvidenceError(f"{path}: not a benchmark result (schema '{RESULT_SCHEMA}')")
    cfg = data["config"]
    config = BenchConfig(
        url=cfg["url"], scenario=cfg["scenario"], model=cfg["model"],
        concurrency=tuple(cfg["concurrency"]), input_len=cfg["input_len"],
        output_len=cfg["output_len"], num_prompts=cfg["num_prompts"], seed=cfg["seed"],
        warmup=cfg["warmup"], slo=Slo(**cfg["slo_ms"]),
        timeouts=Timeouts(cfg["timeouts_s"]["request"], cfg["timeouts_s"]["stall"],
                          cfg["timeouts_s"]["connect"]),
        token_id_limit=cfg["token_id_limit"], metrics_interval_s=cfg["metrics_interval_s"],
        server_metrics=cfg["server_metrics"], percentiles=tuple(cfg["percentiles"]))
    levels = [LevelResult(
        concurrency=lv["concurrency"], input_len=lv["input_len"], output_len=lv["output_len"],
        num_prompts=lv["num_prompts"], duration_s=lv["duration_s"], complete=lv["complete"],
        records=[RequestRecord.from_dict(r) for r in lv["requests"]],
        server=_server_check(lv.get("server")),
        server_notes=tuple(lv.get("server_notes", ()))) for lv in data["levels"]]
    return BenchResult(config=config, model=data["model"], max_model_len=data["max_model_len"],
                       started_at=data["started_at"], levels=levels, error=data["error"],
                       warmup_records=[RequestRecord.from_dict(r)
                                       for r in data["warmup_requests"]])


def _server_check(data: dict[str, Any] | None) -> ServerCheck | None:
    if data is None:
        return None
    names = {f.name for f in fields(ServerCheck)}
    kept = {k: v for k, v in data.items() if k in names}
    kept["notes"] = tuple(kept.get("notes", ()))
    return ServerCheck(**kept)


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
