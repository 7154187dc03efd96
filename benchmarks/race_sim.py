"""Simulation: how many launches the race over a committed space takes, against a truth made of
a committed GPU race's measurements.

The race is ``stackdecide launch --until-certain`` itself (``search.search``, its scoring, its
predictions and its stop); only the launch is simulated. Each launch returns the records a real
one stores (``launch_ok``, a cold or warm ``startup_s``, and each rate at its scenario's load),
with values drawn around a **truth**:

* the space's configurations that the truth store (``--truth``, a committed race's evidence, with
  its decision file) measured under the same id: the mean of their launches;
* every other configuration: the prediction model's mean, calibrated by the truth store and by
  the ``--calibrate-with`` launches (through the levels they share: GPU, weights, KV-cache dtype,
  attention backend, ...), times a residual drawn per race and metric (``--residual``, a log-SD:
  what the model cannot know of a configuration it never saw launched);
* restart noise per launch (``NOISE``: what the leader's two launches of the H100 race show,
  rounded up); a first start-up is cold (the configuration's own in the truth store, else the
  store's median cold start-up), a repeat warm at ``WARM_SHARE`` of it.

The race itself is calibrated as the live one was: by ``--calibrate-with`` only, never by the
truth store. Each race prints its launches, its verdict and its choice, and whether that choice
is truly within the tolerance of the best (the decision scored on the truth itself).

    python benchmarks/race_sim.py DECISION --truth DECISION=STORE \\
        [--calibrate-with DECISION=STORE] [--races 10] [--tolerance 5] [--max-launches 14]
"""

from __future__ import annotations

import argparse
import statistics
import tempfile
import time
from collections.abc import Callable, Sequence
from pathlib import Path

import numpy as np

import stackdecide
from stackdecide import orchestrate
from stackdecide.decision import Decision
from stackdecide.evidence import EvidenceStore
from stackdecide.evidence.records import EvidenceRecord, EvidenceSet
from stackdecide.launch.runs import LaunchOutcome
from stackdecide.loop import Measurement
from stackdecide.search import Calibrations, SearchLimits, calibrations_from, prediction_for, search

RATES = {"decode_tok_s": "decode", "prefill_tok_s": "prefill", "output_tok_s": "throughput"}
# restart noise of one launch (log-SD): the H100 race's leader, launched twice, moved decode
# 0.0%, prefill 3.7% and throughput 0.9% (docs/results/h100-space/fifth-race)
NOISE = {"decode_tok_s": 0.015, "prefill_tok_s": 0.03, "output_tok_s": 0.02, "startup_s": 0.08}
WARM_SHARE = 0.73  # warm / cold start-up of the H100 race's leader: 72.2 s / 99.4 s


def _at_its_scenario(record: EvidenceRecord) -> bool:
    """A rate measured at the scenario its criterion reads."""
    return RATES.get(record.metric) == (record.scenario or {}).get("scenario")


def _cold_start(record: EvidenceRecord) -> bool:
    return record.metric == "startup_s" and (record.scenario or {}).get("start") == "cold"


def _rate_records(store: EvidenceSet) -> list[EvidenceRecord]:
    """The records of one launch that scoring reads, as a template: the start, the start-up and
    each rate at its own scenario."""
    first = next(r.launch for r in store if r.launch)
    return [r for r in store if r.launch == first and (
        r.metric in ("launch_ok", "startup_s") or _at_its_scenario(r))]


def _launch_records(decision: Decision, template: list[EvidenceRecord], candidate: str,
                    launch: str, rates: dict[str, float], startup_s: float, start: str
                    ) -> list[EvidenceRecord]:
    """One launch's records of ``candidate``, shaped as ``template``'s: it started, started up in
    ``startup_s`` (``start``: cold or warm), and measured ``rates``."""
    records = []
    for t in template:
        if t.metric == "launch_ok":
            value, scenario = 1.0, {}
        elif t.metric == "startup_s":
            value, scenario = startup_s, {"start": start}
        else:
            value, scenario = rates[t.metric], dict(t.scenario)
        records.append(t.model_copy(update={
            "id": None, "candidate": candidate, "value": value, "scenario": scenario,
            "source": f"run {launch}", "launch": launch,
            "config_sha256": decision.candidate(candidate).config_sha256}))
    return records


def truth_of(decision: Decision, truth: tuple[Decision, EvidenceSet], also: Calibrations,
             residual: float, rng: np.random.Generator) -> dict[str, dict[str, float]]:
    """Candidate -> metric -> true mean (module doc); ``startup_s`` is the cold start-up."""
    truth_decision, store = truth
    measured: dict[str, dict[str, list[float]]] = {}
    for r in store:
        if _at_its_scenario(r) or _cold_start(r):
            measured.setdefault(r.candidate, {}).setdefault(r.metric, []).append(r.value)
    cold = [r.value for r in store if _cold_start(r)]
    prediction = prediction_for(decision, EvidenceSet.of([]), also=(*also, (truth_decision, store)))
    criteria = {c.measure.metric: c.id for c in decision.criteria
                if c.measure is not None and c.measure.metric in RATES}
    found: dict[str, dict[str, float]] = {}
    for candidate in decision.candidate_ids:
        own = measured.get(candidate, {})
        row = {"startup_s": float(statistics.median(own.get("startup_s") or cold))}
        for metric, criterion in criteria.items():
            if own.get(metric):
                row[metric] = float(np.mean(own[metric]))
            else:
                cell = prediction.get(candidate, criterion)
                assert cell is not None, f"{candidate}: no prediction of {criterion}"
                row[metric] = float(cell.value) * float(np.exp(residual * rng.standard_normal()))
        found[candidate] = row
    return found


