"""The capacity search on synthetic latency curves: precision, monotonicity, number of probes."""

from __future__ import annotations

import math

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from stackdecide.bench.capacity import (
    CapacitySearch,
    ProbeMeasurement,
    SearchSettings,
    SloLimits,
    judge,
    run_search,
)

SLO = SloLimits({"ttft_ms_p99": 1000.0, "tpot_ms_p99": 50.0})


def curve(knee: float, base_ttft: float = 80.0, base_tpot: float = 10.0):
    """A latency curve with a knee: p99 TTFT and TPOT grow as (load / knee)^4 past it."""

    def measure(load: float) -> ProbeMeasurement:
        pressure = (load / knee) ** 4
        return ProbeMeasurement(
            load=load, latencies_ms={"ttft_ms_p99": base_ttft * (1 + 12 * pressure),
                                     "tpot_ms_p99": base_tpot * (1 + 3 * pressure)},
            requests=100, request_per_s=load * 0.4, output_tok_s=load * 100)
    return measure


def true_capacity(knee: float) -> float:
    # TTFT crosses 1000 ms where 80 (1 + 12 p) = 1000; TPOT where 10 (1 + 3 p) = 50
    pressure = min((1000 / 80 - 1) / 12, (50 / 10 - 1) / 3)
    return knee * pressure ** 0.25


@pytest.mark.parametrize("method", ["interpolate", "bisect"])
@pytest.mark.parametrize("kind", ["request_rate", "concurrency"])
@pytest.mark.parametrize("knee", [0.7, 3.0, 17.0, 60.0, 250.0, 900.0])
def test_meets_its_precision(method: str, kind: str, knee: float) -> None:
    s = SearchSettings(kind=kind, start=1.0, growth=2.0, precision=0.1, min_load=1.0,
                       max_load=4096.0, method=method)
    result = run_search(s, SLO, curve(knee))
    truth = true_capacity(knee)
    if truth < 1.0:
        assert result.last_pass is None and result.capacity_req_s is None
        assert result.stopped_because.startswith("the lowest allowed load 1 misses the SLO")
        return
    assert result.converged, result.stopped_because
    low, high = result.last_pass.load, result.first_fail.load
    assert low <= truth < high
    assert high / low <= 1.1 + 1e-9 or (kind == "concurrency" and high - low == 1)
    # every pass lies below every fail: the search is monotone
    passes = [p.load for p in result.probes if p.verdict.passed]
    fails = [p.load for p in result.probes if not p.verdict.passed]
    assert max(passes) < min(fails)
    # the bracket needs ceil(log2(truth)) + 1 probes; refining it, at most three per halving
    bracket = math.ceil(math.log2(high)) + 1
    halvings = math.ceil(math.log2(math.log(2) / math.log(1.1)))
    assert len(result.probes) <= bracket + (halvings if method == "bisect" else 3 * halvings)


def test_interpolation_needs_fewer_probes_than_bisection() -> None:
    counts = {}
    for method in ("interpolate", "bisect"):
        s = SearchSettings(kind="request_rate", start=1.0, precision=0.05, max_load=4096.0,
                           method=method)
        counts[method] = [len(run_search(s, SLO, curve(k)).probes)
                          for k in (3.0, 17.0, 60.0, 250.0)]
    assert sum(counts["interpolate"]) < sum(counts["bisect"])


def test_whole_result_on_one_curve() -> None:
    s = SearchSettings(kind="concurrency", start=8, growth=2.0, precision=0.1, max_load=512)
    result = run_search(s, SLO, curve(40.0))
    assert [(p.load, p.phase, p.verdict.passed) for p in result.probes] == [
        (8.0, "bracket", True), (16.0, "bracket", True), (32.0, "bracket", True),
        (64.0, "bracket", False), (41.0, "refine", False), (38.0, "refine", True)]
    assert result.capacity_concurrency == 38
    assert result.capacity_req_s == pytest.approx(38 * 0.4)
    assert result.relative_gap == pytest.approx(41 / 38 - 1)
    assert result.stopped_because == "bracket [38, 41] within 10%"
    assert true_capacity(40.0) == pytest.approx(39.58, abs=0.01)


@settings(max_examples=60, deadline=None)
@given(knee=st.floats(2.0, 2000.0), slower=st.floats(1.0, 3.0),
       method=st.sampled_from(["interpolate", "bisect"]))
def test_monotone_in_the_curve(knee: float, slower: float, method: str) -> None:
    """A server that is slower at every load never gets a higher capacity than a faster one."""
    s = SearchSettings(kind="request_rate", start=1.0, precision=0.1, min_load=0.01, max_load=1e5,
                       method=method, max_probes=40)
    fast = run_search(s, SLO, curve(knee))
    slow = run_search(s, SLO, curve(knee / slower))
    assert slow.capacity_req_s is not None and fast.capacity_req_s is not None
    assert slow.capacity_req_s <= fast.capacity_req_s * 1.1 + 1e-9
    for result, k in ((fast, knee), (slow, knee / slower)):
        assert result.last_pass.load <= true_capacity(k) < result.first_fail.load


