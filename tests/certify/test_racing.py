"""Racing policy: certify, launch the right candidate, stop on budget or tie, drop the hopeless."""

from __future__ import annotations

import numpy as np
import pytest

from stackdecide.certify import (
    Action,
    RaceState,
    RankProbabilities,
    estimate,
    next_action,
    rank_probabilities,
    sample_t_cells,
)
from stackdecide.certify.racing import first_pass_order

NAMES = ("a", "b", "c", "d")


def state(p_best: list[float], launches: list[int], beats_leader: list[float] | None = None,
          could_win: list[bool] | None = None, optimistic: list[float] | None = None,
          expected: list[float] | None = None) -> RaceState:
    """A race whose leader is candidate 0; ``beats_leader[i]`` = P(i beats the leader)."""
    m = len(p_best)
    pairwise = np.zeros((m, m))
    if beats_leader is not None:
        pairwise[:, 0] = beats_leader
        pairwise[0, 1:] = 1 - np.array(beats_leader[1:])
    p = RankProbabilities(p_best=np.array(p_best), rank_matrix=np.eye(m), pairwise=pairwise,
                          expected_totals=np.array(expected or [0.6 - 0.05 * i for i in range(m)]),
                          samples=4000, seed=0, mc_standard_error=0.0)
    return RaceState(NAMES[:m], np.array(launches), p, np.array(could_win or [False] * m),
                     None if optimistic is None else np.array(optimistic))


def test_certifies_when_separated() -> None:
    # drop_below = 0.05 / 3: b (0.02) is a contender with 2 launches, c (0.01) is dropped
    assert next_action(state([0.97, 0.02, 0.01], [2, 2, 1])) == Action(
        "certified", "a", "certified: a (P = 0.97)", dropped=("c",))


def test_launches_the_challenger_with_fewer_launches() -> None:
    action = next_action(state([0.60, 0.35, 0.05], [2, 1, 2], beats_leader=[0.0, 0.38, 0.10]))
    assert action == Action("launch", "b", "launch b: P(b beats a) = 0.38, 1 launch vs 2")


def test_launches_the_challenger_on_equal_counts() -> None:
    action = next_action(state([0.60, 0.05, 0.35], [2, 2, 2], beats_leader=[0.0, 0.10, 0.38]))
    assert action == Action("launch", "c", "launch c: P(c beats a) = 0.38, 2 launches vs 2")


def test_launches_the_leader_on_equal_counts_while_it_is_short_of_replicates() -> None:
    # a and b have one launch each: either replicate shrinks their doubt alike, only a's can
    # complete a certificate (a needs two launches)
    action = next_action(state([0.60, 0.35, 0.05], [1, 1, 1], beats_leader=[0.0, 0.38, 0.10]))
    assert action == Action("launch", "a", "launch a: leader (P = 0.60) has 1 launch, as many as 1 for "
                                           "b (P(b beats a) = 0.38)")
    # with three launches required, the leader still goes first at two each
    action = next_action(state([0.60, 0.35, 0.05], [2, 2, 2], beats_leader=[0.0, 0.38, 0.10]),
                         min_replicates=3)
    assert action.candidate == "a"


def test_launches_the_leader_when_it_has_fewer_launches() -> None:
    action = next_action(state([0.60, 0.40], [1, 2], beats_leader=[0.0, 0.38]))
    assert action == Action("launch", "a", "launch a: leader (P = 0.60) has 1 launch vs 2 for b "
                                           "(P(b beats a) = 0.38)")


def test_launches_an_unmeasured_candidate_that_could_win_best_first() -> None:
    s = state([0.9, 0.1, 0.0, 0.0], [2, 2, 0, 0], could_win=[False, False, True, True],
              optimistic=[0.7, 0.7, 0.8, 0.9])
    assert next_action(s) == Action("launch", "d", "launch d: not measured yet; its best possible total "
                                                   "90.00 beats the leader a's expected 60.00")


def test_first_pass_in_the_random_order_of_the_seed() -> None:
    """Seed 0 orders the four candidates d, a, c, b: the first that is unmeasured and could win."""
    assert first_pass_order(4, 0).tolist() == [3, 0, 2, 1]
    s = state([0.9, 0.1, 0.0, 0.0], [2, 2, 0, 0], could_win=[False, False, True, True],
              optimistic=[0.7, 0.7, 0.8, 0.9])
    assert next_action(s, first_pass="random", seed=0) == Action(
        "launch", "d", "launch d: not measured yet; its best possible total 90.00 beats the leader a's "
        "expected 60.00 (first pass in random order, seed 0)")
    # seed 4 orders b, c, d, a: c comes before d, whatever their optimistic totals
    assert first_pass_order(4, 4).tolist() == [1, 2, 3, 0]
    assert next_action(s, first_pass="random", seed=4).candidate == "c"


def test_random_first_pass_skips_a_candidate_that_cannot_win() -> None:
    # seed 0 puts d first, but d cannot beat the leader even at its best: c is launched instead
    s = state([0.9, 0.1, 0.0, 0.0], [2, 2, 0, 0], could_win=[False, False, True, False],
              optimistic=[0.7, 0.7, 0.8, 0.5])
    action = next_action(s, first_pass="random", seed=0)
    assert (action.kind, action.candidate, action.dropped) == ("launch", "c", ("d",))


def test_random_first_pass_order_depends_on_the_seed_alone() -> None:
    firsts = {int(first_pass_order(4, seed)[0]) for seed in range(40)}
    assert firsts == {0, 1, 2, 3}  # every candidate is sometimes first: no file-order bias
    assert first_pass_order(4, 7).tolist() == first_pass_order(4, 7).tolist()


