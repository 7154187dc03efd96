"""A race's evidence store, replayed launch by launch with this checkout's code.

For each launch, in the order the store holds them: what was predicted for the configuration
before it (calibrated by the launches before it, and by --calibrate-with), what it measured, and
the verdict within the tolerance after it. Predictions are checked against a launch they never
saw, and a verdict can be read again after a fix to the scoring.

    python benchmarks/race_replay.py DECISION STORE --tolerance 5 \
        [--calibrate-with DECISION=EVIDENCE] [--samples 20000]
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence

import stackdecide
from stackdecide.evidence import load_evidence
from stackdecide.evidence.records import EvidenceSet
from stackdecide.model.certainty import CertaintySettings
from stackdecide.search import Calibrations, calibrations_from, prediction_for


def _launches(evidence: EvidenceSet) -> list[str]:
    """Launch ids in the order their first record was stored."""
    seen: dict[str, None] = {}
    for record in evidence:
        if record.launch:
            seen.setdefault(record.launch, None)
    return list(seen)


def _measured(decision: stackdecide.Decision, records: EvidenceSet, candidate: str
              ) -> dict[str, float]:
    """Criterion id -> the value one launch measured (as scoring reads it)."""
    ranking = decision.score(evidence=records)
    i = decision.candidate_ids.index(candidate)
    return {criterion.id: float(ranking.cells[i][j].replicates[0][1])
            for j, criterion in enumerate(decision.criteria)
            if ranking.cells[i][j].measured and ranking.cells[i][j].replicates}


def replay(decision: stackdecide.Decision, evidence: EvidenceSet, tolerance: float,
           also: Calibrations, samples: int) -> str:
    launches = _launches(evidence)
    settings = CertaintySettings(samples=samples, tolerance=tolerance)
    lines = ["| # | configuration | start | criterion | predicted before (80% interval) "
             "| measured | inside |", "|---|---|---|---|---|---|---|"]
    verdicts = []
    # the evidence and prediction after each launch k (0: before the first), each made once: the
    # prediction after launch k is the one before launch k + 1
    upto = [EvidenceSet.of(r for r in evidence if r.launch in launches[:k])
            for k in range(len(launches) + 1)]
    predictions = [prediction_for(decision, known, also=also) for known in upto]
    for k, launch in enumerate(launches, start=1):
        this = EvidenceSet.of(r for r in evidence if r.launch == launch)
        candidate = this.records[0].candidate
        prediction = predictions[k - 1]
        start = next((str(r.scenario.get("start")) for r in this if r.metric == "startup_s"), "-")
        for criterion_id, value in _measured(decision, this, candidate).items():
            predicted = prediction.get(candidate, criterion_id)
            if predicted is None:
                continue
            inside = predicted.low <= value <= predicted.high
            lines.append(f"| {k} | {candidate} | {start} | {criterion_id} | "
                         f"{predicted.value:,.4g} ({predicted.low:,.4g}-{predicted.high:,.4g}) | "
                         f"{value:,.4g} | {'yes' if inside else 'no'} |")
        ranking = decision.score(evidence=upto[k], certainty=settings, prediction=predictions[k])
        sure = ranking.certainty
        assert sure is not None
        rests = sure.launches()
        verdicts.append(f"{k}. after {candidate} ({rests[candidate]} launch(es) counted): "
                        f"{sure.verdict.text}")
    return "\n".join([*lines, "", "verdict after each launch:", *verdicts])


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("decision")
    parser.add_argument("store")
    parser.add_argument("--tolerance", type=float, required=True, help="points of total")
    parser.add_argument("--calibrate-with", action="append", default=[])
    parser.add_argument("--samples", type=int, default=20_000)
    args = parser.parse_args(argv)
    decision = stackdecide.load(args.decision)
    print(replay(decision, load_evidence(args.store), args.tolerance,
                 calibrations_from(args.calibrate_with), args.samples))


if __name__ == "__main__":
    main()
