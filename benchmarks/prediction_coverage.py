"""Coverage of predictions, measured: leave one launch out of the committed Hopper evidence.

Every launch-level value of a predicted metric in the committed Hopper evidence (docs/results:
the single-GPU, certified, capacity, parallel, multi-GPU and stacks runs, each store read with
the decision file it was measured for; a launch found in two stores counts once) is predicted
from all the other evidence, and the table says how often the measured value fell inside the
stated interval (goal: at least 80% of values inside their 80% intervals) and how far the
predicted median was from it.

A value whose load is the load of one of its decision's criteria is predicted through
``stackdecide.predict.predict`` on that decision, exactly as ``stackdecide predict`` shows it
(judged scores included, or left out with ``--no-judged``); the others (capacity probes,
throughput of one stream) straight from the fitted model. ``configuration never launched`` rows
are the values whose configuration has no other launch in the evidence: the race's use, a
prediction before launching. The space races (``LATER``, on one H100 and one H200) were measured
after the priors were stated from the others: their values are also shown apart, out of sample
for the priors.

    python benchmarks/prediction_coverage.py [--level 0.8] [--no-judged] [--rows]
"""

from __future__ import annotations

import argparse
import math
import statistics
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cache
from pathlib import Path

from scipy import stats

import stackdecide
from stackdecide.bench.results import DEFAULTS
from stackdecide.certify.efficiency import EfficiencyFit
from stackdecide.evidence import load_evidence
from stackdecide.model.decision import DecisionMatrix
from stackdecide.predict import (
    PREDICTED_METRICS,
    Calibration,
    Load,
    Observation,
    Predicted,
    Prediction,
    calibration,
    criterion_load,
    fit_metric,
    judged_value,
    merge,
    predict,
)

ROOT = Path(__file__).resolve().parents[1]
RESULTS = "docs/results"
# (decision file, evidence store) as each run was measured
COMMITTED = (
    ("criteria/hopper.yaml", f"{RESULTS}/hopper-h200/evidence.db"),
    ("criteria/hopper.yaml", f"{RESULTS}/hopper-h200-certified/evidence.db"),
    ("criteria/hopper.yaml", f"{RESULTS}/hopper-h200-x2-parallel/evidence.db"),
    (f"{RESULTS}/hopper-h200-capacity/hopper.yaml", f"{RESULTS}/hopper-h200-capacity/evidence.db"),
    ("criteria/hopper-multi.yaml", f"{RESULTS}/hopper-h200-x2-multi-gpu/multi.db"),
    ("criteria/hopper-multi.yaml", f"{RESULTS}/hopper-h200-x2-multi-gpu/run2/multi.db"),
    ("criteria/hopper-multi.yaml", f"{RESULTS}/hopper-h200-x2-multi-gpu/run3/multi.db"),
    ("criteria/hopper-stacks.yaml", f"{RESULTS}/hopper-h200-x2-stacks/stacks.db"),
)
# measured after the priors (``stackdecide.predict.priors``) were stated from the stores above:
# out of sample for them. On one H100: the first space race, the race finished in four steps
# (its store holds the third race's launch), the fresh race of the fifth and the fresh race of
# criteria/hopper-knobs.yaml; on one H200: the fresh race of the space as committed
LATER = (
    (f"{RESULTS}/h100-space/hopper-space.yaml", f"{RESULTS}/h100-space/space.db"),
    (f"{RESULTS}/h100-space/fourth-race/hopper-space.yaml",
     f"{RESULTS}/h100-space/fourth-race/space.db"),
    (f"{RESULTS}/h100-space/fifth-race/hopper-space.yaml",
     f"{RESULTS}/h100-space/fifth-race/space.db"),
    ("criteria/hopper-space.yaml", f"{RESULTS}/h200-space/first-race/space.db"),
    (f"{RESULTS}/h100-knobs/hopper-knobs.yaml", f"{RESULTS}/h100-knobs/space.db"),
)
# the benchmark client's loads, where a decision's benchmark block is silent
DEFAULT_LOADS = {name: Load(d.concurrency[0], d.input_len, d.output_len)
                 for name, d in DEFAULTS.items()}


@dataclass(frozen=True)
class Outcome:
    """One left-out value against its prediction."""

    observation: Observation
    low: float
    median: float
    high: float
    judged: bool  # a judged score was combined
    launched_elsewhere: bool  # the configuration has other launches in the evidence

    @property
    def inside(self) -> bool:
        return self.low <= self.observation.value <= self.high

    @property
    def relative_error(self) -> float:
        return abs(self.median - self.observation.value) / self.observation.value


@cache
def _decision(path: str) -> DecisionMatrix:
    return stackdecide.load(ROOT / path)


def committed_calibration(stores: Sequence[tuple[str, str]] = COMMITTED) -> Calibration:
    """The committed Hopper evidence as one calibration (module doc): by default the stores the
    priors were stated from."""
    return merge(calibration(_decision(path), load_evidence(ROOT / store), path)
                 for path, store in stores)


