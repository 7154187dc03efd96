"""A stand-in for ``loop.measure`` in race tests: each launch stores one noisy decode value, as a
real launch would, with its own run, so the race sees fresh replicates without an engine."""

from __future__ import annotations

import numpy as np

from stackdecide.evidence import EvidenceRecord, HardwareInfo
from stackdecide.launch.runs import LaunchOutcome
from stackdecide.loop import Measurement


def fake_measure(truth: dict[str, float], rel_sd: float, rng: np.random.Generator,
                 launched: list[str], seeds: list[int] | None = None,
                 gpu: str = "NVIDIA H100 80GB HBM3"):
    def measure(decision, candidate_id, store, options=None, *, notify=None, bench_progress=None,
                seed=0):
        launched.append(candidate_id)
        if seeds is not None:
            seeds.append(seed)
        source = f"run {len(launched):03d}-{candidate_id}"
        value = truth[candidate_id] * (1 + rel_sd * rng.standard_normal())
        hardware = HardwareInfo(gpu=gpu)
        records = [EvidenceRecord(candidate=candidate_id, metric="launch_ok", value=1.0,
                                  hardware=hardware, source=source),
                   EvidenceRecord(candidate=candidate_id, metric="decode_tok_s", value=value,
                                  hardware=hardware, source=source, scenario={"seed": seed})]
        store.add(records)
        outcome = LaunchOutcome(ok=True, candidate_id=candidate_id, decision_file=None,
                                engine_sha256="0" * 64, run_dir=source)
        return Measurement(candidate_id, outcome, (), tuple(records))
    return measure
