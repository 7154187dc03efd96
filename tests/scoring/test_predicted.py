"""Predicted cells: unmeasured configurations ranked on their predictions, marked predicted."""

from __future__ import annotations

import math

import numpy as np
import pytest

import stackdecide
from stackdecide.bench.results import BENCH_LOADS
from stackdecide.certify.efficiency import mixture_quantile
from stackdecide.certify.probability import rank_probabilities
from stackdecide.evidence import EvidenceSet, load_evidence
from stackdecide.mcda.value_functions import measured_scores
from stackdecide.model.cells import MeanMixture
from stackdecide.model.certainty import CertaintySettings
from stackdecide.model.ranking import Ranking
from stackdecide.predict import calibration, predict
from stackdecide.predict.predictions import Prediction
from stackdecide.scoring import certainty as certainty_module
from stackdecide.scoring.certainty import mixture_draws
from stackdecide.search import prediction_for

# a mean known to 5% nine times in ten, to 40% the tenth
WIDE_TAIL = MeanMixture(weights=(0.9, 0.1), centres=(math.log(100.0),) * 2, log_sds=(0.05, 0.4))


def test_a_space_without_launches_is_ranked_on_predictions_with_a_within_verdict() -> None:
    decision = stackdecide.load("criteria/cpu-space.yaml")
    prediction = predict(decision, calibration(decision, EvidenceSet()), BENCH_LOADS)
    ranking = decision.score(evidence=EvidenceSet(), prediction=prediction,
                             certainty=CertaintySettings(samples=500, tolerance=3.0))
    sources = {cell.source for row in ranking.cells for cell in row}
    assert sources == {"predicted"}  # launch_ok too: the chance that it starts
    predicted = next(cell for row in ranking.cells for cell in row if cell.predicted)
    assert predicted.interval is not None and predicted.interval[0] < predicted.raw < predicted.interval[1]
    sure = ranking.certainty
    assert sure is not None and sure.within is not None and sure.totals is not None
    assert sure.totals.shape == (500, len(decision.candidate_ids))
    # nothing launched: no certificate, whatever the draws say
    assert sure.verdict.kind == "undecided"
    assert set(sure.launches().values()) == {0}
    assert "within" in sure.to_dict()


def test_rank_probabilities_in_chunks_equal_all_at_once(monkeypatch) -> None:
    from stackdecide.certify import probability

    draws = np.random.default_rng(3).normal(size=(301, 7))
    whole = rank_probabilities(draws)
    monkeypatch.setattr(probability, "CHUNK_CELLS", 49 * 10)  # ten draws a chunk
    chunked = rank_probabilities(draws)
    np.testing.assert_allclose(chunked.rank_matrix, whole.rank_matrix)
    np.testing.assert_allclose(chunked.pairwise, whole.pairwise)
    np.testing.assert_allclose(chunked.p_best, whole.p_best)


def _arrays(mixture: MeanMixture) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    return np.array(mixture.weights), np.array(mixture.centres), np.array(mixture.log_sds)


def test_a_wide_minor_component_keeps_its_tail() -> None:
    """Drawn from the mixture, the far tail is the wide component's; a normal of the mixture's
    mean and variance would put the 99% quantile 0.31 above the centre instead of 0.51."""
    rng = np.random.default_rng(5)
    samples = 200_000
    logs = np.log(mixture_draws(WIDE_TAIL, rng.random(samples), rng.standard_normal(samples)))
    weights, centres, sds = _arrays(WIDE_TAIL)
    for q in (0.01, 0.5, 0.99):
        assert np.quantile(logs, q) == pytest.approx(mixture_quantile(weights, centres, sds, q),
                                                     abs=0.02)
    moment_matched = centres[0] + 2.326 * math.sqrt(weights @ sds**2)
    assert np.quantile(logs, 0.99) > moment_matched + 0.15
    capped = MeanMixture(WIDE_TAIL.weights, WIDE_TAIL.centres, WIDE_TAIL.log_sds, ceiling=120.0)
    assert mixture_draws(capped, rng.random(samples), rng.standard_normal(samples)).max() == 120.0


def test_cells_with_the_same_weights_draw_the_same_component() -> None:
    """One quantile per draw picks the component of every cell: a wide draw is wide for all."""
    twice_as_wide = MeanMixture(WIDE_TAIL.weights, (math.log(5.0),) * 2, (0.1, 0.8))
    quantile = np.random.default_rng(6).random(1000)
    at_one_sd = np.ones(1000)
    narrow = np.log(mixture_draws(WIDE_TAIL, quantile, at_one_sd)) - math.log(100.0)
    wide = np.log(mixture_draws(twice_as_wide, quantile, at_one_sd)) - math.log(5.0)
    np.testing.assert_allclose(wide, 2.0 * narrow)
    assert 0.05 < np.mean(narrow > 0.2) < 0.15  # the wide component, a tenth of the draws


