"""Flip distances, the winner/runner-up trade-off, SMAA-2 and the `sensitivity` command."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from weights_support import moved

import stackdecide
from stackdecide.cli import main
from stackdecide.errors import DecisionFileError
from stackdecide.mcda import methods
from stackdecide.mcda.methods import rank_order
from stackdecide.mcda.weights import WeightRegion, WeightStream, uniform_simplex
from stackdecide.model.score_uncertainty import score_uncertainty
from stackdecide.robustness import analyze, flip_distances, run_smaa, tradeoff
from stackdecide.robustness.report import render


def decision_text(scores: dict[str, list[float]], weights: list[float], *,
                  directions: list[str] | None = None, extra: str = "",
                  criterion_extra: list[str] | None = None,
                  candidate_extra: dict[str, str] | None = None) -> str:
    """A decision file with criteria c0, c1, ... on 0..10 and the given candidates."""
    lines = ["schema: stackdecide/v1", "decision:", "  title: t", "  normalize_weights: true",
             "criteria:"]
    for j, weight in enumerate(weights):
        direction = directions[j] if directions else "benefit"
        more = criterion_extra[j] if criterion_extra else ""
        lines.append(f"  - {{id: c{j}, weight: {weight!r}, direction: {direction}{more}}}")
    lines.append("candidates:")
    for cid, row in scores.items():
        cells = ", ".join(f"c{j}: {value!r}" for j, value in enumerate(row))
        lines += [f"  - id: {cid}", f"    scores: {{{cells}}}"]
        if candidate_extra and cid in candidate_extra:
            lines.append(f"    {candidate_extra[cid]}")
    return "\n".join(lines) + "\n" + extra


def winner_of(normalized: np.ndarray, weights: np.ndarray) -> np.ndarray:
    """Brute-force winner per row of weights: first candidate within 1e-9 of the best total."""
    totals = np.einsum("ij,...j->...i", normalized, weights)
    return np.argmax(totals >= totals.max(axis=-1, keepdims=True) - 1e-9, axis=-1)


# -- flip distances -----------------------------------------------------------------------------

def test_rtx4090_installation_stability_threshold_is_exact(rtx4090_table_path: Path) -> None:
    decision = stackdecide.load(rtx4090_table_path)
    flips = flip_distances(decision)
    assert flips.winner == "vllm-flashinfer-torch271"
    stability = flips.of("installation_stability")
    # torch262 leads torch271 by 0.084375 on the other three criteria's rescaled mean and loses
    # 0.1 on stability: they tie at t = 0.084375 / 0.184375 = 27/59
    assert stability.increase.threshold == pytest.approx(27 / 59, abs=1e-12)
    assert stability.increase.new_winner == "vllm-flashinfer-torch262"
    assert stability.increase.change == pytest.approx(27 / 59 - 0.2, abs=1e-12)
    assert not stability.decrease.flips and stability.decrease.new_winner is None
    for other in ("fp8_performance", "rtx4090_optimization", "performance_targets"):
        assert not flips.of(other).increase.flips and not flips.of(other).decrease.flips
    assert flips.nearest == stability.increase
    # through the public API: just below the threshold nothing changes, just above it does
    for point, expected in ((27 / 59 - 1e-6, "vllm-flashinfer-torch271"),
                            (27 / 59 + 1e-6, "vllm-flashinfer-torch262")):
        w = moved(decision.weights, 2, np.array([point]))[0]
        assert decision.replace(weights=w).score().winner == expected


@pytest.mark.parametrize("seed", range(30))
def test_flip_points_match_brute_force(seed: int) -> None:
    rng = np.random.default_rng(seed)
    n, m = int(rng.integers(2, 6)), int(rng.integers(2, 6))
    scores = {f"k{i}": [round(float(v), 3) for v in rng.uniform(0, 10, m)] for i in range(n)}
    weights = [round(float(v), 4) + 0.01 for v in rng.dirichlet(np.ones(m))]
    directions = [str(d) for d in rng.choice(["benefit", "cost"], m)]
    decision = stackdecide.parse(decision_text(scores, weights, directions=directions), "r.yaml")
    flips = flip_distances(decision)
    x, w = decision.normalize(), np.asarray(decision.weights)
    base = decision.candidate_index(flips.winner)
    assert base == winner_of(x, w)
    grid = np.linspace(0, 1, 4001)[1:-1]
    for j, row in enumerate(flips.criteria):
        for flip, side in ((row.increase, grid[grid > w[j]]), (row.decrease, grid[grid < w[j]])):
            going_up = flip.direction == "increase"
            if flip.threshold is None:
                assert np.all(winner_of(x, moved(w, j, side)) == base), (j, flip)
                continue
            t = flip.threshold
            assert 0 < t < 1 and (t >= w[j] if going_up else t <= w[j])
            before = side[side < t - 1e-9] if going_up else side[side > t + 1e-9]
            assert np.all(winner_of(x, moved(w, j, before)) == base), (j, flip)
            beyond = t + 1e-7 if going_up else t - 1e-7
            new = winner_of(x, moved(w, j, np.array([beyond])))[0]
            assert decision.candidate_ids[new] == flip.new_winner != flips.winner
            at = x @ moved(w, j, np.array([t]))[0]
            assert at[base] == pytest.approx(at[new], abs=1e-9)  # they tie at the threshold


def test_two_challengers_catching_up_together_go_to_the_faster_one() -> None:
    # raising c0 from 0.4: c = (8, 4) and b = (10, 2) both tie a = (6, 6) at w0 = 0.5; beyond it b
    # gains faster (slope 0.8 against 0.4) and wins, though c comes first in the file
    text = decision_text({"a": [6, 6], "c": [8, 4], "b": [10, 2]}, [0.4, 0.6])
    flip = flip_distances(stackdecide.parse(text, "two.yaml")).of("c0").increase
    assert flip.threshold == pytest.approx(0.5, abs=1e-12) and flip.new_winner == "b"


def test_no_flip_when_one_candidate_dominates_and_single_criterion() -> None:
    dominated = stackdecide.parse(decision_text({"a": [9, 9], "b": [1, 2]}, [0.5, 0.5]), "d.yaml")
    assert flip_distances(dominated).nearest is None
    single = stackdecide.parse(decision_text({"a": [4], "b": [6]}, [1.0]), "s.yaml")
    flips = flip_distances(single)
    assert flips.winner == "b" and flips.nearest is None


def test_tradeoff_differences_add_up_and_tie_when_applied(rtx4090_table_path: Path) -> None:
    decision = stackdecide.load(rtx4090_table_path)
    trade = tradeoff(decision)
    assert trade is not None
    assert (trade.winner, trade.runner_up) == ("vllm-flashinfer-torch271",
                                               "vllm-flashinfer-torch262")
    np.testing.assert_allclose(trade.differences, [3.5, 1.25, -2.0, 2.0], atol=1e-12)
    assert trade.differences.sum() == pytest.approx(trade.margin) == pytest.approx(4.75)
    change = trade.runner_up_change[0]
    assert change == pytest.approx(0.0475 / 0.35 * 10)
    assert trade.runner_up_change[1:] == (None, None, None)  # would need more than 10
    tied = decision.replace(scores={("vllm-flashinfer-torch262", "fp8_performance"): 8.5 + change})
    totals = tied.score().totals
    assert totals[1] == pytest.approx(totals[2], abs=1e-9)


def test_tradeoff_change_is_negative_for_a_cost_criterion() -> None:
    decision = stackdecide.parse(decision_text({"a": [8, 2], "b": [6, 3]}, [0.5, 0.5],
                                               directions=["benefit", "cost"]), "c.yaml")
    trade = tradeoff(decision)
    assert trade is not None and trade.winner == "a"
    # margin 15 points; on the cost criterion the runner-up must score 3.0 lower
    assert trade.runner_up_change[1] == pytest.approx(-3.0)


# -- SMAA-2 -------------------------------------------------------------------------------------

def test_weighted_sum_equals_the_sum_of_its_contributions() -> None:
    rng = np.random.default_rng(1)
    matrix = rng.random((7, 5, 4))
    weights = uniform_simplex(rng, 7, 4)
    np.testing.assert_allclose(methods.weighted_sum(matrix, weights),
                               methods.wsm(matrix, weights)[1].sum(axis=-1), rtol=0, atol=1e-12)
    np.testing.assert_allclose(methods.weighted_sum(matrix[0], weights),
                               methods.wsm(matrix[0], weights)[1].sum(axis=-1), rtol=0, atol=1e-12)


def test_dominated_candidate_never_ranks_first() -> None:
    text = decision_text({"a": [5, 5, 5], "b": [6, 6, 6], "c": [9, 1, 3]}, [0.4, 0.3, 0.3],
                         criterion_extra=[", uncertainty: 0.4"] * 3)
    result = run_smaa(stackdecide.parse(text, "dom.yaml"), samples=5000, seed=1)
    assert result.score_uncertainty
    assert result.rank_counts[0, 0] == 0
    assert np.isnan(result.central_weights[0]).all() and np.isnan(result.confidence[0])
    assert result.rank_counts[0, 1] > 0  # a still beats c sometimes


def test_symmetric_candidates_share_first_place() -> None:
    text = decision_text({"a": [10, 0], "b": [0, 10]}, [0.5, 0.5])
    result = run_smaa(stackdecide.parse(text, "sym.yaml"), samples=40_000, seed=2)
    b1 = result.acceptability[:, 0]
    assert b1.sum() == 1.0
    assert b1[0] == pytest.approx(0.5, abs=4 * result.acceptability_stderr[0, 0])
    # a wins iff w0 > 1/2, and w0 is uniform on (0, 1): its central weight is (3/4, 1/4)
    np.testing.assert_allclose(result.central_weights[0], [0.75, 0.25], atol=0.01)
    np.testing.assert_allclose(result.central_weights[1], [0.25, 0.75], atol=0.01)
    np.testing.assert_array_equal(result.confidence, [1.0, 1.0])


def test_weights_are_uniform_on_the_simplex_not_normalised_uniforms() -> None:
    # a = (1, 0, 0) beats b = (1/2, 1/2, 1/2) iff w0 > 1/2: probability (1/2)^2 = 1/4 under
    # Dirichlet(1); normalised independent uniforms would give 1/6
    text = decision_text({"a": [10, 0, 0], "b": [5, 5, 5]}, [0.4, 0.3, 0.3])
    result = run_smaa(stackdecide.parse(text, "u.yaml"), samples=40_000, seed=3)
    assert result.acceptability[0, 0] == pytest.approx(0.25, abs=0.01)


def test_acceptability_is_a_doubly_stochastic_matrix(rtx4090_table_path: Path) -> None:
    result = run_smaa(stackdecide.load(rtx4090_table_path), samples=3000, seed=4)
    np.testing.assert_array_equal(result.rank_counts.sum(axis=0), 3000)
    np.testing.assert_array_equal(result.rank_counts.sum(axis=1), 3000)
    # with fixed scores a candidate's winning region is convex, so it wins at its central weights
    won = result.rank_counts[:, 0] > 0
    np.testing.assert_array_equal(result.confidence[won], 1.0)


def test_identical_candidates_tie_to_the_first_in_file() -> None:
    text = decision_text({"a": [3, 7], "twin": [6, 4], "twin2": [6, 4]}, [0.5, 0.5])
    result = run_smaa(stackdecide.parse(text, "t.yaml"), samples=2000, seed=5)
    assert result.rank_counts[2, 0] == 0 and result.rank_counts[1, 2] == 0
    assert result.rank_counts[1, 0] + result.rank_counts[0, 0] == 2000


def test_rank_order_breaks_near_ties_by_file_order() -> None:
    totals = np.array([[0.5, 0.7, 0.7 + 1e-12, 0.1], [0.3, 0.3, 0.9, 0.3 - 1e-13]])
    np.testing.assert_array_equal(rank_order(totals), [[1, 2, 0, 3], [2, 0, 1, 3]])


def test_same_seed_same_numbers_whatever_the_chunk(rtx4090_table_path: Path) -> None:
    text = decision_text({"a": [5, 5, 5], "b": [6, 4, 7], "c": [9, 1, 3]}, [0.4, 0.3, 0.3],
                         criterion_extra=[", uncertainty: 1.5"] * 3,
                         extra="sensitivity: {weight_bounds: {c0: [0.1, 0.6]}}\n")
    decision = stackdecide.parse(text, "r.yaml")
    one = run_smaa(decision, samples=3000, seed=7)
    small = run_smaa(decision, samples=3000, seed=7, chunk=7)
    np.testing.assert_array_equal(one.rank_counts, small.rank_counts)
    np.testing.assert_allclose(one.central_weights, small.central_weights, rtol=1e-12)
    np.testing.assert_array_equal(one.confidence, small.confidence)
    other = run_smaa(decision, samples=3000, seed=8)
    assert not np.array_equal(one.rank_counts, other.rank_counts)


def test_score_uncertainty_alone_matches_the_analytic_probability() -> None:
    # one criterion: a ~ U(4, 6), b ~ U(5, 7); P(a > b) = 1/8
    text = decision_text({"a": [5], "b": [6]}, [1.0],
                         candidate_extra={"a": "uncertainty: {c0: 1}", "b": "uncertainty: {c0: 1}"})
    result = run_smaa(stackdecide.parse(text, "p.yaml"), samples=40_000, seed=9)
    assert result.acceptability[0, 0] == pytest.approx(0.125, abs=0.01)
    # the central weight is the only weight, so the confidence factor is the same probability
    assert result.confidence[0] == pytest.approx(0.125, abs=0.01)


def test_perturbed_scores_are_clipped_to_the_scale() -> None:
    # b (first in file) sits at the top of the scale; a = 9.5 ± 1 reaches 10 at most after
    # clipping, which only ties b, and ties go to the first in the file: a never wins.
    clipped = decision_text({"b": [10], "a": [9.5]}, [1.0],
                            candidate_extra={"a": "uncertainty: {c0: 1}"})
    assert run_smaa(stackdecide.parse(clipped, "k.yaml"), samples=5000, seed=1).rank_counts[1, 0] == 0
    # the same spread below the top is not clipped: a = 8.5 ± 1 beats 9 a quarter of the time
    free = decision_text({"b": [9], "a": [8.5]}, [1.0],
                         candidate_extra={"a": "uncertainty: {c0: 1}"})
    result = run_smaa(stackdecide.parse(free, "f.yaml"), samples=20_000, seed=1)
    assert result.acceptability[1, 0] == pytest.approx(0.25, abs=0.015)


def test_candidate_uncertainty_overrides_the_criterion_default() -> None:
    text = decision_text({"a": [5, 5], "b": [6, 6]}, [0.5, 0.5],
                         criterion_extra=[", uncertainty: 0.5", ""],
                         candidate_extra={"b": "uncertainty: {c0: 2, c1: 0.25}"})
    spread = score_uncertainty(stackdecide.parse(text, "o.yaml")).spread
    np.testing.assert_array_equal(spread, [[0.5, 0.0], [2.0, 0.25]])


# -- weight regions -----------------------------------------------------------------------------

def test_importance_order_samples_the_ordered_region_uniformly() -> None:
    region = WeightRegion(np.zeros(3), np.ones(3), (2, 0, 1))
    weights = WeightStream(region, np.random.default_rng(0)).take(60_000)
    assert np.all(weights[:, 2] >= weights[:, 0]) and np.all(weights[:, 0] >= weights[:, 1])
    # expected order statistics of uniform spacings of (0, 1) into 3 parts: 11/18, 5/18, 1/9
    np.testing.assert_allclose(weights[:, [2, 0, 1]].mean(axis=0), [11 / 18, 5 / 18, 1 / 9],
                               atol=0.004)


def test_bounds_are_exact_and_reported_with_their_acceptance() -> None:
    lower = WeightRegion(np.array([0.5, 0.0]), np.ones(2))
    w = WeightStream(lower, np.random.default_rng(0)).take(40_000)
    assert w[:, 0].min() >= 0.5 and w[:, 0].mean() == pytest.approx(0.75, abs=0.005)
    upper = WeightStream(WeightRegion(np.zeros(3), np.array([0.3, 1, 1])), np.random.default_rng(0))
    w = upper.take(40_000)
    assert w[:, 0].max() <= 0.3
    assert upper.acceptance_rate == pytest.approx(1 - 0.7**2, abs=0.01)  # P(w0 <= 0.3)


def test_stream_reads_the_same_in_any_batch_size() -> None:
    region = WeightRegion(np.zeros(4), np.array([0.5, 0.5, 1, 1]), (1, 0))
    whole = WeightStream(region, np.random.default_rng(3)).take(10_000)
    parts = WeightStream(region, np.random.default_rng(3))
    pieces = np.concatenate([parts.take(k) for k in (1, 999, 4000, 5000)])
    np.testing.assert_array_equal(whole, pieces)


# -- bad inputs ---------------------------------------------------------------------------------

def _line_of(text: str, needle: str) -> int:
    return next(i for i, line in enumerate(text.splitlines(), 1) if needle in line)


def test_bounds_that_exclude_every_weight_vector_are_located() -> None:
    text = decision_text({"a": [1, 2], "b": [2, 1]}, [0.5, 0.5],
                         extra="sensitivity:\n  weight_bounds: {c0: [0.7, 0.9], c1: [0.5, 0.9]}\n")
    with pytest.raises(DecisionFileError) as error:
        stackdecide.parse(text, "x.yaml")
    assert str(error.value).startswith(f"x.yaml:{_line_of(text, 'weight_bounds')}:")
    assert "no weights satisfy these bounds" in str(error.value)


def test_importance_order_against_the_bounds_is_located() -> None:
    text = decision_text({"a": [1, 2, 3], "b": [2, 1, 3]}, [0.3, 0.3, 0.4],
                         extra="sensitivity:\n  weight_bounds: {c0: [0, 0.2], c1: [0.3, 1]}\n"
                               "  importance_order: [c0, c1]\n")
    with pytest.raises(DecisionFileError) as error:
        stackdecide.parse(text, "x.yaml")
    message = str(error.value)
    assert message.startswith(f"x.yaml:{_line_of(text, 'importance_order')}:")
    assert "sensitivity.importance_order" in message
    assert "puts 'c0' before 'c1'" in message and "cap 'c0' at 0.2" in message


def test_importance_order_whose_floors_exceed_one_is_located() -> None:
    # c0 >= c1 >= c2 >= 0.34 needs at least 1.02 in all
    text = decision_text({"a": [1, 2, 3], "b": [2, 1, 3]}, [0.3, 0.3, 0.4],
                         extra="sensitivity:\n  weight_bounds: {c2: [0.34, 1]}\n"
                               "  importance_order: [c0, c1, c2]\n")
    with pytest.raises(DecisionFileError, match=r"x\.yaml:\d+:\d+ sensitivity\.importance_order: "
                                                r".*between 1\.02 and"):
        stackdecide.parse(text, "x.yaml")
    feasible = text.replace("0.34", "0.3")  # c0 = c1 = c2 = 0.333... is allowed
    stackdecide.parse(feasible, "x.yaml")


def test_hopelessly_small_region_is_refused_with_its_location() -> None:
    bounds = ", ".join(f"c{j}: [0, 0.105]" for j in range(10))
    text = decision_text({"a": list(range(10)), "b": list(range(9, -1, -1))}, [0.1] * 10,
                         extra=f"sensitivity:\n  weight_bounds: {{{bounds}}}\n")
    decision = stackdecide.parse(text, "x.yaml")  # the region exists, but is tiny
    with pytest.raises(DecisionFileError) as error:
        run_smaa(decision, samples=100, seed=0)
    message = str(error.value)
    assert message.startswith(f"x.yaml:{_line_of(text, 'weight_bounds')}:")
    assert "too small to sample" in message


# -- command line -------------------------------------------------------------------------------

def _run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_cli_states_flip_distances_and_acceptability(rtx4090_table_path: Path) -> None:
    code, out, _ = _run("sensitivity", str(rtx4090_table_path), "--samples", "2000", "--seed", "1")
    assert code == 0
    row = next(line for line in out.splitlines() if line.startswith("Installation Stability"))
    assert "20.0%" in row and "45.8% (+25.8)" in row and "vllm-flashinfer-torch262" in row
    fp8 = next(line for line in out.splitlines() if line.startswith("FP8 Performance "))
    assert fp8.count("no flip") == 2
    assert "raise installation_stability from 20.0% to 45.8%" in out
    for cid in ("vllm-cuda-torch271", "vllm-flashinfer-torch271", "vllm-flashinfer-torch262"):
        assert any(line.startswith(cid) and "%" in line for line in out.splitlines())
    assert "2,000 weight vectors" in out and "seed 1" in out


def test_cli_json_is_versioned_stable_and_consistent(rtx4090_table_path: Path) -> None:
    args = ("sensitivity", str(rtx4090_table_path), "--samples", "2000", "--format", "json")
    code, out, _ = _run(*args)
    assert code == 0 and _run(*args)[1] == out  # same seed (default 0): same bytes
    data = json.loads(out)
    assert data["version"] == 1 and data["kind"] == "sensitivity"
    assert data["winner"] == "vllm-flashinfer-torch271"
    stability = next(f for f in data["flip_distances"]
                     if f["criterion"] == "installation_stability")
    assert stability["increase"]["flips"] is True
    assert stability["increase"]["threshold"] == pytest.approx(27 / 59, abs=1e-9)
    assert stability["decrease"] == {"flips": False, "threshold": None, "change": None,
                                     "relative_change": None, "new_winner": None}
    candidates = data["smaa"]["candidates"]
    assert [c["id"] for c in candidates] == ["vllm-cuda-torch271", "vllm-flashinfer-torch271",
                                             "vllm-flashinfer-torch262"]
    for rank in range(3):
        assert sum(c["rank_acceptability"][rank] for c in candidates) == pytest.approx(1.0)
    assert data["smaa"]["samples"] == 2000 and data["smaa"]["seed"] == 0
    assert data["tradeoff"]["margin"] == pytest.approx(4.75)


def test_cli_markdown_has_tables(rtx4090_table_path: Path) -> None:
    code, out, _ = _run("sensitivity", str(rtx4090_table_path), "--samples", "500", "--format",
                        "markdown")
    assert code == 0 and "### SMAA-2 rank acceptability" in out and "|---" in out


def test_cli_reports_bad_input_without_traceback(tmp_path: Path) -> None:
    text = decision_text({"a": [1, 2], "b": [2, 1]}, [0.5, 0.5],
                         extra="sensitivity:\n  weight_bounds: {c0: [0, 0.2], c1: [0, 0.2]}\n")
    path = tmp_path / "bad.yaml"
    path.write_text(text)
    code, out, err = _run("sensitivity", str(path))
    assert code == 2 and out == ""
    assert err.startswith(f"error: {path}:") and "Traceback" not in err
    assert _run("sensitivity", str(path), "--samples", "0")[0] == 2


def test_analyze_carries_every_part(rtx4090_table_path: Path) -> None:
    result = analyze(stackdecide.load(rtx4090_table_path), samples=1000, seed=0)
    assert result.winner == result.flips.winner == "vllm-flashinfer-torch271"
    assert result.tradeoff is not None and result.smaa.samples == 1000
    assert result.to_dict()["smaa"]["acceptance_rate"] == 1.0


def test_smaa_counts_equal_a_plain_loop_over_its_own_weights() -> None:
    from stackdecide.mcda.weights import sampled_weights

    rng = np.random.default_rng(11)
    scores = {f"k{i}": [round(float(v), 2) for v in rng.uniform(0, 10, 4)] for i in range(6)}
    text = decision_text(scores, [0.4, 0.3, 0.2, 0.1],
                         extra="sensitivity:\n  weight_bounds: {c0: [0.05, 0.5]}\n"
                               "  importance_order: [c1, c2]\n")
    decision = stackdecide.parse(text, "loop.yaml")
    result = run_smaa(decision, samples=2000, seed=12)
    weights = sampled_weights(result.region, 2000, 12)
    assert np.all(weights[:, 1] >= weights[:, 2])
    assert np.all((weights[:, 0] >= 0.05) & (weights[:, 0] <= 0.5))
    counts = np.zeros((6, 6), dtype=int)
    central = np.zeros((6, 4))
    x = decision.normalize()
    for w in weights:
        order = np.argsort(-(x @ w), kind="stable")
        counts[order, np.arange(6)] += 1
        central[order[0]] += w
    np.testing.assert_array_equal(result.rank_counts, counts)
    won = counts[:, 0] > 0
    np.testing.assert_allclose(result.central_weights[won], central[won] / counts[won, :1],
                               rtol=1e-12)


def test_counting_only_the_first_ranks_keeps_their_counts() -> None:
    rng = np.random.default_rng(13)
    scores = {f"k{i}": [round(float(v), 2) for v in rng.uniform(0, 10, 3)] for i in range(8)}
    decision = stackdecide.parse(decision_text(scores, [0.5, 0.3, 0.2]), "top.yaml")
    full = run_smaa(decision, samples=1500, seed=1)
    top = run_smaa(decision, samples=1500, seed=1, ranks=2)
    assert top.rank_counts.shape == (8, 2)
    np.testing.assert_array_equal(top.rank_counts, full.rank_counts[:, :2])


def test_single_candidate_and_single_criterion_are_handled() -> None:
    alone = stackdecide.parse(decision_text({"only": [3, 4]}, [0.5, 0.5]), "one.yaml")
    result = analyze(alone, samples=200, seed=0)
    assert result.tradeoff is None and result.flips.nearest is None
    np.testing.assert_array_equal(result.smaa.rank_counts, [[200]])
    np.testing.assert_allclose(result.smaa.central_weights[0].sum(), 1.0)
    assert "no change of any single weight" in render(result)
