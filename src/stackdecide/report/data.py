"""Everything a report shows, assembled once: rankings, sensitivity, roofline shares, the winner's config.

Pure data: no matplotlib and no HTML here, so the markdown view works without the ``html`` extra.
"""

from __future__ import annotations

import contextlib
import shlex
import statistics
from collections import defaultdict
from dataclasses import dataclass, replace
from typing import TYPE_CHECKING, Any

import numpy as np
import yaml

from stackdecide.audit.models import ModelFacts, candidate_model
from stackdecide.audit.targets import (
    RooflineSetup,
    RooflineSkipped,
    hardware_of,
    roofline_setup,
)
from stackdecide.decision import left_out_of
from stackdecide.evidence.apply import gpu_matches
from stackdecide.evidence.records import EvidenceSet
from stackdecide.facts.roofline import (
    RooflineError,
    best_prefill_ceiling,
    decode_ceiling,
    hardware_from,
    prefill_ceiling,
)
from stackdecide.facts.shapes import ModelShape
from stackdecide.launch import preflight
from stackdecide.mcda.methods import METHODS, to_points, wsm
from stackdecide.model.certainty import Certainty, CertaintySettings
from stackdecide.model.problems import Problem, errors
from stackdecide.model.ranking import NoFeasibleCandidate
from stackdecide.model.stack import engine_kv_cache_dtype
from stackdecide.predict.predictions import Prediction
from stackdecide.report.text import judged_rest, predicted_cells
from stackdecide.robustness import Sensitivity, analyze
from stackdecide.scoring import measured_decision
from stackdecide.search import Calibrations, prediction_for, tolerance_points
from stackdecide.vllm.render import RenderedCommand, render

if TYPE_CHECKING:
    from stackdecide.decision import Decision
    from stackdecide.evidence.records import EvidenceRecord
    from stackdecide.model.ranking import Ranking
    from stackdecide.vllm.args import VllmArgSpec

ROOFLINE_METRICS = ("decode_tok_s", "prefill_tok_s")  # metrics with a physical ceiling per stream
DEFAULT_SEED = 0


@dataclass(frozen=True)
class RankChange:
    """One candidate's place judged-only and with evidence."""

    candidate: str
    judged_rank: int | None  # None: infeasible
    judged_total: float
    rank: int | None
    total: float

    @property
    def moved(self) -> int | None:
        """Places gained with evidence (positive: moved up)."""
        if self.judged_rank is None or self.rank is None:
            return None
        return self.judged_rank - self.rank


@dataclass(frozen=True)
class RooflineRow:
    """One measured value (median of its records) against the ceiling of the GPU it ran on."""

    candidate: str
    metric: str
    measured: float
    unit: str
    records: int
    gpu: str | None
    scenario: dict[str, Any]
    ceiling: float | None  # None: no ceiling could be computed (``basis`` says why)
    basis: str  # how the ceiling was computed, or why not
    record_ids: tuple[int, ...]
    in_score: bool | None = None  # whether these records feed a measured score; None: no ids

    @property
    def percent(self) -> float | None:
        return None if self.ceiling is None else 100.0 * self.measured / self.ceiling


@dataclass(frozen=True)
class CeilingRow:
    """The ceilings of the decision's own hardware for one KV-cache dtype (no measurement needed)."""

    kv_cache_dtype: str
    candidates: tuple[str, ...]
    decode_tok_s: float  # one stream, no KV-cache reads
    decode_4k_tok_s: float  # one stream at 4,096 tokens of context
    prefill_tok_s: float | None  # best over prompt lengths; None without tensor peaks
    prefill_prompt_tokens: int | None
    shape: str = ""  # the candidates' model shape and checkpoint format
    weights: str = ""


@dataclass(frozen=True)
class Roofline:
    """Ceilings of the decision's hardware, and measurements as a share of theirs."""

    hardware: str | None  # e.g. "NVIDIA GeForce RTX 4090 Laptop GPU, 576 GB/s (from the decision file)"
    shape: str | None  # the decision's model; candidates with their own model: see ceilings
    weights: str | None
    skipped: str | None  # why no ceiling at all could be computed
    ceilings: tuple[CeilingRow, ...]
    measurements: tuple[RooflineRow, ...]


