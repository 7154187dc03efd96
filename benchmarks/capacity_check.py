"""Check the capacity search against a dense concurrency sweep of the same running server.

Against ONE server at --url, with one SLO (default: p99 TTFT <= 1000 ms, p99 TPOT <= 50 ms) and
one workload (default 512 prompt / 256 output tokens, random token ids):

1. the capacity search (``bench --scenario capacity``): concurrency from --start, growth
   --growth, then interpolation to --precision;
2. a dense sweep: every concurrency of --dense START:STOP:STEP, each probe exactly like the
   search's (``max(num_prompts, 2 x concurrency)`` requests, judged by the same rule). Its
   capacity, the ground truth, is the last grid concurrency that passes before the first one that
   fails (later passes, a non-monotone sweep, are reported, not used).

It prints both capacities (concurrency and the measured req/s there), their relative difference,
the probe counts and wall times, and writes ``search.json``, ``dense.json`` (full results, every
request), ``dense-levels.jsonl`` (one line per dense level as it finishes) and ``summary.json``
under --out.

    python benchmarks/capacity_check.py --url http://127.0.0.1:8000 --out results/h200-fp8
        [--slo ttft_ms_p99:1000,tpot_ms_p99:50] [--input-len 512 --output-len 256]
        [--num-prompts 64] [--start 16 --growth 4 --precision 0.1 --max-load 320]
        [--dense 16:320:16] [--prompt-mode token-ids|text] [--skip-dense]
        [--store evidence.db --candidate ID --gpu NAME --gpus 1 --price-per-gpu-hour P]

With the defaults a probe sends 64 requests (2 x concurrency above 32); the dense grid has 20
levels, and the search needs about 5 to 7 probes.
"""

from __future__ import annotations

import argparse
import json
import sys
import time
from pathlib import Path
from typing import Any

import aiohttp
import numpy as np

from stackdecide.bench.capacity import CapacityResult, SearchSettings, judge
from stackdecide.bench.capacity_plan import CapacityPlan, parse_slo_limits
from stackdecide.bench.capacity_run import CapacityRunner, measurement_of, probe_requests
from stackdecide.bench.results import BenchConfig, BenchError, BenchResult
from stackdecide.bench.stream import Timeouts
from stackdecide.evidence.records import HardwareInfo
from stackdecide.evidence.store import EvidenceStore
from stackdecide.loop import result_records


class DenseRunner(CapacityRunner):
    """Probes every concurrency of a grid, each exactly as the search probes one."""

    def __init__(self, config: BenchConfig, grid: list[int], progress_file: Path) -> None:
        super().__init__(config)
        self.grid = grid
        self.verdicts: list[dict[str, Any]] = []
        self.progress_file = progress_file  # one JSON line per level, kept if the run is cut

    async def _levels(self, session: aiohttp.ClientSession,
                      metrics_session: aiohttp.ClientSession) -> None:
        rng = np.random.default_rng(self.config.seed)
        for concurrency in self.grid:
            level = await self._run_level(
                session, metrics_session, concurrency, rng,
                num_prompts=probe_requests(concurrency, self.config.num_prompts or 1))
            measurement = measurement_of(level, self.config, self.plan, concurrency)
            verdict = judge(measurement, self.plan.slo,
                            allow_preemptions=self.plan.allow_preemptions)
            self.verdicts.append({"concurrency": concurrency, "passed": verdict.passed,
                                  "margin": verdict.margin if verdict.margin != float("inf")
                                  else None, "reasons": list(verdict.reasons),
                                  "request_per_s": measurement.request_per_s,
                                  "output_tok_s": measurement.output_tok_s,
                                  "latencies_ms": dict(measurement.latencies_ms),
                                  "requests": measurement.requests})
            with self.progress_file.open("a", encoding="utf-8") as out:
                out.write(json.dumps(self.verdicts[-1]) + "\n")
            print(f"  dense c={concurrency:4d} {'pass' if verdict.passed else 'FAIL'} "
                  f"margin {verdict.margin:.3f} {measurement.request_per_s:8.2f} req/s "
                  f"{'; '.join(verdict.reasons)}", flush=True)


