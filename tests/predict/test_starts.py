"""The chance that a never-launched configuration starts: a Beta posterior, in closed form."""

from __future__ import annotations

import pytest
from scipy import stats

from stackdecide.predict.starts import StartChance, start_chance


def test_no_judgement_and_no_launch_is_an_even_chance() -> None:
    chance = start_chance(0.5, 0, 0, 0.8)
    assert chance == StartChance(0.5, pytest.approx(0.1), pytest.approx(0.9), 0.5, 0, 0)


def test_launches_update_the_judged_prior_as_the_rule_of_succession() -> None:
    # a prior of 0.5 weighs two launches: Laplace's (s + 1) / (n + 2)
    assert start_chance(0.5, 8, 8, 0.8).probability == pytest.approx(9 / 10)
    assert start_chance(0.5, 7, 8, 0.8).probability == pytest.approx(8 / 10)
    # the base judged 9.5 of 10: 0.95 before any launch, 12.9 / 13 after 11 starts
    assert start_chance(0.95, 0, 0, 0.8).probability == pytest.approx(0.95)
    assert start_chance(0.95, 11, 11, 0.8).probability == pytest.approx(12.9 / 13)
    chance = start_chance(0.5, 8, 8, 0.8)
    assert (chance.low, chance.high) == pytest.approx(tuple(stats.beta.ppf([0.1, 0.9], 9, 1)))


def test_a_judged_certainty_stays_a_proper_prior() -> None:
    chance = start_chance(1.0, 0, 1, 0.8)  # judged sure to start, and the one launch failed
    assert chance.prior == 0.99 and chance.probability == pytest.approx(1.98 / 3)
    assert start_chance(0.0, 0, 0, 0.8).probability == 0.01  # judged never to start: rarely


@pytest.mark.parametrize(("prior", "starts", "launches"), [(1.2, 0, 0), (0.5, 3, 2), (0.5, -1, 0)])
def test_impossible_counts_are_refused(prior: float, starts: int, launches: int) -> None:
    with pytest.raises(ValueError, match="no chance of a start"):
        start_chance(prior, starts, launches, 0.8)
