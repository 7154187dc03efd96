"""Measuring one candidate: launch it, benchmark it, and the evidence records that come of it.

``measure`` runs one candidate end to end and always stores what it learned, a failed launch
included (``launch_ok = 0`` with the reason). ``measurement_records`` is the one builder of a
launch's records; ``derive_seed`` the one rule for prompt seeds. What to measure next is a
policy's choice (``orchestrate``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from stackdecide.bench.capacity_plan import bracket_note, lengths_from_spec, plan_from_spec
from stackdecide.bench.quality import QualityResult, QualitySettings, run_quality
from stackdecide.bench.runner import BenchConfig, BenchError, BenchResult, Progress, run_bench
from stackdecide.decision import Decision
from stackdecide.evidence.records import EvidenceRecord, HardwareInfo
from stackdecide.evidence.store import EvidenceStore
from stackdecide.launch.memory_check import MemoryCheck, read_memory_check
from stackdecide.launch.plan import LaunchOptions, LaunchRefused, plan_launch
from stackdecide.launch.runs import LaunchOutcome
from stackdecide.launch.server import LaunchFailed, ServerHandle, launch_server
from stackdecide.model import derived
from stackdecide.model.ranking import Ranking
from stackdecide.model.schema import BenchmarkSpec, BenchScenario
from stackdecide.model.stack import candidate_gpus
from stackdecide.state import state_dir

Notify = Callable[[str], None]


@dataclass(frozen=True)
class Measurement:
    """One candidate launched and benchmarked; ``records`` are what went into the store (none
    until it is stored: ``store_measurement``)."""

    candidate_id: str
    outcome: LaunchOutcome
    results: tuple[BenchResult, ...] = ()
    records: tuple[EvidenceRecord, ...] = ()
    error: str | None = None  # why benchmarking stopped early; its partial results are kept
    memory: MemoryCheck | None = None  # per-GPU memory planned vs logged, once it started
    quality: tuple[QualityResult, ...] = ()  # its quality scenarios against their references

    @property
    def launched(self) -> bool:
        return self.outcome.ok


def hardware_of(outcome: LaunchOutcome) -> HardwareInfo | None:
    """The machine a launch ran on, as evidence records it: the first of the GPUs it used (and
    how many), or the CPU."""
    gpus = outcome.hardware.get("gpus") or []
    used = outcome.hardware.get("gpu_indices")
    if used:
        gpus = [g for g in gpus if g.get("index") in used] or gpus
    if gpus:
        gpu = gpus[0]
        total = gpu.get("memory_total_bytes") or gpu.get("total_bytes")
        return HardwareInfo(gpu=str(gpu.get("name") or "unknown GPU"),
                            vram_gb=round(total / 2**30, 2) if total else None,
                            compute_capability=gpu.get("compute_capability"),
                            driver=outcome.hardware.get("driver"), count=len(gpus))
    return HardwareInfo(gpu="cpu")


_SOFTWARE = {"vllm": "vllm", "torch": "torch", "flashinfer": "flashinfer", "cuda": "torch_cuda",
             "transformers": "transformers"}


def software_of(outcome: LaunchOutcome) -> dict[str, str]:
    """Package versions in the interpreter that ran the engine (CUDA: the one torch was built for),
    and ``env``: the lock of the candidate's own environment when it ran in one."""
    software = {package: str(outcome.versions[key]) for package, key in _SOFTWARE.items()
                if outcome.versions.get(key)}
    lock = outcome.environment.get("lock_sha256")
    if lock:  # the exact set of packages: its distributions are in the run's outcome.json
        software["env"] = f"lock:{str(lock)[:16]}"
    return software


def _provenance(outcome: LaunchOutcome) -> dict[str, Any]:
    """The fields every record of a launch shares: candidate, machine, packages, config, run."""
    return {"candidate": outcome.candidate_id, "hardware": hardware_of(outcome),
            "software": software_of(outcome), "config_sha256": outcome.engine_sha256,
            "source": f"run {Path(outcome.run_dir).name}", "launch": Path(outcome.run_dir).name}


def _record(outcome: LaunchOutcome, metric: str, value: float, **extra: Any) -> EvidenceRecord:
    return EvidenceRecord(**_provenance(outcome), metric=metric, value=value, **extra)