@dataclass(frozen=True)
class WinnerConfig:
    """What runs the winner: its pins, environment and engine arguments as the file gives them,
    and the command they render to for an installed vLLM when one was given."""

    candidate: str
    label: str
    stack: dict[str, Any]
    env: dict[str, str]
    engine: dict[str, Any]
    engine_yaml: str
    command: RenderedCommand | None = None
    command_note: str = ""  # which vLLM rendered it, or why nothing was rendered
    checks: tuple[Problem, ...] = ()  # launch's checks that need only the decision file
    checks_basis: str = ""  # the memory and compute capability they assumed

    @property
    def refused(self) -> bool:
        """Whether ``stackdecide launch`` would refuse this configuration (an error found)."""
        problems = [*self.checks, *(self.command.problems if self.command else ())]
        return bool(errors(problems))


@dataclass(frozen=True)
class Report:
    """A decision's full report. ``ranking`` is what the report ranks by (with evidence when given);
    ``judged`` is the judged-only ranking beside it when evidence was given. ``sensitivity`` is of
    the feasible candidates; None when there is none."""

    decision: Decision
    ranking: Ranking
    judged: Ranking | None
    evidence: EvidenceSet | None
    sensitivity: Sensitivity | None
    sensitivity_basis: str
    roofline: Roofline
    winner_config: WinnerConfig | None

    @property
    def certainty(self) -> Certainty | None:
        """With evidence: P(best) and the verdict, as the ranking carries them."""
        return self.ranking.certainty

    @property
    def has_evidence(self) -> bool:
        return self.judged is not None

    @property
    def contributions(self) -> np.ndarray:
        """(candidates, criteria) weighted-sum points: weight x normalised score x 100, any method."""
        return to_points(wsm(self.ranking.normalized, self.decision.weights)[1])

    def rank_changes(self) -> tuple[RankChange, ...]:
        """Judged-only vs with-evidence places, in the order of the evidence ranking."""
        if self.judged is None:
            return ()
        return tuple(RankChange(self.decision.candidate_ids[i], _rank(self.judged, i),
                                float(self.judged.totals[i]), _rank(self.ranking, i),
                                float(self.ranking.totals[i]))
                     for i in self.ranking.order)

    def records_by_id(self) -> dict[int, EvidenceRecord]:
        if self.evidence is None:
            return {}
        return {r.id: r for r in self.evidence if r.id is not None}

    def records_used(self) -> tuple[EvidenceRecord, ...]:
        """The stored records behind measured cells, in id order."""
        by_id = self.records_by_id()
        ids = sorted({rid for row in self.ranking.cells for cell in row for rid in cell.record_ids})
        return tuple(by_id[rid] for rid in ids if rid in by_id)


def _rank(ranking: Ranking, index: int) -> int | None:
    return int(ranking.ranks[index]) or None


@dataclass(frozen=True)
class ScoringInputs:
    """What ``score`` and ``report`` rank a decision with: the evidence (None: none given), the
    prediction of the cells no launch measured (None: not predicted) and the certainty's settings."""

    evidence: EvidenceSet | None
    prediction: Prediction | None
    certainty: CertaintySettings


