"""The race over a space, with the launch replaced by synthetic measurements (no engine).

The truth is additive in the axes (each axis level moves throughput by a fixed factor), so
predictions pooled over shared axes can spare launches. Scoring, prediction, the certificate
within a tolerance and the launch choice are the real ones.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

import stackdecide
from stackdecide import orchestrate
from stackdecide.errors import StackdecideError
from stackdecide.evidence import EvidenceStore
from stackdecide.evidence.records import EvidenceRecord, HardwareInfo
from stackdecide.launch.runs import LaunchOutcome
from stackdecide.loop import Measurement
from stackdecide.model.space import configuration_of
from stackdecide.search import SearchLimits, search, tolerance_points

SPACE = Path("criteria/cpu-space.yaml")


def quiet_space(tmp_path: Path) -> Path:
    """criteria/cpu-space.yaml with the noise a quiet machine has (5% a launch)."""
    text = SPACE.read_text().replace("noise: {output_tok_s: 0.3, startup_s: 0.3}",
                                     "noise: {output_tok_s: 0.05, startup_s: 0.1}")
    path = tmp_path / "cpu-space.yaml"
    path.write_text(text)
    return path


LOADS = ((1, 32), (4, 64))  # (streams, prompt tokens) of the decode and throughput scenarios


def binds(axis: str, label: str, streams: int, prompt: int) -> bool:
    """Whether a setting can matter at a load: a scheduler limit only where it holds back a step
    (max_num_seqs below the streams, max_num_batched_tokens below a prompt and a token a stream)."""
    if axis == "engine.max_num_seqs":
        return int(label) < streams
    if axis == "engine.max_num_batched_tokens":
        return int(label) < prompt + streams
    return True


def fake_measure(decision: stackdecide.Decision, rng: np.random.Generator, launched: list[str]):
    effects: dict[tuple[str, str], float] = {}
    truth: dict[str, dict[int, float]] = {}  # candidate -> streams -> tok/s of one stream
    for candidate_id in decision.candidate_ids:
        config = configuration_of(decision.model, candidate_id)
        assert config is not None
        for s in config.settings:
            effects.setdefault((s.axis, s.label), 0.2 * rng.standard_normal())
        truth[candidate_id] = {streams: 40.0 * np.exp(sum(
            effects[(s.axis, s.label)] for s in config.settings
            if binds(s.axis, s.label, streams, prompt))) for streams, prompt in LOADS}

    def measure(decision, candidate_id, store, options=None, *, notify=None, bench_progress=None,
                seed=0):
        launched.append(candidate_id)
        source = f"run {len(launched):03d}-{candidate_id}"
        cpu = HardwareInfo(gpu="cpu")
        records = [EvidenceRecord(candidate=candidate_id, metric="launch_ok", value=1.0,
                                  hardware=cpu, source=source, launch=source),
                   EvidenceRecord(candidate=candidate_id, metric="startup_s",
                                  value=25.0 * (1 + 0.05 * rng.standard_normal()), hardware=cpu,
                                  source=source, launch=source)]
        for streams, prompt in LOADS:
            records.append(EvidenceRecord(
                candidate=candidate_id, metric="output_tok_s", hardware=cpu, source=source,
                launch=source,
                value=truth[candidate_id][streams] * streams * (1 + 0.03 * rng.standard_normal()),
                scenario={"concurrency": streams, "input_len": prompt, "output_len": 64,
                          "scenario": "decode" if streams == 1 else "throughput", "seed": seed}))
        store.add(records)
        outcome = LaunchOutcome(ok=True, candidate_id=candidate_id, decision_file=None,
                                engine_sha256="0" * 64, run_dir=source, startup_s=25.0)
        return Measurement(candidate_id, outcome, (), tuple(records))

    return measure, truth


@pytest.mark.parametrize("seed", range(5))
def test_a_space_is_certified_within_the_tolerance_without_launching_every_configuration(
        seed: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    decision = stackdecide.load(quiet_space(tmp_path))
    launched: list[str] = []
    measure, truth = fake_measure(decision, np.random.default_rng(seed), launched)
    monkeypatch.setattr(orchestrate, "measure", measure)
    with EvidenceStore(tmp_path / "evidence.db") as store:
        result = search(decision, store, limits=SearchLimits(tolerance=3.0, max_launches=20),
                        samples=1000)
    assert result.stop.kind == "certified"
    assert len(set(launched)) < len(decision.candidate_ids)
    winner = result.stop.winner
    assert winner is not None and launched.count(winner) >= 2
    # the winner's true total is within the tolerance of the best's: decode and throughput are
    # 30 points each, relative to the best; start-up and launch_ok are the same for all
    best = {streams: max(rates[streams] for rates in truth.values()) for streams, _ in LOADS}
    totals = {cid: sum(30.0 * rates[streams] / best[streams] for streams, _ in LOADS)
              for cid, rates in truth.items()}
    assert totals[winner] >= max(totals.values()) - 3.0
    assert result.certainty.verdict.kind == "certified"


@pytest.mark.parametrize("seed", range(3))
def test_a_settling_race_sorts_every_contender_into_the_equivalence_set_or_out_of_it(
        seed: int, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    decision = stackdecide.load(quiet_space(tmp_path))
    runs: dict[bool, list[str]] = {}
    results = {}
    for settle in (False, True):
        launched: list[str] = []
        measure, truth = fake_measure(decision, np.random.default_rng(seed), launched)
        monkeypatch.setattr(orchestrate, "measure", measure)
        with EvidenceStore(tmp_path / f"evidence-{settle}.db") as store:
            results[settle] = search(decision, store, samples=1000, limits=SearchLimits(
                tolerance=3.0, max_launches=30, settle=settle))
        runs[settle] = launched
    settled = results[True]
    assert settled.stop.kind == "certified" and len(runs[True]) >= len(runs[False])
    within = settled.certainty.within
    assert within is not None
    p_within = within.probabilities.p_within
    # every contender is in the set (P >= 0.95) or out of it (P <= 0.05), unless the budget ended
    # (its last launch kept in reserve)
    open_ = [i for i in within.contenders if 0.05 < p_within[i] < 0.95]
    assert not open_ or len(runs[True]) >= 29
    assert len(within.equivalent) >= len(results[False].certainty.within.equivalent)
    best = {streams: max(rates[streams] for rates in truth.values()) for streams, _ in LOADS}
    totals = {cid: sum(30.0 * rates[streams] / best[streams] for streams, _ in LOADS)
              for cid, rates in truth.items()}
    ids = decision.candidate_ids
    assert all(totals[ids[i]] >= max(totals.values()) - 3.0 for i in within.equivalent)



@pytest.mark.parametrize("seed", range(3))
def test_settling_never_spends_the_last_launch(seed: int, tmp_path: Path,
                                               monkeypatch: pytest.MonkeyPatch) -> None:
    """A settling launch may undo a borderline certificate; it is made only while a launch stays in
    reserve to win the certificate back, so a budget one launch beyond the first certificate ends
    on that certificate, unsettled."""
    decision = stackdecide.load(quiet_space(tmp_path))
    runs: dict[int | None, list[str]] = {}
    results = {}
    for cap in (None, 0):
        launched: list[str] = []
        measure, _ = fake_measure(decision, np.random.default_rng(seed), launched)
        monkeypatch.setattr(orchestrate, "measure", measure)
        max_launches = 30 if cap is None else len(runs[None]) + 1
        with EvidenceStore(tmp_path / f"evidence-{cap}.db") as store:
            results[cap] = search(decision, store, samples=1000, limits=SearchLimits(
                tolerance=3.0, max_launches=max_launches, settle=cap is not None))
        runs[cap] = launched
    assert results[None].stop.kind == "certified"
    assert results[0].stop.kind == "certified" and runs[0] == runs[None]

def test_tolerance_is_read_as_points_or_a_percentage_of_a_criterion() -> None:
    space = stackdecide.load(SPACE)
    hopper = stackdecide.load("criteria/hopper.yaml")
    assert tolerance_points(space, None) == 1.0
    assert tolerance_points(hopper, None) == 0.0
    assert tolerance_points(space, "0.5") == 0.5
    # 10% of throughput, a relative_to_best criterion of weight 30%: 3 points
    assert tolerance_points(space, "10%throughput") == pytest.approx(3.0)
    with pytest.raises(StackdecideError, match="not a measured criterion"):
        tolerance_points(space, "10%nope")
    with pytest.raises(StackdecideError, match="relative_to_best"):
        tolerance_points(space, "10%startup")
    with pytest.raises(StackdecideError, match="points of total"):
        tolerance_points(space, "-1")


def test_a_demo_says_how_its_answer_compares_with_the_previous_one(tmp_path: Path) -> None:
    from stackdecide.search import Answer, compare_answers, previous_answer, write_answer

    first, second, third = (tmp_path / f"demo-2026120{k}T000000Z" for k in (1, 2, 3))
    for folder in (first, second, third):
        folder.mkdir()
    assert previous_answer(first) is None
    assert compare_answers(Answer("a", True, ("a", "b"), 5.0), None) == \
        "previous run: none on this machine to compare with"
    write_answer(first, Answer("a", True, ("a", "b"), 5.0))
    (second / "answer.json").write_text("{not json")  # a damaged answer is passed over
    found = previous_answer(third)
    assert found == Answer("a", True, ("a", "b"), 5.0, str(first))
    assert "the same choice, a" in compare_answers(Answer("a", True, ("a",), 5.0), found)
    assert "overlapping in b" in compare_answers(Answer("b", True, ("b", "c"), 5.0), found)
    assert "no configuration equivalent in both" in \
        compare_answers(Answer("c", False, ("c",), 5.0), found)
    # two certificates naming different configurations agree when each lies in the set that
    # holds the best in the other run
    before = Answer("a", True, ("a",), 5.0, holds_best=("a", "c"))
    assert "each choice is in the other run's set that holds the best" in \
        compare_answers(Answer("c", True, ("c",), 5.0, holds_best=("c", "d", "a")), before)
    assert "a different choice" in \
        compare_answers(Answer("c", True, ("c",), 5.0, holds_best=("c", "d")), before)
    write_answer(third, Answer("c", True, ("c",), 5.0, holds_best=("c", "a")))
    assert previous_answer(tmp_path / "demo-20261204T000000Z").holds_best == ("c", "a")


def test_the_set_holding_the_best_is_the_fewest_reaching_the_confidence() -> None:
    from stackdecide.search import holding_best

    ids = ("a", "b", "c", "d")
    assert holding_best(ids, np.array([0.1, 0.6, 0.3, 0.0]), 0.95) == ("b", "c", "a")
    assert holding_best(ids, np.array([0.0, 0.96, 0.04, 0.0]), 0.95) == ("b",)
    assert holding_best(ids, np.array([0.25, 0.25, 0.25, 0.25]), 0.95) == ids


def test_the_embedded_demo_space_is_criteria_cpu_demo() -> None:
    from stackdecide.cli.demo import embedded_cpu_decision

    assert embedded_cpu_decision(space=True).read_text() == Path("criteria/cpu-demo.yaml").read_text()


def test_several_launches_a_step_go_to_distinct_configurations(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    decision = stackdecide.load(quiet_space(tmp_path))
    launched: list[str] = []
    measure, _ = fake_measure(decision, np.random.default_rng(1), launched)
    steps: list[tuple[str, ...]] = []

    def two_at_once(decision, store, seeds, limit):
        steps.append(tuple(seeds))
        assert limit == len(seeds)
        return orchestrate.Batch(tuple(measure(decision, cid, store, seed=seed)
                                       for cid, seed in seeds.items()))

    with EvidenceStore(tmp_path / "evidence.db") as store:
        result = search(decision, store, limits=SearchLimits(tolerance=3.0, max_launches=12,
                                                             at_once=2),
                        runner=two_at_once, samples=1000)
    assert steps and all(len(step) == len(set(step)) for step in steps)
    assert max(len(step) for step in steps) == 2
    assert len(launched) == sum(len(step) for step in steps) == len(result.measurements)


def test_a_launch_refused_before_its_engine_started_counts_against_no_launch_limit(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    decision = stackdecide.load(quiet_space(tmp_path))
    launched: list[str] = []
    measure, _ = fake_measure(decision, np.random.default_rng(0), launched)
    refused: list[str] = []

    def refuse_batch32(decision, candidate_id, store, options=None, **kwargs):
        if "batch32" not in candidate_id:
            return measure(decision, candidate_id, store, options, **kwargs)
        refused.append(candidate_id)
        source = f"refused {len(refused):03d}-{candidate_id}"
        record = EvidenceRecord(candidate=candidate_id, metric="launch_ok", value=0.0,
                                hardware=HardwareInfo(gpu="cpu"), source=source, launch=source,
                                note="refused: a rule of the installed vLLM")
        store.add([record])
        outcome = LaunchOutcome(ok=False, candidate_id=candidate_id, decision_file=None,
                                engine_sha256="0" * 64, run_dir=source, failure="refused",
                                reason="a rule of the installed vLLM")
        return Measurement(candidate_id, outcome, (), (record,))

    monkeypatch.setattr(orchestrate, "measure", refuse_batch32)
    with EvidenceStore(tmp_path / "evidence.db") as store:
        result = search(decision, store, limits=SearchLimits(tolerance=3.0, max_launches=4),
                        samples=500)
    assert refused, "the race tried a configuration the fake refuses"
    assert len(launched) == 4 or result.stop.kind == "certified"
    assert len(launched) <= 4


def test_configurations_for_other_hardware_are_said_apart_from_those_predicted_out(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """criteria/hopper-space.yaml's tensor-parallel-2 configurations need two GPUs: the race never
    launches them, and says so, rather than calling them predicted unable to come within delta."""
    decision = stackdecide.load(Path("criteria/hopper-space.yaml"))
    launched: list[str] = []

    def measure(decision, candidate_id, store, options=None, *, notify=None, bench_progress=None,
                seed=0):
        launched.append(candidate_id)
        source = f"run 001-{candidate_id}"
        record = EvidenceRecord(candidate=candidate_id, metric="launch_ok", value=1.0,
                                hardware=HardwareInfo(gpu="NVIDIA H100 80GB HBM3"), source=source,
                                launch=source)
        store.add([record])
        outcome = LaunchOutcome(ok=True, candidate_id=candidate_id, decision_file=None,
                                engine_sha256="0" * 64, run_dir=source, startup_s=200.0)
        return Measurement(candidate_id, outcome, (), (record,))

    monkeypatch.setattr(orchestrate, "measure", measure)
    said: list[str] = []
    with EvidenceStore(tmp_path / "evidence.db") as store:
        search(decision, store, samples=500, notify=said.append,
               limits=SearchLimits(tolerance=5.0, max_launches=1))
    assert len(launched) == 1 and "-tp1-" in launched[0]
    other = next(line for line in said if line.startswith("not launched, for hardware other"))
    assert other.count("-tp2-") == 8 and "and 16 more" in other
    assert not any("-tp2-" in line for line in said if "predicted unable" in line)
