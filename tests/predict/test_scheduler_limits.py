"""Scheduler limits in a space: a max_num_seqs or max_num_batched_tokens moves a rate only at the
loads it binds at, so a configuration that differs from a launched one only in limits no load
reaches is its twin there: predicted as that launch, and drawn with it."""

from __future__ import annotations

import numpy as np
import pytest

import stackdecide
from stackdecide.bench.results import BENCH_LOADS
from stackdecide.evidence import EvidenceSet
from stackdecide.evidence.records import EvidenceRecord, HardwareInfo
from stackdecide.model.certainty import CertaintySettings
from stackdecide.predict import calibration, predict
from stackdecide.predict.ceilings import Load
from stackdecide.predict.configuration import binds_at

DEMO = "criteria/cpu-demo.yaml"  # max_num_seqs 1, 4, 16; max_num_batched_tokens 64, 1024
LAUNCHED = "bf16-batch1024-seqs4"


@pytest.mark.parametrize(("axis", "label", "load", "binds"), [
    ("axis:engine.max_num_seqs", "1", Load(4, 64, 256), True),
    ("axis:engine.max_num_seqs", "4", Load(4, 64, 256), False),
    ("axis:engine.max_num_seqs", "1", Load(1, 32, 256), False),
    # a step holds a token of each stream and a prompt being prefilled: 64 + 4 > 64
    ("axis:engine.max_num_batched_tokens", "64", Load(4, 64, 256), True),
    ("axis:engine.max_num_batched_tokens", "64", Load(1, 32, 256), False),
    ("axis:engine.max_num_batched_tokens", "1024", Load(4, 64, 256), False),
    ("axis:engine.dtype", "bfloat16", Load(4, 64, 256), None),  # no scheduler limit
    ("axis:env.MAX_NUM_SEQS", "4", Load(4, 64, 256), None),  # not an engine key
])
def test_a_scheduler_limit_binds_where_the_load_asks_for_more(axis, label, load, binds) -> None:
    assert binds_at(axis, label, load) is binds


def one_launch(decision: stackdecide.Decision) -> EvidenceSet:
    cpu = HardwareInfo(gpu="cpu")
    sha = decision.candidate(LAUNCHED).config_sha256
    base = {"candidate": LAUNCHED, "hardware": cpu, "source": "run-1", "launch": "run-1",
            "config_sha256": sha}
    return EvidenceSet((
        EvidenceRecord(metric="launch_ok", value=1.0, **base),
        EvidenceRecord(metric="startup_s", value=25.0, scenario={"start": "cold"}, **base),
        EvidenceRecord(metric="decode_tok_s", value=1100.0, **base,
                       scenario={"scenario": "decode", "concurrency": 1, "input_len": 32,
                                 "output_len": 256}),
        EvidenceRecord(metric="output_tok_s", value=2600.0, **base,
                       scenario={"scenario": "throughput", "concurrency": 4, "input_len": 64,
                                 "output_len": 256}),
    ))


def test_twins_are_the_configurations_a_launch_stands_for_at_each_load() -> None:
    decision = stackdecide.load(DEMO)
    evidence = one_launch(decision)
    prediction = predict(decision, calibration(decision, evidence), BENCH_LOADS)
    twins = {(p.candidate, p.criterion): p.twin for p in prediction.predictions if p.twin}
    assert twins == {
        # max_num_seqs 16 reaches no load: the launch stands for it on both rates
        ("bf16-batch1024-seqs16", "decode_speed"): LAUNCHED,
        ("bf16-batch1024-seqs16", "throughput"): LAUNCHED,
        # max_num_seqs 1 serialises 4 streams, not 1
        ("bf16-batch1024-seqs1", "decode_speed"): LAUNCHED,
    }
    # 64 batched tokens bind at 4 streams only, but those configurations also set
    # enable_chunked_prefill, a key no limit rule reads: no launch here stands for them
    # start-up: a limit moves only how many batch sizes get CUDA graphs; still a prediction of
    # its own (the start of a configuration never started is not that launch's)
    assert not any(p.twin for p in prediction.predictions if p.criterion == "startup")


def test_a_twin_takes_the_launch_s_value_and_is_drawn_with_it() -> None:
    decision = stackdecide.load(DEMO)
    evidence = one_launch(decision)
    prediction = predict(decision, calibration(decision, evidence), BENCH_LOADS)
    ranking = decision.score(evidence=evidence, prediction=prediction,
                             certainty=CertaintySettings(samples=400, tolerance=5.0))
    ids = ranking.candidate_ids
    launched, twin, other = (ids.index(c) for c in (LAUNCHED, "bf16-batch1024-seqs16",
                                                     "bf16-batch64-seqs16"))
    throughput = [c.id for c in decision.criteria].index("throughput")
    assert ranking.cells[twin][throughput].predicted
    assert ranking.cells[twin][throughput].twin == LAUNCHED
    assert ranking.cells[twin][throughput].raw == ranking.cells[launched][throughput].raw == 2600.0
    assert ranking.cells[other][throughput].twin is None
    sure = ranking.certainty
    assert sure is not None and sure.totals is not None
    # the twins' totals differ only by what is not a rate (start-up, launch_ok): far less than
    # a configuration predicted on its own
    twin_gap = np.std(sure.totals[:, launched] - sure.totals[:, twin])
    other_gap = np.std(sure.totals[:, launched] - sure.totals[:, other])
    assert twin_gap < 0.5 * other_gap


