"""Benchmark: the certainty's Monte Carlo draws scored as arrays, against a loop over the draws.

Every draw of a measured ranking re-applies each criterion's value function to the drawn raw values
(``relative_to_best`` against that draw's best). ``scoring.certainty`` does it with one array call
per criterion (``mcda.value_functions.measured_scores``); the peer, measured in the same run, is
the same arithmetic draw by draw with the scalar ``measured_score``. Both must give the same
scores to the last bit.

    .venv/bin/python benchmarks/certainty_draws.py [--candidates 8] [--samples 40000]
"""

from __future__ import annotations

import argparse
import time

import numpy as np

import stackdecide
from stackdecide.evidence import EvidenceRecord, EvidenceSet, HardwareInfo
from stackdecide.mcda.value_functions import measured_score
from stackdecide.model.certainty import CertaintySettings
from stackdecide.model.metrics import METRICS
from stackdecide.scoring.certainty import _score_draws, cell_estimates

GPU = "NVIDIA H100 80GB HBM3"
CRITERIA = (("decode", "decode_tok_s", "relative_to_best"), ("prefill", "prefill_tok_s", "linear"),
            ("startup", "startup_s", "relative_to_best"))


def decision_text(candidates: int) -> str:
    criteria = "\n".join(
        f"  - {{id: {cid}, weight: 1, scale: [0, 10], direction: "
        f"{'cost' if metric == 'startup_s' else 'benefit'}, measure: {{metric: {metric}, "
        f"value: {value}" + (", worst: 0, best: 100000" if value == "linear" else "") + "}}"
        for cid, metric, value in CRITERIA)
    rows = "\n".join(f"  - {{id: c{i}, scores: {{decode: 5, prefill: 5, startup: 5}}}}"
                     for i in range(candidates))
    return (f"schema: stackdecide/v1\ndecision:\n  title: draws\n  normalize_weights: true\n"
            f"  hardware: {{gpu: {GPU}}}\n"
            f"criteria:\n{criteria}\ncandidates:\n{rows}\n")


def evidence(candidates: int, rng: np.random.Generator) -> EvidenceSet:
    base = {"decode_tok_s": 250.0, "prefill_tok_s": 55_000.0, "startup_s": 120.0}
    records = [EvidenceRecord(candidate=f"c{i}", metric=metric, value=value * rng.uniform(0.9, 1.1),
                              hardware=HardwareInfo(gpu=GPU), launch=f"c{i}-{launch}",
                              scenario={"start": "warm"} if metric == "startup_s" else {})
               for i in range(candidates) for launch in range(3) for metric, value in base.items()]
    return EvidenceSet(records)


def loop_draws(ranking: stackdecide.Ranking, cells: dict, rng: np.random.Generator,
               samples: int) -> np.ndarray:
    """The peer: the same draws as ``_score_draws``, each scored by the scalar value function."""
    decision = ranking.decision
    draws = np.repeat(decision.matrix[None].astype(float), samples, axis=0)
    for j, criterion in enumerate(decision.criteria):
        rows = [i for i, cid in enumerate(decision.candidate_ids) if (cid, criterion.id) in cells]
        metric = METRICS[cells[(decision.candidate_ids[rows[0]], criterion.id)].metric]
        raw = np.empty((samples, len(rows)))
        for column, i in enumerate(rows):
            found = cells[(decision.candidate_ids[i], criterion.id)].estimate
            center = ranking.cells[i][j].raw or found.center
            raw[:, column] = center * (1.0 + found.standard_error / abs(found.center)
                                       * rng.standard_t(found.dof, samples))
        best = raw.max(axis=1) if metric.higher_is_better else raw.min(axis=1)
        for column, i in enumerate(rows):
            draws[:, i, j] = [measured_score(
                criterion.measure, float(value), scale_low=criterion.scale.low,
                scale_high=criterion.scale.high, benefit=criterion.direction == "benefit",
                higher_is_better=metric.higher_is_better, best_raw=float(top),
                boolean=metric.boolean) for value, top in zip(raw[:, column], best, strict=True)]
    return draws


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--candidates", type=int, default=8)
    parser.add_argument("--samples", type=int, default=40_000)
    args = parser.parse_args()
    decision = stackdecide.parse(decision_text(args.candidates))
    ranking = decision.score(evidence=evidence(args.candidates, np.random.default_rng(0)),
                             certainty=CertaintySettings(samples=args.samples))
    cells = cell_estimates(ranking, 0.95)
    timings: dict[str, list[float]] = {"arrays": [], "loop": []}
    for _ in range(3):
        started = time.perf_counter()
        ours = _score_draws(ranking, cells, np.random.default_rng(1), args.samples)
        timings["arrays"].append(time.perf_counter() - started)
        started = time.perf_counter()
        theirs = loop_draws(ranking, cells, np.random.default_rng(1), args.samples)
        timings["loop"].append(time.perf_counter() - started)
    arrays, loop = min(timings["arrays"]), min(timings["loop"])
    print(f"{args.candidates} candidates x {len(CRITERIA)} measured criteria, {args.samples:,} draws; "
          "best of 3 runs each, both in this process")
    print(f"arrays (scoring.certainty): {arrays:.3f} s")
    print(f"loop over draws (scalar value function): {loop:.3f} s")
    print(f"ratio: arrays are {loop / arrays:.0f}x faster")
    print(f"largest score difference: {float(np.abs(ours - theirs).max()):.3g}")


if __name__ == "__main__":
    main()
