"""Predicted cells: unmeasured configurations ranked on their predictions, marked predicted."""

from __future__ import annotations

import numpy as np

import stackdecide
from stackdecide.bench.results import BENCH_LOADS
from stackdecide.certify.probability import rank_probabilities
from stackdecide.evidence import EvidenceSet
from stackdecide.model.certainty import CertaintySettings
from stackdecide.predict import calibration, predict


def test_a_space_without_launches_is_ranked_on_predictions_with_a_within_verdict() -> None:
    decision = stackdecide.load("criteria/cpu-space.yaml")
    prediction = predict(decision, calibration(decision, EvidenceSet()), BENCH_LOADS)
    ranking = decision.score(evidence=EvidenceSet(), prediction=prediction,
                             certainty=CertaintySettings(samples=500, tolerance=3.0))
    sources = {cell.source for row in ranking.cells for cell in row}
    assert sources == {"predicted", "judged"}  # launch_ok has no prediction: judged
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
