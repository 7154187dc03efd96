"""How sure a measured ranking is: each measured cell's uncertainty, carried through the ranking.

A **replicate** of a candidate is one launch (the records of one run folder, ``source``): the same
configuration differs from restart to restart (an H100 gave decode -0.7% / +3.7%, prefill +7.7% /
+4.7%, throughput +3.9% / +4.9%), so two benchmarks on one server are one replicate, not two.

For every measured cell the replicates give an ``Estimate`` (``certify.uncertainty``: a relative
noise per metric from a prior, the other candidates' replicates of the same criterion and the
cell's own, and a Student-t interval for the true value). The ranking's uncertainty follows by
Monte Carlo: each draw moves every measured raw value by its own t-distributed error of the mean,
re-applies the criterion's value function (``relative_to_best`` against that draw's best), keeps
judged cells at their score (or within their stated ``uncertainty``), optionally draws weights from
the decision's weight region (SMAA), and ranks. P(best), the rank distribution and pairwise
P(i beats k) are shares of draws (``certify.probability``).

Verdict: **certified** when the leader's P(best) reaches the confidence and the leader rests on at
least two launches (a lucky or broken single launch must not carry a certificate), the racing
policy's rule (``certify.racing``); otherwise a
**statistical tie** between the contenders (candidates with P(best) >= (1 - confidence) / m, the
racing policy's rule), or ``judged`` when no cell is measured.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from stackdecide.certify.probability import RankProbabilities, rank_probabilities
from stackdecide.certify.racing import (
    MIN_REPLICATES,
    contender_threshold,
    launches_required,
    tie_sentence,
)
from stackdecide.certify.uncertainty import (
    DEFAULT_PRIOR_STRENGTH,
    Estimate,
    estimate,
    pooled_rel_sd,
    prior_rel_sd_for,
    prior_strength_for,
)
from stackdecide.evidence.records import EvidenceRecord, EvidenceSet
from stackdecide.mcda import methods
from stackdecide.mcda.value_functions import measured_score
from stackdecide.mcda.weights import weight_region
from stackdecide.model.metrics import METRICS
from stackdecide.model.ranking import Ranking
from stackdecide.robustness.smaa import sampled_weights, score_uncertainty

DEFAULT_CONFIDENCE = 0.95
DEFAULT_SAMPLES = 4000
VerdictKind = Literal["certified", "tie", "judged"]


@dataclass(frozen=True)
class CellEstimate:
    """A measured cell's replicates (one value per launch) and the estimate of its true value."""

    candidate: str
    criterion: str
    metric: str
    replicates: tuple[float, ...]
    sources: tuple[str, ...]
    estimate: Estimate

    def to_dict(self) -> dict[str, Any]:
        return {"candidate": self.candidate, "criterion": self.criterion, "metric": self.metric,
                "replicates": list(self.replicates), "sources": list(self.sources),
                **{key: value for key, value in self.estimate.to_dict().items()}}


@dataclass(frozen=True)
class Verdict:
    kind: VerdictKind
    winner: str | None  # certified winner, or the leader of a tie
    tied: tuple[tuple[str, float], ...]  # (candidate, P(best)) of the contenders
    text: str


