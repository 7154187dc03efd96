"""benchmarks/search.py's stand-in for the prediction model, which the race for a certificate within
delta rests on: launches widen the intervals of predictions overconfident about their biases by
level, so the configurations never launched are not held to the narrow intervals stated, and leave
honest predictions about as stated; the race draws them with the tails of the mixture over those
scales."""

from __future__ import annotations

import numpy as np
import pytest

import search
from search import SPEEDS, Launches, Recalibration, Space, make_space, predict, recalibrated

CONFIGURATIONS = 100
LAUNCHED = 12  # the best-predicted, twice each
Z90, Z99 = 1.645, 2.576


def after_launches(quality: str, seed: int) -> tuple[Space, Recalibration, np.ndarray, np.random.Generator]:
    """One space whose best-predicted configurations are launched twice: the recalibrated
    predictions, the unlaunched configurations and the generator, to draw on."""
    rng = np.random.default_rng(seed)
    space = make_space(rng, CONFIGURATIONS, None)
    prediction = predict(space, quality, rng)
    launches = Launches.empty(space.m)
    for i in np.argsort(-space.totals(np.exp(prediction.log_value)))[:LAUNCHED]:
        for _ in range(2):
            launches.add(int(i), space.launch(rng, int(i)))
    return (space, recalibrated(prediction, space, launches, launches.cell_noise()[0]),
            np.flatnonzero(launches.n == 0), rng)


def unlaunched_z(quality: str, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """(truth - recalibrated mean) / its SD, and the SD, of the speeds of the unlaunched
    configurations of one space (log units)."""
    space, predicted, unlaunched, _ = after_launches(quality, seed)
    mean, variance = predicted.moments()
    sd = np.sqrt(variance[unlaunched, :SPEEDS])
    return (np.log(space.true[unlaunched, :SPEEDS]) - mean[unlaunched, :SPEEDS]) / sd, sd


def coverage(quality: str) -> float:
    """Share of the unlaunched configurations' true speeds inside their 90% intervals, six spaces."""
    return float(np.mean([np.abs(unlaunched_z(quality, seed)[0]) < Z90 for seed in range(6)]))


def test_launches_widen_predictions_overconfident_about_their_biases(monkeypatch: pytest.MonkeyPatch) -> None:
    """Biased predictions (errors ~4x the stated SD, most of it shared by axis level): with the
    shared part held to the stated size the unlaunched configurations' 90% intervals hold 75% of
    the truths; free to grow, 84%."""
    free = coverage("biased")
    monkeypatch.setattr(search, "LEVEL_SCALES", (1,))
    held = coverage("biased")
    assert held < 0.78
    assert free > 0.80


def far_coverage(seed: int) -> tuple[float, float]:
    """Share of the unlaunched configurations' true speeds (biased predictions) inside the 99%
    intervals of the race's draws, and inside those of a normal with the draws' log mean and
    variance."""
    space, predicted, unlaunched, rng = after_launches("biased", seed)
    truth = np.log(space.true[unlaunched, :SPEEDS])
    drawn = np.log(predicted.draw(rng, unlaunched, 4_000))[:, :, :SPEEDS]
    low, high = np.quantile(drawn, [0.005, 0.995], axis=0)
    mean, variance = predicted.moments()
    z = np.abs(truth - mean[unlaunched, :SPEEDS]) / np.sqrt(variance[unlaunched, :SPEEDS])
    return float(np.mean((truth > low) & (truth < high))), float(np.mean(z < Z99))


def test_the_race_draws_the_mixture_with_its_tails() -> None:
    """A configuration predicted far below the leader may be the best: drawn from the mixture over
    the scales of the level errors, the unlaunched configurations' 99% intervals hold 96% of the
    truths; a normal of the mixture's mean and variance, 95%."""
    drawn, normal = np.mean([far_coverage(seed) for seed in range(6)], axis=0)
    assert normal < 0.952
    assert drawn > 0.955


def median_width(quality: str) -> float:
    return float(np.median(np.concatenate([unlaunched_z(quality, seed)[1].ravel() for seed in range(6)])))


def test_honest_predictions_stay_about_as_stated(monkeypatch: pytest.MonkeyPatch) -> None:
    """Good predictions (4% error, stated 4%): their intervals cover about what they say, and the
    freedom to grow widens them by less than a fifth (the price of not taking the stated SD on
    trust)."""
    assert 0.85 < coverage("good") < 0.99
    free = median_width("good")
    monkeypatch.setattr(search, "LEVEL_SCALES", (1,))
    assert free < 1.2 * median_width("good")


def test_before_any_launch_the_prediction_is_what_it_states() -> None:
    rng = np.random.default_rng(0)
    space = make_space(rng, 24, None)
    prediction = predict(space, "biased", rng)
    mean, variance = recalibrated(prediction, space, Launches.empty(space.m), np.full(4, 0.05)).moments()
    assert np.array_equal(mean, prediction.log_value)
    assert np.allclose(variance, prediction.stated_sd**2)