def test_unmeasured_candidate_that_cannot_win_is_dropped() -> None:
    s = state([0.97, 0.03, 0.0], [2, 2, 0], could_win=[False, False, False])
    assert next_action(s) == Action("certified", "a", "certified: a (P = 0.97)", dropped=("c",))


def test_drops_hopeless_candidates_from_the_duel() -> None:
    # c holds 0.5 % of the win: it is dropped, the duel is a vs b
    action = next_action(state([0.90, 0.095, 0.005], [2, 2, 1], beats_leader=[0.0, 0.1, 0.3]))
    assert action == Action("launch", "b", "launch b: P(b beats a) = 0.10, 2 launches vs 2", dropped=("c",))
    # an explicit threshold keeps c as a challenger: it has the highest P(beats a)
    kept = next_action(state([0.90, 0.095, 0.005], [2, 2, 1], beats_leader=[0.0, 0.1, 0.3]), drop_below=0.001)
    assert (kept.candidate, kept.dropped) == ("c", ())


def test_confident_leader_still_needs_its_own_replicate() -> None:
    action = next_action(state([0.96, 0.03, 0.01], [1, 2, 1]))
    assert action == Action("launch", "a", "launch a: 1 launch, 2 needed before certifying a (P = 0.96)",
                            dropped=("c",))


def test_contenders_on_one_launch_do_not_hold_back_a_replicated_leader() -> None:
    action = next_action(state([0.96, 0.03, 0.01], [2, 1, 1]))
    assert (action.kind, action.candidate) == ("certified", "a")


def test_budget_spent_on_a_tie() -> None:
    action = next_action(state([0.56, 0.43, 0.01], [3, 3, 3], beats_leader=[0.0, 0.4, 0.0]), max_launches=9)
    assert action == Action(
        "budget", None, "budget spent (9 of 9 launches): statistical tie between a and b (P 0.56 / 0.43): "
        "the difference is smaller than the noise", tied=(("a", 0.56), ("b", 0.43)), dropped=("c",))


def test_budget_spent_before_the_replicates() -> None:
    action = next_action(state([0.96, 0.04], [1, 2]), launches_used=6, max_launches=6)
    assert action == Action("budget", None, "budget spent (6 of 6 launches): a leads (P = 0.96) but a has "
                                            "1 launch; 2 needed to certify", tied=(("a", 0.96), ("b", 0.04)))


def test_tie_when_every_contender_is_at_the_cap() -> None:
    # P(a beats b) = 0.6 -> z = 0.253; reaching z = 1.645 with 3 launches each takes ~127 each
    action = next_action(state([0.56, 0.43, 0.01], [3, 3, 1], beats_leader=[0.0, 0.4, 0.0]), max_replicates=3)
    assert action == Action(
        "tie", None, "statistical tie between a and b (P 0.56 / 0.43): the difference is smaller than the "
        "noise; every contender is at the 3-launch cap; separating a from b at P = 0.95 would take about "
        "127 launches each (now 3 and 3)", tied=(("a", 0.56), ("b", 0.43)), dropped=("c",))


def test_capped_leader_leaves_the_launch_to_the_challenger() -> None:
    action = next_action(state([0.7, 0.3], [3, 2], beats_leader=[0.0, 0.3]), max_replicates=3)
    assert (action.kind, action.candidate) == ("launch", "b")


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"confidence": 1.0}, "confidence"),
    ({"min_replicates": 3, "max_replicates": 2}, "max_replicates"),
    ({"first_pass": "file"}, "first_pass"),
])
def test_next_action_rejects(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        next_action(state([1.0], [2]), **kwargs)


def test_race_state_checks_shapes() -> None:
    p = state([0.5, 0.5], [1, 1]).p
    with pytest.raises(ValueError, match="shape"):
        RaceState(("a", "b"), np.array([1, 1, 1]), p, np.array([False, False]))


def test_race_from_replicates_to_certificate() -> None:
    """estimate -> Student-t draws -> rank probabilities -> next_action, on one metric."""
    rng = np.random.default_rng(5)
    true = np.array([100.0, 90.0, 80.0])
    values: list[list[float]] = [[], [], []]
    kinds = []
    while True:
        launches = np.array([len(v) for v in values])
        if launches.all():
            ests = [estimate(v, prior_rel_sd=0.03) for v in values]
            draws = sample_t_cells([e.center for e in ests], [e.standard_error for e in ests],
                                   [e.dof for e in ests], 4000, rng)
            p = rank_probabilities(draws)
        else:
            p = rank_probabilities(np.zeros((1, 3)), feasible=launches > 0)
        action = next_action(RaceState(("a", "b", "c"), launches, p, launches == 0), max_launches=9)
        kinds.append(action.kind)
        if action.kind != "launch":
            break
        i = "abc".index(str(action.candidate))
        values[i].append(float(true[i] * (1 + 0.03 * rng.standard_normal())))
    assert action.kind == "certified" and action.candidate == "a"
    assert kinds.count("launch") < 9


def test_budget_spent_with_candidates_unmeasured() -> None:
    s = state([0.97, 0.03, 0.0], [2, 2, 0], could_win=[False, False, True])
    assert next_action(s, max_launches=4) == Action(
        "budget", None, "budget spent (4 of 4 launches): c not measured yet and could still beat a",
        tied=(("a", 0.97), ("b", 0.03)))


def test_tie_when_the_rest_of_the_win_was_dropped() -> None:
    action = next_action(state([0.8, 0.1, 0.1], [3, 3, 3]), drop_below=0.2, max_replicates=3)
    assert action == Action(
        "tie", None, "a leads (P = 0.80) but the rest of the win is spread over candidates each "
        "under P = 0.2",
        tied=(("a", 0.8),), dropped=("b", "c"))