def _scored_before_any_launch(monkeypatch: pytest.MonkeyPatch, path: str,
                              settings: CertaintySettings
                              ) -> tuple[stackdecide.Decision, Prediction, Ranking, list[np.ndarray]]:
    """``path`` scored on its predictions alone, and the raw values of each criterion's draws, in
    the order of the criteria that have draws."""
    decision = stackdecide.load(path)
    prediction = predict(decision, calibration(decision, EvidenceSet()), BENCH_LOADS)
    drawn: list[np.ndarray] = []

    def keep(measure: object, raw: np.ndarray, **kwargs: object) -> np.ndarray:
        drawn.append(np.array(raw))
        return measured_scores(measure, raw, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(certainty_module, "measured_scores", keep)
    ranking = decision.score(evidence=EvidenceSet(), prediction=prediction, certainty=settings)
    return decision, prediction, ranking, drawn


def test_a_ranking_draws_predicted_cells_from_their_mixture(monkeypatch: pytest.MonkeyPatch) -> None:
    """The draws of a predicted cell follow its mixture, tails included (not the normal its
    interval spans), and one width scale per draw moves every cell of a metric."""
    samples = 20_000
    settings = CertaintySettings(samples=samples, seed=4)
    decision, prediction, ranking, drawn = _scored_before_any_launch(
        monkeypatch, "criteria/cpu-space.yaml", settings)
    columns = {c.id: j for j, c in enumerate(decision.criteria)}
    decode, throughput, _startup = (np.log(raw) for raw in drawn[:3])  # then launch_ok
    assert decode.shape == (samples, len(decision.candidate_ids))

    cell = ranking.cells[0][columns["decode_speed"]]
    assert cell.mixture == prediction.mixtures[(decision.candidate_ids[0], "decode_speed")]
    for q, z in ((0.005, -2.576), (0.995, 2.576)):
        from_mixture = mixture_quantile(*_arrays(cell.mixture), q)
        # log units; the mixture's widths run from 1.3 to 5.3 here
        assert np.quantile(decode[:, 0], q) == pytest.approx(from_mixture, abs=0.4)
        assert abs(from_mixture - (math.log(cell.raw) + z * cell.log_sd)) > 2.0

    def spread(logs: np.ndarray, column: int) -> np.ndarray:
        return np.abs(logs[:, column] - np.median(logs[:, column]))

    # two configurations, one metric: the same width scale in a draw (criteria alike)
    assert np.corrcoef(spread(decode, 0), spread(decode, 1))[0, 1] > 0.1
    assert np.corrcoef(spread(decode, 0), spread(throughput, 1))[0, 1] > 0.1
    # and drawn together: before any launch every configuration shares the unseen levels (the
    # GPU, the model, the engine) and differs in its own few, so their values move together
    # (drawn one by one, their logs were uncorrelated)
    assert np.corrcoef(decode[:, 0], decode[:, 1])[0, 1] > 0.5
    # the same seed, the same draws
    again = decision.score(evidence=EvidenceSet(), prediction=prediction, certainty=settings)
    assert ranking.certainty is not None and again.certainty is not None
    np.testing.assert_array_equal(ranking.certainty.totals, again.certainty.totals)


def test_configurations_the_model_cannot_tell_apart_are_drawn_as_one(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """criteria/hopper-space.yaml before any launch: max_num_seqs 64, 128 and 256 bind at no load
    of decode (one stream), so those three configurations are one to the model and one in every
    draw; two that differ in the attention backend share the rest of their levels and move
    together, but not as one."""
    decision, _, _, drawn = _scored_before_any_launch(
        monkeypatch, "criteria/hopper-space.yaml", CertaintySettings(samples=4000, seed=3))
    decode = np.log(drawn[0])
    at = decision.candidate_ids.index
    seqs = [at(f"bf16-tp1-flashinfer-kv-auto-seqs{n}") for n in (64, 128, 256)]
    np.testing.assert_allclose(decode[:, seqs[1]], decode[:, seqs[0]], atol=1e-5)
    np.testing.assert_allclose(decode[:, seqs[2]], decode[:, seqs[0]], atol=1e-5)
    other = at("bf16-tp1-flash_attn-kv-auto-seqs64")
    together = np.corrcoef(decode[:, seqs[0]], decode[:, other])[0, 1]
    assert 0.5 < together < 0.99


FOURTH_RACE = "docs/results/h100-space/fourth-race"


def test_a_never_launched_configuration_starts_with_the_chance_its_space_has_shown(
        monkeypatch: pytest.MonkeyPatch) -> None:
    """The H100 race's store: 8 launches of the space, all started. A configuration none of them
    tried scores the expected 9 of 10 on "Starts as configured" (a prior of 0.5 from the middle
    of the scale, weighing two launches: 9 / 10), marked predicted, and starts in nine draws of
    ten; as a judged 5 it stood 7.5 points of total behind every launched configuration."""
    decision = stackdecide.load(f"{FOURTH_RACE}/hopper-space.yaml")
    evidence = load_evidence(f"{FOURTH_RACE}/space.db")
    drawn: list[np.ndarray] = []

    def keep(measure: object, raw: np.ndarray, **kwargs: object) -> np.ndarray:
        drawn.append(np.array(raw))
        return measured_scores(measure, raw, **kwargs)  # type: ignore[arg-type]

    monkeypatch.setattr(certainty_module, "measured_scores", keep)
    samples = 4000
    ranking = decision.score(evidence=evidence, prediction=prediction_for(decision, evidence),
                             certainty=CertaintySettings(samples=samples, tolerance=5.0))
    starts = [c.id for c in decision.criteria].index("launch_success")
    at = decision.candidate_ids.index
    launched, never = at("bf16-tp1-flash_attn-kv-fp8-seqs128"), at("fp8-tp1-flashinfer-kv-fp8-seqs64")
    assert ranking.cells[launched][starts].measured and ranking.cells[launched][starts].score == 10.0
    cell = ranking.cells[never][starts]
    assert (cell.source, cell.judged, cell.unit) == ("predicted", 5.0, "P(start)")
    assert cell.raw == pytest.approx(0.9) and cell.score == pytest.approx(9.0)
    assert cell.interval is not None and cell.interval[0] < 0.9 < cell.interval[1] <= 1.0
    started = drawn[-1][:, -1]  # the last criterion drawn, the last predicted configuration
    assert set(np.unique(started)) == {0.0, 1.0}
    assert np.mean(started) == pytest.approx(0.9, abs=0.02)
