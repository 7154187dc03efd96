"""One cell of the decision matrix: the score used, and where it came from."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Literal

Source = Literal["judged", "measured", "predicted"]


@dataclass(frozen=True)
class Cell:
    """A candidate's score on one criterion.

    ``judged`` cells hold the score written in the decision file. ``measured`` cells hold a score
    computed by the criterion's value function from ``raw`` (the aggregated measurement), and keep
    the judged score beside it so a reader sees what the measurement replaced. ``predicted`` cells
    (a configuration no launch measured, ``scoring.predicted``) hold the score of ``raw``, the
    predicted median of the configuration's mean, with its ``interval`` and the SD of its log.
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
    # a predicted cell the same as this candidate's measured one on every level prediction
    # knows (``Predicted.twin``): it takes that measurement, and the ranking draws the two as one
    twin: str | None = None

    @property
    def predicted(self) -> bool:
        return self.source == "predicted"

    @property
    def measured(self) -> bool:
        return self.source == "measured"
