"""The server's own count of a benchmark run, from its Prometheus ``/metrics``, beside the client's.

vLLM's names have moved between versions; each quantity below lists the names it has had, newest
first, as exposed on the wire (a counter created as ``vllm:generation_tokens`` is exposed as
``vllm:generation_tokens_total`` by prometheus_client; older servers named it that way in code):

- ``vllm:kv_cache_usage_perc`` replaced ``vllm:gpu_cache_usage_perc`` (deprecated by vLLM PR
  #18354, later hidden unless ``--show-hidden-metrics-for-version``);
- ``vllm:inter_token_latency_seconds`` replaced ``vllm:time_per_output_token_seconds`` (deprecated
  in 0.11 by PR #24110, later removed);
- ``vllm:prefix_cache_hits`` / ``_queries`` replaced ``vllm:gpu_prefix_cache_hits`` / ``_queries``;
- the token and preemption counters kept their names (``vllm:prompt_tokens_total``,
  ``vllm:generation_tokens_total``, ``vllm:num_preemptions_total``) from the V0 engine to V1.

Counters are summed over their label sets (several engines under data parallelism, several
``finished_reason`` values); ``kv_cache_usage`` is the largest over engines.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field, replace
from typing import Any

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

# quantity -> exposed sample names, newest first
METRIC_NAMES: dict[str, tuple[str, ...]] = {
    "generation_tokens": ("vllm:generation_tokens_total", "vllm:generation_tokens"),
    "prompt_tokens": ("vllm:prompt_tokens_total", "vllm:prompt_tokens"),
    "preemptions": ("vllm:num_preemptions_total", "vllm:num_preemptions"),
    "requests_finished": ("vllm:request_success_total", "vllm:request_success"),
    "prefix_cache_hits": ("vllm:prefix_cache_hits_total", "vllm:gpu_prefix_cache_hits_total",
                          "vllm:prefix_cache_hits", "vllm:gpu_prefix_cache_hits"),
    "kv_cache_usage": ("vllm:kv_cache_usage_perc", "vllm:gpu_cache_usage_perc"),
    "requests_running": ("vllm:num_requests_running",),
    "requests_waiting": ("vllm:num_requests_waiting",),
}
# Latency histograms the server keeps (seconds): their _sum and _count deltas give the server's own
# mean over a run.
HISTOGRAMS: dict[str, tuple[str, ...]] = {
    "ttft": ("vllm:time_to_first_token_seconds",),
    "itl": ("vllm:inter_token_latency_seconds", "vllm:time_per_output_token_seconds"),
    "e2el": ("vllm:e2e_request_latency_seconds",),
    "queue": ("vllm:request_queue_time_seconds",),
}
for _key, _names in HISTOGRAMS.items():
    METRIC_NAMES[f"{_key}_sum"] = tuple(f"{n}_sum" for n in _names)
    METRIC_NAMES[f"{_key}_count"] = tuple(f"{n}_count" for n in _names)
_TAKE_MAX = frozenset({"kv_cache_usage"})


@dataclass(frozen=True)
class Snapshot:
    """The quantities found in one scrape, and the exposed name each was read from."""

    values: dict[str, float]
    names: dict[str, str]
    taken_at: float  # time.perf_counter()


_WANTED = {name: quantity for quantity, names in METRIC_NAMES.items() for name in names}
_PREFIXES = tuple(sorted(_WANTED))


def parse_metrics(text: str) -> Snapshot:
    """Pick the known quantities out of a Prometheus text exposition.

    Only the samples of known names are handed to the parser (a vLLM exposition is 50-100 KB,
    mostly histogram buckets): parsing runs in the client's event loop, between stream events.
    """
    wanted = _WANTED
    lines = [line for line in text.splitlines() if line.startswith(_PREFIXES)
             and line.split("{", 1)[0].split(" ", 1)[0] in wanted]
    found: dict[str, dict[str, float]] = {}  # quantity -> exposed name -> aggregated value
    for family in text_string_to_metric_families("\n".join(lines) + "\n"):
        for sample in family.samples:
            quantity = wanted.get(sample.name)
            if quantity is None:
                continue
            by_name = found.setdefault(quantity, {})
            if quantity in _TAKE_MAX:
                by_name[sample.name] = max(by_name.get(sample.name, sample.value), sample.value)
            else:
                by_name[sample.name] = by_name.get(sample.name, 0.0) + sample.value
    values, names = {}, {}
    for quantity, by_name in found.items():
        name = next(n for n in METRIC_NAMES[quantity] if n in by_name)
        values[quantity], names[quantity] = by_name[name], name
    return Snapshot(values, names, time.perf_counter())


class MetricsUnavailable(Exception):
    """``/metrics`` could not be read; the message says why (used as a note, never fatal)."""


async def scrape(session: aiohttp.ClientSession, base_url: str, timeout_s: float = 5.0) -> Snapshot:
    try:
        async with session.get(f"{base_url}/metrics",
                               timeout=aiohttp.ClientTimeout(total=timeout_s)) as response:
            if response.status != 200:
                raise MetricsUnavailable(f"GET {base_url}/metrics answered {response.status}")
            text = await response.text()
    except (aiohttp.ClientError, TimeoutError) as exc:
        raise MetricsUnavailable(f"GET {base_url}/metrics failed: {type(exc).__name__}: {exc}"
                                 .rstrip(": ")) from None
    try:
        return parse_metrics(text)
    except ValueError as exc:
        raise MetricsUnavailable(f"{base_url}/metrics is not Prometheus text: {exc}") from None


@dataclass(frozen=True)
class ServerCheck:
    """Server-side deltas over one run and their difference from the client's counts.

    ``*_difference`` is server minus client; ``None`` where the server does not expose the counter.
    """

    generation_tokens: float | None
    prompt_tokens: float | None
    preemptions: float | None
    requests_finished: float | None
    prefix_cache_hits: float | None
    kv_cache_usage_peak: float | None  # 0..1, highest seen before, during or after the run
    requests_running_peak: float | None
    requests_waiting_peak: float | None
    client_output_tokens: int
    client_prompt_tokens: int
    client_requests: int
    scrapes: int
    # the server's own mean latencies over the run (ms), measured inside vLLM: the client's are
    # larger by the HTTP path (and by any delay in the server's streaming)
    server_ttft_ms_mean: float | None = None
    server_itl_ms_mean: float | None = None
    server_e2el_ms_mean: float | None = None
    server_queue_ms_mean: float | None = None
    metric_names: dict[str, str] = field(default_factory=dict)
    notes: tuple[str, ...] = ()

    @property
    def output_tokens_difference(self) -> float | None:
        if self.generation_tokens is None:
            return None
        return self.generation_tokens - self.client_output_tokens

    @property
    def prompt_tokens_difference(self) -> float | None:
        if self.prompt_tokens is None:
            return None
        return self.prompt_tokens - self.client_prompt_tokens

    @property
    def output_tokens_relative_difference(self) -> float | None:
        diff = self.output_tokens_difference
        if diff is None or self.client_output_tokens == 0:
            return None
        return diff / self.client_output_tokens

    @property
    def agrees(self) -> bool | None:
        """Token counts match exactly on both sides (None when the server has no counters)."""
        diffs = [d for d in (self.output_tokens_difference, self.prompt_tokens_difference)
                 if d is not None]
        return None if not diffs else all(d == 0 for d in diffs)

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        data["notes"] = list(self.notes)
        data["output_tokens_difference"] = self.output_tokens_difference
        data["prompt_tokens_difference"] = self.prompt_tokens_difference
        data["agrees"] = self.agrees
        return data


def cross_check(before: Snapshot, after: Snapshot, during: list[Snapshot], *,
                client_output_tokens: int, client_prompt_tokens: int, client_requests: int,
                client_failed: int = 0) -> ServerCheck:
    """Compare the server's counter deltas with the client's totals of successful requests."""
    notes: list[str] = []

    def delta(quantity: str) -> float | None:
        if quantity not in before.values or quantity not in after.values:
            return None
        return after.values[quantity] - before.values[quantity]

    def peak(quantity: str) -> float | None:
        seen = [s.values[quantity] for s in (before, *during, after) if quantity in s.values]
        return max(seen) if seen else None

    missing = [q for q in ("generation_tokens", "prompt_tokens") if q not in after.values]
    if missing:
        notes.append(f"the server exposes no {' or '.join(METRIC_NAMES[missing[0]])}; "
                     "is it a vLLM server?")
    renamed = {q: n for q, n in after.names.items() if n != METRIC_NAMES[q][0]}
    if renamed:
        notes.append("older metric names in use: " + ", ".join(sorted(renamed.values())))
    generation = delta("generation_tokens")
    if client_failed:
        notes.append(f"{client_failed} requests failed; the server also counts the tokens it "
                     "produced for them, so its totals may be higher")
    if generation is not None and generation != client_output_tokens and not client_failed:
        notes.append("token counts differ: other traffic on the server during the run, or "
                     "tokens the client did not receive")
    if not during:
        notes.append("no scrapes during the run: the KV-cache and queue peaks are from before "
                     "and after only")
    def mean_ms(key: str) -> float | None:
        total, count = delta(f"{key}_sum"), delta(f"{key}_count")
        return None if total is None or not count else 1000.0 * total / count

    return ServerCheck(
        server_ttft_ms_mean=mean_ms("ttft"), server_itl_ms_mean=mean_ms("itl"),
        server_e2el_ms_mean=mean_ms("e2el"), server_queue_ms_mean=mean_ms("queue"),
        generation_tokens=generation, prompt_tokens=delta("prompt_tokens"),
        preemptions=delta("preemptions"), requests_finished=delta("requests_finished"),
        prefix_cache_hits=delta("prefix_cache_hits"),
        kv_cache_usage_peak=peak("kv_cache_usage"),
        requests_running_peak=peak("requests_running"),
        requests_waiting_peak=peak("requests_waiting"),
        client_output_tokens=client_output_tokens, client_prompt_tokens=client_prompt_tokens,
        client_requests=client_requests, scrapes=2 + len(during),
        metric_names=dict(after.names), notes=tuple(notes))


class MetricsWatcher:
    """Scrapes before a run, every ``interval_s`` during it (0: never), and after it.

    The after-scrape is repeated briefly while the server's generation counter is still below the
    client's count, because vLLM updates its counters just after it sends the last chunk.
    """

    def __init__(self, session: aiohttp.ClientSession, base_url: str,
                 interval_s: float = 1.0) -> None:
        self.session = session
        self.base_url = base_url
        self.interval_s = interval_s
        self.before: Snapshot | None = None
        self.during: list[Snapshot] = []
        self.notes: list[str] = []
        self._task: asyncio.Task[None] | None = None

    async def start(self) -> None:
        try:
            self.before = await scrape(self.session, self.base_url)
        except MetricsUnavailable as exc:
            self.notes.append(str(exc))
            return
        if self.interval_s > 0:
            self._task = asyncio.create_task(self._poll())

    async def _poll(self) -> None:
        while True:
            await asyncio.sleep(self.interval_s)
            try:
                self.during.append(await scrape(self.session, self.base_url))
            except MetricsUnavailable:
                continue  # the run itself reports a dead server

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
            self._task = None

    async def finish(self, *, client_output_tokens: int, client_prompt_tokens: int,
                     client_requests: int, client_failed: int = 0,
                     settle_s: float = 1.0) -> ServerCheck | None:
        await self.stop()
        if self.before is None:
            return None
        deadline = time.perf_counter() + settle_s
        while True:
            try:
                after = await scrape(self.session, self.base_url)
            except MetricsUnavailable as exc:
                self.notes.append(str(exc))
                return None
            generated = _delta(self.before.values, after.values, "generation_tokens")
            if generated is None or generated >= client_output_tokens \
                    or time.perf_counter() >= deadline:
                break
            await asyncio.sleep(0.05)
        check = cross_check(self.before, after, self.during,
                            client_output_tokens=client_output_tokens,
                            client_prompt_tokens=client_prompt_tokens,
                            client_requests=client_requests, client_failed=client_failed)
        if self.notes:
            check = replace(check, notes=(*check.notes, *self.notes))
        return check


def _delta(before: Mapping[str, float], after: Mapping[str, float], key: str) -> float | None:
    if key not in before or key not in after:
        return None
    return after[key] - before[key]
