"""Predicted values of each candidate's measured criteria, before launching it.

A rate (``decode_tok_s``, ``prefill_tok_s``, ``output_tok_s``) is predicted as its roofline
ceiling under the criterion's load (``predict.ceilings``) times an efficiency, the share of the
ceiling such configurations reach; ``startup_s`` has no roofline and is predicted in seconds. The
efficiency (its log) comes from ``certify.efficiency``'s hierarchical model fitted to every
launch of the metric in the calibration (``predict.observations``), with the priors of
``predict.priors``: the more launches share a level with the candidate (its GPU, model, weight
format, attention backend, KV dtype, layout, vLLM, load, the configuration itself), the surer it
is; what no launch has seen adds its prior width. The interval is for one launch of the
configuration, launch noise included, at ``level`` (0.8 by default). A rate's interval stops at
its ceiling, which no launch can pass.

A judged score given for the criterion, read back into the metric (``judged_value``), is a
statement about the configuration's mean with the SD ``priors.JUDGED_SD``; the candidates of a
criterion are predicted jointly (those that share a level, a GPU never launched say, share its
uncertainty) and conditioned on their scores (``certify.efficiency.JointMeans.condition``):

* ``relative_to_best``: a score says how the candidate compares with the others (score / scale
  = value / best), not how fast any of them is: the statements are the differences between the
  judged candidates (log scale), which move them apart or together and leave their common level
  to the evidence;
* ``linear``: the score's place between ``worst`` and ``best`` is a value (scores at either end
  say only "at least as good" or "no better", and are not used); the judged values of one
  criterion share part of their error (``priors.JUDGED_SHARED``);
* other value functions do not say a value, and are not used;
* the configurations of a ``space:`` all carry the base's scores, a judgement of the base and not
  of how they compare (read as one, identical scores would pull every configuration to the same
  value): they are not used.

The model is a mixture over its width scales (``certify.efficiency``), and so is each
configuration's mean: ``Prediction.mixtures`` keeps it for each cell (per component: its weight,
and the centre and SD of the log of the mean), and a ranking draws the mean from it
(``scoring.certainty``); the cell's interval is the mixture's.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

import numpy as np
from scipy import special

from stackdecide.certify.efficiency import EfficiencyFit, JointMeans, Predictive, fit
from stackdecide.evidence.records import scenario_value
from stackdecide.model.cells import JointMixture, MeanMixture
from stackdecide.model.decision import DecisionMatrix
from stackdecide.model.metrics import METRICS
from stackdecide.model.schema import Criterion
from stackdecide.model.space import configuration_of
from stackdecide.predict.ceilings import Ceiling, Load, metric_ceiling
from stackdecide.predict.configuration import configuration, space_axes
from stackdecide.predict.observations import (
    PREDICTED_METRICS,
    Calibration,
    Observation,
    at_start,
    with_load,
    without_roofline,
)
from stackdecide.predict.priors import JUDGED_SD, JUDGED_SHARED, NO_ROOFLINE_REFERENCE, prior_for

DEFAULT_LEVEL = 0.8
NEXT_START = "next launch"  # the start of a launch to come: cold or warm is not known
SCENARIO_OF = {"decode_tok_s": "decode", "prefill_tok_s": "prefill", "output_tok_s": "throughput"}


@dataclass(frozen=True)
class Predicted:
    """One candidate's predicted value of one criterion's metric, with every intermediate."""

    candidate: str
    criterion: str
    metric: str
    unit: str
    load: Load | None  # None for start-up
    value: float  # median of one launch
    low: float
    high: float
    level: float  # probability between low and high
    ceiling: Ceiling | None  # the roofline (rates)
    efficiency: float | None  # the configuration's mean share of the ceiling (rates), median
    efficiency_low: float | None
    efficiency_high: float | None
    calibrated_by: int  # launch values of this metric the model was fitted to
    basis: tuple[tuple[str, str, int], ...]  # (axis, level, launch values at it; 0: prior only)
    noise: float  # launch-to-launch SD the fit found (log units)
    judged: float | None = None  # the judged score's value, when one was combined
    # the configuration's mean (no launch noise): its median and ``level`` interval
    mean: float = math.nan
    mean_low: float = math.nan
    mean_high: float = math.nan
    source: str = "predicted"
    # a launched candidate of the decision the same on every level of this cell (a scheduler
    # limit that binds at no load of it is no level): the model cannot tell the two apart here
    twin: str | None = None

    @property
    def mean_log_sd(self) -> float:
        """The SD of the log of the configuration's mean that its interval spans, as a normal's: its
        width in one number (a ranking draws the mean from ``Prediction.mixtures``)."""
        z = float(special.ndtri(0.5 + self.level / 2))
        return math.log(self.mean_high / self.mean_low) / (2.0 * z)


@dataclass(frozen=True)
class Unpredicted:
    candidate: str
    criterion: str
    reason: str


@dataclass(frozen=True)
class Prediction:
    """Every predicted cell of a decision, the cells that cannot be predicted and why."""

    predictions: tuple[Predicted, ...]
    unpredicted: tuple[Unpredicted, ...]
    level: float
    notes: tuple[str, ...] = ()
    extra: dict[str, dict[str, float]] = field(default_factory=dict)  # metric -> fit summary
    # (candidate, criterion) -> the distribution of the cell's mean, in the metric's units (module doc)
    mixtures: dict[tuple[str, str], MeanMixture] = field(default_factory=dict)

    def get(self, candidate: str, criterion: str) -> Predicted | None:
        return next((p for p in self.predictions
                     if p.candidate == candidate and p.criterion == criterion), None)


def criterion_load(decision: DecisionMatrix, criterion: Criterion,
                   defaults: Mapping[str, Load]) -> Load | None:
    """The load a criterion's metric is measured under: the criterion's own scenario, then the
    decision's ``benchmark`` scenario that measures it, then ``defaults`` (scenario name -> load:
    the benchmark client's). None for start-up."""
    assert criterion.measure is not None
    metric = criterion.measure.metric
    if metric not in SCENARIO_OF:
        return None
    wanted = {key: scenario_value(value) for key, value in criterion.measure.scenario.items()}
    concurrency = wanted.get("concurrency", dict(METRICS[metric].implied_scenario).get("concurrency"))
    # a criterion may name its scenario: output_tok_s of one stream is the decode scenario's
    name = str(wanted.get("scenario") or SCENARIO_OF[metric])
    runs = [s for s in decision.model.benchmark.scenarios if s.scenario != "capacity"]
    if concurrency is not None:
        matching = [s for s in runs if concurrency in (s.concurrency or [1])]
        run = next((s for s in matching if s.scenario == name), matching[0] if matching else None)
    else:
        run = next((s for s in runs if s.scenario == name), None)
    default = defaults.get(run.scenario if run else name) or defaults[SCENARIO_OF[metric]]
    if concurrency is None:
        concurrency = (run.concurrency or [default.concurrency])[0] if run else default.concurrency
    return Load(float(concurrency),
                int(wanted.get("input_len") or (run and run.input_len) or default.input_len),
                int(wanted.get("output_len") or (run and run.output_len) or default.output_len))


