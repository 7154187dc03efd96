"""The feedback loop: launch a candidate, benchmark it, store the measurements, re-score.

``measure`` runs one candidate end to end and always stores what it learned, a failed launch
included (``launch_ok = 0`` with the reason). ``until_stable`` measures the leader, re-scores, and
measures the new leader while the ranking keeps changing hands, so the final winner rests on
measurements rather than judgements.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from stackdecide.bench.capacity_plan import bracket_note, lengths_from_spec, plan_from_spec
from stackdecide.bench.runner import BenchConfig, BenchError, BenchResult, Progress, run_bench
from stackdecide.decision import Decision
from stackdecide.evidence.records import EvidenceRecord, EvidenceSet, HardwareInfo
from stackdecide.evidence.store import EvidenceStore
from stackdecide.launch.memory_check import MemoryCheck, read_memory_check
from stackdecide.launch.plan import LaunchOptions, LaunchRefused, plan_launch
from stackdecide.launch.runs import LaunchOutcome
from stackdecide.launch.server import LaunchFailed, ServerHandle, launch_server
from stackdecide.model import derived
from stackdecide.model.ranking import Ranking
from stackdecide.model.schema import BenchmarkSpec, BenchScenario

Notify = Callable[[str], None]


@dataclass(frozen=True)
class Measurement:
    """One candidate launched and benchmarked; ``records`` are what went into the store."""

    candidate_id: str
    outcome: LaunchOutcome
    results: tuple[BenchResult, ...] = ()
    records: tuple[EvidenceRecord, ...] = ()
    error: str | None = None  # why benchmarking stopped early; its partial results are kept
    memory: MemoryCheck | None = None  # per-GPU memory planned vs logged, once it started

    @property
    def launched(self) -> bool:
        return self.outcome.ok


@dataclass(frozen=True)
class LoopResult:
    """Rankings before and after, and every measurement made in between."""

    before: Ranking
    after: Ranking
    measurements: tuple[Measurement, ...] = ()
    stopped_because: str = ""
    evidence: EvidenceSet | None = None  # what ``after`` rests on (how sure it is: certainty)


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


def _record(outcome: LaunchOutcome, metric: str, value: float, **extra: Any) -> EvidenceRecord:
    return EvidenceRecord(candidate=outcome.candidate_id, metric=metric, value=value,
                          hardware=hardware_of(outcome), software=software_of(outcome),
                          config_sha256=outcome.engine_sha256,
                          source=f"run {Path(outcome.run_dir).name}", **extra)


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


def bench_records(outcome: LaunchOutcome, result: BenchResult) -> list[EvidenceRecord]:
    """One record per measured metric and concurrency level of a (possibly partial) result.

    ``seed`` says which prompts were sent; a result cut short is kept with ``complete: false``,
    which the ranking leaves out unless asked (``evidence.apply``).
    """
    partial = None if result.complete else f"partial run: {result.error or 'incomplete'}"
    extra: dict[str, Any] = {"seed": result.config.seed}
    if not result.complete:
        extra["complete"] = False
    search = bracket_note(result.capacity) if result.capacity is not None else None
    return [_record(outcome, row.metric, row.value,
                    scenario={"scenario": result.scenario, **row.scenario, **extra},
                    note=_join(partial, search if row.metric.startswith("capacity_") else None))
            for row in result.metric_rows()]


def result_records(result: BenchResult, candidate: str, *, hardware: HardwareInfo | None = None,
                   source: str | None = None, price_per_gpu_hour: float | None = None,
                   gpus: int = 1) -> list[EvidenceRecord]:
    """Records of a benchmark run against a server that stackdecide did not launch
    (``bench --store``): the same rows as ``bench_records``, and the cost at SLO capacity."""
    partial = None if result.complete else f"partial run: {result.error or 'incomplete'}"
    extra: dict[str, Any] = {"seed": result.config.seed}
    if not result.complete:
        extra["complete"] = False
    search = bracket_note(result.capacity) if result.capacity is not None else None
    records = [EvidenceRecord(
        candidate=candidate, metric=row.metric, value=row.value, hardware=hardware,
        source=source or f"stackdecide bench {result.started_at}",
        scenario={"scenario": result.scenario, **row.scenario, **extra},
        note=_join(partial, search if row.metric.startswith("capacity_") else None))
        for row in result.metric_rows()]
    if price_per_gpu_hour is not None:
        for record in [r for r in records if r.metric == "capacity_output_tok_s"]:
            cost = derived.cost_per_mtok_out(price_per_gpu_hour, gpus, record.value)
            if cost is not None:
                records.append(record.model_copy(update={
                    "metric": "cost_per_mtok_out", "value": cost, "unit": "per Mtok",
                    "note": f"{price_per_gpu_hour:g} per GPU hour x {gpus} GPU(s) at "
                            f"{record.value:.4g} output tok/s at SLO capacity"}))
    return records


def _join(*parts: str | None) -> str | None:
    text = "; ".join(p for p in parts if p)
    return text[:2000] or None


def scenario_seed(launch_seed: int, index: int) -> int:
    """The prompt seed of the ``index``-th scenario of one launch.

    Each scenario of each launch gets its own prompts: the same seed twice sends the same token
    ids, whose prefixes the server's prefix cache then serves (64 streams on an H100: 7,048 ->
    8,504 tok/s and TTFT p50 435 -> 169 ms on a repeat), which measures the cache, not the stack.
    """
    return int(np.random.SeedSequence([launch_seed, index]).generate_state(1)[0] % 2**31)


def bench_configs(url: str, model: str, scenarios: Sequence[BenchScenario],
                  seed: int = 0, benchmark: BenchmarkSpec | None = None,
                  base_dir: Path | None = None) -> list[BenchConfig]:
    """One config per scenario; the capacity scenario takes ``benchmark.slo`` and its workload."""
    configs = []
    for index, s in enumerate(scenarios):
        fields: dict[str, Any] = {
            "url": url, "scenario": s.scenario, "model": model,
            "concurrency": tuple(s.concurrency) if s.concurrency else None,
            "input_len": s.input_len, "output_len": s.output_len, "num_prompts": s.num_prompts,
            "seed": scenario_seed(seed, index)}
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
        gpus = candidate.gpus or derived.engine_gpus(candidate.engine)
        cost = derived.cost_per_mtok_out(price, gpus, record.value)
        if cost is not None:
            out.append(record.model_copy(update={
                "metric": "cost_per_mtok_out", "value": cost, "unit": "per Mtok", "id": None,
                "note": f"{price:g} per GPU hour x {gpus} GPU(s) at {record.value:.4g} output "
                        "tok/s at SLO capacity"}))
    return out


def _bench(server: ServerHandle, scenarios: Sequence[BenchScenario], seed: int, say: Notify,
           progress: Progress | None, decision: Decision | None = None
           ) -> tuple[list[BenchResult], str | None]:
    """Run every scenario against a ready server; stop at the first that breaks off."""
    results: list[BenchResult] = []
    benchmark = decision.model.benchmark if decision is not None else None
    base_dir = (Path(decision.source_file).parent
                if decision is not None and decision.source_file else None)
    for config in bench_configs(server.url, server.served_model_name, scenarios, seed,
                                benchmark, base_dir):
        say(f"benchmark {config.scenario} on {server.outcome.candidate_id} (seed {config.seed})")
        try:
            results.append(run_bench(config, progress))
        except BenchError as exc:
            if exc.partial is not None:
                results.append(exc.partial)
            return results, exc.message
    return results, None


def run_candidate(decision: Decision, candidate_id: str, options: LaunchOptions | None = None,
                  *, notify: Notify | None = None, bench_progress: Progress | None = None,
                  seed: int = 0) -> Measurement:
    """Launch one candidate and run the decision's benchmark scenarios; store nothing.

    Its ``records`` have no ids yet: ``measure`` stores them here, a scheduler running candidates
    elsewhere (another process, a Ray worker) sends them back to the driver's store. The server
    is always stopped before this returns. A refused or failed launch that is the candidate's
    fault gives ``launch_ok = 0``; one that is the environment's (a busy port, a kill from
    outside) nothing about the candidate. A benchmark that breaks off keeps what it measured,
    flagged ``complete: false``. ``seed`` is this launch's prompt seed.
    """
    say = notify or (lambda message: None)
    results: list[BenchResult] = []
    error = None
    memory = None
    say(f"launching {candidate_id}")
    options = options or LaunchOptions()
    try:
        plan = plan_launch(decision, candidate_id, options)
        with launch_server(decision, candidate_id, options, plan=plan) as server:
            say(f"{candidate_id} ready in {server.startup_s:.1f} s at {server.url} "
                f"({server.outcome.compile_cache or 'unknown'} start)")
            memory = read_memory_check(plan.capacity, server.run_dir)
            results, error = _bench(server, decision.model.benchmark.scenarios, seed, say,
                                    bench_progress, decision)
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
    records = launch_records(outcome)
    for result in results:
        records += bench_records(outcome, result)
    records += cost_records(decision, records)
    return Measurement(candidate_id, outcome, tuple(results), tuple(records), error, memory)


def store_measurement(store: EvidenceStore, measurement: Measurement) -> Measurement:
    """Store a measurement's records; the measurement with the stored records (ids set)."""
    stored = store.add(list(measurement.records))
    records = tuple(record.model_copy(update={"id": record_id})
                    for record, record_id in zip(measurement.records, stored, strict=True))
    return replace(measurement, records=records)