def simulated_launch(template: list[EvidenceRecord], truth: dict[str, dict[str, float]],
                     rng: np.random.Generator, launched: list[str]) -> Callable[..., Measurement]:
    """``orchestrate.measure`` for the race: one launch drawn around ``truth``."""
    def measure(decision: Decision, candidate_id: str, store: EvidenceStore, options: object = None,
                **_: object) -> Measurement:
        start = "warm" if candidate_id in launched else "cold"
        launched.append(candidate_id)
        launch = f"sim-{len(launched):03d}-{candidate_id}"
        cold_s = truth[candidate_id]["startup_s"]
        startup_s = (cold_s if start == "cold" else WARM_SHARE * cold_s) * \
            float(np.exp(NOISE["startup_s"] * rng.standard_normal()))
        rates = {metric: truth[candidate_id][metric] *
                 float(np.exp(NOISE[metric] * rng.standard_normal())) for metric in RATES
                 if metric in truth[candidate_id]}
        records = _launch_records(decision, template, candidate_id, launch, rates, startup_s,
                                  start)
        sha = decision.candidate(candidate_id).config_sha256
        store.add(records)
        outcome = LaunchOutcome(ok=True, candidate_id=candidate_id, decision_file=None,
                                engine_sha256=sha, run_dir=launch, startup_s=startup_s)
        return Measurement(candidate_id, outcome, (), tuple(records))

    return measure


def true_totals(decision: Decision, template: list[EvidenceRecord],
                truth: dict[str, dict[str, float]]) -> dict[str, float]:
    """Each configuration's total scored on its true means (one noiseless launch each)."""
    records = [r for candidate, row in truth.items() for r in _launch_records(
        decision, template, candidate, f"truth-{candidate}", row, row["startup_s"], "cold")]
    ranking = decision.score(evidence=EvidenceSet.of(records))
    return dict(zip(ranking.candidate_ids, (float(t) for t in ranking.scores), strict=True))


def one_race(decision: Decision, truth_source: tuple[Decision, EvidenceSet], also: Calibrations,
             seed: int, residual: float, tolerance: float, max_launches: int,
             race_seed: int, samples: int) -> dict[str, object]:
    rng = np.random.default_rng(seed)
    template = _rate_records(truth_source[1])
    truth = truth_of(decision, truth_source, also, residual, rng)
    launched: list[str] = []
    real = orchestrate.measure
    orchestrate.measure = simulated_launch(template, truth, rng, launched)
    try:
        with tempfile.TemporaryDirectory() as folder, \
                EvidenceStore(Path(folder) / "race.db") as store:
            result = search(decision, store, limits=SearchLimits(
                tolerance=tolerance, max_launches=max_launches), seed=race_seed,
                samples=samples, also=also)
    finally:
        orchestrate.measure = real
    totals = true_totals(decision, template, truth)
    best = max(totals.values())
    winner = result.stop.winner
    return {"seed": seed, "launches": len(launched), "configurations": len(set(launched)),
            "verdict": result.stop.kind, "winner": winner,
            "within": winner is not None and totals[winner] >= best - tolerance,
            "order": launched}


def main(argv: Sequence[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("decision")
    parser.add_argument("--truth", required=True, help="DECISION=STORE of a committed race")
    parser.add_argument("--calibrate-with", action="append", default=[])
    parser.add_argument("--races", type=int, default=10)
    parser.add_argument("--seed", type=int, default=0, help="of the first race's truth and noise")
    parser.add_argument("--race-seed", type=int, default=7)
    parser.add_argument("--residual", type=float, default=0.04)
    parser.add_argument("--tolerance", type=float, default=5.0)
    parser.add_argument("--max-launches", type=int, default=14)
    parser.add_argument("--samples", type=int, default=20000)
    args = parser.parse_args(argv)
    decision = stackdecide.load(args.decision)
    (truth_decision, truth_store), = calibrations_from([args.truth])
    also = calibrations_from(args.calibrate_with)
    counts = []
    for seed in range(args.seed, args.seed + args.races):
        t0 = time.monotonic()
        race = one_race(decision, (truth_decision, truth_store), also, seed, args.residual,
                        args.tolerance, args.max_launches, args.race_seed, args.samples)
        counts.append(int(race["launches"]))  # type: ignore[call-overload]
        print(f"race {seed}: {race['verdict']} after {race['launches']} launches of "
              f"{race['configurations']} configurations ({time.monotonic() - t0:.0f} s): "
              f"{race['winner']}, truly within {args.tolerance:g} points of the best: "
              f"{'yes' if race['within'] else 'no'}; {', '.join(race['order'])}", flush=True)
    print("launches: " + ", ".join(f"{n}: {counts.count(n)} races"
                                    for n in sorted(set(counts))))


if __name__ == "__main__":
    main()