def dense_capacity(verdicts: list[dict[str, Any]]) -> dict[str, Any]:
    """The last pass before the first fail; whether any pass came after a fail."""
    last_pass = first_fail = None
    for row in verdicts:
        if row["passed"] and first_fail is None:
            last_pass = row
        elif not row["passed"] and first_fail is None:
            first_fail = row
    later = [r["concurrency"] for r in verdicts
             if first_fail is not None and r["passed"] and r["concurrency"] > first_fail["concurrency"]]
    return {"capacity_concurrency": last_pass["concurrency"] if last_pass else None,
            "capacity_req_s": last_pass["request_per_s"] if last_pass else None,
            "first_fail": first_fail["concurrency"] if first_fail else None,
            "passes_after_first_fail": later, "monotone": not later}


def parse_grid(text: str) -> list[int]:
    start, stop, step = (int(x) for x in text.split(":"))
    return list(range(start, stop + 1, step))


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--out", required=True, type=Path)
    parser.add_argument("--slo", default="ttft_ms_p99:1000,tpot_ms_p99:50")
    parser.add_argument("--input-len", type=int, default=512)
    parser.add_argument("--output-len", type=int, default=256)
    parser.add_argument("--num-prompts", type=int, default=64, help="requests per probe (at least)")
    parser.add_argument("--start", type=float, default=16)
    parser.add_argument("--growth", type=float, default=4.0)
    parser.add_argument("--precision", type=float, default=0.1)
    parser.add_argument("--max-load", type=float, default=320)
    parser.add_argument("--max-probes", type=int, default=12)
    parser.add_argument("--method", default="interpolate", choices=["interpolate", "bisect"])
    parser.add_argument("--dense", default="16:320:16", help="START:STOP:STEP concurrencies")
    parser.add_argument("--skip-dense", action="store_true")
    parser.add_argument("--prompt-mode", default="token-ids", choices=["token-ids", "text"])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--store", help="also store the search as evidence in this store")
    parser.add_argument("--candidate", help="with --store: the candidate this server runs")
    parser.add_argument("--gpu", help="with --store: GPU name for the records")
    parser.add_argument("--gpus", type=int, default=1)
    parser.add_argument("--price-per-gpu-hour", type=float)
    args = parser.parse_args(argv)
    if args.store and not args.candidate:
        parser.error("--store needs --candidate")

    plan = CapacityPlan(SearchSettings(
        kind="concurrency", start=args.start, growth=args.growth, precision=args.precision,
        min_load=1, max_load=args.max_load, max_probes=args.max_probes, method=args.method),
        parse_slo_limits(args.slo))
    base = dict(url=args.url, scenario="capacity", input_len=args.input_len,
                output_len=args.output_len, num_prompts=args.num_prompts, warmup=4,
                prompt_mode=args.prompt_mode, capacity=plan,
                timeouts=Timeouts(request_s=600, stall_s=120))
    args.out.mkdir(parents=True, exist_ok=True)

    print(f"capacity search, SLO {plan.slo.text()}, {args.input_len} in / {args.output_len} out",
          flush=True)
    began = time.perf_counter()
    search_runner = CapacityRunner(BenchConfig(seed=args.seed, **base))  # type: ignore[arg-type]
    try:
        search = search_runner.run()
    except BenchError as exc:
        search_runner.result.write_json(args.out / "search.json")
        print(f"the search stopped: {exc}; probes so far in {args.out / 'search.json'}",
              file=sys.stderr)
        return 1
    search_s = time.perf_counter() - began
    search.write_json(args.out / "search.json")
    if args.store:
        records = result_records(search, args.candidate,
                                 hardware=HardwareInfo(gpu=args.gpu, count=args.gpus)
                                 if args.gpu else None,
                                 price_per_gpu_hour=args.price_per_gpu_hour, gpus=args.gpus)
        with EvidenceStore(args.store) as store:
            store.add(records)
        print(f"stored {len(records)} records for {args.candidate} in {args.store}", flush=True)
    capacity = search.capacity
    assert capacity is not None
    for p in capacity.probes:
        print(f"  search c={p.load:4.0f} {'pass' if p.verdict.passed else 'FAIL'} margin "
              f"{p.verdict.margin:.3f} {p.measurement.request_per_s:8.2f} req/s "
              f"{'; '.join(p.verdict.reasons)}", flush=True)
    summary: dict[str, Any] = {"slo": plan.slo.to_dict(), "search_settings": plan.to_dict(),
                               "workload": {"input_len": args.input_len,
                                            "output_len": args.output_len,
                                            "requests_per_probe": f"max({args.num_prompts}, 2 x "
                                                                  "concurrency)",
                                            "prompt_mode": args.prompt_mode},
                               "model": search.model, "url": args.url,
                               "search": _search_summary(capacity, search_s)}
    if not args.skip_dense:
        summary.update(_dense(args, base, capacity))
    (args.out / "summary.json").write_text(json.dumps(summary, indent=1) + "\n")
    _print(summary)
    return 0