def launch_of(decision: stackdecide.Decision, candidate: str, launch: str,
              throughput: float, startup: float) -> tuple[EvidenceRecord, ...]:
    base = {"candidate": candidate, "hardware": HardwareInfo(gpu="cpu"), "source": launch,
            "launch": launch, "config_sha256": decision.candidate(candidate).config_sha256}
    return (EvidenceRecord(metric="launch_ok", value=1.0, **base),
            EvidenceRecord(metric="startup_s", value=startup, scenario={"start": "cold"}, **base),
            EvidenceRecord(metric="decode_tok_s", value=1100.0, **base,
                           scenario={"scenario": "decode", "concurrency": 1, "input_len": 32,
                                     "output_len": 256}),
            EvidenceRecord(metric="output_tok_s", value=throughput, **base,
                           scenario={"scenario": "throughput", "concurrency": 4, "input_len": 64,
                                     "output_len": 256}))


def test_launched_twins_pool_their_launches_as_replicates_of_one_mean() -> None:
    decision = stackdecide.load(DEMO)
    twin_id, other_id = "bf16-batch1024-seqs16", "fp32-batch1024-seqs4"
    evidence = EvidenceSet(launch_of(decision, LAUNCHED, "run-1", 2600.0, 25.0)
                           + launch_of(decision, LAUNCHED, "run-2", 2000.0, 26.0)
                           + launch_of(decision, twin_id, "run-3", 3000.0, 27.0)
                           + launch_of(decision, other_id, "run-4", 2500.0, 25.0))
    prediction = predict(decision, calibration(decision, evidence), BENCH_LOADS)
    ranking = decision.score(evidence=evidence, prediction=prediction,
                             certainty=CertaintySettings(samples=2000, tolerance=5.0))
    ids = ranking.candidate_ids
    head, twin, other = (ids.index(c) for c in (LAUNCHED, twin_id, other_id))
    criteria = [c.id for c in decision.criteria]
    throughput, startup = criteria.index("throughput"), criteria.index("startup")
    pooled = (("run-1", 2600.0), ("run-2", 2000.0), ("run-3", 3000.0))
    # max_num_seqs 4 and 16 schedule 4 streams alike: three launches of one mean, median 2600
    assert ranking.cells[head][throughput].replicates == pooled
    assert ranking.cells[twin][throughput].replicates == pooled
    assert ranking.cells[head][throughput].raw == ranking.cells[twin][throughput].raw == 2600.0
    assert ranking.cells[twin][throughput].twin == LAUNCHED
    assert ranking.cells[head][throughput].twin is None
    assert ranking.cells[other][throughput].replicates == (("run-4", 2500.0),)
    # start-up is each configuration's own (no twins there)
    assert ranking.cells[twin][startup].replicates == (("run-3", 27.0),)
    assert ranking.cells[head][startup].twin is None and ranking.cells[twin][startup].twin is None
    sure = ranking.certainty
    assert sure is not None and sure.totals is not None
    estimates = sure.cells
    assert estimates[(twin_id, "throughput")].estimate == estimates[(LAUNCHED, "throughput")].estimate
    assert estimates[(twin_id, "throughput")].launches == ("run-1", "run-2", "run-3")
    # what a certificate rests on is the cell with the fewest launches: the twin's own start-up
    assert sure.launches()[twin_id] == 1 and sure.launches()[LAUNCHED] == 2
    # drawn as one mean: the twins' totals differ by start-up alone, the other's by its throughput
    twin_gap = np.std(sure.totals[:, head] - sure.totals[:, twin])
    other_gap = np.std(sure.totals[:, head] - sure.totals[:, other])
    assert twin_gap < 0.25 * other_gap


def test_a_choice_stands_for_its_twins_on_every_rate_and_a_rerun_says_so() -> None:
    from stackdecide.search import Answer, compare_answers, rate_twins

    decision = stackdecide.load(DEMO)
    prediction = predict(decision, calibration(decision, one_launch(decision)), BENCH_LOADS)
    # max_num_seqs 16 is the launch on both rates; 1 serialises the 4 streams: a twin on one
    assert rate_twins(prediction, LAUNCHED) == ("bf16-batch1024-seqs16",)
    assert rate_twins(prediction, "bf16-batch1024-seqs16") == (LAUNCHED,)
    assert "bf16-batch1024-seqs1" not in rate_twins(prediction, LAUNCHED)
    before = Answer(LAUNCHED, True, (LAUNCHED,), 10.0, "run-1", twins=(LAUNCHED[:-1] + "16",))
    now = Answer("bf16-batch1024-seqs16", True, ("bf16-batch1024-seqs16",), 10.0,
                 twins=(LAUNCHED,))
    assert "the same configuration on every rate measured (bf16-batch1024-seqs4, now its twin " \
        "bf16-batch1024-seqs16" in compare_answers(now, before)
    # a choice's twin in the other run's equivalence set is an overlap, said to be through twins
    run_3 = Answer("bf16-batch1024-seqs16", True, ("bf16-batch1024-seqs16", "bf16-batch64-seqs4"),
                   10.0, "run-3")
    run_4 = Answer("bf16-batch64-seqs16", True, ("bf16-batch64-seqs16",), 10.0,
                   twins=("bf16-batch64-seqs4",))
    assert compare_answers(run_4, run_3).endswith(
        "equivalence sets overlapping in bf16-batch64-seqs4 (counting each choice's twins on "
        "every rate)")
