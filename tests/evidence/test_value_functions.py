"""Value functions on hand-computed cases, on benefit and cost scales."""

from __future__ import annotations

import pytest

from stackdecide.mcda import value_functions as vf
from stackdecide.model.schema import Measure


def score(measure: dict, raw: float, *, low: float = 0, high: float = 10, benefit: bool = True,
          higher_is_better: bool = True, best_raw: float | None = None,
          boolean: bool = False) -> float:
    return vf.measured_score(Measure.model_validate(measure), raw, scale_low=low, scale_high=high,
                             benefit=benefit, higher_is_better=higher_is_better, best_raw=best_raw,
                             boolean=boolean)


@pytest.mark.parametrize(("raw", "expected"), [(50, 0.0), (75, 2.5), (125, 7.5), (150, 10.0),
                                               (20, 0.0), (400, 10.0)])
def test_linear_benefit(raw: float, expected: float) -> None:
    # worst 50 -> 0, best 150 -> 10: (raw - 50) / 100 * 10, clamped
    assert score({"metric": "decode_tok_s", "value": "linear", "worst": 50, "best": 150},
                 raw) == pytest.approx(expected)


def test_linear_with_worst_above_best_for_lower_is_better_metrics() -> None:
    # ttft: 500 ms worst, 100 ms best; 200 ms is 3/4 of the way -> 7.5
    measure = {"metric": "ttft_ms_p99", "value": "linear", "worst": 500, "best": 100}
    assert score(measure, 200) == pytest.approx(7.5)
    assert score(measure, 50) == 10.0 and score(measure, 900) == 0.0


def test_linear_on_a_cost_scale_puts_the_best_value_at_the_low_end() -> None:
    # cost criterion on 1..5: best end is 1; goodness 0.25 -> 5 - 0.25 * 4 = 4
    measure = {"metric": "decode_tok_s", "value": "linear", "worst": 100, "best": 200}
    assert score(measure, 125, low=1, high=5, benefit=False) == pytest.approx(4.0)


def test_points_interpolate_and_stay_flat_beyond_the_ends() -> None:
    measure = {"metric": "vram_gb", "value": "points",
               "points": [[8, 10], [12, 8], [16, 0]]}
    assert score(measure, 10, higher_is_better=False) == pytest.approx(9.0)
    assert score(measure, 14, higher_is_better=False) == pytest.approx(4.0)
    assert score(measure, 4, higher_is_better=False) == 10.0
    assert score(measure, 20, higher_is_better=False) == 0.0
    # a pair above the scale is clamped to it
    assert vf.points(0, [(0, 15), (1, 5)], 0, 10) == 10.0


def test_target_full_inside_then_linear_falloff() -> None:
    # rtx4090.yaml: target [100, 160], falloff 100
    measure = {"metric": "decode_tok_s", "value": "target", "target": [100, 160], "falloff": 100}
    assert score(measure, 100) == 10.0 and score(measure, 160) == 10.0
    assert score(measure, 75) == pytest.approx(7.5)  # 25 below: 1 - 25/100
    assert score(measure, 210) == pytest.approx(5.0)  # 50 above
    assert score(measure, 0) == 0.0 and score(measure, 400) == 0.0


def test_target_default_falloff_is_the_range_width() -> None:
    measure = {"metric": "decode_tok_s", "value": "target", "target": [100, 160]}
    assert vf.default_falloff(100, 160) == 60
    assert score(measure, 70) == pytest.approx(5.0)  # 30 of 60 below
    assert score(measure, 40) == 0.0
    assert vf.default_falloff(8, 8) == 4 and vf.default_falloff(0, 0) == 1


def test_target_can_penalize_one_side_only() -> None:
    below = {"metric": "decode_tok_s", "value": "target", "target": [100, 160], "falloff": 100,
             "penalize": "below"}
    assert score(below, 400) == 10.0 and score(below, 50) == pytest.approx(5.0)
    above = {"metric": "vram_gb", "value": "target", "target": [12, 14], "falloff": 2,
             "penalize": "above"}
    assert score(above, 6, higher_is_better=False) == 10.0
    assert score(above, 15, higher_is_better=False) == pytest.approx(5.0)


def test_relative_to_best() -> None:
    measure = {"metric": "decode_tok_s", "value": "relative_to_best"}
    assert score(measure, 150, best_raw=150) == 10.0
    assert score(measure, 120, best_raw=150) == pytest.approx(8.0)  # 120/150
    cost = {"metric": "ttft_ms_p50", "value": "relative_to_best"}
    assert score(cost, 200, best_raw=80, higher_is_better=False) == pytest.approx(4.0)  # 80/200
    assert vf.relative_to_best(0, 0, True) == 0.0
    assert vf.relative_to_best(0, 0, False) == 1.0
    with pytest.raises(ValueError, match="needs the best measured value"):
        score(measure, 1)


def test_pass_fail() -> None:
    launch = {"metric": "launch_ok", "value": "pass_fail"}
    assert score(launch, 1, boolean=True) == 10.0
    assert score(launch, 0, boolean=True) == 0.0
    assert score(launch, 0.5, boolean=True) == 0.0  # median of one success, one failure
    memory = {"metric": "vram_gb", "value": "pass_fail", "best": 15}
    assert score(memory, 15, higher_is_better=False) == 10.0
    assert score(memory, 15.1, higher_is_better=False) == 0.0
    assert score(memory, 10, low=1, high=5, benefit=False, higher_is_better=False) == 1.0
    with pytest.raises(ValueError, match="needs 'best' as the threshold"):
        score({"metric": "vram_gb", "value": "pass_fail"}, 3, higher_is_better=False)


def test_non_finite_raw_is_refused() -> None:
    with pytest.raises(ValueError, match="not finite"):
        score({"metric": "decode_tok_s", "value": "relative_to_best"}, float("nan"), best_raw=1)