def launch_records(outcome: LaunchOutcome) -> list[EvidenceRecord]:
    """``launch_ok`` (with the failure class and reason when 0) and ``startup_s`` when it started.

    A failure that is the environment's fault (a busy port, GPU memory held by another process,
    an interrupt, a kill from outside) says nothing about the configuration: no record, the
    candidate stays "not measured" and the run folder keeps the reason. ``startup_s`` carries
    ``start: cold|warm|unknown`` (did this start compile, or load compiled graphs from the cache).
    """
    if not outcome.ok:
        if outcome.fault == "environment":
            return []
        return [_record(outcome, "launch_ok", 0.0,
                        note=f"{outcome.failure}: {outcome.reason}"[:2000])]
    records = [_record(outcome, "launch_ok", 1.0)]
    if outcome.startup_s is not None:
        records.append(_record(outcome, "startup_s", outcome.startup_s,
                               scenario={"start": outcome.compile_cache or "unknown"},
                               note="process start to first answered completion"))
    return records


def record_launch(store_path: str | Path, outcome: LaunchOutcome) -> list[int]:
    """Store a launch's outcome (launch_ok, startup_s) as evidence; the new record ids."""
    with EvidenceStore(store_path) as store:
        return store.add(launch_records(outcome))


def _bench_records(result: BenchResult, provenance: dict[str, Any]) -> list[EvidenceRecord]:
    """One record per measured metric and concurrency level of a (possibly partial) result.

    ``seed`` says which prompts were sent; a result cut short is kept with ``complete: false``,
    which the ranking leaves out unless asked (``evidence.apply``).
    """
    partial = None if result.complete else f"partial run: {result.error or 'incomplete'}"
    extra: dict[str, Any] = {"seed": result.config.seed}
    if not result.complete:
        extra["complete"] = False
    search = bracket_note(result.capacity) if result.capacity is not None else None
    return [EvidenceRecord(**provenance, metric=row.metric, value=row.value,
                           scenario={"scenario": result.scenario, **row.scenario, **extra},
                           note=_join(partial, search if row.metric.startswith("capacity_")
                                      else None))
            for row in result.metric_rows()]


def _quality_records(result: QualityResult, provenance: dict[str, Any]) -> list[EvidenceRecord]:
    """One record per statistic of a quality result, each with its bootstrap interval."""
    note = result.note()
    return [EvidenceRecord(**provenance, metric=metric, value=value, interval=(low, high),
                           scenario=result.scenario(), note=note)
            for metric, value, low, high in result.rows()]


def _cost_record(record: EvidenceRecord, price: float, gpus: int) -> EvidenceRecord | None:
    """``cost_per_mtok_out`` of a ``capacity_output_tok_s`` record: price x GPUs over that rate."""
    cost = derived.cost_per_mtok_out(price, gpus, record.value)
    if cost is None:
        return None
    return record.model_copy(update={
        "metric": "cost_per_mtok_out", "value": cost, "unit": "per Mtok", "id": None,
        "note": f"{price:g} per GPU hour x {gpus} GPU(s) at {record.value:.4g} output tok/s at "
                "SLO capacity"})


def result_records(result: BenchResult, candidate: str, *, hardware: HardwareInfo | None = None,
                   source: str | None = None, price_per_gpu_hour: float | None = None,
                   gpus: int = 1) -> list[EvidenceRecord]:
    """Records of a benchmark run against a server that stackdecide did not launch
    (``bench --store``): the same rows as a launch's, and the cost at SLO capacity."""
    records = _bench_records(result, {"candidate": candidate, "hardware": hardware, "source":
                                      source or f"stackdecide bench {result.started_at}"})
    if price_per_gpu_hour is not None:
        records += [cost for record in records if record.metric == "capacity_output_tok_s"
                    if (cost := _cost_record(record, price_per_gpu_hour, gpus)) is not None]
    return records


def _join(*parts: str | None) -> str | None:
    text = "; ".join(p for p in parts if p)
    return text[:2000] or None


def derive_seed(seed: int, index: int) -> int:
    """The prompt seed of the ``index``-th child of ``seed``: of a run's launch (``seed``: the
    run's, ``index``: the launches already stored before it, ``orchestrate.launch_seeds``), or of a
    launch's scenario (``seed``: the launch's, ``index``: the scenario's place).

    Each scenario of each launch gets its own prompts: the same seed twice sends the same token
    ids, whose prefixes the server's prefix cache then serves (64 streams on an H100: 7,048 ->
    8,504 tok/s and TTFT p50 435 -> 169 ms on a repeat), which measures the cache, not the stack;
    and replicates sent the same prompts would share their errors.
    """
    return int(np.random.SeedSequence([seed, index]).generate_state(1)[0] % 2**31)


