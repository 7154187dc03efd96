"""One cell of the decision matrix: the score used, and where it came from."""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Literal

import numpy as np

Source = Literal["judged", "measured", "predicted"]


@dataclass(frozen=True, eq=False)
class JointMixture:
    """The means of every configuration of one criterion together: per component of the
    prediction model (``certify.efficiency``'s grid, in order of scale) the centres of their logs
    and the symmetric square root of their covariance. Configurations that share a level share
    its uncertainty, so a ranking draws them together (``scoring.certainty``)."""

    candidates: tuple[str, ...]
    weights: np.ndarray  # (G,)
    centres: np.ndarray  # (G, K) the log of each mean's median under each component
    roots: np.ndarray  # (G, K, K) symmetric: roots[g] @ roots[g] is the covariance of the logs
    ceilings: np.ndarray  # (K,) a rate's roofline, which no mean passes


@dataclass(frozen=True)
class MeanMixture:
    """What a predicted mean may be: a mixture of log-normals, one component per width scale of the
    prediction model (``certify.efficiency``'s grid), in order of scale, none above ``ceiling``;
    the cell's marginal of its criterion's ``joint``, where one was kept."""

    weights: tuple[float, ...]
    centres: tuple[float, ...]  # the log of the mean's median under each component
    log_sds: tuple[float, ...]  # the SD of the log of the mean under each component
    ceiling: float = math.inf  # a rate's roofline, which no mean passes
    joint: JointMixture | None = field(default=None, compare=False, repr=False)


@dataclass(frozen=True)
class Cell:
    """A candidate's score on one criterion.

    ``judged`` cells hold the score written in the decision file. ``measured`` cells hold a score
    computed by the criterion's value function from ``raw`` (the aggregated measurement), and keep
    the judged score beside it so a reader sees what the measurement replaced. ``predicted`` cells
    (a configuration no launch measured, ``scoring.predicted``) hold the score of ``raw``, the
    predicted median of the configuration's mean, with its ``interval`` and the SD of its log, and
    the ``mixture`` the ranking's certainty draws the mean from (None for a twin: drawn as its twin).
    """

    score: float
    source: Source = "judged"
    judged: float | None = None
    raw: float | None = None  # aggregated measurement behind a measured score
    unit: str | None = None
    metric: str | None = None
    samples: int = 0  # evidence records aggregated
    spread: float | None = None  # of the raw values (max - min), when samples > 1
    flags: tuple[str, ...] = field(default=())  # e.g. "other-hardware", "version-mismatch"
    record_ids: tuple[int, ...] = field(default=())  # stored records behind it (a store's ids)
    # (launch, median of its records): one replicate per launch, the cell's measurement noise
    replicates: tuple[tuple[str, float], ...] = field(default=())
    stack: tuple[str, ...] = field(default=())  # the vLLM (and environment) its records ran on
    interval: tuple[float, float] | None = None  # a predicted mean's interval (predict's level)
    log_sd: float | None = None  # SD of the log of a predicted mean
    mixture: MeanMixture | None = None  # a predicted mean's distribution
    # the launched candidate that is the same as this one on every level prediction knows
    # (``Predicted.twin``): a predicted cell takes its measurement, a measured one pools their
    # launches (``scoring.predicted``), and the ranking draws the two as one
    twin: str | None = None

    @property
    def predicted(self) -> bool:
        return self.source == "predicted"

    @property
    def measured(self) -> bool:
        return self.source == "measured"
