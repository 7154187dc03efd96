"""Predicted cells: a configuration no launch measured takes its predicted value, marked so.

Where a criterion is measured by a predicted metric (``predict``), a candidate without a measured
cell gets a ``predicted`` cell: the value function applied to the predicted median of the
configuration's mean (``Predicted.mean``), with its interval, the SD of its log and its
distribution (``Prediction.mixtures``). Measured and predicted cells of a criterion are scored
together: ``relative_to_best`` reads every value of the criterion against the best of all of
them, measured or predicted, so a configuration predicted to beat every launch lowers the measured
cells' scores as a launch of it would. A predicted cell with a launched twin (``Predicted.twin``:
the same on every level prediction knows, such as a ``max_num_seqs`` above every load the
criterion runs) takes the twin's measured value. Launched twins are one configuration as far as
the criterion's benchmark can tell, so their launches are replicates of one mean: each twin's
measured cell holds the launches of all of them (``pooled_twins``), marked with the first of them
in the decision's order (``Cell.twin``), and the ranking's certainty draws them as one.

A 1/0 criterion (``launch_ok``: the configuration starts) of a space's configuration no launch
tried is predicted too, as the chance that it starts (``predict.starts``: the judged score is the
prior, the space's launches on this hardware update it): the cell's score is the expected one
and the certainty draws a start or a failure. Judged cells of other criteria no prediction
covers, and of candidates written by hand, stay judged.
"""

from __future__ import annotations

import statistics
from collections.abc import Mapping, Sequence
from dataclasses import replace

import numpy as np

from stackdecide.mcda.value_functions import measured_score
from stackdecide.model.cells import Cell
from stackdecide.model.decision import DecisionMatrix
from stackdecide.model.metrics import METRICS
from stackdecide.model.schema import Criterion
from stackdecide.model.space import configuration_of, elsewhere
from stackdecide.predict.predictions import DEFAULT_LEVEL, Prediction
from stackdecide.predict.starts import start_chance

Cells = tuple[tuple[Cell, ...], ...]
StartCell = tuple[str, str, Cell]  # (candidate, criterion, its predicted 1/0 cell: P(start))


def with_predictions(decision: DecisionMatrix, cells: Sequence[Sequence[Cell]],
                     prediction: Prediction) -> Cells:
    """``cells`` with every unmeasured cell that ``prediction`` covers predicted, and the measured
    cells of those criteria re-scored against the best of both (module doc)."""
    rows = [list(row) for row in cells]
    index = {cid: i for i, cid in enumerate(decision.candidate_ids)}
    away = elsewhere(decision.model)
    for j, criterion in enumerate(decision.criteria):
        measure = criterion.measure
        if measure is None:
            continue
        if METRICS[measure.metric].boolean:
            _predict_starts(decision, rows, j, away)
            continue
        found_of = [prediction.get(cid, criterion.id) for cid in decision.candidate_ids]
        twin_of = [index[found.twin] if found is not None and found.twin is not None else None
                   for found in found_of]
        predicted = {i: found for i, found in enumerate(found_of)
                     if found is not None and not rows[i][j].measured}
        for i, cell in pooled_twins(decision.candidate_ids, [row[j] for row in rows],
                                    twin_of).items():
            rows[i][j] = cell
        higher = METRICS[measure.metric].higher_is_better
        raws = {i: float(rows[i][j].raw) for i in range(len(rows))
                if rows[i][j].measured and rows[i][j].raw is not None}
        twins = {i: twin for i in predicted if (twin := twin_of[i]) is not None and twin in raws}
        raws.update({i: raws[twins[i]] if i in twins else found.mean
                     for i, found in predicted.items()})
        if not raws:
            continue
        best = float(scale_best(np.array(list(raws.values())),
                                np.array([decision.candidate_ids[i] not in away for i in raws]),
                                higher))

        for i, raw in raws.items():
            cell = rows[i][j]
            if i in predicted:
                found = predicted[i]
                twin = decision.candidate_ids[twins[i]] if i in twins else None
                rows[i][j] = Cell(score=criterion_score(criterion, raw, best), source="predicted",
                                  judged=cell.score, raw=raw, unit=found.unit, metric=found.metric,
                                  interval=(found.mean_low, found.mean_high),
                                  log_sd=found.mean_log_sd, twin=twin,
                                  mixture=None if twin else
                                  prediction.mixtures[(found.candidate, found.criterion)])
            else:
                rows[i][j] = replace(cell, score=criterion_score(criterion, raw, best))
    return tuple(tuple(row) for row in rows)