def judged_value(criterion: Criterion, score: float) -> tuple[str, float] | None:
    """What a judged score says of the metric: ``("relative", score / scale)`` for
    ``relative_to_best`` (a ratio to the best, inverted for a lower-better metric), ``("absolute",
    value)`` for ``linear``; None where it says no value (module doc)."""
    measure = criterion.measure
    assert measure is not None
    low, high = criterion.scale.low, criterion.scale.high
    goodness = (score - low) / (high - low)
    if criterion.direction == "cost":
        goodness = 1.0 - goodness
    if measure.value == "relative_to_best" and 0.0 < goodness <= 1.0:
        higher = METRICS[measure.metric].higher_is_better
        return "relative", goodness if higher else 1.0 / goodness
    if measure.value == "linear" and 0.0 < goodness < 1.0:
        assert measure.worst is not None and measure.best is not None
        value = measure.worst + goodness * (measure.best - measure.worst)
        return ("absolute", value) if value > 0 else None
    return None


def fit_metric(observations: tuple[Observation, ...], metric: str,
               space_axes: tuple[str, ...] = ()) -> EfficiencyFit:
    """The hierarchical model of one metric fitted to its observations, with a term for each
    level a space adds (``predict.configuration.space_axes``)."""
    return fit([o.log_ratio for o in observations], [o.levels for o in observations],
               prior_for(metric, space_axes))


@dataclass(frozen=True)
class _Target:
    """One cell to predict: a candidate's criterion, its levels, load and ceiling."""

    candidate: str
    criterion: Criterion
    metric: str
    levels: dict[str, str]
    load: Load | None
    ceiling: Ceiling | None

    @property
    def reference(self) -> float:
        if self.ceiling:
            return self.ceiling.value
        return 1.0 if self.metric == "startup_s" else NO_ROOFLINE_REFERENCE


