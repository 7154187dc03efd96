"""Evidence into the decision matrix: measured scores replace judged ones where measurements exist.

For each criterion with a ``measure`` block and each candidate, the records of that candidate and
metric whose scenario contains the criterion's ``measure.scenario`` are aggregated by their median;
the criterion's value function turns the median into a score on the criterion's scale. The cell
then says ``measured`` and keeps the judged score it replaced, the raw median, how many records
and their spread, and flags for anything that weakens it:

* ``other-hardware``: measured on a GPU other than the decision's (used only with
  ``any_hardware``; ``unknown-hardware`` likewise for records that name no GPU);
* ``version-mismatch``: a package version outside the candidate's pins (``facts.pins``: PEP 440
  specifiers, a bare version meaning ``==`` that version, as pip reads it);
* ``version-unknown``: the record does not say the version of a package the candidate pins.

Records of other candidates, from other hardware without ``any_hardware``, or of an earlier
engine configuration of the candidate (``config_sha256``, recorded by launches, differs from the
candidate's now: its ``engine`` or ``env`` changed since) are ignored, and the notes say how many
and why.
"""

from __future__ import annotations

import statistics
from collections import Counter, defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from stackdecide._text import did_you_mean
from stackdecide.errors import EvidenceError, Location
from stackdecide.evidence.records import EvidenceRecord, EvidenceSet, replicates, scenario_value
from stackdecide.facts.gpus import gpu_matches
from stackdecide.facts.pins import pin_matches, vllm_version
from stackdecide.mcda.value_functions import measured_score
from stackdecide.model._yaml import format_path
from stackdecide.model.cells import Cell
from stackdecide.model.metrics import METRICS, Metric, unknown_metric_message
from stackdecide.model.schema import Criterion
from stackdecide.model.stack import evidence_pins, recorded_versions

if TYPE_CHECKING:
    from stackdecide.model.decision import DecisionMatrix

OTHER_HARDWARE = "other-hardware"
UNKNOWN_HARDWARE = "unknown-hardware"
EARLIER_CONFIG = "earlier-config"
VERSION_MISMATCH = "version-mismatch"
VERSION_UNKNOWN = "version-unknown"


@dataclass(frozen=True)
class Aggregate:
    """The records behind one measured value: their median, spread and provenance."""

    raw: float
    samples: int
    spread: float | None
    flags: tuple[str, ...]
    record_ids: tuple[int, ...]
    scenarios: int  # distinct scenarios among the records


@dataclass(frozen=True)
class AppliedEvidence:
    """What ``apply_evidence`` returns to ``stackdecide.scoring.score``."""

    cells: tuple[tuple[Cell, ...], ...]  # (candidates, criteria)
    metric_values: dict[str, dict[str, float]]  # candidate -> metric -> value, for constraints
    notes: list[str]
    used: int = 0  # records that fed a cell or a metric value
    ignored: dict[str, int] = field(default_factory=dict)  # reason -> records


# -- matching ------------------------------------------------------------------------------------
def version_problems(pins: Mapping[str, str], software: Mapping[str, str]) -> dict[str, str]:
    """Pinned package -> ``mismatch`` or ``unknown`` for each pin the recorded versions fail."""
    installed = recorded_versions(software)
    problems: dict[str, str] = {}
    for package, pin in pins.items():
        version = installed.get(package)
        matches = pin_matches(pin, version) if version is not None else None
        if matches is None:
            problems[package] = "unknown"
        elif not matches:
            problems[package] = "mismatch"
    return problems


def scenario_matches(wanted: Mapping[str, Any], scenario: Mapping[str, Any]) -> bool:
    """Whether ``scenario`` has every parameter of ``wanted`` with an equal value (8 == 8.0 == "8")."""
    return all(key in scenario and scenario_value(scenario[key]) == scenario_value(value)
               for key, value in wanted.items())


def implied_scenario(criterion: Criterion, metric: Metric) -> dict[str, Any]:
    """What the criterion's metric means of a run (``decode_tok_s``: one stream), for the keys
    its ``measure.scenario`` does not set itself."""
    given = criterion.measure.scenario if criterion.measure else {}
    return {key: value for key, value in metric.implied_scenario if key not in given}