@dataclass(frozen=True)
class Certainty:
    """Measurement uncertainty of a ranking: per-cell estimates, P(best), ranks, pairwise, verdict."""

    ranking: Ranking
    cells: Mapping[tuple[str, str], CellEstimate]  # (candidate, criterion) -> estimate
    probabilities: RankProbabilities | None  # None when no cell is measured
    confidence: float
    samples: int
    seed: int
    weights_sampled: bool
    verdict: Verdict

    @property
    def p_best(self) -> dict[str, float]:
        ids = self.ranking.candidate_ids
        if self.probabilities is None:
            return {cid: float(cid == self.ranking.winner) for cid in ids}
        return {cid: float(p) for cid, p in zip(ids, self.probabilities.p_best, strict=True)}

    def launches(self) -> dict[str, int]:
        """Distinct launches behind each candidate's measured cells (its replicates)."""
        return _launches(self.cells, self.ranking.candidate_ids)

    def to_dict(self) -> dict[str, Any]:
        probabilities = self.probabilities
        ids = self.ranking.candidate_ids
        data: dict[str, Any] = {
            "confidence": self.confidence, "samples": self.samples, "seed": self.seed,
            "weights_sampled": self.weights_sampled,
            "verdict": {"kind": self.verdict.kind, "winner": self.verdict.winner,
                        "tied": [{"candidate": c, "p_best": round(p, 6)}
                                 for c, p in self.verdict.tied], "text": self.verdict.text},
            "p_best": {cid: round(p, 6) for cid, p in self.p_best.items()},
            "launches": self.launches(),
            "cells": [cell.to_dict() for cell in self.cells.values()],
        }
        if probabilities is not None:
            data["rank_probabilities"] = {cid: np.round(probabilities.rank_matrix[i], 6).tolist()
                                          for i, cid in enumerate(ids)}
            data["pairwise"] = {cid: {other: round(float(probabilities.pairwise[i, k]), 6)
                                      for k, other in enumerate(ids) if k != i}
                                for i, cid in enumerate(ids)}
            data["mc_standard_error"] = round(probabilities.mc_standard_error, 6)
        return data


def replicate_values(records: Sequence[EvidenceRecord]) -> tuple[tuple[float, ...], tuple[str, ...]]:
    """One value per launch: the median of each run's records (a record with no run is its own)."""
    groups: dict[str, list[float]] = defaultdict(list)
    for index, record in enumerate(records):
        groups[record.source or f"record {record.id if record.id is not None else index}"].append(
            record.value)
    sources = tuple(sorted(groups))
    return tuple(float(np.median(groups[s])) for s in sources), sources


def cell_estimates(ranking: Ranking, evidence: EvidenceSet,
                   confidence: float = DEFAULT_CONFIDENCE) -> dict[tuple[str, str], CellEstimate]:
    """The estimate of every measured cell, noise pooled per criterion across candidates."""
    by_id = {record.id: record for record in evidence if record.id is not None}
    decision = ranking.decision
    found: dict[tuple[str, str], CellEstimate] = {}
    for j, criterion in enumerate(decision.criteria):
        replicates: dict[int, tuple[tuple[float, ...], tuple[str, ...]]] = {}
        for i in range(len(decision.candidates)):
            cell = ranking.cells[i][j]
            records = [by_id[r] for r in cell.record_ids if r in by_id]
            # pass/fail metrics have no noise to speak of; a zero has no relative spread
            if cell.measured and records and not METRICS[str(cell.metric)].boolean \
                    and all(r.value != 0 for r in records):
                replicates[i] = replicate_values(records)
        stated = decision.model.benchmark.noise
        for i, (values, sources) in replicates.items():
            metric = str(ranking.cells[i][j].metric)
            pooled, dof = pooled_rel_sd([v for k, (v, _) in replicates.items() if k != i])
            # noise the decision states for its hardware outranks the GPU-measured default prior
            prior = (stated[metric], DEFAULT_PRIOR_STRENGTH) if metric in stated else \
                (prior_rel_sd_for(metric), prior_strength_for(metric))
            found[(decision.candidate_ids[i], criterion.id)] = CellEstimate(
                decision.candidate_ids[i], criterion.id, metric, values, sources,
                estimate(values, confidence, *prior, pooled if dof else None, dof))
    return found


def _score_draws(ranking: Ranking, cells: Mapping[tuple[str, str], CellEstimate],
                 rng: np.random.Generator, samples: int) -> np.ndarray:
    """Score matrices (samples, candidates, criteria) on each criterion's scale."""
    decision = ranking.decision
    judged = score_uncertainty(decision)
    draws = judged.sample(rng, samples) if judged.any else np.repeat(
        decision.matrix[None].astype(float), samples, axis=0)
    scores = np.array([[cell.score for cell in row] for row in ranking.cells])
    measured_mask = np.array([[cell.measured for cell in row] for row in ranking.cells])
    draws[:, measured_mask] = scores[measured_mask]  # measured cells without replicates stay put
    for j, criterion in enumerate(decision.criteria):
        rows = [i for i, cid in enumerate(decision.candidate_ids) if (cid, criterion.id) in cells]
        if not rows or criterion.measure is None:
            continue
        metric = METRICS[cells[(decision.candidate_ids[rows[0]], criterion.id)].metric]
        raw = np.empty((samples, len(rows)))
        for column, i in enumerate(rows):
            found = cells[(decision.candidate_ids[i], criterion.id)].estimate
            relative_se = found.standard_error / abs(found.center)
            center = ranking.cells[i][j].raw or found.center
            raw[:, column] = center * (1.0 + relative_se * rng.standard_t(found.dof, samples))
        best = raw.max(axis=1) if metric.higher_is_better else raw.min(axis=1)
        for column, i in enumerate(rows):
            draws[:, i, j] = [measured_score(
                criterion.measure, float(value), scale_low=criterion.scale.low,
                scale_high=criterion.scale.high, benefit=criterion.direction == "benefit",
                higher_is_better=metric.higher_is_better, best_raw=float(top),
                boolean=metric.boolean) for value, top in zip(raw[:, column], best, strict=True)]
    return draws


