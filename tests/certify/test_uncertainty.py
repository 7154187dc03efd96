"""Uncertainty of one cell: hand-computed estimates, pooling, priors and interval coverage."""

from __future__ import annotations

import math

import numpy as np
import pytest

from stackdecide.certify.uncertainty import (
    DEFAULT_PRIOR_REL_SD,
    PRIOR_STRENGTH,
    Estimate,
    estimate,
    pooled_rel_sd,
    prior_rel_sd_for,
    prior_strength_for,
    prior_strength_from_range,
)

T4_975 = 2.7764451051977934  # Student t, 4 dof, 97.5 % quantile
T2_975 = 4.302652729749462
T10_975 = 2.228138851986274


def test_estimate_hand_computed_three_replicates() -> None:
    # mean 100; relative SS = (0 + 4^2 + 4^2) / 100^2 = 0.0032
    # s^2 = (2 * 0.05^2 + 0.0032) / (2 + 3 - 1) = 0.00205, dof 4
    s = math.sqrt(0.00205)
    se = s * 100 / math.sqrt(3)
    assert estimate([100, 104, 96], prior_rel_sd=0.05) == Estimate(
        n=3, center=100.0, median=100.0, low=pytest.approx(100 - T4_975 * se),
        high=pytest.approx(100 + T4_975 * se), confidence=0.95, method="t",
        rel_sd=pytest.approx(s), dof=4.0, standard_error=pytest.approx(se))


def test_estimate_single_replicate_uses_the_prior() -> None:
    # s = prior = 0.03, dof = k0 = 2, se = 0.03 * 200 = 6
    assert estimate([200.0], prior_rel_sd=0.03) == Estimate(
        n=1, center=200.0, median=200.0, low=pytest.approx(200 - T2_975 * 6),
        high=pytest.approx(200 + T2_975 * 6), confidence=0.95, method="prior",
        rel_sd=pytest.approx(0.03), dof=2.0, standard_error=pytest.approx(6.0))


def test_estimate_with_pooled_noise() -> None:
    # s^2 = (2 * 0.05^2 + 6 * 0.04^2 + 0.0032) / (2 + 6 + 2) = 0.00178, dof 10
    est = estimate([100, 104, 96], prior_rel_sd=0.05, pooled_rel_sd=0.04, pooled_dof=6)
    se = math.sqrt(0.00178) * 100 / math.sqrt(3)
    assert (est.dof, est.rel_sd, est.low, est.high) == (
        10.0, pytest.approx(math.sqrt(0.00178)), pytest.approx(100 - T10_975 * se),
        pytest.approx(100 + T10_975 * se))


def test_estimate_median_and_dict() -> None:
    d = estimate([10.0, 11.0, 30.0], confidence=0.9).to_dict()
    assert (d["n"], d["median"], d["confidence"], d["method"]) == (3, 11.0, 0.9, "t")
    assert set(d) == {"n", "center", "median", "low", "high", "confidence", "method", "rel_sd", "dof",
                      "standard_error"}


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"values": []}, "non-empty"),
    ({"values": [1.0, float("nan")]}, "finite"),
    ({"values": [1.0, -1.0]}, "non-zero mean"),
    ({"values": [1.0], "prior_strength": 0.0}, "no degrees of freedom"),
    ({"values": [1.0], "pooled_dof": 3}, "needs pooled_rel_sd"),
    ({"values": [1.0], "confidence": 1.0}, "confidence"),
])
def test_estimate_rejects(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        estimate(**kwargs)


def test_pooled_rel_sd_hand_computed() -> None:
    # SS 0.0032 (dof 2) + (1^2 + 1^2) / 51^2 (dof 1); a single replicate adds nothing
    ss = 0.0032 + 2 / 51**2
    assert pooled_rel_sd([[100, 104, 96], [50, 52], [7.0]]) == (pytest.approx(math.sqrt(ss / 3)), 3)


def test_pooled_rel_sd_without_dof() -> None:
    assert pooled_rel_sd([[7.0], [9.0]]) == (0.0, 0)
    assert pooled_rel_sd([]) == (0.0, 0)


def test_priors_per_metric() -> None:
    assert [prior_rel_sd_for(m) for m in ("decode_tok_s", "prefill_tok_s", "output_tok_s", "startup_s",
                                          "ttft_ms")] == [0.03, 0.06, 0.05, 0.15, DEFAULT_PRIOR_REL_SD]
    # decode's wide 1-4 % range is worth ~3.6 dof; prefill's and output's narrow ones hit the cap
    strength = [PRIOR_STRENGTH[m] for m in ("decode_tok_s", "prefill_tok_s", "output_tok_s")]
    assert strength == [pytest.approx(3.58, abs=0.01), 20.0, 20.0]
    assert len(PRIOR_STRENGTH) == 3
    assert prior_strength_for("startup_s") == 2.0


def test_prior_strength_from_range_inverts_the_chi2_ratio() -> None:
    from scipy import stats

    nu = prior_strength_from_range(0.02, 0.05, cap=1000)
    assert math.sqrt(stats.chi2.ppf(0.95, nu) / stats.chi2.ppf(0.05, nu)) == pytest.approx(2.5)
    with pytest.raises(ValueError):
        prior_strength_from_range(0.05, 0.02)


def test_t_interval_covers_the_true_mean_at_its_nominal_rate() -> None:
    # no prior (k0 = 0) makes it the classical t interval: exact coverage under the model
    rng = np.random.default_rng(3)
    true, s, runs = 1000.0, 0.05, 4000
    draws = true * (1 + s * rng.standard_normal((runs, 3)))
    hits = [(e.low <= true <= e.high) for e in (estimate(x, prior_strength=0.0) for x in draws)]
    assert abs(np.mean(hits) - 0.95) < 3 * math.sqrt(0.95 * 0.05 / runs)