def _predict_starts(decision: DecisionMatrix, rows: list[list[Cell]], j: int,
                    away: Mapping[str, str]) -> None:
    """Column ``j``, a 1/0 criterion, with each never-launched configuration of the space
    predicted to start with its chance (module doc), in place; ``away``: the configurations for
    other hardware (``model.space.elsewhere``), whose launches do not count."""
    criterion = decision.criteria[j]
    assert criterion.measure is not None
    space = [i for i, cid in enumerate(decision.candidate_ids)
             if configuration_of(decision.model, cid) is not None]
    outcomes = [value for i in space if rows[i][j].measured and decision.candidate_ids[i] not in away
                for value in ([v for _, v in rows[i][j].replicates] or [rows[i][j].raw])
                if value is not None]
    passes, fails = criterion_score(criterion, 1.0, 1.0), criterion_score(criterion, 0.0, 1.0)
    if passes == fails:
        return
    starts = sum(criterion_score(criterion, float(value), 1.0) == passes for value in outcomes)
    for i in space:
        cell = rows[i][j]
        if cell.measured:
            continue
        prior = (cell.score - fails) / (passes - fails)
        chance = start_chance(min(max(prior, 0.0), 1.0), starts, len(outcomes), DEFAULT_LEVEL)
        rows[i][j] = Cell(score=fails + chance.probability * (passes - fails), source="predicted",
                          judged=cell.score, raw=chance.probability, unit="P(start)",
                          metric=criterion.measure.metric,
                          interval=(chance.low, chance.high))


def pooled_twins(candidate_ids: Sequence[str], column: Sequence[Cell],
                 twin_of: Sequence[int | None]) -> dict[int, Cell]:
    """The measured cells of one criterion whose configurations are launched twins (module doc;
    ``twin_of``: each candidate's ``Predicted.twin``, by index), by index: each with the
    replicates, records and median of the whole group, the group's first measured member named
    as ``twin`` on the others (its own cell leaves ``twin`` empty)."""
    first = {i: twin for i, twin in enumerate(twin_of)
             if twin is not None and column[i].measured and column[twin].measured}
    groups: dict[int, list[int]] = {}
    for member, head in sorted(first.items()):
        groups.setdefault(head, [head]).append(member)
    pooled: dict[int, Cell] = {}
    for head, members in groups.items():
        replicates = tuple(sorted({r for i in members for r in column[i].replicates}))
        records = tuple(sorted({r for i in members for r in column[i].record_ids}))
        values = [value for _, value in replicates]
        raws = [float(column[i].raw) for i in members if column[i].raw is not None]
        raw = float(statistics.median(values or raws))
        for i in members:
            pooled[i] = replace(column[i], raw=raw, replicates=replicates, record_ids=records,
                                samples=sum(column[k].samples for k in members),
                                spread=max(values) - min(values) if len(values) > 1
                                else column[i].spread,
                                flags=tuple(sorted({f for k in members for f in column[k].flags})),
                                twin=None if i == head else candidate_ids[head])
    return pooled


def scale_best(raw: np.ndarray, here: np.ndarray, higher_is_better: bool) -> np.ndarray:
    """The best a ``relative_to_best`` scale reads against, over the last axis of ``raw``: of the
    candidates that can be chosen here (``here``), else of all. A configuration for other
    hardware is ranked, but never sets the scale the choosable ones are scored on: faster
    what-ifs would compress it and make "within delta" easier (it can only tie that best: the
    scale is clamped)."""
    scale = raw[..., here] if here.any() else raw
    return scale.max(axis=-1) if higher_is_better else scale.min(axis=-1)


def criterion_score(criterion: Criterion, raw: float, best: float) -> float:
    """The score ``criterion``'s value function gives ``raw`` when ``best`` is the best value."""
    measure = criterion.measure
    assert measure is not None
    metric = METRICS[measure.metric]
    return measured_score(measure, raw, scale_low=criterion.scale.low,
                          scale_high=criterion.scale.high, benefit=criterion.direction == "benefit",
                          higher_is_better=metric.higher_is_better, best_raw=best,
                          boolean=metric.boolean)
