"""Each predicted cell's mean as the model's mixture over its width scales: what a ranking draws."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

import stackdecide
from stackdecide.certify.efficiency import mixture_quantile
from stackdecide.model.cells import MeanMixture
from stackdecide.predict import Calibration, Load, predict

ROOT = Path(__file__).resolve().parents[2]
LOADS = {"decode": Load(1, 128, 256), "prefill": Load(1, 4096, 1), "throughput": Load(1, 512, 256)}


def _value_at(mixture: MeanMixture, q: float) -> float:
    """The ``q`` quantile of the mean in the metric's units, as the cell shows it (at its ceiling)."""
    log_value = mixture_quantile(np.array(mixture.weights), np.array(mixture.centres),
                                 np.array(mixture.log_sds), q)
    return min(mixture.ceiling, math.exp(log_value))


@pytest.mark.parametrize("judged", [True, False])
def test_each_cells_mixture_spans_its_interval(judged: bool) -> None:
    """Judged scores move each criterion's weights; the mixture still holds the shown interval."""
    hopper = stackdecide.load(ROOT / "criteria" / "hopper.yaml")
    prediction = predict(hopper, Calibration(()), LOADS, judged=judged)
    assert set(prediction.mixtures) == {(p.candidate, p.criterion) for p in prediction.predictions}
    tail = (1.0 - prediction.level) / 2.0
    for cell in prediction.predictions:
        mixture = prediction.mixtures[(cell.candidate, cell.criterion)]
        assert len(mixture.weights) == len(mixture.centres) == len(mixture.log_sds) > 1
        assert sum(mixture.weights) == pytest.approx(1.0)
        assert mixture.ceiling == (cell.ceiling.value if cell.ceiling else math.inf)
        assert _value_at(mixture, tail) == pytest.approx(cell.mean_low, rel=1e-6)
        assert _value_at(mixture, 0.5) == pytest.approx(cell.mean, rel=1e-6)
        assert _value_at(mixture, 1.0 - tail) == pytest.approx(cell.mean_high, rel=1e-6)


def test_the_cells_of_a_criterion_share_their_components() -> None:
    """One weight per component for every cell of a criterion, components in order of width:
    the wider the component, the wider each cell's mean under it."""
    hopper = stackdecide.load(ROOT / "criteria" / "hopper.yaml")
    prediction = predict(hopper, Calibration(()), LOADS, judged=False)
    for criterion in {p.criterion for p in prediction.predictions}:
        mixtures = [m for (_, c), m in prediction.mixtures.items() if c == criterion]
        assert len({m.weights for m in mixtures}) == 1
        for mixture in mixtures:
            # no launch yet: a component's width is its scale's (the noise says nothing of a mean)
            widths = np.array(mixture.log_sds)
            assert np.all(np.diff(widths) >= -1e-12) and widths[0] < widths[-1]
