"""The capacity scenario against a running server: each probe is one benchmark level.

``CapacityRunner`` is a ``BenchRunner`` whose levels are chosen by ``bench.capacity``'s search:
at a concurrency, ``max(num_prompts, 2 x concurrency)`` requests at most that many in flight (so
every probe reaches its concurrency twice over); at a request rate, ``num_prompts`` requests with
Poisson arrivals and no limit on those in flight. A probe's failed requests, the server's
preemptions during it (``/metrics``), and saturation (at a rate: requests finishing slower than
they arrive) fail it; a server that dies or hangs ends the search, keeping every probe so far.
"""

from __future__ import annotations

import aiohttp
import numpy as np

from stackdecide.bench.capacity import CapacitySearch, ProbeMeasurement
from stackdecide.bench.capacity_plan import CapacityPlan
from stackdecide.bench.results import BenchConfig, LevelResult, RunAbortedError
from stackdecide.bench.runner import BenchRunner, Progress
from stackdecide.bench.stats import RequestRecord, is_good
from stackdecide.model.metrics import LATENCIES, tool_latencies

PROBE_ROUNDS = 2  # a concurrency probe sends at least this many requests per slot


def probe_requests(concurrency: int, num_prompts: int) -> int:
    return max(num_prompts, PROBE_ROUNDS * concurrency)


def saturated(records: list[RequestRecord], ratio: float) -> bool:
    """Whether requests finished at less than ``ratio`` of the rate they were sent, both rates
    over the middle 80% of the requests (10th to 90th percentile of send and finish times)."""
    good = [r for r in records if r.success]
    if len(good) < 10:
        return False
    sends = np.sort([r.start_s for r in good])
    finishes = np.sort([r.start_s + r.latency_s for r in good])
    send_span = float(np.percentile(sends, 90) - np.percentile(sends, 10))
    finish_span = float(np.percentile(finishes, 90) - np.percentile(finishes, 10))
    if send_span <= 0 or finish_span <= 0:
        return False
    return send_span / finish_span < ratio


def measurement_of(level: LevelResult, config: BenchConfig, plan: CapacityPlan,
                   load: float, aborted: str | None = None) -> ProbeMeasurement:
    """What the search needs from one level: its percentiles, goodput, failures, preemptions."""
    summary = level.summary(config.slo, config.percentiles)
    latencies: dict[str, float] = {}
    for field_name, (name, _) in tool_latencies("bench").items():
        dist = getattr(summary, field_name)
        if dist is not None:
            latencies.update({LATENCIES[name].metric(key): value
                              for key, value in dist.percentiles.items()})
    records = level.records
    slo = config.slo
    good = sum(1 for r in records if r.success and is_good(r, slo))
    return ProbeMeasurement(
        load=load, latencies_ms=latencies, requests=len(records), failed=summary.failed,
        goodput_fraction=good / len(records) if records else None,
        request_per_s=summary.request_per_s, output_tok_s=summary.output_tok_s,
        preemptions=level.server.preemptions if level.server else None,
        saturated=(level.request_rate is not None
                   and saturated(records, plan.saturation_ratio)),
        aborted=aborted)


class CapacityRunner(BenchRunner):
    """Runs the capacity search; ``result.capacity`` holds the search, ``result.levels`` its
    probes in order."""

    def __init__(self, config: BenchConfig, progress: Progress | None = None) -> None:
        super().__init__(config, progress)
        assert self.config.capacity is not None  # resolved() refuses a capacity run without
        self.plan: CapacityPlan = self.config.capacity

    def connection_limit(self) -> int:
        return 0  # rate probes keep as many requests in flight as arrive

    async def _levels(self, session: aiohttp.ClientSession,
                      metrics_session: aiohttp.ClientSession) -> None:
        plan, config = self.plan, self.config
        search = CapacitySearch(plan.settings, plan.slo, allow_preemptions=plan.allow_preemptions)
        rng = np.random.default_rng(config.seed)
        try:
            while (load := search.next_load()) is not None:
                by_rate = plan.settings.kind == "request_rate"
                requests = (config.num_prompts or 1) if by_rate else \
                    probe_requests(int(load), config.num_prompts or 1)
                try:
                    level = await self._run_level(
                        session, metrics_session, requests if by_rate else int(load), rng,
                        request_rate=load if by_rate else None, num_prompts=requests)
                except RunAbortedError as exc:
                    search.add(measurement_of(self.result.levels[-1], config, plan, load,
                                              aborted=exc.message))
                    search.stopped_because = f"the server failed during a probe: {exc.message}"
                    raise
                search.add(measurement_of(level, config, plan, load))
        finally:
            self.result.capacity = search.result()
