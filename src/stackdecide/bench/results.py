"""What a benchmark run is and what it measured: its settings, results per level, and the metric
rows that become evidence (``BenchResult.metric_rows``). ``bench.runner`` runs it.

Kept apart from the runner so that code reading results (reports, the loop, ``load_result``)
needs none of the HTTP machinery.
"""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field, fields, replace
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, NamedTuple
from urllib.parse import urlsplit

import numpy as np

from stackdecide.bench.capacity import CapacityResult
from stackdecide.bench.capacity_plan import (
    CapacityPlan,
    capacity_from_dict,
    capacity_rows,
    capacity_to_dict,
    lengths_from_dict,
    lengths_to_dict,
    plan_from_dict,
)
from stackdecide.bench.prompts import PROMPT_MODES, PromptMode
from stackdecide.bench.server_metrics import ServerCheck
from stackdecide.bench.stats import (
    PERCENTILES,
    GoodputObjectives,
    RequestRecord,
    Slo,
    Summary,
    summarize,
)
from stackdecide.bench.stream import Timeouts
from stackdecide.bench.workload import Lengths
from stackdecide.errors import EngineError, EvidenceError, StackdecideError
from stackdecide.evidence.native import BENCH_RESULT_SCHEMA
from stackdecide.model import derived
from stackdecide.model.metrics import LATENCIES, METRICS, tool_latencies, tool_metrics
from stackdecide.predict.ceilings import Load

# The summary's fields that are metrics, and its latency distributions (the catalogue's
# ``bench`` names): every level reports each of them it measured.
_SUMMARY_RATES = tool_metrics("bench")
_SUMMARY_LATENCIES = tool_latencies("bench")
SCENARIOS = ("decode", "prefill", "throughput", "capacity")


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
    # capacity: num_prompts is the requests per probe; the search chooses the loads
    "capacity": ScenarioDefaults(input_len=512, output_len=256, num_prompts=100,
                                 concurrency=(1,)),
}

# the benchmark client's load of each scenario, what prediction reads a criterion's metric under
# where the decision's benchmark block is silent
BENCH_LOADS = {name: Load(d.concurrency[0], d.input_len, d.output_len) for name, d in DEFAULTS.items()}


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



def normalize_url(url: str) -> str:
    """``http://host:port`` from what users type (trailing ``/`` or ``/v1`` allowed)."""
    text = url.strip().rstrip("/")
    if text.endswith("/v1"):
        text = text[:-3]
    problem = _url_problem(text)
    if problem is not None:
        shown = url if len(url) <= 80 else url[:77] + "..."
        raise BenchConfigError(f"--url {shown!r} {problem}; give an http(s) URL such as "
                               "http://127.0.0.1:8000")
    return text


def _url_problem(text: str) -> str | None:
    """What is wrong with ``text`` as a server's base URL, or None. Everything that would
    otherwise fail deep inside the HTTP client (with a traceback) is caught here."""
    if any(not char.isprintable() or char.isspace() for char in text):
        return "holds spaces or control characters"
    try:
        parts = urlsplit(text)
        port = parts.port  # ValueError unless a whole number in 0..65535
    except ValueError as exc:  # also a bracketed host that is no IPv6 address
        return f"is not a valid URL ({exc})"
    if parts.scheme not in ("http", "https") or not parts.netloc:
        return "is not an http(s) URL"
    host = parts.hostname
    if not host:
        return "names no host"
    if port == 0:
        return "has port 0, where no server listens"
    if not parts.netloc.rpartition("@")[2].startswith("["):
        try:
            host.encode("idna")  # what the client does; refuses labels over 63 characters
        except UnicodeError:
            return "has a host name that is not valid (each dot-separated part at most 63 characters)"
    return None