def _dense(args: argparse.Namespace, base: dict[str, Any],
           capacity: CapacityResult) -> dict[str, Any]:
    """Run the dense sweep; its capacity and the comparison with the search's."""
    grid = parse_grid(args.dense)
    began = time.perf_counter()
    progress = args.out / "dense-levels.jsonl"
    progress.unlink(missing_ok=True)
    runner = DenseRunner(BenchConfig(seed=args.seed + 1000, **base),  # type: ignore[arg-type]
                         grid, progress)
    dense: BenchResult = runner.run()
    dense.write_json(args.out / "dense.json")
    truth = dense_capacity(runner.verdicts)
    out: dict[str, Any] = {"dense": {**truth, "probes": len(grid), "grid": args.dense,
                                     "wall_s": round(time.perf_counter() - began, 1),
                                     "levels": runner.verdicts}}
    found, true = capacity.capacity_concurrency, truth["capacity_concurrency"]
    if found and true:
        out["relative_difference_concurrency"] = found / true - 1
        out["relative_difference_req_s"] = (capacity.capacity_req_s or 0) / \
            truth["capacity_req_s"] - 1
        out["probe_ratio"] = len(capacity.probes) / len(grid)
    return out


def _search_summary(capacity: CapacityResult, wall_s: float) -> dict[str, Any]:
    return {"capacity_concurrency": capacity.capacity_concurrency,
            "capacity_req_s": capacity.capacity_req_s,
            "capacity_output_tok_s": capacity.capacity_output_tok_s,
            "bracket": [capacity.last_pass.load if capacity.last_pass else None,
                        capacity.first_fail.load if capacity.first_fail else None],
            "converged": capacity.converged, "stopped_because": capacity.stopped_because,
            "probes": len(capacity.probes), "wall_s": round(wall_s, 1)}


def _print(summary: dict[str, Any]) -> None:
    s = summary["search"]
    print(f"\nsearch: capacity concurrency {s['capacity_concurrency']}, "
          f"{s['capacity_req_s'] and round(s['capacity_req_s'], 3)} req/s, bracket "
          f"{s['bracket']}, {s['probes']} probes, {s['wall_s']} s; {s['stopped_because']}")
    if "dense" in summary:
        d = summary["dense"]
        print(f"dense:  capacity concurrency {d['capacity_concurrency']}, "
              f"{d['capacity_req_s'] and round(d['capacity_req_s'], 3)} req/s, first fail "
              f"{d['first_fail']}, {d['probes']} probes, {d['wall_s']} s, monotone "
              f"{d['monotone']}")
    if "relative_difference_concurrency" in summary:
        print(f"relative difference: concurrency {summary['relative_difference_concurrency']:+.1%}, "
              f"req/s {summary['relative_difference_req_s']:+.1%}; search used "
              f"{summary['probe_ratio']:.0%} of the dense sweep's probes")


if __name__ == "__main__":
    sys.exit(main())