def scenario_mismatch(wanted: Mapping[str, Any], implied: Mapping[str, Any],
                      scenario: Mapping[str, Any]) -> str | None:
    """Why a record's ``scenario`` is not the criterion's, or None when it is: a key of ``wanted``
    missing or different, or a key of ``implied`` different (a record that does not say is kept:
    it cannot tell)."""
    for key, value in wanted.items():
        if key not in scenario:
            return f"no {key}"
        if scenario_value(scenario[key]) != scenario_value(value):
            return f"{key} {scenario[key]}"
    for key, value in implied.items():
        if key in scenario and scenario_value(scenario[key]) != scenario_value(value):
            return f"{key} {scenario[key]}"
    return None


def aggregate(records: Sequence[EvidenceRecord], flags: Mapping[int, tuple[str, ...]]) -> Aggregate:
    """Median of the records' values; spread is max - min (a single record keeps its own)."""
    values = [r.value for r in records]
    spread = (max(values) - min(values)) if len(values) > 1 else records[0].spread
    all_flags = tuple(sorted({f for r in records for f in flags.get(id(r), ())}))
    ids = tuple(r.id for r in records if r.id is not None)
    return Aggregate(float(statistics.median(values)), len(records), spread, all_flags, ids,
                     len({r.load for r in records}))


def like_starts(selected: Mapping[int, list[EvidenceRecord]]
                ) -> tuple[dict[int, list[EvidenceRecord]], str | None]:
    """Compare start-ups cold with cold and warm with warm.

    Records that say ``start: cold`` (the start compiled its graphs) or ``warm`` (it loaded them
    from the cache) are kept to one kind for every candidate: warm when every measured candidate
    has a warm start, else cold when every one has a cold start; mixed otherwise, said in a note.
    Records without ``start`` (other metrics, imports) pass through unchanged.
    """
    kinds = {i: {r.scenario.get("start") for r in records}
             for i, records in selected.items() if records}
    if not kinds or not any(k & {"cold", "warm"} for k in kinds.values()):
        return dict(selected), None
    for kind in ("warm", "cold"):
        if all(kind in k for k in kinds.values()):
            kept = {i: [r for r in records if r.scenario.get("start") == kind]
                    for i, records in selected.items()}
            dropped = sum(len(r) for r in selected.values()) - sum(len(r) for r in kept.values())
            other = "cold starts kept as records, not compared" if kind == "warm" else \
                "no warm start for every candidate yet"
            return kept, (f"start-up compared on {kind} starts ({dropped} other start"
                          f"{'s' if dropped != 1 else ''}: {other})") if dropped else None
    return dict(selected), ("start-up mixes cold and warm starts (not every candidate has one "
                            "kind): a cold start pays for compilation; launch again to compare "
                            "warm with warm")