def measure(decision: Decision, candidate_id: str, store: EvidenceStore,
            options: LaunchOptions | None = None, *, notify: Notify | None = None,
            bench_progress: Progress | None = None, seed: int = 0) -> Measurement:
    """Launch one candidate, run the decision's benchmark scenarios, store the evidence
    (``run_candidate``, then the store)."""
    return store_measurement(store, run_candidate(decision, candidate_id, options, notify=notify,
                                                  bench_progress=bench_progress, seed=seed))


def is_measured(ranking: Ranking, candidate_id: str) -> bool:
    """Whether any of the candidate's cells (or its feasibility) rests on a measurement."""
    index = ranking.decision.candidate_index(candidate_id)
    return any(cell.measured for cell in ranking.cells[index])


def optimistic_totals(ranking: Ranking) -> np.ndarray:
    """Weighted-sum totals if every measurable cell not yet measured scored the scale's best.

    An unmeasured candidate whose optimistic total stays below the leader's total cannot overtake
    it by being measured, so it need not be launched.
    """
    decision = ranking.decision
    measurable = np.array([c.measure is not None for c in decision.criteria])
    measured = np.array([[cell.measured for cell in row] for row in ranking.cells])
    best_case = np.where(measurable[None, :] & ~measured, 1.0, ranking.normalized)
    return (best_case * decision.weights).sum(axis=1) * 100.0