def scoring_inputs(decision: Decision, evidence: EvidenceSet | None, certainty: CertaintySettings,
                   *, predicted: bool | None = None, tolerance: str | None = None,
                   also: Calibrations = ()) -> ScoringInputs:
    """The evidence, prediction and certainty settings of ``--predict`` and ``--tolerance``.

    ``predicted`` None predicts for a decision with a space (its configurations are rarely all
    launched) and not for a list of candidates; the prediction is calibrated by ``evidence``.
    ``tolerance`` as written (``search.tolerance_points``); None asks for the best itself (0
    points). ``also``: other decisions' launches that calibrate the prediction too, as the race
    was given them (``--calibrate-with``). The ranking carries its certainty whenever one of
    them is asked for: a prediction brings it, and a tolerance without evidence or prediction is
    weighed on no evidence (an empty set, whose notes then say that no record matched).
    """
    if predicted is None:
        predicted = decision.model.space is not None
    prediction = prediction_for(decision, evidence or EvidenceSet(), also=also) \
        if predicted else None
    if tolerance is not None:
        certainty = replace(certainty, tolerance=tolerance_points(decision, tolerance))
        if evidence is None and prediction is None:
            evidence = EvidenceSet()
    return ScoringInputs(evidence, prediction, certainty)


def build_report(decision: Decision, evidence: EvidenceSet | None = None, *, method: str = "wsm",
                 any_hardware: bool = False, samples: int | None = None,
                 seed: int = DEFAULT_SEED, certainty: CertaintySettings | None = None,
                 engine_spec: VllmArgSpec | None = None,
                 engine_note: str = "", prediction: Prediction | None = None) -> Report:
    """Score ``decision`` (with ``evidence`` when given) and gather what the report shows.

    Sensitivity (flip distances, SMAA-2) is computed under the weighted sum of the scores the
    ranking used: measured scores where evidence replaced judged ones, for the feasible candidates
    only (none feasible: no sensitivity). ``samples`` defaults to the
    file's ``sensitivity.samples``; the fixed ``seed`` makes the same inputs give the same report.
    With evidence the ranking's certainty is computed with ``certainty`` (by default the settings
    ``score`` uses, with this ``seed``), so the report and ``score`` agree on P(best).
    With ``engine_spec`` (see ``find_engine_spec``) the winner's engine config is rendered to the
    exact command for that vLLM; otherwise ``engine_note`` says why it was not. With
    ``prediction`` the cells no launch measured are ranked on their predicted values, marked
    predicted, and the ranking carries its certainty even without evidence.
    """
    ranking = decision.score(method=method, evidence=evidence, any_hardware=any_hardware,
                             certainty=certainty or CertaintySettings(seed=seed),
                             prediction=prediction)
    judged = decision.score(method=method) if evidence is not None else None
    scored = measured_decision(decision, ranking)
    measured = ranking.measured_cells
    predicted = predicted_cells(ranking)
    label = METHODS[method].label
    # the analysed matrix holds the scores ranked above: measured, predicted, the rest judged
    basis = (f"{label} of the judged scores" if not measured and not predicted else
             f"{label} of the scores ranked above ({measured} measured, "
             + (f"{predicted} predicted{judged_rest(ranking)}" if predicted else "the rest judged")
             + ")")
    sensitivity: Sensitivity | None = None
    with contextlib.suppress(NoFeasibleCandidate):  # the views say that nothing was analysed
        sensitivity = analyze(scored, samples=samples, seed=seed, method=method,
                              left_out=left_out_of(ranking))
    winner = ranking.winner
    return Report(decision, ranking, judged, evidence, sensitivity, basis,
                  roofline_of(decision, evidence, ranking),
                  winner_config(decision, winner, engine_spec, engine_note) if winner else None)


def winner_config(decision: Decision, candidate_id: str, spec: VllmArgSpec | None = None,
                  note: str = "") -> WinnerConfig:
    """A candidate's pins, env and engine arguments; rendered to argv when ``spec`` is given."""
    candidate = decision.candidate(candidate_id)
    stack = candidate.stack.model_dump(exclude_defaults=True)
    engine = dict(candidate.engine)
    text = yaml.safe_dump(engine, sort_keys=False, default_flow_style=False) if engine else ""
    command = None
    if spec is not None and engine:
        command = render(engine, spec, env=candidate.env)
        note = f"rendered for vLLM {spec.vllm_version} ({spec.python})"
    meta = decision.model.decision
    target = preflight.target_hardware((), meta.hardware)  # the file's hardware, not this machine's
    checks: tuple[Problem, ...] = ()
    if engine:
        model = candidate_model(decision, candidate_id)
        checks = tuple(preflight.static_problems(engine, candidate.env, model, target, spec))
    return WinnerConfig(candidate.id, candidate.label, stack, dict(candidate.env), engine, text,
                        command, note, checks, target.source if target else "")