def _targets(decision: DecisionMatrix, defaults: Mapping[str, Load]
             ) -> tuple[list[_Target], list[Unpredicted]]:
    targets, unpredicted = [], []
    for candidate in decision.candidate_ids:
        config = configuration(decision, candidate)
        for criterion in decision.criteria:
            if criterion.measure is None or criterion.measure.metric not in PREDICTED_METRICS:
                continue
            metric = criterion.measure.metric
            levels = dict(config.levels)
            if metric == "startup_s":
                levels = at_start(levels, str(criterion.measure.scenario.get("start", NEXT_START)))
                targets.append(_Target(candidate, criterion, metric, levels, None, None))
                continue
            load = criterion_load(decision, criterion, defaults)
            assert load is not None
            ceiling = metric_ceiling(metric, config.setup, load) if config.setup else None
            if ceiling is None:
                levels = without_roofline(levels)
            targets.append(_Target(candidate, criterion, metric, with_load(levels, load), load,
                                   ceiling))
    return targets, unpredicted


def _judged(decision: DecisionMatrix, targets: Sequence[_Target], joint: JointMeans
            ) -> tuple[JointMeans, dict[int, float]]:
    """The targets of one criterion conditioned on their judged scores (module doc), and the
    value each score says, for the view (a relative score placed against the evidence's
    predictions)."""
    said: dict[int, tuple[str, float]] = {}
    for k, target in enumerate(targets):
        # a space's configurations all carry its base's scores: one judgement of the base, not
        # a statement about how they compare, so it conditions nothing
        if configuration_of(decision.model, target.candidate) is not None:
            continue
        score = decision.candidate(target.candidate).scores.get(target.criterion.id)
        found = judged_value(target.criterion, score) if score is not None else None
        if found is not None:
            said[k] = found
    if not said:
        return joint, {}
    sd = JUDGED_SD[targets[0].metric]
    logs = {k: math.log(value) - math.log(targets[k].reference) for k, (_, value) in said.items()}
    judged = sorted(said)
    if said[judged[0]][0] == "absolute":
        rows = np.eye(len(targets))[judged]
        noise = sd**2 * (JUDGED_SHARED + (1.0 - JUDGED_SHARED) * np.eye(len(judged)))
        values = np.array([logs[k] for k in judged])
        shown = {k: said[k][1] for k in judged}
    else:
        if len(judged) < 2:  # one ratio to an unknown best says nothing
            return joint, {}
        first, rest = judged[0], judged[1:]
        rows = np.eye(len(targets))[rest] - np.eye(len(targets))[first]
        noise = sd**2 * (np.eye(len(rest)) + 1.0)  # every difference shares the first's error
        values = np.array([logs[k] - logs[first] for k in rest])
        means = joint.weights @ joint.means  # the evidence's predictions, to place the ratios
        best = np.mean([means[k] + math.log(targets[k].reference) - math.log(said[k][1])
                        for k in judged])
        shown = {k: math.exp(best) * said[k][1] for k in judged}
    return joint.condition(rows, values, noise), shown


def _twins(decision: DecisionMatrix, targets: Sequence[_Target], calibration: Calibration
           ) -> dict[int, str]:
    """Each target a launched candidate of the decision matches on every level (``Predicted.twin``),
    by index; the first such candidate in the decision's order."""
    order = {cid: i for i, cid in enumerate(decision.candidate_ids)}
    launched: dict[tuple[str, frozenset], str] = {}
    for observation in calibration.observations:
        if observation.candidate not in order:
            continue
        key = (observation.metric, frozenset(observation.levels.items()))
        if key not in launched or order[observation.candidate] < order[launched[key]]:
            launched[key] = observation.candidate
    return {k: twin for k, target in enumerate(targets)
            if (twin := launched.get((target.metric, frozenset(target.levels.items()))))
            not in (None, target.candidate)}