# -- applying ------------------------------------------------------------------------------------
def apply_evidence(decision: DecisionMatrix, evidence: EvidenceSet,
                   any_hardware: bool = False, include_partial: bool = False) -> AppliedEvidence:
    """Judged cells with measured scores put in where the evidence allows; see the module doc."""
    metrics = _checked_measures(decision)
    usable, flags, ignored, notes = _select(decision, evidence, any_hardware)
    by_key: dict[tuple[str, str], list[EvidenceRecord]] = defaultdict(list)
    for record in usable:
        by_key[(record.candidate, record.metric)].append(record)

    rows = [list(row) for row in decision.judged_cells()]
    used_ids: set[int] = set()
    for j, criterion in enumerate(decision.criteria):
        measure = criterion.measure
        if measure is None:
            continue
        metric = metrics[criterion.id]
        found: dict[int, Aggregate] = {}
        implied = implied_scenario(criterion, metric)
        unused: Counter[str] = Counter()
        selected: dict[int, list[EvidenceRecord]] = {}
        for i, candidate in enumerate(decision.candidates):
            selected[i] = []
            for r in by_key.get((candidate.id, metric.name), []):
                reason = scenario_mismatch(measure.scenario, implied, r.scenario)
                if reason is not None:
                    unused[reason] += 1
                elif include_partial or r.scenario.get("complete") is not False:
                    selected[i].append(r)
        if unused:
            notes.append(_unused_note(criterion, metric, implied, unused))
        if "start" not in measure.scenario:
            selected, start_note = like_starts(selected)
            if start_note:
                notes.append(f"{criterion.id}: {start_note}")
        for i in range(len(decision.candidates)):
            matching = selected[i]
            if matching:
                found[i] = aggregate(matching, flags)
                used_ids.update(id(r) for r in matching)
                if found[i].scenarios > 1:
                    notes.append(f"{criterion.id}: '{decision.candidate_ids[i]}' aggregates "
                                 f"{metric.name} over {found[i].scenarios} different scenarios; "
                                 "set measure.scenario to compare like with like")
        if not found:
            notes.append(f"{criterion.id}: no matching {metric.name} evidence; judged scores kept")
            continue
        raws = [a.raw for a in found.values()]
        best_raw = max(raws) if metric.higher_is_better else min(raws)
        for i, agg in found.items():
            score = measured_score(measure, agg.raw, scale_low=criterion.scale.low,
                                   scale_high=criterion.scale.high,
                                   benefit=criterion.direction == "benefit",
                                   higher_is_better=metric.higher_is_better, best_raw=best_raw,
                                   boolean=metric.boolean)
            judged = rows[i][j].score
            rows[i][j] = Cell(score=score, source="measured", judged=judged, raw=agg.raw,
                              unit=metric.unit, metric=metric.name, samples=agg.samples,
                              spread=agg.spread, flags=agg.flags, record_ids=agg.record_ids,
                              replicates=replicates(selected[i]), stack=stack_of(selected[i]))
        notes.extend(_coverage_notes(decision, criterion, metric, found))

    metric_values = _metric_values(decision, usable, used_ids)
    used = len(used_ids | {id(r) for r in usable if r.metric in _constraint_metrics(decision)})
    notes.insert(0, f"evidence: {used} of {_records(len(evidence))} used")
    return AppliedEvidence(tuple(tuple(row) for row in rows), metric_values, notes, used,
                           dict(ignored))


def stack_of(records: Sequence[EvidenceRecord]) -> tuple[str, ...]:
    """The distinct stacks behind a cell, as its provenance shows them: ``vllm 0.30.0 (env
    lock:d37549daa95319ad)``; records that name no vLLM add nothing."""
    found: dict[str, None] = {}
    for record in records:
        installed = recorded_versions(record.software)
        vllm = vllm_version(installed.get)
        if vllm:
            env = record.software.get("env")
            found[f"vllm {vllm}" + (f" (env {env})" if env else "")] = None
    return tuple(found)


def _checked_measures(decision: DecisionMatrix) -> dict[str, Metric]:
    """Each measured criterion's metric; unknown metrics and unusable value functions are errors
    that name the place in the decision file."""
    metrics: dict[str, Metric] = {}
    for j, criterion in enumerate(decision.criteria):
        measure = criterion.measure
        if measure is None:
            continue
        metric = METRICS.get(measure.metric)
        if metric is None:
            raise _located(decision, ("criteria", j, "measure", "metric"),
                           unknown_metric_message(measure.metric))
        if measure.value == "pass_fail" and not metric.boolean and measure.best is None:
            raise _located(decision, ("criteria", j, "measure"),
                           f"pass_fail on '{metric.name}' needs 'best', the raw value that passes "
                           f"({metric.unit}); only 1/0 metrics pass at 1 by default")
        metrics[criterion.id] = metric
    return metrics


def _located(decision: DecisionMatrix, path: tuple[str | int, ...], message: str) -> EvidenceError:
    location = (decision.positions.locate(path) if decision.positions
                else Location(field=format_path(path)))
    return EvidenceError(message, location)