def command_lines(command: RenderedCommand) -> str:
    """The command as a shell snippet, one option per line, for reading and pasting."""
    lines = [f"{name}={shlex.quote(value)} \\" for name, value in sorted(command.env.items())]
    words: list[str] = []
    for word in command.argv:
        if word.startswith("--") and words:
            lines.append(" ".join(words) + " \\")
            words = []
        words.append(shlex.quote(word))
    lines.append(" ".join(words))
    return "\n".join(lines[:1] + ["  " + line for line in lines[1:]])


# -- roofline --------------------------------------------------------------------------------------
def roofline_of(decision: Decision, evidence: EvidenceSet | None = None,
                ranking: Ranking | None = None) -> Roofline:
    """Ceilings of the decision's hardware per model (each candidate's own) and KV-cache dtype,
    and each decode/prefill measurement of the decision's candidates as a share of the ceiling of
    the GPU it was measured on."""
    meta = decision.model.decision
    hardware = hardware_of(meta.hardware)
    own = roofline_setup(decision)
    models = {cid: candidate_model(decision, cid) for cid in decision.candidate_ids}
    setups = {cid: roofline_setup(decision, cid, models[cid]) for cid in decision.candidate_ids}
    reasons = [s.reason for s in setups.values() if isinstance(s, RooflineSkipped)]
    skipped = reasons[0] if reasons and len(reasons) == len(setups) else None
    ceilings: tuple[CeilingRow, ...] = ()
    try:
        ceilings = _ceilings(decision, setups)
    except RooflineError as exc:
        skipped = str(exc)
    rows: tuple[RooflineRow, ...] = ()
    if evidence is not None:
        # measurements need each candidate's model shape; their hardware is each record's own GPU
        used = ({rid for row in ranking.cells for cell in row for rid in cell.record_ids}
                if ranking is not None else set())
        rows = _measurement_rows(decision, evidence, models, used)
    label = None
    if hardware is not None:
        count = f"{hardware.count} x " if hardware.count > 1 else ""
        label = (f"{count}{hardware.name}, {hardware.memory_bandwidth_gb_s:g} GB/s "
                 f"(from {hardware.bandwidth_source})")
    decision_model = candidate_model(decision)
    shape_name = decision_model.shape.name if decision_model.shape else (
        meta.model.shape if meta.model else None)
    weights = own.weights if isinstance(own, RooflineSetup) else (
        decision_model.weights_or_default if decision_model.shape else None)
    return Roofline(label, shape_name, weights, skipped, ceilings, rows)


def _kv_dtype(decision: Decision, candidate_id: str) -> str:
    return engine_kv_cache_dtype(decision.candidate(candidate_id).engine)


def _ceilings(decision: Decision, setups: dict[str, RooflineSetup | RooflineSkipped]
              ) -> tuple[CeilingRow, ...]:
    """One row per model (shape and weights) and KV-cache dtype, with the candidates it holds for."""
    groups: dict[tuple[RooflineSetup, str], list[str]] = defaultdict(list)
    for candidate_id, setup in setups.items():
        if isinstance(setup, RooflineSetup):
            groups[(setup, _kv_dtype(decision, candidate_id))].append(candidate_id)
    rows = []
    for (setup, kv), ids in groups.items():
        shape, hardware, weights = setup.shape, setup.hardware, setup.weights
        context = decision.model.decision.targets.context_tokens or shape.max_position_embeddings
        prefill = best_prefill_ceiling(shape, hardware, weights, kv, context)
        rows.append(CeilingRow(kv, tuple(ids), decode_ceiling(shape, hardware, weights, kv, 0).tok_s,
                               decode_ceiling(shape, hardware, weights, kv, 4096).tok_s,
                               prefill.tok_s if prefill else None,
                               prefill.prompt_tokens if prefill else None, shape.name, weights))
    return tuple(rows)