def out_of_sample(outcomes: Sequence[Outcome]) -> list[Outcome]:
    """The values of the stores measured after the priors were stated (``LATER``)."""
    later = {path for path, _ in LATER}
    return [o for o in outcomes if o.observation.decision in later]


def _matching(observation: Observation, prediction: Prediction) -> Predicted | None:
    """The predicted cell of ``prediction`` that measures ``observation``: its candidate and
    metric at its load."""
    for predicted in prediction.predictions:
        if predicted.candidate == observation.candidate and predicted.metric == observation.metric \
                and (predicted.load.label if predicted.load else None) == observation.levels.get("load"):
            return predicted
    return None


def leave_one_out(data: Calibration, level: float = 0.8, judged: bool = True) -> list[Outcome]:
    """Each observation predicted from the evidence of every other launch (module doc)."""
    outcomes = []
    for launch in dict.fromkeys(o.launch for o in data.observations):
        left_out = [o for o in data.observations if o.launch == launch]
        rest = Calibration(tuple(o for o in data.observations if o.launch != launch))
        predictions = {name: predict(_decision(name), rest, DEFAULT_LOADS, level, judged)
                       for name in {o.decision for o in left_out}}
        fits: dict[str, EfficiencyFit] = {}
        for observation in left_out:
            config = observation.levels["config"]
            elsewhere = any(o.levels["config"] == config for o in rest.of(observation.metric))
            predicted = _matching(observation, predictions[observation.decision])
            if predicted is not None:
                low, median, high = predicted.low, predicted.value, predicted.high
            else:  # a value no criterion measures: from the fitted model directly
                metric = observation.metric
                if metric not in fits:
                    fits[metric] = fit_metric(rest.of(metric), metric)
                shown = fits[metric].predict(observation.levels, level)
                cap = observation.reference if observation.metric != "startup_s" else math.inf
                low, median, high = (min(cap, observation.reference * math.exp(x))
                                     for x in (shown.low, shown.median, shown.high))
            outcomes.append(Outcome(observation, low, median, high,
                                    predicted is not None and predicted.judged is not None,
                                    elsewhere))
    return outcomes


def prior_levels(data: Calibration) -> dict[str, float]:
    """Each metric's mean over configurations of ``log(value / reference)``: what
    ``predict.priors.PRIOR_LEVEL`` states."""
    levels = {}
    for metric in PREDICTED_METRICS:
        by_config: dict[str, list[float]] = {}
        for observation in data.of(metric):
            by_config.setdefault(observation.levels["config"], []).append(observation.log_ratio)
        levels[metric] = statistics.mean(statistics.mean(v) for v in by_config.values())
    return levels


@dataclass(frozen=True)
class JudgedErrors:
    """How far judged scores, read back into their metrics, were from the measured medians."""

    rms: float  # log units
    dof: int
    bound: float  # the upper one-sided confidence bound of ``rms``
    shared: float | None  # absolute judgements: the share of the error variance one decision's
    # judgements have in common (its judge's), between decisions against within


def _judged_residuals(data: Calibration) -> dict[str, list[list[float]]]:
    """Per kind (``rates``, ``startup_s``), one list per criterion of ``log(judged / measured)``
    of its candidates; a decision measured twice (the same title) counts once."""
    groups: dict[str, list[list[float]]] = {"rates": [], "startup_s": []}
    seen_titles: set[str] = set()
    for path in dict.fromkeys(path for path, _ in COMMITTED):
        decision = _decision(path)
        if decision.title in seen_titles:
            continue
        seen_titles.add(decision.title)
        for criterion in decision.criteria:
            if criterion.measure is None or criterion.measure.metric not in PREDICTED_METRICS:
                continue
            metric = criterion.measure.metric
            load = criterion_load(decision, criterion, DEFAULT_LOADS)
            residuals = []
            for candidate in decision.candidates:
                score = candidate.scores.get(criterion.id)
                said = judged_value(criterion, score) if score is not None else None
                measured = [o.value for o in data.of(metric) if o.decision == path
                            and o.candidate == candidate.id
                            and o.levels.get("load") == (load.label if load else None)]
                if said and measured:
                    residuals.append(math.log(said[1]) - math.log(statistics.median(measured)))
            if residuals:
                groups["startup_s" if metric == "startup_s" else "rates"].append(residuals)
    return groups


