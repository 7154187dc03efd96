"""Indifference zone: P(within delta of the best) against the closed form, the delta = 0 reduction to
P(best) and the tie rule, the equivalence set, tolerance units, and the next launch towards a
delta-certificate."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import stats

from stackdecide.certify import (
    DEFAULT_TOLERANCE_POINTS,
    RaceState,
    WithinRaceState,
    certificate,
    jointly_within,
    launch_gains,
    next_action,
    next_action_within,
    normal_p_within,
    percent_to_points,
    rank_probabilities,
    tolerance_total,
    within_probabilities,
)
from stackdecide.certify.indifference import short_of
from stackdecide.certify.racing import contender_threshold
from stackdecide.mcda.methods import POINTS
from stackdecide.mcda.value_functions import relative_to_best

NAMES = ("a", "b", "c", "d", "e")


def normal_draws(means: list[float], sds: list[float], samples: int, seed: int) -> np.ndarray:
    rng = np.random.default_rng(seed)
    return np.array(means) + np.array(sds) * rng.standard_normal((samples, len(means)))


def delta_for(p: float, gap: float, spread: float) -> float:
    """The delta at which P(A >= B - delta) = p for A - B ~ N(gap, spread^2)."""
    return float(stats.norm.ppf(p)) * spread - gap


# -- the two-candidate closed form -----------------------------------------------------------------


def test_two_normal_totals_match_the_closed_form() -> None:
    # A ~ N(0.60, 0.03), B ~ N(0.62, 0.04): spread 0.05
    delta = 0.01
    exact_a = normal_p_within(0.60, 0.03, 0.62, 0.04, delta)
    exact_b = normal_p_within(0.62, 0.04, 0.60, 0.03, delta)
    assert exact_a == pytest.approx(stats.norm.cdf(-0.2))
    assert exact_b == pytest.approx(stats.norm.cdf(0.6))
    p = within_probabilities(normal_draws([0.60, 0.62], [0.03, 0.04], 40_000, seed=3), delta)
    for got, exact in zip(p.p_within, (exact_a, exact_b), strict=True):
        assert abs(got - exact) < 4 * math.sqrt(exact * (1 - exact) / p.samples)
    # both can be within delta of the best at once: the shares add up to more than 1
    assert p.p_within.sum() > 1
    assert p.mc_standard_error == pytest.approx(max(math.sqrt(q * (1 - q) / p.samples) for q in p.p_within))


def test_normal_p_within_edge_cases() -> None:
    assert normal_p_within(1.0, 0, 1.2, 0, 0.2) == 1.0  # exactly on the boundary: within
    assert normal_p_within(1.0, 0, 1.2, 0, 0.1) == 0.0
    assert normal_p_within(0.5, 0.1, 0.5, 0.1, 0.0) == 0.5


@pytest.mark.parametrize(("exact", "kind"), [(0.97, "certified"), (0.93, "undecided")])
def test_the_stop_rule_follows_the_closed_form(exact: float, kind: str) -> None:
    """Two normal totals 0.05 apart, spread 0.05: certified within delta exactly when
    Phi((mu_A - mu_B + delta) / spread) reaches the confidence."""
    delta = delta_for(exact, 0.05, 0.05)
    assert normal_p_within(0.60, 0.03, 0.55, 0.04, delta) == pytest.approx(exact)
    draws = normal_draws([0.60, 0.55], [0.03, 0.04], 100_000, seed=5)
    cert = certificate(draws, delta, 0.95, contender_threshold(0.95, 2))
    assert cert.kind == kind
    assert cert.leader == 0 and cert.p == pytest.approx(exact, abs=0.004)
    state = WithinRaceState(NAMES[:2], np.array([2, 2]), draws, np.array([0.04, 0.04]))
    action = next_action_within(state, delta)
    assert action.kind == ("certified" if kind == "certified" else "launch")


def test_the_certificate_sentence() -> None:
    draws = normal_draws([0.60, 0.55], [0.01, 0.01], 20_000, seed=1)
    cert = certificate(draws, tolerance_total(1.0), 0.95, contender_threshold(0.95, 2))
    assert cert.kind == "certified" and cert.equivalent == (0,)
    assert cert.statement(NAMES) == ("certified within 1 point: a is within 1 point of the best (P = 1.00); "
                                     "equivalent within 1 point: a (1.00)")
    undecided = certificate(normal_draws([0.60, 0.59], [0.02, 0.02], 20_000, seed=1), tolerance_total(0.5),
                            0.95, contender_threshold(0.95, 2))
    assert undecided.kind == "undecided"
    assert undecided.statement(NAMES, launches=[1, 0]).startswith(
        "not certified within 0.5 points: a is within 0.5 points of the best with P = ")
    assert undecided.statement(NAMES, launches=[1, 0]).endswith(", predicted)")


# -- delta = 0 is today's P(best) and tie rule ------------------------------------------------------


def test_delta_zero_is_p_best_with_ties_split() -> None:
    rng = np.random.default_rng(11)
    draws = rng.normal(0.6, 0.02, (5_000, 4))
    p0 = within_probabilities(draws, 0.0)
    np.testing.assert_array_equal(p0.p_within, rank_probabilities(draws).p_best)
    # continuous draws: the limit delta -> 0+ is the same
    np.testing.assert_allclose(within_probabilities(draws, 1e-15).p_within, p0.p_within)
    # exact ties: split at delta = 0, counted for each inside any zone
    tied = np.array([[1.0, 1.0, 0.0], [2.0, 1.0, 1.0]])
    np.testing.assert_allclose(within_probabilities(tied, 0.0).p_within, [0.75, 0.25, 0.0])
    np.testing.assert_allclose(within_probabilities(tied, 0.5).p_within, [1.0, 0.5, 0.0])
    np.testing.assert_allclose(within_probabilities(tied, 1.0).p_within, [1.0, 1.0, 1.0])  # bounds count


@pytest.mark.parametrize("seed", range(6))
def test_delta_zero_certificate_is_the_racing_verdict(seed: int) -> None:
    """Leader, certified-or-tie and the tied set are next_action's and scoring's at delta = 0."""
    rng = np.random.default_rng(seed)
    m = int(rng.integers(2, 6))
    means = rng.uniform(0.50, 0.60, m)
    draws = means + rng.uniform(0.002, 0.02, m) * rng.standard_normal((4_000, m))
    p = rank_probabilities(draws)
    threshold = contender_threshold(0.95, m)
    cert = certificate(draws, 0.0, 0.95, threshold)
    assert cert.leader == p.leader()
    assert cert.p == p.p_best[p.leader()]
    expected_contenders = sorted(set(p.contenders(threshold)) | {p.leader()}, key=lambda i: (-p.p_best[i], i))
    assert list(cert.contenders) == expected_contenders
    assert cert.kind == ("certified" if p.p_best[p.leader()] >= 0.95 else "tie")
    assert cert.equivalent == ((cert.leader,) if cert.kind == "certified" else ())
    # the racing policies agree on when to stop, with every candidate measured at the cap
    launches = np.full(m, 2)
    names = NAMES[:m]
    today = next_action(RaceState(names, launches, p, np.zeros(m, dtype=bool)), max_replicates=2)
    within = next_action_within(WithinRaceState(names, launches, draws, np.full(m, 0.02)), 0.0,
                                max_replicates=2)
    assert (within.kind, within.candidate, within.tied) == (today.kind, today.candidate, today.tied)
    if today.kind == "certified":
        assert within.reason == today.reason


def test_infeasible_candidates_are_never_within() -> None:
    draws = np.array([[0.9, 0.5, 0.49], [0.9, 0.5, 0.52]])
    p = within_probabilities(draws, 0.02, feasible=[False, True, True])
    np.testing.assert_allclose(p.p_within, [0.0, 1.0, 1.0])
    assert within_probabilities(draws, 0.02, feasible=[False, False, False]).p_within.sum() == 0


def test_bad_input_is_refused() -> None:
    with pytest.raises(ValueError, match="delta"):
        within_probabilities(np.zeros((2, 2)), -0.1)
    with pytest.raises(ValueError, match="shape"):
        within_probabilities(np.zeros(3), 0.1)
    with pytest.raises(ValueError, match="confidence"):
        certificate(np.zeros((2, 2)), 0.1, 1.0, 0.01)


# -- the equivalence set ---------------------------------------------------------------------------


def test_the_equivalence_set_names_every_candidate_within_delta_at_the_confidence() -> None:
    # a and b a fifth of a point apart with 0.3 points of doubt, c half a point behind, d far behind
    draws = normal_draws([0.600, 0.598, 0.595, 0.55], [0.003, 0.003, 0.003, 0.003], 20_000, seed=2)
    delta = tolerance_total(1.0)
    cert = certificate(draws, delta, 0.95, contender_threshold(0.95, 4))
    p_within = cert.probabilities.p_within
    assert cert.kind == "certified" and cert.leader == 0
    assert cert.equivalent == (0, 1)
    assert p_within[2] < 0.95 and 2 in cert.contenders and 3 not in cert.contenders
    # jointly: never more than the least of them, never less than Bonferroni's bound
    assert cert.p_all_equivalent == jointly_within(draws, [0, 1], delta)
    assert 1 - (1 - p_within[0]) - (1 - p_within[1]) <= cert.p_all_equivalent <= p_within[1]
    assert cert.statement(NAMES).endswith(f"all of them at once: P = {cert.p_all_equivalent:.2f}")
    # a wider zone takes c in; a zone of zero leaves the leader alone, which is then a tie
    assert certificate(draws, tolerance_total(2.0), 0.95, 0.0125).equivalent == (0, 1, 2)
    assert certificate(draws, 0.0, 0.95, 0.0125).kind == "tie"


# -- tolerance units -------------------------------------------------------------------------------


def test_points_and_percent_of_a_metric() -> None:
    assert tolerance_total(DEFAULT_TOLERANCE_POINTS) == pytest.approx(0.01)
    with pytest.raises(ValueError):
        tolerance_total(-1)
    # decode weighted 30%, relative_to_best: 3% of the best decode is 0.9 points, exactly
    weight, best = 0.3, 250.0
    scores = relative_to_best(np.array([best, best * 0.97]), best, higher_is_better=True)
    assert weight * (scores[0] - scores[1]) * POINTS == pytest.approx(percent_to_points(3, weight))
    assert percent_to_points(3, weight) == pytest.approx(0.9)
    # lower is better: 3% above the best value loses w * 3 / 1.03 points
    lower = relative_to_best(np.array([100.0, 103.0]), 100.0, higher_is_better=False)
    assert weight * (lower[0] - lower[1]) * POINTS == pytest.approx(percent_to_points(3, weight, False))
    with pytest.raises(ValueError):
        percent_to_points(3, 1.5)


# -- the next launch -------------------------------------------------------------------------------


def test_launch_gains_follow_the_bonferroni_bound() -> None:
    # leader a (index 0); b close and vague, c close and well measured, d far behind
    means, variances, sd = [0.60, 0.595, 0.595, 0.50], [0.01**2, 0.02**2, 0.005**2, 0.01**2], [0.02] * 4
    gains = launch_gains(means, variances, sd, 0, 0.01)

    def doubt(var_a: float, var_i: float, gap: float) -> float:
        return float(stats.norm.sf(gap / math.sqrt(var_a + var_i)))

    after = [1 / (1 / v + 1 / 0.02**2) for v in variances]
    gaps = [0.60 - mu + 0.01 for mu in means]
    for i in (1, 2, 3):
        assert gains[i] == pytest.approx(doubt(variances[0], variances[i], gaps[i])
                                         - doubt(variances[0], after[i], gaps[i]))
    assert gains[0] == pytest.approx(sum(doubt(variances[0], variances[i], gaps[i])
                                         - doubt(after[0], variances[i], gaps[i]) for i in (1, 2, 3)))
    # the vague challenger is worth a launch more than the measured one, the hopeless one least
    assert gains[1] > gains[2] > gains[3] >= 0
    # nothing to gain from a candidate with no doubt, or no noise to launch with
    assert launch_gains([0.6, 0.5], [0.0, 0.0], [0.02, 0.02], 0, 0.01).tolist() == [0.0, 0.0]
    with pytest.raises(ValueError):
        launch_gains([0.6], [0.0], [0.02], 1, 0.01)


def race_state(means: list[float], sds: list[float], launches: list[int], seed: int = 0,
               launch_sd: float = 0.02) -> WithinRaceState:
    m = len(means)
    return WithinRaceState(NAMES[:m], np.array(launches), normal_draws(means, sds, 8_000, seed),
                           np.full(m, launch_sd))


def test_launches_the_close_challenger_not_the_hopeless() -> None:
    # a leads on 2 launches; b is close on 1; c is predicted far behind, tightly
    state = race_state([0.60, 0.595, 0.50], [0.014, 0.02, 0.01], [2, 1, 0])
    action = next_action_within(state, 0.01)
    assert action.kind == "launch" and action.candidate == "b"
    assert action.dropped == ("c",)
    assert action.reason.startswith("launch b: one more launch lowers the bound on P(a is not within 1 "
                                    "point of the best) by ")
    assert action.reason.endswith(", the most of any; it rests on 1 launch, P(within 1 point) = 0.59")


def test_launches_an_unmeasured_candidate_whose_prediction_reaches_the_zone() -> None:
    # c is predicted just behind a with a vague prediction (worth a fraction of a launch)
    state = race_state([0.60, 0.55, 0.59], [0.01, 0.014, 0.05], [4, 2, 0])
    action = next_action_within(state, 0.01)
    assert action.kind == "launch" and action.candidate == "c"
    assert "it rests on its prediction alone" in action.reason


def test_a_cheaper_launch_wins_when_it_tells_as_much() -> None:
    # b and c carry the same prediction; c's first launch costs half as much (warm caches, one GPU)
    base = race_state([0.60, 0.59, 0.59], [0.01, 0.03, 0.03], [3, 0, 0], seed=4)
    draws = base.totals.copy()
    draws[:, 2] = draws[:, 1][::-1]  # the same law for c as for b
    for cost, pick in (([1.0, 1.0, 0.5], "c"), ([1.0, 0.5, 1.0], "b")):
        state = WithinRaceState(base.candidates, base.launches, draws, base.launch_sd,
                                launch_cost=np.array(cost))
        action = next_action_within(state, 0.01)
        assert (action.kind, action.candidate) == ("launch", pick)
        assert "per unit of cost" in action.reason


def test_a_confident_leader_short_of_replicates_is_launched_first() -> None:
    state = race_state([0.60, 0.50], [0.01, 0.01], [1, 3])
    action = next_action_within(state, 0.01)
    assert (action.kind, action.candidate) == ("launch", "a")
    assert "1 launch, 2 needed before certifying it" in action.reason


def test_certified_with_an_equivalence_set() -> None:
    state = race_state([0.600, 0.599, 0.50], [0.002, 0.002, 0.01], [3, 3, 0])
    action = next_action_within(state, 0.01)
    assert action.kind == "certified" and action.candidate == "a"
    assert [name for name, _ in action.equivalent] == ["a", "b"]
    assert action.dropped == ("c",)
    assert action.certificate is not None and action.certificate.kind == "certified"


def test_budget_and_caps() -> None:
    state = race_state([0.60, 0.595], [0.02, 0.02], [3, 3])
    spent = next_action_within(state, 0.01, max_launches=6)
    assert spent.kind == "budget" and spent.reason.startswith("budget spent (6 of 6 launches): not certified")
    assert [name for name, _ in spent.tied] == ["a", "b"]
    capped = next_action_within(state, 0.01, max_replicates=3)
    assert capped.kind == "budget" and capped.reason.startswith("every contender is at the 3-launch cap")
    assert next_action_within(state, 0.0, max_replicates=3).kind == "tie"
    with pytest.raises(ValueError, match="max_replicates"):
        next_action_within(state, 0.01, max_replicates=1)
    with pytest.raises(ValueError, match="costs"):
        WithinRaceState(state.candidates, state.launches, state.totals, state.launch_sd,
                        launch_cost=np.array([1.0, 0.0]))


def test_a_fixed_total_is_never_launched() -> None:
    # b's total is a judged score with no doubt: no launch can inform it
    draws = np.column_stack([normal_draws([0.60], [0.02], 4_000, 1)[:, 0], np.full(4_000, 0.60)])
    state = WithinRaceState(NAMES[:2], np.array([2, 0]), draws, np.array([0.02, 0.02]))
    action = next_action_within(state, 0.001)
    assert (action.kind, action.candidate) == ("launch", "a")


def test_a_p_short_of_the_line_never_reads_as_reaching_it() -> None:
    """A verdict printed "P = 0.95, below 0.95" for 0.9496: three decimals where two round up."""
    assert short_of(0.9496, 0.95) == "0.949"
    assert short_of(0.87, 0.95) == "0.87"
    assert short_of(0.8951, 0.9) == "0.895"
    # two candidates each more than 5 points behind the other in 504 of 10,000 draws: P = 0.9496,
    # in the headline and in the list of contenders alike
    draws = np.full((10_000, 2), 0.5)
    draws[:504, 0] += 0.1
    draws[504:1008, 1] += 0.1
    cert = certificate(draws, tolerance_total(5.0), 0.95, contender_threshold(0.95, 2))
    text = cert.statement(["a", "b"])
    assert cert.kind != "certified" and "with P = 0.949, below 0.95" in text
    assert "a (0.949)" in text and "b (0.949)" in text