def _number(value: Any) -> float | None:
    if isinstance(value, bool):
        return None
    if isinstance(value, int | float):
        return float(value)
    try:
        return float(str(value))
    except ValueError:
        return None


def _measurement_rows(decision: Decision, evidence: EvidenceSet, models: dict[str, ModelFacts],
                      used: set[int]) -> tuple[RooflineRow, ...]:
    ids = set(decision.candidate_ids)
    groups: dict[tuple[str, str, tuple[tuple[str, Any], ...], str | None, int],
                 list[EvidenceRecord]] = defaultdict(list)
    for record in evidence:
        if record.candidate in ids and record.metric in ROOFLINE_METRICS:
            gpu = record.hardware.gpu if record.hardware else None
            count = record.hardware.count if record.hardware else 1
            groups[(record.candidate, record.metric, record.load, gpu, count)].append(record)
    order = {cid: k for k, cid in enumerate(decision.candidate_ids)}
    rows = []
    for (candidate, metric, _, gpu, count), records in sorted(
            groups.items(), key=lambda item: (order[item[0][0]], item[0][1], item[0][2])):
        measured = float(statistics.median(r.value for r in records))
        model = models[candidate]
        ceiling, basis = _ceiling_for(decision, candidate, metric, records[0].scenario, gpu, count,
                                      model.shape, model.weights_or_default, model.missing)
        ids = tuple(r.id for r in records if r.id is not None)
        rows.append(RooflineRow(candidate, metric, measured, records[0].unit, len(records), gpu,
                                dict(records[0].scenario), ceiling, basis, ids,
                                bool(used.intersection(ids)) if ids else None))
    return tuple(rows)


def _ceiling_for(decision: Decision, candidate: str, metric: str, scenario: dict[str, Any],
                 gpu: str | None, count: int, shape: ModelShape | None, weights: str | None,
                 skipped: str | None) -> tuple[float | None, str]:
    if skipped or shape is None or weights is None:
        return None, skipped or "no model shape"
    if gpu is None:
        return None, "the records name no GPU"
    meta_hw = decision.model.decision.hardware
    if meta_hw is not None and gpu_matches(meta_hw.gpu, gpu):
        hardware = hardware_from(meta_hw.gpu, meta_hw.memory_bandwidth_gb_s, count)
    else:
        hardware = hardware_from(gpu, None, count)
    if hardware is None:
        return None, f"GPU '{gpu}' is not in the roofline table"
    kv = _kv_dtype(decision, candidate)
    gpus = f"{count} x {hardware.name}" if count > 1 else hardware.name
    input_len = _number(scenario.get("input_len"))
    output_len = _number(scenario.get("output_len"))
    try:
        if metric == "decode_tok_s":
            # tokens/time over a run reads the mean context: input + (output - 1) / 2
            context = round((input_len or 0) + max((output_len or 1) - 1, 0) / 2)
            ceiling = decode_ceiling(shape, hardware, weights, kv, context)
            how = (f"one stream at {context:,} tokens of {kv} KV cache" if context
                   else "one stream, before KV-cache reads (no input_len in the scenario)")
            return ceiling.tok_s, f"{how}; {weights} weights on {gpus}"
        if input_len:
            found = prefill_ceiling(shape, hardware, weights, kv, int(input_len))
            how = f"{int(input_len):,}-token prompt"
        else:
            limit = decision.model.decision.targets.context_tokens or shape.max_position_embeddings
            found = best_prefill_ceiling(shape, hardware, weights, kv, limit)
            how = "best over prompt lengths (no input_len in the scenario)"
    except RooflineError as exc:
        return None, str(exc)
    if found is None:
        return None, f"no tensor peak known for {hardware.name}"
    return found.tok_s, f"{how}, {found.bound}-bound; {weights} weights on {gpus}"
