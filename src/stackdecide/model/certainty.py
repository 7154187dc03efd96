"""How sure a measured ranking is: the settings it was computed with, and what it found.

A **replicate** of a candidate is one launch (``Cell.replicates``: the median of each launch's
records, keyed by the launch id recorded with them): the same configuration differs from restart
to restart, so two benchmarks on one server are one replicate, not two. Scoring computes the
certainty (``stackdecide.scoring.certainty``) and it travels with the ``Ranking``, so every view
of one ranking shows the same P(best) and verdict.
"""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from stackdecide.certify.indifference import Certificate
from stackdecide.certify.probability import RankProbabilities
from stackdecide.certify.uncertainty import Estimate

DEFAULT_CONFIDENCE = 0.95
DEFAULT_SAMPLES = 4000
# infeasible: no candidate is; undecided: not yet certified within a tolerance > 0
VerdictKind = Literal["certified", "tie", "undecided", "judged", "infeasible"]


@dataclass(frozen=True)
class CertaintySettings:
    """How a ranking's certainty is computed: given once, where the ranking is scored.

    ``confidence`` is the P(best) a winner needs to be certified; ``samples`` the Monte Carlo
    draws, from ``seed``; ``sample_weights`` also draws the weights from the decision's weight
    region (SMAA-2). ``tolerance`` (points of total, 0..100) asks for a certificate within it
    instead (``certify.indifference``): "X is within delta of the best with P >= confidence".
    """

    confidence: float = DEFAULT_CONFIDENCE
    samples: int = DEFAULT_SAMPLES
    seed: int = 0
    sample_weights: bool = False
    tolerance: float = 0.0


@dataclass(frozen=True)
class CellEstimate:
    """A measured cell's replicates (one value per launch) and the estimate of its true value."""

    candidate: str
    criterion: str
    metric: str
    replicates: tuple[float, ...]
    launches: tuple[str, ...]
    estimate: Estimate
    # a cold start-up is measured once per configuration and machine: a repeat launch starts
    # warm and cannot add to the cell, so it does not hold the launch count down (``launches_of``)
    cold_start: bool = False

    def to_dict(self) -> dict[str, Any]:
        return {"candidate": self.candidate, "criterion": self.criterion, "metric": self.metric,
                "replicates": list(self.replicates), "launches": list(self.launches),
                **self.estimate.to_dict()}


def launches_of(cells: Iterable[CellEstimate], candidate_ids: Sequence[str]) -> dict[str, int]:
    """The launches each candidate's measurement rests on: the fewest behind any of its measured
    cells. A cell pooled with launched twins holds their launches too (``scoring.predicted``), so
    the count is of the cell that rests on the fewest: one lucky launch of a configuration's own
    throughput must not pass for two because its twin was launched for the decode. A cold
    start-up cell counts only where a candidate has no other: on one machine it never holds more
    than the first launch."""
    found: dict[str, list[int]] = defaultdict(list)
    cold: dict[str, list[int]] = defaultdict(list)
    for cell in cells:
        (cold if cell.cold_start else found)[cell.candidate].append(len(set(cell.launches)))
    return {cid: min(found.get(cid) or cold.get(cid) or [0]) for cid in candidate_ids}


@dataclass(frozen=True)
class Verdict:
    kind: VerdictKind
    winner: str | None  # certified winner, or the leader of a tie
    tied: tuple[tuple[str, float], ...]  # (candidate, P(best)) of the contenders
    text: str


@dataclass(frozen=True)
class Certainty:
    """Measurement uncertainty of a ranking: per-cell estimates, P(best), ranks, pairwise, verdict."""

    candidate_ids: tuple[str, ...]
    cells: Mapping[tuple[str, str], CellEstimate]  # (candidate, criterion) -> estimate
    probabilities: RankProbabilities | None  # None when no cell is measured or predicted
    settings: CertaintySettings
    verdict: Verdict
    within: Certificate | None = None  # the certificate within ``settings.tolerance`` (> 0)
    # the joint draws of the totals (S, m; 0..1) the probabilities were counted from
    totals: np.ndarray | None = field(default=None, repr=False, compare=False)

    @property
    def confidence(self) -> float:
        return self.settings.confidence

    @property
    def samples(self) -> int:
        return self.settings.samples

    @property
    def seed(self) -> int:
        return self.settings.seed

    @property
    def weights_sampled(self) -> bool:
        return self.settings.sample_weights

    @property
    def p_best(self) -> dict[str, float]:
        """P(best) by candidate; without a measured cell, 1 for the ranking's winner."""
        if self.probabilities is None:
            return {cid: float(cid == self.verdict.winner) for cid in self.candidate_ids}
        return {cid: float(p) for cid, p in zip(self.candidate_ids, self.probabilities.p_best,
                                                strict=True)}

    def launches(self) -> dict[str, int]:
        """The launches each candidate's measurement rests on (``launches_of``)."""
        return launches_of(self.cells.values(), self.candidate_ids)

    def to_dict(self) -> dict[str, Any]:
        probabilities = self.probabilities
        ids = self.candidate_ids
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
        within = self.within
        if within is not None:
            data["within"] = {
                "tolerance_points": self.settings.tolerance,
                "p_within": {cid: round(float(p), 6) for cid, p in
                             zip(ids, within.probabilities.p_within, strict=True)},
                "equivalent": [ids[i] for i in within.equivalent],
                "p_all_equivalent": round(within.p_all_equivalent, 6),
                "contenders": [ids[i] for i in within.contenders]}
        return data
