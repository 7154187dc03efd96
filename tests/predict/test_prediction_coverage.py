"""Prediction's coverage on the committed Hopper evidence (benchmarks/prediction_coverage.py), and
the priors stated from that evidence."""

from __future__ import annotations

import pytest

from prediction_coverage import (
    COMMITTED,
    LATER,
    committed_calibration,
    judged_errors,
    leave_one_out,
    out_of_sample,
    prior_levels,
    summarize,
    table,
)
from stackdecide.predict import PREDICTED_METRICS, Calibration
from stackdecide.predict.priors import JUDGED_SD, JUDGED_SHARED, PRIOR_LEVEL


@pytest.fixture(scope="module")
def committed() -> Calibration:
    return committed_calibration()


def test_the_committed_evidence_is_read_whole(committed: Calibration) -> None:
    """Every store of docs/results with its decision file: 24 launches, each once."""
    counts = {metric: len(committed.of(metric)) for metric in PREDICTED_METRICS}
    assert counts == {"decode_tok_s": 20, "prefill_tok_s": 20, "output_tok_s": 70,
                      "startup_s": 22}
    assert len({o.launch for o in committed.observations}) == 24


def test_prior_levels_are_the_committed_evidence(committed: Calibration) -> None:
    derived = prior_levels(committed)
    assert derived == pytest.approx(PRIOR_LEVEL, abs=0.006)


def test_judged_widths_are_the_committed_decisions_upper_bounds(committed: Calibration) -> None:
    found = judged_errors(committed)
    assert JUDGED_SD["decode_tok_s"] == JUDGED_SD["prefill_tok_s"] == JUDGED_SD["output_tok_s"]
    assert JUDGED_SD["decode_tok_s"] == pytest.approx(found["rates"].bound, abs=0.006)
    assert JUDGED_SD["startup_s"] == pytest.approx(found["startup_s"].bound, abs=0.006)
    assert found["startup_s"].shared == pytest.approx(JUDGED_SHARED, abs=0.02)


@pytest.mark.parametrize("judged", [True, False])
def test_at_least_80_percent_inside_80_percent_intervals(committed: Calibration,
                                                          judged: bool) -> None:
    """Leave one launch out, predict its values from every other launch: at least 80% of them
    inside their 80% intervals, over all metrics."""
    outcomes = leave_one_out(committed, 0.8, judged)
    overall = summarize(outcomes, "all")
    assert overall.values == 132
    assert overall.inside >= 0.8, table(outcomes, 0.8)


@pytest.mark.slow
def test_the_space_race_launches_measured_after_the_priors_are_covered_too() -> None:
    """The space races (four on one H100, one on one H200) came after the priors were stated from the
    stores above: out of sample for them. Over every store, and over their launches alone, at
    least 80% of the values fall inside their 80% intervals; the rates each do too (start-up,
    whose cold starts depend on what the machine ran before, does not: docs/prediction.md)."""
    outcomes = leave_one_out(committed_calibration((*COMMITTED, *LATER)), 0.8, True)
    assert summarize(outcomes, "all").values == 336
    assert summarize(outcomes, "all").inside >= 0.8, table(outcomes, 0.8)
    later = out_of_sample(outcomes)
    assert len({o.observation.launch for o in later}) == 34
    assert summarize(later, "all").inside >= 0.8, table(later, 0.8)
    for metric in ("decode_tok_s", "prefill_tok_s", "output_tok_s"):
        assert summarize(later, metric).inside >= 0.8, table(later, 0.8)