def _select(decision: DecisionMatrix, evidence: EvidenceSet, any_hardware: bool
            ) -> tuple[list[EvidenceRecord], dict[int, tuple[str, ...]], Counter[str], list[str]]:
    """Records that may be used, their flags (by ``id()`` of the record), and notes on the rest."""
    hardware = decision.model.decision.hardware
    wanted_gpu = hardware.gpu if hardware else None
    candidates = {c.id: c for c in decision.candidates}
    pins = {c.id: evidence_pins(c.stack) for c in decision.candidates}
    configs = {c.id: c.config_sha256 for c in decision.candidates}  # once, not per record
    usable: list[EvidenceRecord] = []
    flags: dict[int, tuple[str, ...]] = {}
    ignored: Counter[str] = Counter()
    unknown_candidates: set[str] = set()
    other_gpus: set[str] = set()
    reconfigured: set[str] = set()
    mismatches: set[str] = set()
    unknown_versions: set[str] = set()
    for record in evidence:
        if record.candidate not in candidates:
            ignored["unknown-candidate"] += 1
            unknown_candidates.add(record.candidate)
            continue
        if record.config_sha256 not in (None, configs[record.candidate]):
            ignored[EARLIER_CONFIG] += 1
            reconfigured.add(record.candidate)
            continue
        record_flags: list[str] = []
        if wanted_gpu is not None:
            if record.hardware is None:
                if not any_hardware:
                    ignored[UNKNOWN_HARDWARE] += 1
                    continue
                record_flags.append(UNKNOWN_HARDWARE)
            elif not gpu_matches(wanted_gpu, record.hardware.gpu):
                other_gpus.add(record.hardware.gpu)
                if not any_hardware:
                    ignored[OTHER_HARDWARE] += 1
                    continue
                record_flags.append(OTHER_HARDWARE)
        problems = version_problems(pins[record.candidate], record.software)
        for package, problem in sorted(problems.items()):
            pin = pins[record.candidate][package]
            if problem == "mismatch":
                found = recorded_versions(record.software)[package]
                mismatches.add(f"{record.candidate}: {package} {found} is outside '{pin}'")
            else:
                unknown_versions.add(f"{record.candidate}: {package} (pinned '{pin}')")
        if "mismatch" in problems.values():
            record_flags.append(VERSION_MISMATCH)
        if "unknown" in problems.values():
            record_flags.append(VERSION_UNKNOWN)
        flags[id(record)] = tuple(record_flags)
        usable.append(record)

    notes: list[str] = []
    if ignored["unknown-candidate"]:
        notes.append(f"ignored {_records(ignored['unknown-candidate'])} of candidates not in "
                     f"this decision: {', '.join(sorted(unknown_candidates))}")
    if ignored[EARLIER_CONFIG]:
        notes.append(f"ignored {_records(ignored[EARLIER_CONFIG])} measured with an earlier "
                     f"engine configuration of {', '.join(sorted(reconfigured))} (its engine or "
                     "env block changed since; kept in the store)")
    if ignored[OTHER_HARDWARE]:
        notes.append(f"ignored {_records(ignored[OTHER_HARDWARE])} measured on other "
                     f"hardware ({', '.join(sorted(other_gpus))}), not the decision's "
                     f"{wanted_gpu}; --any-hardware uses them, flagged {OTHER_HARDWARE}")
    if ignored[UNKNOWN_HARDWARE]:
        notes.append(f"ignored {_records(ignored[UNKNOWN_HARDWARE])} that name no GPU; "
                     f"record the GPU, or --any-hardware uses them, flagged {UNKNOWN_HARDWARE}")
    used_other = sum(OTHER_HARDWARE in f for f in flags.values())
    if used_other:
        notes.append(f"{_records(used_other)} from other hardware "
                     f"({', '.join(sorted(other_gpus))}) used, flagged {OTHER_HARDWARE}")
    used_unknown = sum(UNKNOWN_HARDWARE in f for f in flags.values())
    if used_unknown:
        notes.append(f"{_records(used_unknown)} that name no GPU used, flagged "
                     f"{UNKNOWN_HARDWARE}")
    if mismatches:
        notes.append(f"flagged {VERSION_MISMATCH}: " + "; ".join(sorted(mismatches)))
    if unknown_versions:
        notes.append(f"flagged {VERSION_UNKNOWN} (no recorded version, or a pin that is not PEP 440)"
                     ": " + "; ".join(sorted(unknown_versions)))
    return usable, flags, ignored, notes


