"""Sensitivity under every registered method: numeric flip distances, SMAA-2 and the trade-off."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner
from weights_support import moved

import stackdecide
from stackdecide.cli import main
from stackdecide.errors import StackdecideError
from stackdecide.mcda import methods
from stackdecide.mcda.methods import METHODS
from stackdecide.mcda.weights import sampled_weights
from stackdecide.model.score_uncertainty import score_uncertainty
from stackdecide.robustness import analyze, flip_distances, run_smaa, tradeoff
from stackdecide.robustness.flips import flip_points, numeric_flip_points

ROOT = Path(__file__).resolve().parents[2]
H200 = ROOT / "docs/results/hopper-h200-certified/evidence.db"
NUMERIC = ("wpm", "topsis")


def decision_text(scores: dict[str, list[float]], weights: list[float], *,
                  directions: list[str] | None = None, extra: str = "",
                  criterion_extra: str = "") -> str:
    """A decision file with criteria c0, c1, ... on 0..10 and the given candidates."""
    lines = ["schema: stackdecide/v1", "decision:", "  title: t", "  normalize_weights: true",
             "criteria:"]
    for j, weight in enumerate(weights):
        direction = directions[j] if directions else "benefit"
        lines.append(f"  - {{id: c{j}, weight: {weight!r}, direction: {direction}"
                     f"{criterion_extra}}}")
    lines.append("candidates:")
    for cid, row in scores.items():
        cells = ", ".join(f"c{j}: {value!r}" for j, value in enumerate(row))
        lines += [f"  - id: {cid}", f"    scores: {{{cells}}}"]
    return "\n".join(lines) + "\n" + extra


def random_decision(seed: int) -> stackdecide.Decision:
    """The random decisions of tests/test_sensitivity.py's brute-force test: scores to 3 decimals,
    weights to 4, benefit and cost criteria."""
    rng = np.random.default_rng(seed)
    n, m = int(rng.integers(2, 6)), int(rng.integers(2, 6))
    scores = {f"k{i}": [round(float(v), 3) for v in rng.uniform(0, 10, m)] for i in range(n)}
    weights = [round(float(v), 4) + 0.01 for v in rng.dirichlet(np.ones(m))]
    directions = [str(d) for d in rng.choice(["benefit", "cost"], m)]
    return stackdecide.parse(decision_text(scores, weights, directions=directions), "r.yaml")


def winner_under(method: str, normalized: np.ndarray, weights: np.ndarray) -> list[int]:
    """Brute force, one weight vector at a time: the winner under ``methods.rank``'s tie rule."""
    return [int(methods.rank(METHODS[method](normalized, w).totals, 1e-9)[0][0])
            for w in np.atleast_2d(weights)]


def assert_same_flips(exact: tuple[np.ndarray, ...], numeric: tuple[np.ndarray, ...]) -> None:
    for k in (0, 2):  # thresholds up, then down; k + 1: who takes over
        np.testing.assert_array_equal(np.isnan(exact[k]), np.isnan(numeric[k]))
        np.testing.assert_allclose(numeric[k], exact[k], rtol=0, atol=1e-8)
        np.testing.assert_array_equal(numeric[k + 1], exact[k + 1])


# -- numeric search against the exact weighted-sum roots ------------------------------------------

def test_numeric_search_agrees_with_the_exact_roots_on_rtx4090(rtx4090_table_path: Path) -> None:
    decision = stackdecide.load(rtx4090_table_path)
    x, w = decision.normalize(), np.asarray(decision.weights)
    winner = decision.candidate_index(decision.score().winner)
    numeric = numeric_flip_points(x, w, winner, "wsm")
    assert_same_flips(flip_points(x, w, winner), numeric)
    assert numeric[0][2] == pytest.approx(27 / 59, abs=1e-8)


@pytest.mark.parametrize("seed", range(30))
def test_numeric_search_agrees_with_the_exact_roots_on_random_decisions(seed: int) -> None:
    decision = random_decision(seed)
    x, w = decision.normalize(), np.asarray(decision.weights)
    winner = decision.candidate_index(decision.score().winner)
    assert_same_flips(flip_points(x, w, winner), numeric_flip_points(x, w, winner, "wsm"))


@pytest.mark.parametrize("seed", range(40))
def test_numeric_search_agrees_with_the_exact_roots_on_random_matrices(seed: int) -> None:
    rng = np.random.default_rng(1000 + seed)
    n, m = int(rng.integers(2, 9)), int(rng.integers(2, 7))
    x, w = rng.random((n, m)), rng.dirichlet(np.ones(m))
    winner = winner_under("wsm", x, w)[0]
    assert_same_flips(flip_points(x, w, winner), numeric_flip_points(x, w, winner, "wsm"))


