"""The capacity scenario's settings and result as a benchmark carries them: the plan (search, SLO,
what ends a probe), the metric rows of its result, and their JSON form."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stackdecide.bench.capacity import (
    CapacityResult,
    Probe,
    ProbeMeasurement,
    SearchSettings,
    SloLimits,
    Verdict,
)
from stackdecide.bench.stats import GoodputObjectives, Slo
from stackdecide.bench.workload import Lengths, read_lengths_file
from stackdecide.evidence.native import search_note
from stackdecide.model import schema
from stackdecide.model.metrics import METRICS

# A probe at a request rate is saturated when its requests finished at less than this fraction of
# the rate they were sent, both rates taken between the 10th and 90th percentile times.
SATURATION_RATIO = 0.8


@dataclass(frozen=True)
class CapacityPlan:
    settings: SearchSettings = field(default_factory=SearchSettings)
    slo: SloLimits = field(default_factory=lambda: SloLimits({"ttft_ms_p99": 1000.0}))
    allow_preemptions: bool = False
    saturation_ratio: float = SATURATION_RATIO

    def goodput_slo(self) -> GoodputObjectives:
        """The per-request limits goodput counts (TTFT, TPOT, E2EL; an ITL limit has none)."""
        return Slo.from_limits(self.slo.request_limits_ms())

    def to_dict(self) -> dict[str, Any]:
        return {"search": self.settings.to_dict(), "slo": self.slo.to_dict(),
                "allow_preemptions": self.allow_preemptions,
                "saturation_ratio": self.saturation_ratio}


def plan_from_spec(scenario: schema.BenchScenario, slo: schema.Slo) -> CapacityPlan:
    """The plan of a decision file's capacity scenario under its ``benchmark.slo``."""
    given = {key: getattr(scenario, key) for key in ("start", "growth", "precision", "max_load",
                                                     "max_probes")
             if getattr(scenario, key) is not None}
    kind = scenario.search or "concurrency"
    if kind == "concurrency":
        given = {k: (float(round(v)) if k in ("start", "max_load") else v)
                 for k, v in given.items()}
    else:
        given.setdefault("min_load", min(0.1, given.get("start", 1.0)))
    return CapacityPlan(SearchSettings(kind=kind, **given),
                        SloLimits(slo.limits(), slo.min_goodput))


def lengths_from_spec(workload: schema.Workload, base_dir: Path | None) -> Lengths:
    """A decision file's ``benchmark.workload`` (its lengths file read now)."""
    pairs: tuple[tuple[int, int], ...] = ()
    source = ""
    if workload.lengths_file:
        path = Path(workload.lengths_file)
        path = path if path.is_absolute() or base_dir is None else base_dir / path
        pairs, source = read_lengths_file(path), str(path)
    return Lengths(workload.input_len, workload.output_len, workload.input_range,
                   workload.output_range, pairs, source)


def parse_slo_limits(text: str | None) -> SloLimits:
    """``"ttft_ms_p99:1000,tpot_ms_p99:50,min_goodput:0.95"`` -> SloLimits (ValueError)."""
    limits: dict[str, float] = {}
    goodput = None
    for item in (text or "").replace(" ", ",").split(","):
        if not item:
            continue
        key, sep, number = item.partition(":")
        if not sep:
            raise ValueError(f"'{item}' is not KEY:VALUE (e.g. ttft_ms_p99:1000)")
        try:
            value = float(number)
        except ValueError:
            raise ValueError(f"'{number}' in '{item}' is not a number") from None
        if key == "min_goodput":
            goodput = value
        else:
            limits[key] = value
    if not limits and goodput is None:
        raise ValueError("the capacity scenario needs --slo, e.g. ttft_ms_p99:1000,tpot_ms_p99:50")
    return SloLimits(limits, goodput)


def capacity_plan_from_options(slo_text: str | None, *, search: str, start: float,
                               growth: float, precision: float, min_load: float | None,
                               max_load: float, max_probes: int, method: str,
                               allow_preemptions: bool) -> CapacityPlan:
    """The plan of ``bench --scenario capacity`` options (ValueError says what is wrong)."""
    if min_load is None:
        min_load = 1.0 if search == "concurrency" else min(0.1, start)
    settings = SearchSettings(kind=search, start=start, growth=growth,  # type: ignore[arg-type]
                              precision=precision, min_load=min_load, max_load=max_load,
                              max_probes=max_probes, method=method)  # type: ignore[arg-type]
    return CapacityPlan(settings, parse_slo_limits(slo_text), allow_preemptions)


