"""The certified race, with the launch replaced by synthetic measurements (no engine).

``measure`` is swapped for a function that stores what one launch of a candidate would: a launch
record and a decode speed drawn around the candidate's true value, with the launch's own source.
Everything else (scoring, certainty, the racing policy, the stop rule, the budget, the seeds) is the
real one.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from race_launches import fake_measure

import stackdecide
from stackdecide import orchestrate
from stackdecide.evidence import EvidenceStore
from stackdecide.launch.runs import LaunchOutcome
from stackdecide.loop import Measurement
from stackdecide.race import RaceLimits, until_certain

THREE = """\
schema: stackdecide/v1
decision:
  title: three stacks
  hardware: {gpu: NVIDIA H100 80GB HBM3}
criteria:
  - id: decode
    weight: 1
    measure: {metric: decode_tok_s, value: linear, worst: 0, best: 400}
candidates:
  - {id: a, scores: {decode: 5}}
  - {id: b, scores: {decode: 6}}
  - {id: c, scores: {decode: 4}}
"""


@pytest.fixture
def store(tmp_path: Path):
    with EvidenceStore(tmp_path / "evidence.db") as opened:
        yield opened


def test_separated_candidates_are_certified_with_interleaved_replicates(
        store: EvidenceStore, monkeypatch: pytest.MonkeyPatch) -> None:
    launched: list[str] = []
    monkeypatch.setattr(orchestrate, "measure", fake_measure({"a": 300, "b": 200, "c": 150}, 0.02,
                                                              np.random.default_rng(0), launched))
    result = until_certain(stackdecide.parse(THREE), store, seed=3)
    assert result.stop.kind == "certified" and result.certified == "a"
    assert result.certainty.p_best["a"] >= 0.95
    # a first pass over every candidate that could win, in random order, then replicates of the
    # leader; b and c are dropped once their P(best) cannot matter
    assert sorted(launched[:3]) == ["a", "b", "c"]
    assert launched.count("a") >= 2 and set(launched[3:]) == {"a"}
    assert set(result.stop.dropped) == {"b", "c"}


def test_equal_candidates_end_in_a_tie_on_the_launch_budget(
        store: EvidenceStore, monkeypatch: pytest.MonkeyPatch) -> None:
    launched: list[str] = []
    monkeypatch.setattr(orchestrate, "measure", fake_measure({"a": 200, "b": 200, "c": 100}, 0.03,
                                                              np.random.default_rng(1), launched))
    result = until_certain(stackdecide.parse(THREE), store, seed=0,
                           limits=RaceLimits(max_launches=6))
    assert len(launched) == 6
    assert result.stop.kind == "budget" and result.certified is None
    tied = {name for name, _ in result.stop.tied}
    assert {"a", "b"} <= tied and "c" not in tied
    assert "statistical tie" in result.stop.reason


def test_a_hopeless_candidate_is_never_launched(store: EvidenceStore,
                                                monkeypatch: pytest.MonkeyPatch) -> None:
    """c, at its best possible decode speed, still loses on the judged 75%: it is never launched."""
    text = THREE.replace("{id: c, scores: {decode: 4}}",
                         "{id: c, scores: {decode: 4, speed: 0}}").replace(
        "criteria:\n", "criteria:\n  - {id: speed, weight: 0.75}\n").replace(
        "weight: 1\n", "weight: 0.25\n").replace(
        "{id: a, scores: {decode: 5}}", "{id: a, scores: {decode: 5, speed: 9}}").replace(
        "{id: b, scores: {decode: 6}}", "{id: b, scores: {decode: 6, speed: 9}}")
    launched: list[str] = []
    monkeypatch.setattr(orchestrate, "measure", fake_measure({"a": 300, "b": 200, "c": 400}, 0.02,
                                                              np.random.default_rng(2), launched))
    result = until_certain(stackdecide.parse(text), store, seed=0)
    assert "c" not in launched  # 25% of the weight at best cannot beat 75% at 9/10
    assert result.certified == "a"


def test_a_race_resumes_from_the_store(store: EvidenceStore,
                                       monkeypatch: pytest.MonkeyPatch) -> None:
    launched: list[str] = []
    seeds: list[int] = []
    monkeypatch.setattr(orchestrate, "measure", fake_measure({"a": 300, "b": 200, "c": 150}, 0.02,
                                                              np.random.default_rng(4), launched,
                                                              seeds))
    decision = stackdecide.parse(THREE)
    first = until_certain(decision, store, seed=0, limits=RaceLimits(max_launches=2))
    assert first.stop.kind == "budget" and len(launched) == 2
    second = until_certain(decision, store, seed=0)
    assert second.certified == "a"
    assert len(second.measurements) == len(launched) - 2  # the first two were not repeated
    # every launch sent prompts of its own, also those of the resumed race
    assert len(set(seeds)) == len(seeds) == len(launched)


def test_an_environment_failure_stops_the_race_instead_of_retrying(
        store: EvidenceStore, monkeypatch: pytest.MonkeyPatch) -> None:
    launched: list[str] = []

    def busy_port(decision, candidate_id, store, options=None, *, notify=None,
                  bench_progress=None, seed=0):
        launched.append(candidate_id)
        outcome = LaunchOutcome(ok=False, candidate_id=candidate_id, decision_file=None,
                                engine_sha256="0" * 64, run_dir="run", failure="port_in_use",
                                reason="the server's port is already taken")
        return Measurement(candidate_id, outcome)

    monkeypatch.setattr(orchestrate, "measure", busy_port)
    result = until_certain(stackdecide.parse(THREE), store, seed=0)
    assert len(launched) == 1 and len(store.load()) == 0
    assert result.stop.kind == "budget"
    assert result.stop.reason.startswith(f"stopped: {launched[0]} could not be measured "
                                           "(port_in_use: the server's port is already taken)")


QUALITY = THREE.replace("""candidates:""", """benchmark:
  scenarios:
    - {scenario: decode}
    - {scenario: quality, reference: c}
candidates:""")


def test_the_quality_reference_is_launched_first_and_only_once(
        store: EvidenceStore, monkeypatch: pytest.MonkeyPatch) -> None:
    """Every candidate's divergence is measured against the reference's file: a race whose
    random first pass would start elsewhere launches the reference first, and a reference whose
    launch recorded no quality (here: the stand-in records none) is not launched again for it."""
    truth = {"a": 300, "b": 200, "c": 150}
    for decision, name in ((stackdecide.parse(QUALITY), "q"), (stackdecide.parse(THREE), "p")):
        firsts = []
        for seed in range(4):
            launched: list[str] = []
            monkeypatch.setattr(orchestrate, "measure", fake_measure(
                truth, 0.02, np.random.default_rng(seed), launched))
            with EvidenceStore(store.path.parent / f"{name}{seed}.db") as fresh:
                until_certain(decision, fresh, seed=seed, limits=RaceLimits(max_launches=3))
            firsts.append(launched[0])
            if name == "q":
                assert launched.count("c") == 1
        if name == "q":
            assert firsts == ["c"] * 4
        else:  # without the quality scenario the random first pass starts elsewhere too
            assert set(firsts) != {"c"}