def next_to_measure(ranking: Ranking) -> tuple[str | None, str]:
    """The candidate to launch next, and why (or None and why the ranking is settled)."""
    leader = ranking.winner
    if leader is None:
        return None, "no candidate is feasible"
    if not is_measured(ranking, leader):
        return leader, f"{leader} leads on judged scores"
    leader_total = ranking.total(leader)
    optimistic = optimistic_totals(ranking)
    for index in ranking.order:
        candidate_id = ranking.candidate_ids[index]
        if ranking.ranks[index] == 0 or is_measured(ranking, candidate_id):
            continue
        if optimistic[index] > leader_total:
            return candidate_id, (f"{candidate_id} could still overtake {leader} "
                                  f"({optimistic[index]:.2f} at best vs {leader_total:.2f})")
    return None, (f"the leader {leader} rests on measurements and no unmeasured candidate could "
                  "overtake it")


def until_stable(decision: Decision, store: EvidenceStore, options: LaunchOptions | None = None,
                 *, max_launches: int = 4, stable: bool = True, first: str | None = None,
                 any_hardware: bool = False, notify: Notify | None = None,
                 bench_progress: Progress | None = None) -> LoopResult:
    """Measure the leader and every candidate that could still overtake it, re-scoring each time.

    ``first`` measures that candidate before anything else (default: the leader). With
    ``stable=False`` only that first candidate is measured, once. Otherwise the loop stops when
    the leader rests on measurements and no unmeasured candidate could beat it even with the best
    possible measurements (``optimistic_totals``), or after ``max_launches`` launches.
    """
    say = notify or (lambda message: None)
    evidence = store.load()
    before = decision.score(evidence=evidence, any_hardware=any_hardware)
    ranking = before
    measurements: list[Measurement] = []
    while True:
        if not stable and measurements:
            reason = f"measured {measurements[0].candidate_id}"
            break
        if first is not None and not measurements:
            candidate_id, why = first, f"{first} was asked for"
        elif stable:
            candidate_id, why = next_to_measure(ranking)
        else:
            candidate_id, why = ranking.winner, (
                "the leader" if ranking.winner else "no candidate is feasible")
        if candidate_id is None:
            reason = why
            break
        if len(measurements) >= max_launches:
            reason = f"stopped after {max_launches} launches; next would be {candidate_id} ({why})"
            break
        say(f"next: {why}")
        measurements.append(measure(decision, candidate_id, store, options, notify=say,
                                    bench_progress=bench_progress))
        evidence = store.load()
        ranking = decision.score(evidence=evidence, any_hardware=any_hardware)
        say(f"re-scored: leader is now {ranking.winner}")
    return LoopResult(before, ranking, tuple(measurements), reason, evidence)
