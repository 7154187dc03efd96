"""Evidence as calibration: each launch's value of a predicted metric beside its roofline.

A record can calibrate only when its configuration is known: its candidate must be in the
decision it is read with, measured with that candidate's engine config as it is now
(``config_sha256``) and on a named GPU. The records of one launch (or one import, for records
that name no launch) and one load make one observation, their median, like a replicate of a cell
(``evidence.records.replicates``). The same launch read from two stores (a store copied before a
race went on) is one observation: ``merge`` keeps the first.
"""

from __future__ import annotations

import math
import statistics
from collections import Counter, defaultdict
from collections.abc import Iterable
from dataclasses import dataclass

from stackdecide.evidence.records import EvidenceRecord, EvidenceSet, scenario_value
from stackdecide.facts.pins import vllm_version
from stackdecide.model.decision import DecisionMatrix
from stackdecide.model.metrics import METRICS
from stackdecide.model.stack import recorded_versions
from stackdecide.predict.ceilings import Load, metric_ceiling
from stackdecide.predict.configuration import (
    NOT_BINDING,
    SPACE_AXIS,
    Configuration,
    binds_at,
    configuration,
    scheduler_limit,
)
from stackdecide.predict.priors import NO_ROOFLINE_REFERENCE, at_load

PREDICTED_METRICS = ("decode_tok_s", "prefill_tok_s", "output_tok_s", "startup_s")
NOT_RECORDED = "not recorded"  # a start-up whose record does not say cold or warm


@dataclass(frozen=True)
class Observation:
    """One launch's value of one metric, with the reference it is read against: its roofline
    ceiling (tok/s; ``priors.NO_ROOFLINE_REFERENCE`` where it has none), or 1 s for
    ``startup_s``."""

    metric: str
    value: float
    reference: float
    levels: dict[str, str]  # configuration axes, plus the load (rates) or the start (start-up)
    launch: str
    candidate: str
    decision: str  # the decision file it was read with

    @property
    def log_ratio(self) -> float:
        """``log(value / reference)``: the log of the efficiency for a rate."""
        return math.log(self.value / self.reference)

    @property
    def identity(self) -> tuple[str, str, str]:
        return (self.launch, self.metric, self.levels.get("load") or self.levels.get("start", ""))


@dataclass(frozen=True)
class Calibration:
    """The observations evidence gives, and what was left out and why."""

    observations: tuple[Observation, ...]
    notes: tuple[str, ...] = ()

    def of(self, metric: str) -> tuple[Observation, ...]:
        return tuple(o for o in self.observations if o.metric == metric)


def at_start(levels: dict[str, str], start: str) -> dict[str, str]:
    """A configuration's levels for its start-up: ``start`` (cold, warm, ...) and its settings,
    but a scheduler limit's: its value moves only how many batch sizes vLLM captures CUDA graphs
    for, a second or two of a start that takes minutes."""
    started = {key: NOT_BINDING if scheduler_limit(key) and value.isdigit() else value
               for key, value in levels.items()}
    started["start"] = start
    return started


def with_load(levels: dict[str, str], load: Load) -> dict[str, str]:
    """A configuration's levels under a load: the load, the configuration at that load (how
    much a load moves a configuration depends on the configuration: FP8 weights gained less than
    BF16 from 16 to 64 streams on the H200), and each of its space settings at that load."""
    loaded = {**levels, "load": load.label}
    binding = []
    # a setting may matter at one load and not another (max_num_seqs 1 serialises 4 streams and
    # leaves one alone): each space axis also has a level at each load
    for key, value in levels.items():
        if not key.startswith(SPACE_AXIS):
            continue
        bound = binds_at(key, value, load)
        # a scheduler limit the load does not reach shares one level with every such value
        loaded[at_load(key)] = f"{NOT_BINDING if bound is False else value} @ {load.label}"
        if bound is not None:
            # a scheduler limit moves a rate only through the loads it binds at; the
            # configuration's own level leaves it out (``configuration.config_label``)
            loaded[key] = NOT_BINDING
            if bound:
                binding.append(f"{key.removeprefix(SPACE_AXIS)}={value}")
    loaded["config_load"] = " | ".join([levels["config"], *binding]) + f" @ {load.label}"
    return loaded


