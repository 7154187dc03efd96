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