def bench_configs(url: str, model: str, scenarios: Sequence[BenchScenario],
                  seed: int = 0, benchmark: BenchmarkSpec | None = None,
                  base_dir: Path | None = None) -> list[BenchConfig]:
    """One config per scenario; the capacity scenario takes ``benchmark.slo`` and its workload."""
    configs = []
    for index, s in enumerate(scenarios):
        if s.scenario == "quality":  # not a load test: bench.quality runs it
            continue
        fields: dict[str, Any] = {
            "url": url, "scenario": s.scenario, "model": model,
            "concurrency": tuple(s.concurrency) if s.concurrency else None,
            "input_len": s.input_len, "output_len": s.output_len, "num_prompts": s.num_prompts,
            "seed": derive_seed(seed, index),
            "prompt_mode": benchmark.prompt_mode if benchmark is not None else "token-ids"}
        if s.scenario == "capacity" and benchmark is not None and benchmark.slo is not None:
            workload = benchmark.workload
            varies = workload.lengths_file or workload.input_range or workload.output_range
            fields.update(capacity=plan_from_spec(s, benchmark.slo),
                          lengths=lengths_from_spec(workload, base_dir) if varies else None,
                          input_len=s.input_len or workload.input_len,
                          output_len=s.output_len or workload.output_len)
        configs.append(BenchConfig(**fields))
    return configs


def cost_records(decision: Decision, records: Sequence[EvidenceRecord]) -> list[EvidenceRecord]:
    """``cost_per_mtok_out`` for each ``capacity_output_tok_s`` record, when the decision's
    hardware has a ``price_per_gpu_hour``: price x the candidate's GPUs over that rate."""
    hardware = decision.model.decision.hardware
    price = hardware.price_per_gpu_hour if hardware else None
    if price is None:
        return []
    out = []
    for record in records:
        if record.metric != "capacity_output_tok_s":
            continue
        candidate = decision.model.candidates[decision.candidate_ids.index(record.candidate)]
        cost = _cost_record(record, price, candidate_gpus(candidate))
        if cost is not None:
            out.append(cost)
    return out


def measurement_records(decision: Decision, outcome: LaunchOutcome,
                        results: Sequence[BenchResult] = (),
                        placement: Mapping[str, str] | None = None,
                        quality: Sequence[QualityResult] = ()) -> list[EvidenceRecord]:
    """Every record one launch gives: ``launch_ok`` (and ``startup_s``), one per metric row of
    each benchmark result, the cost at SLO capacity, and each statistic of its quality results;
    ``placement`` (the GPUs it ran on, who ran beside it) joins every record's scenario."""
    records = launch_records(outcome)
    for result in results:
        records += _bench_records(result, _provenance(outcome))
    records += cost_records(decision, records)
    for found in quality:
        records += _quality_records(found, _provenance(outcome))
    if placement:
        records = [record.model_copy(update={"scenario": {**record.scenario, **placement}})
                   for record in records]
    return records


def quality_folder(decision: Decision) -> Path:
    """Where quality references and launch histories live: ``.stackdecide/quality`` beside the
    decision file, by its default evidence store."""
    base = Path(decision.source_file).parent if decision.source_file else None
    return state_dir(base) / "quality"


def _quality(server: ServerHandle, scenarios: Sequence[BenchScenario], say: Notify,
             decision: Decision) -> tuple[list[QualityResult], str | None]:
    """Run the quality scenarios against a ready server; stop at the first that breaks off."""
    found: list[QualityResult] = []
    candidate = server.outcome.candidate_id
    for scenario in scenarios:
        settings = QualitySettings.of(scenario)
        say(f"benchmark quality on {candidate} against {settings.reference} "
            f"({settings.num_prompts} prompts, {settings.output_len} tokens each)")
        try:
            result = run_quality(
                server.url, server.served_model_name, settings, candidate=candidate,
                launch=Path(server.run_dir).name, folder=quality_folder(decision),
                reference_config_sha256=decision.candidate(settings.reference).config_sha256,
                config_sha256=server.outcome.engine_sha256, api_key=server.api_key)
        except BenchError as exc:
            return found, exc.message
        summary = result.summary
        say(f"quality of {candidate}: kl_div_mean {summary.kl_mean.value:.3g} "
            f"[{summary.kl_mean.low:.3g}, {summary.kl_mean.high:.3g}] nats, top-1 agreement "
            f"{summary.top1_agree_pct.value:.1f}%, greedy agreement "
            f"{summary.greedy_agree_pct.value:.1f}%; {result.determinism.sentence(candidate)}")
        found.append(result)
    return found, None