def _predicted(target: _Target, shown: Predictive, calibrated_by: int,
               judged: float | None, twin: str | None) -> Predicted:
    """A target's prediction in the metric's units: a rate's interval stops at its ceiling."""
    reference = target.reference
    cap = target.ceiling.value if target.ceiling else math.inf

    def share(log_value: float) -> float | None:
        return min(1.0, math.exp(log_value)) if target.ceiling else None

    return Predicted(
        candidate=target.candidate, criterion=target.criterion.id, metric=target.metric,
        unit=METRICS[target.metric].unit, load=target.load,
        value=min(cap, reference * math.exp(shown.median)),
        low=min(cap, reference * math.exp(shown.low)),
        high=min(cap, reference * math.exp(shown.high)),
        level=shown.level, ceiling=target.ceiling, efficiency=share(shown.mean_median),
        efficiency_low=share(shown.mean_low), efficiency_high=share(shown.mean_high),
        calibrated_by=calibrated_by,
        basis=tuple((axis, target.levels[axis], n) for axis, n in shown.seen.items()),
        noise=shown.noise, judged=judged,
        mean=min(cap, reference * math.exp(shown.mean_median)),
        mean_low=min(cap, reference * math.exp(shown.mean_low)),
        mean_high=min(cap, reference * math.exp(shown.mean_high)), twin=twin)


def _mixtures(group: Sequence[_Target], joint: JointMeans) -> list[MeanMixture]:
    """The distribution of each target's mean in the metric's units: a component per grid point of
    the fit, in order of width scale (then noise), so that one quantile of the weights picks
    comparable components for every cell of a metric (``scoring.certainty``); each the marginal of
    the group's joint distribution, which it keeps."""
    order = np.lexsort((joint.noise, joint.scale))
    weights = tuple(joint.weights[order].tolist())
    covariances = joint.covariances[order]
    sds = np.sqrt(np.maximum(np.diagonal(covariances, axis1=1, axis2=2), 1e-12))
    centres = joint.means[order] + np.log([target.reference for target in group])[None]
    ceilings = np.array([target.ceiling.value if target.ceiling else math.inf for target in group])
    together = JointMixture(tuple(target.candidate for target in group), joint.weights[order],
                            centres, _symmetric_root(covariances), ceilings)
    return [MeanMixture(weights, tuple(centres[:, k].tolist()), tuple(sds[:, k].tolist()),
                        float(ceilings[k]), together) for k in range(len(group))]


def _symmetric_root(covariances: np.ndarray) -> np.ndarray:
    """The symmetric square root of each covariance (G, K, K): a configuration's draw moves mostly
    with its own standard normal, plus the shares of the levels it has in common with others."""
    values, vectors = np.linalg.eigh((covariances + np.swapaxes(covariances, 1, 2)) / 2.0)
    return np.einsum("gij,gj,gkj->gik", vectors, np.sqrt(np.maximum(values, 0.0)), vectors)


def predict(decision: DecisionMatrix, calibration: Calibration, defaults: Mapping[str, Load],
            level: float = DEFAULT_LEVEL, judged: bool = True) -> Prediction:
    """Each candidate's predicted value of each criterion measured by a predicted metric
    (module doc), calibrated by ``calibration``; ``defaults``: the benchmark's load of each
    scenario where the decision does not say it."""
    targets, unpredicted = _targets(decision, defaults)
    axes = space_axes(decision)
    fits = {metric: fit_metric(calibration.of(metric), metric, axes)
            for metric in {target.metric for target in targets}}
    by_criterion: dict[str, list[int]] = {}
    for index, target in enumerate(targets):
        by_criterion.setdefault(target.criterion.id, []).append(index)
    twins = _twins(decision, targets, calibration)
    shown: dict[int, Predicted] = {}
    mixtures: dict[tuple[str, str], MeanMixture] = {}
    for indices in by_criterion.values():
        group = [targets[i] for i in indices]
        model = fits[group[0].metric]
        joint = model.joint([target.levels for target in group])
        said: dict[int, float] = {}
        if judged:
            joint, said = _judged(decision, group, joint)
        for k, (index, target) in enumerate(zip(indices, group, strict=True)):
            shown[index] = _predicted(target, joint.predictive(k, level), model.n, said.get(k),
                                      twins.get(index))
        mixtures.update(((target.candidate, target.criterion.id), mixture)
                        for target, mixture in zip(group, _mixtures(group, joint), strict=True))
    predictions = [shown[index] for index in range(len(targets))]
    extra = {metric: {"launch_values": float(model.n), "noise": float(model.weights @ model.noise),
                      "width_scale": float(model.weights @ model.scale)}
             for metric, model in sorted(fits.items())}
    return Prediction(tuple(predictions), tuple(unpredicted), level, calibration.notes, extra,
                      mixtures)