def _verdict(ranking: Ranking, probabilities: RankProbabilities | None, launches: dict[str, int],
             confidence: float) -> Verdict:
    """The racing policy's rule (``certify.racing``), applied to the evidence at hand."""
    ids = ranking.candidate_ids
    if probabilities is None:
        return Verdict("judged", ranking.winner, (), "no measured cell: the ranking rests on judged "
                       "scores alone (no measurement uncertainty to weigh)")
    p_best = probabilities.p_best
    leader = probabilities.leader()
    contenders = sorted(set(probabilities.contenders(contender_threshold(confidence, len(ids))))
                        | {leader}, key=lambda i: (-p_best[i], i))
    tied = tuple((ids[i], float(p_best[i])) for i in contenders)
    short = [ids[i] for i in contenders
             if launches[ids[i]] < launches_required(i == leader, MIN_REPLICATES)]
    name, p = ids[leader], float(p_best[leader])
    if p >= confidence and not short:
        return Verdict("certified", name, tied, f"certified: {name} (P = {p:.2f})")
    if p >= confidence:
        return Verdict("tie", name, tied, f"{name} leads (P = {p:.2f}) on too few launches: "
                       + ", ".join(f"{cid} rests on {launches[cid]} launch"
                                   + ("es" if launches[cid] != 1 else "") for cid in short)
                       + f"; a certificate needs {MIN_REPLICATES} launches of the leader "
                       "(launch --until-certain)")
    return Verdict("tie", name, tied, f"{tie_sentence(tied)}; more launches of each (launch "
                   "--until-certain) or a weight change would separate them")


def _launches(cells: Mapping[tuple[str, str], CellEstimate],
              candidate_ids: Sequence[str]) -> dict[str, int]:
    """Distinct launches behind each candidate's measured cells (its replicates)."""
    sources: dict[str, set[str]] = defaultdict(set)
    for cell in cells.values():
        sources[cell.candidate].update(cell.sources)
    return {cid: len(sources.get(cid, ())) for cid in candidate_ids}


def certainty(ranking: Ranking, evidence: EvidenceSet | None, *,
              confidence: float = DEFAULT_CONFIDENCE, samples: int = DEFAULT_SAMPLES,
              seed: int = 0, sample_weights: bool = False) -> Certainty:
    """P(best), rank and pairwise probabilities of ``ranking`` under measurement noise."""
    cells = cell_estimates(ranking, evidence, confidence) if evidence is not None else {}
    decision = ranking.decision
    probabilities = None
    if cells:
        rng = np.random.default_rng(seed)
        normalized = decision.normalize(_score_draws(ranking, cells, rng, samples))
        weights = decision.weights
        if sample_weights:
            spec = decision.model.sensitivity
            region = weight_region(decision.criterion_ids, spec.weight_bounds,
                                   spec.importance_order)
            weights = sampled_weights(region, samples, seed)
        totals = methods.get_method(ranking.method)(normalized, weights).totals
        feasible = np.array([cid not in ranking.infeasible for cid in decision.candidate_ids])
        probabilities = rank_probabilities(totals, feasible, seed)
    return Certainty(ranking, cells, probabilities, confidence, samples, seed, sample_weights,
                     _verdict(ranking, probabilities, _launches(cells, decision.candidate_ids),
                              confidence))
