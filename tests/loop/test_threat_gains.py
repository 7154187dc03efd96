"""search.threat_gains and threat_picks: the race's choice of launch, against closed forms on
normal totals."""

from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from stackdecide.search import threat_gains, threat_picks

DRAWS = 400_000


def normal_totals(means: list[float], sds: list[float], seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return rng.normal(means, sds, size=(DRAWS, len(means)))


def after_a_launch(variance: float, launch_sd: float) -> float:
    return 1.0 / (1.0 / variance + 1.0 / launch_sd**2)


def test_a_rivals_gain_is_its_threat_times_the_share_of_doubt_its_launch_settles() -> None:
    means, sds, launch_sd, delta = [0.80, 0.78], [0.01, 0.03], np.array([0.02, 0.02]), 0.01
    totals = normal_totals(means, sds)
    variance = np.array(sds) ** 2
    gains = threat_gains(totals, variance, launch_sd, 0, delta, [0, 1])
    # P(T1 > T0 + delta) for independent normals, and the share of v0 + v1 one launch of 1 takes
    threat = stats.norm.sf((means[0] + delta - means[1]) / np.sqrt(variance.sum()))
    share = (variance[1] - after_a_launch(variance[1], 0.02)) / variance.sum()
    assert gains[1] == pytest.approx(threat * share, rel=0.02)
    # the leader's launch settles its own share of that one duel
    leader_share = (variance[0] - after_a_launch(variance[0], 0.02)) / variance.sum()
    assert gains[0] == pytest.approx(threat * leader_share, rel=0.02)


def test_the_first_launch_of_a_vague_prediction_is_worth_more_than_another_of_a_measured_one() -> None:
    # two rivals level with each other, one predicted vaguely, one measured to its launch noise
    means, sds = [0.80, 0.79, 0.79], [0.005, 0.04, 0.01]
    totals = normal_totals(means, sds, seed=1)
    gains = threat_gains(totals, np.array(sds) ** 2, np.full(3, 0.02), 0, 0.0, [1, 2])
    assert gains[0] > 2 * gains[1] > 0


def test_the_leader_is_worth_its_share_of_the_strongest_threat_not_of_all_of_them() -> None:
    one = threat_gains(normal_totals([0.80, 0.80], [0.01, 0.01]), np.full(2, 1e-4),
                       np.full(2, 0.02), 0, 0.0, [0])
    many = threat_gains(normal_totals([0.80] * 11, [0.01] * 11), np.full(11, 1e-4),
                        np.full(11, 0.02), 0, 0.0, [0])
    # ten equal rivals: the leader's launch is worth what it is against one of them
    assert many[0] == pytest.approx(one[0], rel=0.05)


def test_a_candidate_no_draw_puts_beyond_the_leaders_zone_gains_nothing() -> None:
    totals = normal_totals([0.80, 0.60], [0.01, 0.01])
    gains = threat_gains(totals, np.full(2, 1e-4), np.full(2, 0.02), 0, 0.01, [1])
    assert gains.tolist() == [0.0]


def test_picks_are_the_largest_gains_per_gpu_minute_and_never_one_that_gains_nothing() -> None:
    means, sds = [0.80, 0.79, 0.79, 0.50], [0.005, 0.03, 0.03, 0.03]
    totals = normal_totals(means, sds, seed=2)
    variance, launch_sd = np.array(sds) ** 2, np.full(4, 0.02)
    gains = threat_gains(totals, variance, launch_sd, 0, 0.0, [1, 2, 3])
    # 1 and 2 gain alike; 2 costs half as much, so it comes first; 3 cannot threaten
    cost = np.array([1.0, 4.0, 2.0, 1.0])
    picks = threat_picks(totals, variance, launch_sd, cost, 0, 0.0, [1, 2, 3], 5)
    assert [i for i, _, _ in picks] == [2, 1]
    assert [gain for _, gain, _ in picks] == pytest.approx([gains[1], gains[0]])
    assert [worth for _, _, worth in picks] == pytest.approx([gains[1] / 2.0, gains[0] / 4.0])
    assert threat_picks(totals, variance, launch_sd, cost, 0, 0.0, [1, 2, 3], 1)[0][0] == 2
    assert threat_picks(totals, variance, launch_sd, cost, 0, 0.0, [3], 1) == []
    assert threat_picks(totals, variance, launch_sd, cost, 0, 0.0, [], 1) == []