def test_open_bracket_at_the_top_and_probe_budget() -> None:
    s = SearchSettings(kind="concurrency", start=1, max_load=64)
    result = run_search(s, SLO, curve(10_000.0))
    assert [p.load for p in result.probes] == [1, 2, 4, 8, 16, 32, 64]
    assert result.first_fail is None and not result.converged
    assert result.capacity_concurrency == 64
    assert "capacity is at least that" in result.stopped_because
    budget = run_search(SearchSettings(kind="concurrency", start=1, max_load=64, max_probes=3),
                        SLO, curve(10_000.0))
    assert len(budget.probes) == 3
    assert budget.stopped_because == "probe budget of 3 spent before the bracket closed"


def test_start_above_capacity_searches_down() -> None:
    s = SearchSettings(kind="request_rate", start=100.0, min_load=0.1, max_load=1000.0)
    result = run_search(s, SLO, curve(5.0))
    assert [p.load for p in result.probes][:4] == [100.0, 50.0, 25.0, 12.5]
    assert result.converged
    assert result.last_pass.load <= true_capacity(5.0) < result.first_fail.load


def test_hard_failures_fail_whatever_the_percentiles() -> None:
    ok = {"ttft_ms_p99": 100.0, "tpot_ms_p99": 10.0}
    cases = {
        "2 of 100 requests failed": ProbeMeasurement(1, ok, 100, failed=2),
        "the server preempted 3 requests": ProbeMeasurement(1, ok, 100, preemptions=3),
        "saturated: requests finished slower than they arrived":
            ProbeMeasurement(1, ok, 100, saturated=True),
        "aborted: server gone": ProbeMeasurement(1, ok, 100, aborted="server gone"),
        "tpot_ms_p99 not measured": ProbeMeasurement(1, {"ttft_ms_p99": 1.0}, 100),
    }
    for reason, measurement in cases.items():
        verdict = judge(measurement, SLO)
        assert (verdict.passed, verdict.margin, verdict.reasons) == (False, math.inf, (reason,))
    assert judge(ProbeMeasurement(1, ok, 100, preemptions=3), SLO, allow_preemptions=True).passed


def test_goodput_and_margin() -> None:
    slo = SloLimits({"ttft_ms_p50": 200.0}, min_goodput=0.95)
    verdict = judge(ProbeMeasurement(1, {"ttft_ms_p50": 100.0}, 100, goodput_fraction=0.9), slo)
    assert not verdict.passed
    assert verdict.margin == pytest.approx(0.1 / 0.05)
    all_good = judge(ProbeMeasurement(1, {"ttft_ms_p50": 100.0}, 100, goodput_fraction=1.0), slo)
    assert all_good.passed and all_good.margin == pytest.approx(0.5)
    assert verdict.reasons == ("goodput 0.900 < 0.95",)
    assert slo.request_limits_ms() == {"ttft": 200.0}
    assert SloLimits({"ttft_ms_p50": 300, "ttft_ms_p99": 900}).request_limits_ms() == {
        "ttft": 900}


@pytest.mark.parametrize(("kwargs", "message"), [
    ({"limits": {"ttft_ms_p98": 1.0}}, "unknown SLO key 'ttft_ms_p98'"),
    ({"limits": {}}, "at least one latency limit"),
    ({"limits": {"ttft_ms_p99": 0.0}}, "positive numbers"),
    ({"limits": {"ttft_ms_p99": 1.0}, "min_goodput": 1.5}, "fraction"),
])
def test_slo_refuses_nonsense(kwargs: dict, message: str) -> None:
    with pytest.raises(ValueError, match=message):
        SloLimits(**kwargs)


def test_search_state_is_stepwise() -> None:
    search = CapacitySearch(SearchSettings(kind="request_rate", start=2.0), SLO)
    assert search.next_load() == 2.0
    search.add(curve(10.0)(2.0))
    assert search.next_load() == 4.0
    assert search.result().stopped_because == "not finished"


def hopper_like(knee: float, slots: int = 256):
    """TPOT grows with the batch, TTFT jumps once requests wait for one of ``slots``."""

    def measure(load: float) -> ProbeMeasurement:
        tpot = 6 + 44 * (load / knee) ** 1.5
        ttft = 80 + (8000 if load > slots else 0) + 900 * (load / knee) ** 3
        return ProbeMeasurement(load, {"ttft_ms_p99": ttft, "tpot_ms_p99": tpot}, 100,
                                request_per_s=load / 2)
    return measure


@pytest.mark.parametrize("knee", [70, 100, 150, 200, 250, 400, 1000])
def test_capacity_check_defaults_against_a_dense_grid(knee: float) -> None:
    """benchmarks/capacity_check.py's defaults: within 10% of the dense grid's capacity, with at
    most a third of its 20 probes."""
    grid = list(range(16, 321, 16))
    measure = hopper_like(knee)
    verdicts = [judge(measure(c), SLO).passed for c in grid]
    first_fail = grid[verdicts.index(False)]
    truth = grid[verdicts.index(False) - 1]
    s = SearchSettings(kind="concurrency", start=16, growth=4, precision=0.1, max_load=320,
                       max_probes=12)
    result = run_search(s, SLO, measure)
    assert result.capacity_concurrency < first_fail
    assert abs(result.capacity_concurrency / truth - 1) <= 0.1
    assert len(result.probes) <= len(grid) / 3