MAX_TOKENS = 10_000_000  # per prompt or completion
MAX_REQUESTS = 10_000_000  # per level
MAX_CONCURRENCY = 100_000


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
    slo: GoodputObjectives = field(default_factory=Slo)
    timeouts: Timeouts = field(default_factory=Timeouts)
    token_id_limit: int = 4096  # prompt ids are drawn from [0, limit): inside any real vocabulary
    # /metrics scrapes during a level (for KV-cache and queue peaks); 0: before and after only.
    # Each scrape costs the server's API process some milliseconds, hence not more often.
    metrics_interval_s: float = 5.0
    server_metrics: bool = True
    percentiles: tuple[float, ...] = PERCENTILES
    prompt_mode: PromptMode = "token-ids"
    tokenizer: str | None = None  # text prompts: the tokenizer's folder (default: the server's)
    lengths: Lengths | None = None  # per-request lengths; None: input_len / output_len for all
    capacity: CapacityPlan | None = None  # the capacity scenario's search and SLO

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
        # Upper limits keep every array the run allocates (prompts, per-request records) in
        # memory; they are far beyond any model's context or any useful run.
        checks = [
            ("--input-len", config.input_len, 1, MAX_TOKENS),
            ("--output-len", config.output_len, 1, MAX_TOKENS),
            ("--num-prompts", config.num_prompts, 1, MAX_REQUESTS),
            ("--warmup", config.warmup, 0, MAX_REQUESTS),
            ("--token-id-limit", config.token_id_limit, 1, 2**31 - 1),
            ("--seed", config.seed, 0, 2**63 - 1),  # numpy's generators take no negative seed
        ]
        checks += [("--concurrency", c, 1, MAX_CONCURRENCY) for c in config.concurrency or ()]
        for name, value, low, high in checks:
            if value is None or value < low:
                raise BenchConfigError(f"{name} must be at least {low}, got {value}")
            if value > high:
                raise BenchConfigError(f"{name} must be at most {high:,}, got {value:,}")
        for name, seconds in (("request timeout", config.timeouts.request_s),
                              ("stall timeout", config.timeouts.stall_s),
                              ("connect timeout", config.timeouts.connect_s)):
            if not 0 < seconds < math.inf:
                raise BenchConfigError(f"the {name} must be a positive number of seconds, got "
                                       f"{seconds}")
        if config.prompt_mode not in PROMPT_MODES:
            raise BenchConfigError(f"--prompt-mode must be one of {', '.join(PROMPT_MODES)}, "
                                   f"got {config.prompt_mode!r}")
        if config.scenario == "capacity" and config.capacity is None:
            raise BenchConfigError("the capacity scenario needs an SLO (--slo ttft_ms_p99:1000 "
                                   "or benchmark.slo in the decision file)")
        if config.capacity is not None:
            config = replace(config, percentiles=tuple(sorted(
                {*config.percentiles, *config.capacity.slo.percentiles()})),
                             slo=config.capacity.goodput_slo())
        if not 0 <= config.metrics_interval_s < math.inf:  # also refuses NaN
            raise BenchConfigError("the metrics interval must be 0 (off) or a positive number of "
                                   f"seconds, got {config.metrics_interval_s}")
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
            "prompt_mode": self.prompt_mode, "tokenizer": self.tokenizer,
            "lengths": lengths_to_dict(self.lengths),
            "capacity": self.capacity.to_dict() if self.capacity else None,
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
    request_rate: float | None = None  # Poisson arrivals at this mean rate; None: all at once

    @property
    def scenario(self) -> dict[str, int | float]:
        data: dict[str, int | float] = {
            "concurrency": self.concurrency, "input_len": self.input_len,
            "output_len": self.output_len, "num_prompts": self.num_prompts}
        if self.request_rate is not None:
            data["request_rate"] = self.request_rate
        return data

    def summary(self, slo: GoodputObjectives | None = None,
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
    capacity: CapacityResult | None = None  # the capacity scenario's search; levels are its probes

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
        """Measured metrics per level, from successful requests only (docs/metrics.md); the
        capacity scenario adds its result (``capacity_rows``) and marks each probe."""
        rows: list[MetricRow] = []
        for index, level in enumerate(self.levels):
            summary = level.summary(self.config.slo, self.config.percentiles)
            if summary.completed == 0:
                continue
            scenario = {**level.scenario, **self._probe_scenario(index)}

            def add(metric: str, value: float | None, scenario: dict[str, int] = scenario) -> None:
                if value is not None and np.isfinite(value) and metric in METRICS:
                    rows.append(MetricRow(metric, float(value), METRICS[metric].unit,
                                          dict(scenario)))

            if self.scenario == "decode":
                # None for a bursty stream, whose TPOT is not a decode time (output_tok_s of the
                # one stream still holds); see model.derived and docs/metrics.md
                add("decode_tok_s", derived.decode_tok_s(
                    summary.tpot.median if summary.tpot else None, summary.tokens_per_chunk_p50))
            if self.scenario == "prefill":
                good = [r for r in level.records if r.success]
                add("prefill_tok_s", derived.prefill_tok_s([r.prompt_len for r in good],
                                                           [r.ttft_s for r in good]))
            for field_name, (name, _) in _SUMMARY_LATENCIES.items():
                dist = getattr(summary, field_name)
                if dist is None:
                    continue
                add(LATENCIES[name].metric("mean"), dist.mean)
                for key, value in dist.percentiles.items():
                    add(LATENCIES[name].metric(key), value)
            for field_name, (metric, _) in _SUMMARY_RATES.items():
                add(metric, getattr(summary, field_name))
        if self.capacity is not None and self.config.capacity is not None:
            rows += [MetricRow(*row) for row in capacity_rows(self.capacity, self.config.capacity,
                                                              self._workload_scenario())]
        return rows

    def _workload_scenario(self) -> dict[str, Any]:
        config = self.config
        if config.lengths is not None:
            return config.lengths.scenario()
        return {"input_len": config.input_len, "output_len": config.output_len}

    def _probe_scenario(self, index: int) -> dict[str, Any]:
        """Which probe a capacity level was and its verdict; nothing for other scenarios."""
        if self.capacity is None or self.config.capacity is None \
                or index >= len(self.capacity.probes):
            return {}
        probe = self.capacity.probes[index]
        return {"probe": index, "passed": probe.verdict.passed,
                "prompt_mode": self.config.prompt_mode,
                "slo": self.config.capacity.slo.text()}

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready, versioned (``schema``); per-request records included."""
        slo, percentiles = self.config.slo, self.config.percentiles
        return {
            "schema": BENCH_RESULT_SCHEMA,  # evidence import reads its metric rows
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
            "capacity": (capacity_to_dict(self.capacity) if self.capacity is not None
                         else None),
            "metrics": [row._asdict() for row in self.metric_rows()],
        }

    def write_json(self, path: str | Path) -> Path:
        path = Path(path)
        try:
            path.write_text(json.dumps(self.to_dict(), indent=1) + "\n", encoding="utf-8")
        except OSError as exc:
            raise StackdecideError(f"cannot write the result: {exc.strerror or exc}; pass --json "
                                   "with a path in a folder you can write") from None
        return path


def load_result(path: str | Path) -> BenchResult:
    """Read a result written by ``BenchResult.write_json``."""
    path = Path(path)
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, ValueError) as exc:
        raise EvidenceError(f"{path}: cannot read a benchmark result: {exc}") from None
    if not isinstance(data, dict) or data.get("schema") != BENCH_RESULT_SCHEMA:
        raise EvidenceError(f"{path}: not a benchmark result (schema '{BENCH_RESULT_SCHEMA}')")
    cfg = data["config"]
    config = BenchConfig(
        url=cfg["url"], scenario=cfg["scenario"], model=cfg["model"],
        concurrency=tuple(cfg["concurrency"]), input_len=cfg["input_len"],
        output_len=cfg["output_len"], num_prompts=cfg["num_prompts"], seed=cfg["seed"],
        warmup=cfg["warmup"], slo=Slo(**cfg["slo_ms"]),
        timeouts=Timeouts(cfg["timeouts_s"]["request"], cfg["timeouts_s"]["stall"],
                          cfg["timeouts_s"]["connect"]),
        token_id_limit=cfg["token_id_limit"], metrics_interval_s=cfg["metrics_interval_s"],
        server_metrics=cfg["server_metrics"], percentiles=tuple(cfg["percentiles"]),
        prompt_mode=cfg.get("prompt_mode", "token-ids"), tokenizer=cfg.get("tokenizer"),
        lengths=lengths_from_dict(cfg.get("lengths")),
        capacity=plan_from_dict(cfg["capacity"]) if cfg.get("capacity") else None)
    levels = [LevelResult(
        concurrency=lv["concurrency"], input_len=lv["input_len"], output_len=lv["output_len"],
        num_prompts=lv["num_prompts"], duration_s=lv["duration_s"], complete=lv["complete"],
        records=[RequestRecord.from_dict(r) for r in lv["requests"]],
        request_rate=lv.get("request_rate"),
        server=_server_check(lv.get("server")),
        server_notes=tuple(lv.get("server_notes", ()))) for lv in data["levels"]]
    return BenchResult(config=config, model=data["model"], max_model_len=data["max_model_len"],
                       started_at=data["started_at"], levels=levels, error=data["error"],
                       capacity=(capacity_from_dict(data["capacity"], config.capacity)
                                 if data.get("capacity") and config.capacity else None),
                       warmup_records=[RequestRecord.from_dict(r)
                                       for r in data["warmup_requests"]])


def _server_check(data: dict[str, Any] | None) -> ServerCheck | None:
    if data is None:
        return None
    names = {f.name for f in fields(ServerCheck)}
    kept = {k: v for k, v in data.items() if k in names}
    kept["notes"] = tuple(kept.get("notes", ()))
    return ServerCheck(**kept)