def test_numeric_search_gives_a_joint_catch_up_to_the_faster_challenger() -> None:
    # raising c0 from 0.4: c = (8, 4) and b = (10, 2) both tie a = (6, 6) at w0 = 0.5; beyond it b
    # gains faster and wins, though c comes first in the file (as the exact solution says)
    decision = stackdecide.parse(decision_text({"a": [6, 6], "c": [8, 4], "b": [10, 2]},
                                               [0.4, 0.6]), "two.yaml")
    x, w = decision.normalize(), np.asarray(decision.weights)
    up, who, _, _ = numeric_flip_points(x, w, 0, "wsm")
    assert up[0] == pytest.approx(0.5, abs=1e-9) and who[0] == 2


def test_a_winner_tied_at_its_weight_flips_there_under_every_method() -> None:
    # a and b tie at 50/50 under the weighted sum; a wins by file order and any raise of c0 lets
    # b through: threshold = the current weight, as in flip_points
    decision = stackdecide.parse(decision_text({"a": [5, 5], "b": [6, 4]}, [0.5, 0.5]), "t.yaml")
    x, w = decision.normalize(), np.asarray(decision.weights)
    exact, numeric = flip_points(x, w, 0), numeric_flip_points(x, w, 0, "wsm")
    assert_same_flips(exact, numeric)
    assert numeric[0][0] == 0.5 and numeric[1][0] == 1


@pytest.mark.parametrize("method", ["wsm", *NUMERIC])
def test_exact_twins_never_take_first_place_from_each_other(method: str) -> None:
    # equal rows stay equal under every weight: the first in the file keeps first place between
    # them (rounding must not hand it over); only c, a different candidate, can flip the winner
    text = decision_text({"a": [7, 4, 6], "twin": [7, 4, 6], "c": [2, 9, 5]}, [0.5, 0.3, 0.2])
    flips = flip_distances(stackdecide.parse(text, "twins.yaml"), method)
    assert flips.winner == "a"
    moves = [f for c in flips.criteria for f in (c.increase, c.decrease) if f.flips]
    assert moves and all(f.new_winner == "c" for f in moves)


# -- WPM and TOPSIS flip points, by brute force -----------------------------------------------------

@pytest.mark.parametrize("method", NUMERIC)
@pytest.mark.parametrize("seed", range(15))
def test_flip_points_change_the_winner_exactly_there(method: str, seed: int) -> None:
    decision = random_decision(seed)
    flips = flip_distances(decision, method)
    x, w = decision.normalize(), np.asarray(decision.weights)
    base = decision.candidate_index(flips.winner)
    assert base == winner_under(method, x, w)[0] == decision.candidate_index(
        decision.score(method=method).winner)
    grid = np.linspace(0, 1, 4001)[1:-1]
    for j, row in enumerate(flips.criteria):
        for flip, side in ((row.increase, grid[grid > w[j]]), (row.decrease, grid[grid < w[j]])):
            up = flip.direction == "increase"
            if flip.threshold is None:
                assert set(winner_under(method, x, moved(w, j, side))) == {base}, (j, flip)
                continue
            t = flip.threshold
            assert 0 < t < 1 and (t >= w[j] if up else t <= w[j])
            before = side[side < t - 1e-6] if up else side[side > t + 1e-6]
            assert set(winner_under(method, x, moved(w, j, before))) <= {base}, (j, flip)
            step = 1e-6 if up else -1e-6
            short, beyond = winner_under(method, x, moved(w, j, np.array([t - step, t + step])))
            assert short == base, (j, flip)
            assert decision.candidate_ids[beyond] == flip.new_winner != flips.winner
            at = METHODS[method](x, moved(w, j, np.array([t]))[0]).totals
            assert at[base] == pytest.approx(at[beyond], abs=1e-9)  # they tie at the threshold


@pytest.mark.parametrize("method", NUMERIC)
def test_rtx4090_thresholds_hold_through_the_public_api(rtx4090_table_path: Path, method: str) -> None:
    decision = stackdecide.load(rtx4090_table_path)
    flips = flip_distances(decision, method)
    assert flips.method == method and flips.grid == 2000
    stability = flips.of("installation_stability").increase
    assert stability.threshold is not None and stability.new_winner == "vllm-flashinfer-torch262"
    t = stability.threshold
    for weight, expected in ((t - 1e-6, flips.winner), (t + 1e-6, stability.new_winner)):
        moved_decision = decision.replace(weights={"installation_stability": weight})
        assert moved_decision.score(method=method).winner == expected


# -- SMAA-2 under TOPSIS and WPM ----------------------------------------------------------------