def lengths_from_options(input_len: int | None, output_len: int | None, scenario: str,
                         input_range: float, output_range: float,
                         lengths_file: str | None) -> Lengths | None:
    """Per-request lengths from ``bench`` options; None when every request has the same."""
    if not (input_range or output_range or lengths_file):
        return None
    if not (0 <= input_range < 1 and 0 <= output_range < 1):
        raise ValueError("--input-range and --output-range are fractions in [0, 1)")
    from stackdecide.bench.results import DEFAULTS  # the scenario's lengths when not given

    base = DEFAULTS.get(scenario, DEFAULTS["capacity"])
    pairs = read_lengths_file(lengths_file) if lengths_file else ()
    return Lengths(input_len or base.input_len, output_len or base.output_len, input_range,
                   output_range, pairs, lengths_file or "")


def plan_from_dict(data: dict[str, Any]) -> CapacityPlan:
    slo = dict(data["slo"])
    goodput = slo.pop("min_goodput", None)
    return CapacityPlan(SearchSettings(**data["search"]), SloLimits(slo, goodput),
                        data["allow_preemptions"], data["saturation_ratio"])


def lengths_to_dict(lengths: Lengths | None) -> dict[str, Any] | None:
    if lengths is None:
        return None
    return {"input_len": lengths.input_len, "output_len": lengths.output_len,
            "input_range": lengths.input_range, "output_range": lengths.output_range,
            "pairs": [list(p) for p in lengths.pairs], "source": lengths.source}


def lengths_from_dict(data: dict[str, Any] | None) -> Lengths | None:
    if data is None:
        return None
    return Lengths(data["input_len"], data["output_len"], data["input_range"],
                   data["output_range"], tuple(tuple(p) for p in data["pairs"]),  # type: ignore[misc]
                   data["source"])


def capacity_to_dict(result: CapacityResult) -> dict[str, Any]:
    """The search: every probe with its measurement and verdict, the bracket and the capacity."""
    return {
        "capacity_req_s": result.capacity_req_s,
        "capacity_concurrency": result.capacity_concurrency,
        "capacity_output_tok_s": result.capacity_output_tok_s,
        "bracket": [result.last_pass.load if result.last_pass else None,
                    result.first_fail.load if result.first_fail else None],
        "relative_gap": result.relative_gap,
        "converged": result.converged,
        "stopped_because": result.stopped_because,
        "probes": [{
            "index": p.index, "phase": p.phase, "load": p.load,
            "measurement": {**p.measurement.__dict__,
                            "latencies_ms": dict(p.measurement.latencies_ms)},
            "passed": p.verdict.passed,
            "margin": p.verdict.margin if math.isfinite(p.verdict.margin) else None,
            "reasons": list(p.verdict.reasons)} for p in result.probes],
    }


def capacity_from_dict(data: dict[str, Any], plan: CapacityPlan) -> CapacityResult:
    probes = tuple(Probe(p["index"], p["phase"], ProbeMeasurement(**p["measurement"]),
                         Verdict(p["passed"], math.inf if p["margin"] is None else p["margin"],
                                 tuple(p["reasons"])))
                   for p in data["probes"])
    low, high = data["bracket"]
    last_pass = next((p for p in probes if p.verdict.passed and p.load == low), None)
    first_fail = next((p for p in probes if not p.verdict.passed and p.load == high), None)
    return CapacityResult(plan.settings, plan.slo, probes, last_pass, first_fail,
                          data["stopped_because"], data["converged"])


def capacity_rows(result: CapacityResult, plan: CapacityPlan,
                  workload: dict[str, Any]) -> list[tuple[str, float, str, dict[str, Any]]]:
    """``capacity_req_s``, ``capacity_concurrency`` and ``capacity_output_tok_s`` of a search
    that found a passing load; the scenario names the search and the SLO, so that criteria can
    ask for exactly this capacity."""
    if result.last_pass is None:
        return []
    scenario = {"search": plan.settings.kind, **workload, "slo": plan.slo.text(),
                "precision": plan.settings.precision}
    values = {"capacity_req_s": result.capacity_req_s,
              "capacity_output_tok_s": result.capacity_output_tok_s,
              "capacity_concurrency": result.capacity_concurrency}
    return [(metric, float(value), METRICS[metric].unit, dict(scenario))
            for metric, value in values.items() if value is not None]


def bracket_note(result: CapacityResult) -> str:
    """One line for a record's note: the bracket, the probes and why the search stopped."""
    return search_note(result.settings.kind, _load(result.last_pass), _load(result.first_fail),
                       len(result.probes), result.stopped_because)


def _load(probe: Probe | None) -> float | None:
    return None if probe is None else probe.load
