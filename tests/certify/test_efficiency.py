"""The hierarchical efficiency model on synthetic data with a known truth: estimates converge to
it, and intervals hold the share of new launches they state."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from stackdecide.certify.efficiency import (
    SCALE_RANGE,
    EfficiencyPrior,
    Term,
    fit,
    mixture_quantile,
)

PRIOR = EfficiencyPrior(mean=math.log(0.4), sd=0.15,
                        terms=(Term("weights", 0.3), Term("backend", 0.15), Term("config", 0.1)),
                        noise=0.03, noise_dof=4.0)


def levels(weights: str, backend: str) -> dict[str, str]:
    return {"weights": weights, "backend": backend, "config": f"{weights}/{backend}"}


def test_the_estimate_converges_to_the_true_efficiency() -> None:
    """One configuration at a true efficiency of 0.31 with 3% launch noise: the configuration's
    mean closes in on it and its interval narrows like 1 / sqrt(launches)."""
    rng = np.random.default_rng(1)
    truth, noise = math.log(0.31), 0.03
    target = levels("fp8", "FLASH_ATTN")
    widths = []
    for n in (2, 8, 32, 128):
        y = truth + noise * rng.standard_normal(n)
        shown = fit(y, [target] * n, PRIOR).predict(target, 0.8)
        widths.append(shown.mean_high - shown.mean_low)
        assert abs(shown.mean_median - truth) < 3 * noise / math.sqrt(n) + 0.002
        assert shown.mean_low < truth < shown.mean_high or n == 2
    assert widths[-1] < widths[0] / 4
    # the width of one launch never falls below the launch noise itself (80%: +-1.28 sd)
    one_launch = fit(truth + noise * rng.standard_normal(128), [target] * 128, PRIOR).predict(
        target, 0.8)
    assert one_launch.high - one_launch.low == pytest.approx(2 * 1.2816 * noise, rel=0.2)


def test_a_level_no_launch_has_adds_its_prior_width() -> None:
    rng = np.random.default_rng(2)
    seen = levels("bf16", "FLASH_ATTN")
    y = math.log(0.45) + 0.02 * rng.standard_normal(20)
    model = fit(y, [seen] * 20, PRIOR)
    same = model.predict(seen, 0.8)
    new_backend = model.predict(levels("bf16", "FLASHINFER"), 0.8)
    assert new_backend.seen == {"weights": 20, "backend": 0, "config": 0}
    assert (new_backend.mean_high - new_backend.mean_low) > 3 * (same.mean_high - same.mean_low)
    # the launches' lead over the prior is shared between the levels they have: without the
    # launched backend's share, a new backend sits between the launches and the prior
    assert PRIOR.mean < new_backend.mean_median < same.mean_median


def test_without_evidence_the_prior_is_the_answer() -> None:
    model = fit([], [], PRIOR)
    shown = model.predict(levels("bf16", "FLASH_ATTN"), 0.5)
    assert model.n == 0
    assert shown.mean_median == pytest.approx(PRIOR.mean, abs=1e-6)


def test_a_statement_conditions_by_the_gaussian_update() -> None:
    """On one grid point, a statement about one configuration's mean is the conjugate normal
    update, and one about how two compare moves them apart without narrowing their common part."""
    model = fit(np.full(4, math.log(0.4)), [levels("bf16", "A")] * 4, PRIOR)
    best = int(np.argmax(model.weights))
    joint = model.joint([levels("bf16", "A"), levels("bf16", "B")])
    one = type(joint)(np.eye(1, joint.weights.size, best)[0], joint.noise, joint.scale,
                      joint.means, joint.covariances, joint.seen)
    mean, variance = one.means[best, 0], one.covariances[best, 0, 0]
    after = one.condition(np.array([[1.0, 0.0]]), np.array([math.log(0.5)]),
                          np.array([[0.05**2]]))
    expected = (mean / variance + math.log(0.5) / 0.05**2) / (1 / variance + 1 / 0.05**2)
    assert after.means[best, 0] == pytest.approx(expected)
    assert after.covariances[best, 0, 0] == pytest.approx(1 / (1 / variance + 1 / 0.05**2))
    # "fp8/B is 20% faster than fp8/A", where no launch had FP8: the difference moves towards
    # it, and their common part, the FP8 level both share, keeps its prior width
    pair = model.joint([levels("fp8", "A"), levels("fp8", "B")])
    compared = pair.condition(np.array([[-1.0, 1.0]]), np.array([math.log(1.2)]),
                              np.array([[0.05**2]]))
    assert np.all(np.abs(compared.means[:, 1] - compared.means[:, 0] - math.log(1.2))
                  < np.abs(pair.means[:, 1] - pair.means[:, 0] - math.log(1.2)))
    average = np.array([0.5, 0.5])
    common = np.einsum("i,gij,j->g", average, compared.covariances, average)
    assert np.all(common >= (compared.scale * 0.3) ** 2)


def test_mixture_quantiles() -> None:
    weights = np.array([0.5, 0.5])
    means, sds = np.array([0.0, 0.0]), np.array([1.0, 1.0])
    assert mixture_quantile(weights, means, sds, 0.9) == pytest.approx(stats.norm.ppf(0.9))
    wide = mixture_quantile(weights, means, np.array([1.0, 3.0]), 0.9)
    assert stats.norm.ppf(0.9) < wide < 3 * stats.norm.ppf(0.9)


def test_intervals_hold_the_share_they_state() -> None:
    """Synthetic worlds, each with a known truth drawn as the model says worlds are made (the
    widths' multiplier from its log-uniform range, the launch noise from its scaled inverse
    chi-square, every effect from its width): 2 weight formats x 3 backends, one to three
    launches of about 60% of the configurations. One new launch of a random configuration,
    launched before or not, must fall inside its 50%, 80% and 95% intervals that share of the
    time."""
    rng = np.random.default_rng(7)
    levels_stated = (0.5, 0.8, 0.95)
    trials, inside = 600, dict.fromkeys(levels_stated, 0)
    for _ in range(trials):
        scale = math.exp(rng.uniform(*np.log(SCALE_RANGE)))
        noise = PRIOR.noise * math.sqrt(PRIOR.noise_dof / rng.chisquare(PRIOR.noise_dof))
        base = PRIOR.mean + PRIOR.sd * rng.standard_normal()
        weights = {w: scale * 0.3 * rng.standard_normal() for w in ("bf16", "fp8")}
        backends = {b: scale * 0.15 * rng.standard_normal() for b in ("A", "B", "C")}
        configs = {(w, b): scale * 0.1 * rng.standard_normal() for w in weights for b in backends}
        launched = [c for c in configs if rng.random() < 0.6]
        y, observed = [], []
        for config in launched:
            for _ in range(rng.integers(1, 4)):
                y.append(base + weights[config[0]] + backends[config[1]] + configs[config]
                         + noise * rng.standard_normal())
                observed.append(levels(*config))
        target = list(configs)[rng.integers(len(configs))]
        truth = base + weights[target[0]] + backends[target[1]] + configs[target] \
            + noise * rng.standard_normal()
        model = fit(y, observed, PRIOR)
        for level in levels_stated:
            shown = model.predict(levels(*target), level)
            inside[level] += shown.low <= truth <= shown.high
    for level, count in inside.items():
        share = count / trials
        tolerance = 3 * math.sqrt(level * (1 - level) / trials)
        assert abs(share - level) < tolerance, f"{share:.3f} inside {level:.0%} intervals"