def direct_smaa(method: str, draws: np.ndarray, weights: np.ndarray
                ) -> tuple[np.ndarray, np.ndarray]:
    """Rank counts and central weights from a plain loop: one sample, one method call."""
    n = draws.shape[-2]
    counts, central = np.zeros((n, n), dtype=int), np.zeros((n, weights.shape[1]))
    for s, w in enumerate(weights):
        order, _ = methods.rank(METHODS[method](draws[s], w).totals, 1e-9)
        counts[order, np.arange(n)] += 1
        central[order[0]] += w
    with np.errstate(invalid="ignore", divide="ignore"):
        return counts, central / counts[:, :1]


def test_topsis_smaa_equals_a_direct_computation() -> None:
    rng = np.random.default_rng(21)
    scores = {f"k{i}": [round(float(v), 2) for v in rng.uniform(0, 10, 3)] for i in range(5)}
    text = decision_text(scores, [0.5, 0.3, 0.2],
                         extra="sensitivity:\n  weight_bounds: {c0: [0.1, 0.7]}\n")
    decision = stackdecide.parse(text, "topsis.yaml")
    result = run_smaa(decision, samples=1500, seed=4, method="topsis")
    assert result.method == "topsis" and not result.score_uncertainty
    weights = sampled_weights(result.region, 1500, 4)
    x = decision.normalize()
    counts, central = direct_smaa("topsis", np.repeat(x[None], 1500, axis=0), weights)
    np.testing.assert_array_equal(result.rank_counts, counts)
    won = counts[:, 0] > 0
    np.testing.assert_allclose(result.central_weights[won], central[won], rtol=1e-12)
    assert np.isnan(result.central_weights[~won]).all()
    # fixed scores: the confidence factor is whether i wins at its own central weights
    for i in np.flatnonzero(won):
        assert result.confidence[i] == float(winner_under("topsis", x, central[i])[0] == i)


@pytest.mark.parametrize("method", NUMERIC)
def test_smaa_with_score_uncertainty_equals_a_direct_computation(method: str) -> None:
    text = decision_text({"a": [5, 5, 5], "b": [6, 4, 7], "c": [9, 1, 3]}, [0.4, 0.3, 0.3],
                         criterion_extra=", uncertainty: 1.5")
    decision = stackdecide.parse(text, "u.yaml")
    result = run_smaa(decision, samples=800, seed=7, method=method)
    assert result.score_uncertainty
    # the same three child streams as smaa: weights, scores, confidence draws
    _, score_rng, confidence_rng = np.random.default_rng(7).spawn(3)
    spread = score_uncertainty(decision)
    draws = decision.normalize(spread.sample(score_rng, 800))
    counts, central = direct_smaa(method, draws, sampled_weights(result.region, 800, 7))
    np.testing.assert_array_equal(result.rank_counts, counts)
    won = counts[:, 0] > 0
    np.testing.assert_allclose(result.central_weights[won], central[won], rtol=1e-12)
    outcomes = decision.normalize(spread.sample(confidence_rng, 800))
    for i in np.flatnonzero(won):
        wins = [winner_under(method, outcome, central[i])[0] == i for outcome in outcomes]
        assert result.confidence[i] == pytest.approx(np.mean(wins), abs=1e-12)
    chunked = run_smaa(decision, samples=800, seed=7, method=method, chunk=7)
    np.testing.assert_array_equal(chunked.rank_counts, result.rank_counts)
    np.testing.assert_array_equal(chunked.confidence, result.confidence)


def test_topsis_smaa_matches_the_analytic_shares() -> None:
    # with the scale's ends as ideal and anti-ideal, a = (10, 0) has closeness w0 and b = (0, 10)
    # has 1 - w0: a wins iff w0 > 1/2, so b_a^1 = 1/2 and a's central weight is (3/4, 1/4)
    text = decision_text({"a": [10, 0], "b": [0, 10]}, [0.5, 0.5])
    result = run_smaa(stackdecide.parse(text, "sym.yaml"), samples=40_000, seed=2,
                      method="topsis")
    assert result.acceptability[0, 0] == pytest.approx(0.5, abs=4 * result.acceptability_stderr[0, 0])
    np.testing.assert_allclose(result.central_weights, [[0.75, 0.25], [0.25, 0.75]], atol=0.01)


def test_every_method_samples_the_same_weights(rtx4090_table_path: Path) -> None:
    # a candidate that dominates wins every sample under every method, so its central weight is
    # the mean of the sampled weights: equal across methods only if the stream is the same
    text = decision_text({"a": [9, 9, 9], "b": [5, 6, 4], "c": [3, 8, 2]}, [0.5, 0.3, 0.2])
    decision = stackdecide.parse(text, "dom.yaml")
    results = {m: run_smaa(decision, samples=500, seed=3, method=m) for m in METHODS}
    mean = sampled_weights(results["wsm"].region, 500, 3).mean(axis=0)
    for result in results.values():
        assert result.rank_counts[0, 0] == 500
        np.testing.assert_allclose(result.central_weights[0], mean, rtol=1e-12)