def without_roofline(levels: dict[str, str]) -> dict[str, str]:
    """A configuration's levels where its rates have no roofline: read against
    ``priors.NO_ROOFLINE_REFERENCE``, with the ``roofline`` term's level (``predict.priors``)."""
    return {**levels, "roofline": "none"}


def record_load(record: EvidenceRecord) -> Load | None:
    """The load a rate was measured under; None when the record does not say its lengths."""
    scenario = record.scenario
    implied = dict(METRICS[record.metric].implied_scenario)
    concurrency = scenario.get("concurrency", implied.get("concurrency"))
    lengths = scenario.get("input_len"), scenario.get("output_len")
    if concurrency is None or None in lengths:
        return None
    try:
        return Load(float(scenario_value(concurrency)), int(scenario_value(lengths[0])),
                    int(scenario_value(lengths[1])))
    except (TypeError, ValueError):
        return None


def _group(records: Iterable[EvidenceRecord]) -> dict[tuple, list[EvidenceRecord]]:
    groups: dict[tuple, list[EvidenceRecord]] = defaultdict(list)
    for index, record in enumerate(records):
        launch = record.launch or record.source or f"record {record.id or index}"
        groups[(record.candidate, record.metric, launch, record.load)].append(record)
    return groups


def calibration(decision: DecisionMatrix, evidence: EvidenceSet, name: str = "") -> Calibration:
    """The observations of ``evidence`` whose configuration ``decision`` says (module doc)."""
    name = name or decision.source_file or decision.title
    candidates = {c.id: c.config_sha256 for c in decision.candidates}
    skipped: Counter[str] = Counter()
    usable = []
    for record in evidence:
        if record.metric not in PREDICTED_METRICS:
            continue
        if record.candidate not in candidates:
            skipped["of candidates not in the decision"] += 1
        elif record.config_sha256 not in (None, candidates[record.candidate]):
            skipped["of an earlier engine config"] += 1
        elif record.hardware is None:
            skipped["that name no GPU"] += 1
        elif record.scenario.get("complete") is False:
            skipped["of benchmarks cut short"] += 1
        else:
            usable.append(record)
    configurations: dict[tuple, Configuration] = {}
    observations = []
    for (candidate, metric, launch, _), records in _group(usable).items():
        first = records[0]
        assert first.hardware is not None
        vllm = vllm_version(recorded_versions(first.software).get)
        key = (candidate, first.hardware.gpu, first.hardware.vram_gb, vllm)
        if key not in configurations:
            configurations[key] = configuration(decision, candidate, first.hardware.gpu,
                                                first.hardware.vram_gb, vllm)
        config = configurations[key]
        value = float(statistics.median(r.value for r in records))
        levels = dict(config.levels)
        if metric == "startup_s":
            levels = at_start(levels, str(first.scenario.get("start", NOT_RECORDED)))
            reference = 1.0
        else:
            load = record_load(first)
            if load is None:
                skipped["that do not say their concurrency and lengths"] += len(records)
                continue
            ceiling = metric_ceiling(metric, config.setup, load) if config.setup else None
            levels = with_load(levels if ceiling else without_roofline(levels), load)
            reference = ceiling.value if ceiling else NO_ROOFLINE_REFERENCE
        if value <= 0:
            skipped["of zero"] += len(records)
            continue
        observations.append(Observation(metric, value, reference, levels, launch, candidate,
                                        name))
    notes = tuple(f"{count} record{'s' if count != 1 else ''} {why} left out"
                  for why, count in skipped.items())
    return Calibration(tuple(observations), notes)


def merge(calibrations: Iterable[Calibration]) -> Calibration:
    """Observations of several calibrations, each launch once (the first one read)."""
    seen: set[tuple[str, str, str]] = set()
    kept: list[Observation] = []
    notes: list[str] = []
    for calibration_ in calibrations:
        notes.extend(calibration_.notes)
        for observation in calibration_.observations:
            if observation.identity not in seen:
                seen.add(observation.identity)
                kept.append(observation)
    return Calibration(tuple(kept), tuple(notes))