def _records(count: int) -> str:
    return f"{count} evidence record{'' if count == 1 else 's'}"


def check_candidates(decision: DecisionMatrix, records: Sequence[EvidenceRecord]) -> None:
    """Refuse records whose candidate is not in the decision (a typo would store dead evidence)."""
    ids = decision.candidate_ids
    for record in records:
        if record.candidate not in ids:
            where = decision.source_file or "the decision"
            raise EvidenceError(f"no candidate '{record.candidate}' in {where}"
                                f"{did_you_mean(record.candidate, ids)} (candidates: "
                                f"{', '.join(ids)})")


def _unused_note(criterion: Criterion, metric: Metric, implied: Mapping[str, Any],
                 unused: Counter[str]) -> str:
    """Records of the criterion's metric left out because they measured another scenario."""
    assert criterion.measure is not None
    asked = [f"{k}={v}" for k, v in criterion.measure.scenario.items()]
    means = [f"{k}={v}" for k, v in implied.items()]
    wanted = ", ".join(asked + means)
    why = f" ({', '.join(means)}: what {metric.name} means; set measure.scenario to choose " \
          "another)" if means else ""
    counts = ", ".join(f"{reason}: {count}" for reason, count in sorted(unused.items()))
    return (f"{criterion.id}: {_records(sum(unused.values()))} of {metric.name} unused, from "
            f"other scenarios ({counts}); the criterion asks for {wanted}{why}")


def _coverage_notes(decision: DecisionMatrix, criterion: Criterion, metric: Metric,
                    found: Mapping[int, Aggregate]) -> list[str]:
    assert criterion.measure is not None
    notes = []
    missing = [c.id for i, c in enumerate(decision.candidates) if i not in found]
    how = f"{metric.name}, {criterion.measure.value}"
    if missing:
        keep = ("keeps its judged score, which is" if len(missing) == 1
                else "keep their judged scores, which are")
        notes.append(f"{criterion.id}: measured for {len(found)} of {len(decision.candidates)} "
                     f"candidates ({how}); {', '.join(missing)} {keep} not on the same footing")
    else:
        notes.append(f"{criterion.id}: measured for every candidate ({how})")
    if criterion.measure.value == "relative_to_best" and len(found) == 1:
        only = decision.candidates[next(iter(found))].id
        notes.append(f"{criterion.id}: relative_to_best rests on one measured candidate "
                     f"('{only}'), which is its own best and scores the scale's best end")
    return notes


def _constraint_metrics(decision: DecisionMatrix) -> set[str]:
    return {c.metric for c in decision.constraints}


def _metric_values(decision: DecisionMatrix, usable: Sequence[EvidenceRecord],
                   used_ids: set[int]) -> dict[str, dict[str, float]]:
    """Candidate -> metric -> one value, for constraints such as ``vram_gb <= 16``.

    Each scenario's records give their median; across scenarios the value is the one least
    favourable to the decision's constraints on that metric (the largest under ``<``/``<=``, the
    smallest under ``>``/``>=``), so a candidate is feasible only if it is in every measured
    scenario. Metrics without a one-sided constraint take the median of the scenario medians.
    """
    operators: dict[str, set[str]] = defaultdict(set)
    for constraint in decision.constraints:
        operators[constraint.metric].add(constraint.op)
    groups: dict[tuple[str, str], dict[tuple[tuple[str, Any], ...], list[float]]] = defaultdict(
        lambda: defaultdict(list))
    for record in usable:
        groups[(record.candidate, record.metric)][record.load].append(record.value)
    values: dict[str, dict[str, float]] = defaultdict(dict)
    for (candidate, metric), by_scenario in groups.items():
        medians = [float(statistics.median(v)) for v in by_scenario.values()]
        ops = operators.get(metric, set())
        upper, lower = bool(ops & {"<", "<="}), bool(ops & {">", ">="})
        if upper and not lower:
            values[candidate][metric] = max(medians)
        elif lower and not upper:
            values[candidate][metric] = min(medians)
        else:
            values[candidate][metric] = float(statistics.median(medians))
    return dict(values)