# -- trade-off ------------------------------------------------------------------------------------

@pytest.mark.parametrize("method", NUMERIC)
def test_tradeoff_terms_and_changes_that_tie(method: str) -> None:
    text = decision_text({"a": [8, 6, 5], "b": [6, 7, 5]}, [0.4, 0.3, 0.3],
                         directions=["benefit", "benefit", "cost"])
    decision = stackdecide.parse(text, "trade.yaml")
    trade = tradeoff(decision, method)
    ranking = decision.score(method=method)
    assert trade is not None and trade.method == method
    assert (trade.winner, trade.runner_up) == ("a", "b")
    np.testing.assert_allclose(trade.winner_points, ranking.terms[0], rtol=0, atol=1e-15)
    np.testing.assert_allclose(trade.runner_up_points, ranking.terms[1], rtol=0, atol=1e-15)
    assert trade.margin == pytest.approx(ranking.totals[0] - ranking.totals[1], abs=1e-12)
    assert trade.runner_up_change[2] is not None and trade.runner_up_change[2] < 0  # cost: lower
    for j, change in enumerate(trade.runner_up_change):
        cell = ("b", f"c{j}")
        if change is None:  # even the best end of the scale leaves b behind
            best = 10.0 if j < 2 else 0.0
            totals = decision.replace(scores={cell: best}).score(method=method).totals
            assert totals[1] < totals[0]
            continue
        totals = decision.replace(scores={cell: decision.matrix[1, j] + change}).score(
            method=method).totals
        assert totals[1] == pytest.approx(totals[0], abs=1e-7)


# -- the public API, the command and the reports -------------------------------------------------

@pytest.mark.parametrize("method", NUMERIC)
def test_sensitivity_api_records_and_reports_the_method(rtx4090_table_path: Path, method: str) -> None:
    decision = stackdecide.load(rtx4090_table_path)
    result = stackdecide.sensitivity(decision, method=method, samples=500)
    assert result.method == method and result.smaa.method == method
    assert result.winner == decision.score(method=method).winner
    np.testing.assert_allclose(result.flips.totals * 100, decision.score(method=method).totals,
                               rtol=0, atol=1e-12)
    assert decision.sensitivity(method=method, samples=500).to_dict() == result.to_dict()
    data = result.to_dict()
    assert data["version"] == 1 and data["method"] == method
    assert data["method_label"] == METHODS[method].label
    assert data["flip_search"] == {"kind": "numeric", "grid_steps": 2000, "bracket_width": 1e-12}
    assert data["tradeoff"]["terms_unit"] == METHODS[method].terms_unit
    assert analyze(decision, samples=500, seed=0).to_dict()["flip_search"] == {"kind": "exact"}


def test_cli_sensitivity_takes_a_method(rtx4090_table_path: Path) -> None:
    runner = CliRunner()
    args = ["sensitivity", str(rtx4090_table_path), "--samples", "500", "--method"]
    text = runner.invoke(main, [*args, "topsis"])
    assert text.exit_code == 0, text.output
    assert text.stdout.splitlines()[1].startswith(
        "method: TOPSIS (scale ends as ideal and anti-ideal) of the judged scores; winner "
        "vllm-flashinfer-torch271")
    assert "scanning 2,000 steps" in text.stdout and "total (x 100)" in text.stdout
    wpm = runner.invoke(main, [*args, "wpm", "--format", "json"])
    data = json.loads(wpm.stdout)
    assert data["method"] == "wpm" and data["version"] == 1
    stability = next(f for f in data["flip_distances"]
                     if f["criterion"] == "installation_stability")
    assert stability["increase"]["new_winner"] == "vllm-flashinfer-torch262"
    wsm = runner.invoke(main, [*args[:-1], "--format", "json"])
    assert json.loads(wsm.stdout)["method"] == "wsm"
    assert runner.invoke(main, [*args, "borda"]).exit_code == 2


def test_sensitivity_with_evidence_uses_the_method(rtx4090_table_path: Path) -> None:
    decision = stackdecide.load(ROOT / "criteria" / "hopper.yaml")
    evidence = stackdecide.evidence.load_evidence(H200)
    result = stackdecide.sensitivity(decision, evidence=evidence, method="topsis", samples=300)
    ranking = decision.score(method="topsis", evidence=evidence)
    assert result.winner == ranking.winner and result.method == "topsis"
    assert result.basis.startswith("scores ranked with evidence")
    np.testing.assert_allclose(result.flips.totals * 100, ranking.totals, rtol=0, atol=1e-9)


def test_unknown_method_is_refused(rtx4090_table_path: Path) -> None:
    with pytest.raises(StackdecideError, match="unknown method 'borda'; choose one of wsm"):
        analyze(stackdecide.load(rtx4090_table_path), samples=10, method="borda")