def judged_errors(data: Calibration, upper: float = 0.9) -> dict[str, JudgedErrors]:
    """How far the committed decisions' judged scores were off (log units): ``rates`` are
    relative judgements, so each criterion's residuals are centred on their mean (n - 1 degrees
    of freedom each); ``startup_s`` judgements are absolute (n each), and how much of their error
    a decision's judgements share is the variance of the criteria's mean residuals (less what
    the within-criterion spread puts there) against the within-criterion variance. The
    ``upper`` bound is the chi-square one: what ``predict.priors.JUDGED_SD`` states, and
    ``JUDGED_SHARED`` the shared part."""
    found = {}
    for kind, groups in _judged_residuals(data).items():
        centred = [[r - statistics.mean(g) for r in g] for g in groups if len(g) > 1]
        within_ss = sum(r * r for g in centred for r in g)
        within_dof = sum(len(g) - 1 for g in groups if len(g) > 1)
        if kind == "rates":
            square, dof, shared = within_ss, within_dof, None
        else:
            square, dof = sum(r * r for g in groups for r in g), sum(len(g) for g in groups)
            within = within_ss / within_dof
            between = statistics.mean(statistics.mean(g) ** 2 for g in groups) \
                - within * statistics.mean(1 / len(g) for g in groups)
            shared = max(0.0, between) / (max(0.0, between) + within)
        rms = math.sqrt(square / dof)
        found[kind] = JudgedErrors(rms, dof, rms * math.sqrt(dof / stats.chi2.ppf(1 - upper, dof)),
                                   shared)
    return found


@dataclass(frozen=True)
class Summary:
    metric: str
    values: int
    inside: float  # share inside the interval
    median_error: float  # relative
    median_error_units: float
    median_half_width: float  # relative, (high - low) / 2 / value
    never_launched: int
    never_launched_inside: float | None


def summarize(outcomes: Sequence[Outcome], metric: str) -> Summary:
    rows = [o for o in outcomes if metric in ("all", o.observation.metric)]
    fresh = [o for o in rows if not o.launched_elsewhere]
    return Summary(
        metric, len(rows), sum(o.inside for o in rows) / len(rows),
        statistics.median(o.relative_error for o in rows),
        statistics.median(abs(o.median - o.observation.value) for o in rows)
        if metric != "all" else math.nan,
        statistics.median((o.high - o.low) / 2 / o.observation.value for o in rows),
        len(fresh), sum(o.inside for o in fresh) / len(fresh) if fresh else None)


def table(outcomes: Sequence[Outcome], level: float) -> str:
    head = (f"| metric | values | inside the {level:.0%} interval | median error | median error "
            "(units) | median half-width | configuration never launched: values, inside |")
    lines = [head, "|---|---|---|---|---|---|---|"]
    for metric in (*PREDICTED_METRICS, "all"):
        s = summarize(outcomes, metric)
        if not s.values:
            continue
        unit = "s" if metric == "startup_s" else "tok/s"
        units = "" if metric == "all" else f"{s.median_error_units:,.1f} {unit}"
        fresh = f"{s.never_launched}, {s.never_launched_inside:.0%}" if s.never_launched else "0"
        lines.append(f"| {metric} | {s.values} | {s.inside:.1%} | {s.median_error:.1%} | {units} "
                     f"| ±{s.median_half_width:.1%} | {fresh} |")
    return "\n".join(lines)


def rows_text(outcomes: Sequence[Outcome]) -> str:
    lines = []
    for o in outcomes:
        obs = o.observation
        where = obs.levels.get("load") or obs.levels.get("start")
        mark = "in " if o.inside else "OUT"
        lines.append(f"{mark} {obs.metric:14s} {obs.candidate:22s} {where:28s} measured "
                     f"{obs.value:10.1f}  predicted {o.median:10.1f} [{o.low:10.1f}, {o.high:10.1f}]"
                     f"{'  judged' if o.judged else ''}{'' if o.launched_elsewhere else '  new'}")
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--level", type=float, default=0.8)
    parser.add_argument("--no-judged", action="store_true", help="leave judged scores out")
    parser.add_argument("--rows", action="store_true", help="print every value too")
    args = parser.parse_args()
    data = committed_calibration()
    outcomes = leave_one_out(committed_calibration((*COMMITTED, *LATER)), args.level,
                             not args.no_judged)
    if args.rows:
        print(rows_text(outcomes))
        print()
    judged = sum(o.judged for o in outcomes)
    launches = len({o.observation.launch for o in outcomes})
    print(f"{len(outcomes)} values of {launches} launches, each predicted from the other launches "
          f"({judged} with a judged score)")
    print(table(outcomes, args.level))
    print()
    later = out_of_sample(outcomes)
    print(f"of them, the space races, measured on one H100 and one H200 after the priors were "
          f"stated ({len(later)} values of {len({o.observation.launch for o in later})} "
          "launches):")
    print(table(later, args.level))
    print()
    levels = ", ".join(f"{metric} {value:.2f}" for metric, value in prior_levels(data).items())
    print(f"prior levels, from the stores they were stated from (mean over configurations of "
          f"log(value / ceiling); start-up log s): "
          f"{levels}")
    for kind, found in judged_errors(data).items():
        shared = "" if found.shared is None else f"; {found.shared:.2f} of it shared by a decision"
        print(f"judged scores, {kind}: off by {found.rms:.2f} (log, root mean square, {found.dof} "
              f"degrees of freedom); upper 90% bound {found.bound:.2f}{shared}")


if __name__ == "__main__":
    main()