def _bench(server: ServerHandle, scenarios: Sequence[BenchScenario], seed: int, say: Notify,
           progress: Progress | None, decision: Decision | None = None
           ) -> tuple[list[BenchResult], list[QualityResult], str | None]:
    """Run every scenario against a ready server, the quality scenarios last; stop at the first
    that breaks off."""
    results: list[BenchResult] = []
    benchmark = decision.model.benchmark if decision is not None else None
    base_dir = (Path(decision.source_file).parent
                if decision is not None and decision.source_file else None)
    for config in bench_configs(server.url, server.served_model_name, scenarios, seed,
                                benchmark, base_dir):
        say(f"benchmark {config.scenario} on {server.outcome.candidate_id} (seed {config.seed})")
        try:
            results.append(run_bench(config, progress, server.api_key))
        except BenchError as exc:
            if exc.partial is not None:
                results.append(exc.partial)
            return results, [], exc.message
    if decision is None:
        return results, [], None
    quality, error = _quality(server, [s for s in scenarios if s.scenario == "quality"], say,
                              decision)
    return results, quality, error


def run_candidate(decision: Decision, candidate_id: str, options: LaunchOptions | None = None,
                  *, notify: Notify | None = None, bench_progress: Progress | None = None,
                  seed: int = 0) -> Measurement:
    """Launch one candidate and run the decision's benchmark scenarios; store nothing.

    It has no ``records`` yet: the driver builds and stores them (``store_measurement``), here
    (``measure``) or after a scheduler ran it elsewhere (another process, a Ray worker) and sent
    it back, with where it ran. The server is always stopped before this returns. A refused or
    failed launch that is the candidate's fault gives ``launch_ok = 0``; one that is the
    environment's (a busy port, a kill from outside) nothing about the candidate. A benchmark that
    breaks off keeps what it measured, flagged ``complete: false``. ``seed`` is this launch's
    prompt seed.
    """
    say = notify or (lambda message: None)
    results: list[BenchResult] = []
    quality: list[QualityResult] = []
    error = None
    memory = None
    say(f"launching {candidate_id}")
    options = options or LaunchOptions()
    try:
        plan = plan_launch(decision, candidate_id, options)
        with launch_server(decision, candidate_id, options, plan=plan) as server:
            say(f"{candidate_id} ready in {server.startup_s:.1f} s at {server.url} "
                f"({server.outcome.start})")
            memory = read_memory_check(plan.capacity, server.run_dir)
            results, quality, error = _bench(server, decision.model.benchmark.scenarios, seed,
                                             say, bench_progress, decision)
            outcome = server.outcome
            if error is not None:
                server.check()  # a server that died under the benchmark says why, and whose fault
    except (LaunchRefused, LaunchFailed) as exc:
        if exc.outcome is None:  # refused before a run folder existed: nothing to record
            raise
        outcome = exc.outcome
        verb = "did not start" if not results else "died under the benchmark"
        say(f"{candidate_id} {verb}: {outcome.failure}: {outcome.reason}")
        if results and outcome.fault == "environment":
            outcome = replace(outcome, ok=True)  # it did start; what it measured stays partial
    return Measurement(candidate_id, outcome, tuple(results), error=error, memory=memory,
                       quality=tuple(quality))


def store_measurement(store: EvidenceStore, decision: Decision, measurement: Measurement,
                      placement: Mapping[str, str] | None = None) -> Measurement:
    """Store a measurement's records (``measurement_records``); the measurement with them, ids
    set."""
    built = measurement_records(decision, measurement.outcome, measurement.results, placement,
                                measurement.quality)
    stored = store.add(built)
    records = tuple(record.model_copy(update={"id": record_id})
                    for record, record_id in zip(built, stored, strict=True))
    return replace(measurement, records=records)


def measure(decision: Decision, candidate_id: str, store: EvidenceStore,
            options: LaunchOptions | None = None, *, notify: Notify | None = None,
            bench_progress: Progress | None = None, seed: int = 0) -> Measurement:
    """Launch one candidate, run the decision's benchmark scenarios, store the evidence
    (``run_candidate``, then the store)."""
    return store_measurement(store, decision, run_candidate(
        decision, candidate_id, options, notify=notify, bench_progress=bench_progress, seed=seed))


def is_measured(ranking: Ranking, candidate_id: str) -> bool:
    """Whether any of the candidate's cells (or its feasibility) rests on a measurement."""
    index = ranking.decision.candidate_index(candidate_id)
    return any(cell.measured for cell in ranking.cells[index])
