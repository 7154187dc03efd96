"""Our benchmark client against ``vllm bench serve``.

Three checks:

1. Definitions, exactly: the per-request records our client took from the real CPU engine are fed
   to vLLM's own ``calculate_metrics`` (in the Python that has vLLM); every summary number must
   equal ours to 1e-9 relative.
2. Timing, on a steady stream: both clients measure a local server (its own process) that streams
   with fixed delays (20 ms to the first token, 3 ms between tokens), in alternating rounds; output
   tok/s and median TPOT must agree within 5%, median TTFT within 5% or 5 ms. This isolates what the
   clients do (when the clock starts, which events count) from the engine's noise.
3. Timing, on the real CPU engine: alternating runs of the same workload; over 4 steady runs of
   each client, the medians of output tok/s, median TTFT and median TPOT must agree within 10%, or
   within the spread of either client's own runs (half their range) when that is larger (TTFT: or
   8 ms). When one client's steady runs spread by more than 25%, the engine is too unsteady for a
   comparison and the check is skipped with the numbers.

The timing checks skip on a machine whose load average is above twice its core count: other
work then decides the numbers (at a load of 9 on 2 cores the heavier vLLM client fell 6% behind
ours on the fixed-delay server, against 0.02% on an idle machine).

On a GPU server, where neither the server nor the clients fight for CPU, the same comparison
(``benchmarks/bench_vs_vllm.py``, vLLM 0.26, Qwen3-4B shape on an H100, 3 alternating rounds)
agreed within 1% on all three numbers at concurrency 1, and within 1% on output tok/s and TPOT
at concurrency 16. The wider tolerances here come from this 2-vCPU machine, measured while
writing these tests:

- TTFT: on the fixed-delay server, ``vllm bench serve``'s client (a process that has imported
  torch) measured 0.5-4 ms more than ours, more when other processes competed for the CPU. On the
  engine its prompts are also text that the server must tokenize while ours are token ids: the
  same 64 tokens sent as text instead of ids add ~2 ms to the median TTFT at concurrency 1.
- The engine: a 2-layer model on 2 shared cores, whose API server often falls behind the engine.
  vLLM's own histograms then put TTFT at ~10 ms while clients see 150-400 ms and receive the whole
  answer at once. Whether a run streams steadily or in such bursts flips from run to run, and a
  median follows the mode; runs in which more than 20% of the requests got their answer in one
  burst (decode phase under half of the request's latency) say nothing about the client and are
  set aside. Steady runs of one client still differ from run to run: by 5-15% on a quiet machine,
  by up to 2x (768-1771 output tok/s) while other engines ran beside it.
- Running both clients at the same time (to share the server's state) was tried and dropped: the
  client that re-issues requests sooner gets more of the engine, so the throughputs split 55/45.
"""

from __future__ import annotations

import importlib.util
import json
import multiprocessing
import os
import statistics
import subprocess
import sys
import tempfile
import threading
from pathlib import Path
from typing import Any

import aiohttp
import pytest

from stackdecide.bench.runner import BenchConfig, BenchResult, run_bench
from stackdecide.bench.stats import Slo, summarize
from stackdecide.bench.stream import Timeouts
from stackdecide.launch.scaffold import scaffold_model
from stackdecide.vllm.probe import vllm_python
from vllm_reference import vllm_bench_serve_argv

pytestmark = pytest.mark.engine

STEADY_ROUNDS = 4
MAX_ROUNDS = 10
MAX_SPREAD = 0.25  # above this the engine is too unsteady for a comparison to mean anything
BURST_SHARE = 0.20  # a run with more bursty requests than this is set aside
ENGINE_TOLERANCE = 0.10
STEADY_TOLERANCE = 0.05

CALCULATE = """\
import json, sys
from vllm.benchmarks.lib.endpoint_request_func import RequestFuncOutput
from vllm.benchmarks.serve import calculate_metrics
data = json.load(sys.stdin)
outputs = [RequestFuncOutput(success=r["success"], latency=r["latency_s"], ttft=r["ttft_s"],
                             itl=r["itl_s"], output_tokens=r["output_tokens"],
                             prompt_len=r["prompt_len"], start_time=r["start_s"],
                             error=r["error"]) for r in data["records"]]
metrics, _ = calculate_metrics(input_requests=[], outputs=outputs, dur_s=data["duration_s"],
                               tokenizer=None, selected_percentiles=[50.0, 90.0, 99.0],
                               goodput_config_dict=data["goodput"])
out = {k: v for k, v in vars(metrics).items() if isinstance(v, (int, float))}
for name in ("ttft", "tpot", "itl", "e2el"):
    for p, value in getattr(metrics, f"percentiles_{name}_ms"):
        out[f"p{p:g}_{name}_ms"] = value
print("RESULT " + json.dumps(out))
"""



@pytest.fixture(scope="module")
def vllm_py() -> str:
    python = vllm_python()
    check = subprocess.run([python, "-c", "import vllm.benchmarks.serve"], capture_output=True,
                           text=True, timeout=300, check=False)
    if check.returncode != 0:
        pytest.skip(f"no vLLM benchmark module in {python} (set STACKDECIDE_VLLM_PYTHON): "
                    f"{check.stderr.strip().splitlines()[-1:]}")
    return python


def model_root(url: str, model: str) -> str:
    """The served model's directory (vLLM's /v1/models 'root'): the tokenizer vllm bench needs."""
    import asyncio

    async def get() -> list[dict[str, Any]]:
        async with aiohttp.ClientSession() as session, session.get(f"{url}/v1/models") as r:
            return (await r.json())["data"]

    entry = next(e for e in asyncio.run(get()) if e["id"] == model)
    return entry.get("root") or model


def test_summary_equals_vllm_calculate_metrics(tiny_server: Any, vllm_py: str) -> None:
    result = run_bench(BenchConfig(
        url=tiny_server.url, model=tiny_server.served_model_name, scenario="throughput",
        concurrency=(4,), input_len=64, output_len=32, num_prompts=16, metrics_interval_s=0.0))
    level = result.levels[0]
    assert level.complete and not level.failures
    records = [r.to_dict() for r in level.records]
    # Objectives that every request meets on TTFT (1% above the slowest, away from the boundary)
    # and about half on TPOT (our median): some requests are good and some are not, however the
    # two latencies go together.
    first = summarize(level.records, level.duration_s)
    assert first.ttft is not None and first.tpot is not None
    slowest_ttft_ms = max(r.ttft_s for r in level.records) * 1000
    slo = Slo(ttft_ms=slowest_ttft_ms * 1.01, tpot_ms=first.tpot.median)
    ours = summarize(level.records, level.duration_s, slo)
    payload = {"records": records, "duration_s": level.duration_s,
               "goodput": {"ttft": slo.ttft_ms, "tpot": slo.tpot_ms}}
    done = subprocess.run([vllm_py, "-c", CALCULATE], input=json.dumps(payload),
                          capture_output=True, text=True, timeout=300, check=False)
    line = next((ln for ln in done.stdout.splitlines() if ln.startswith("RESULT ")), None)
    assert line is not None, done.stderr[-3000:]
    theirs = json.loads(line.removeprefix("RESULT "))
    expected = {
        "completed": ours.completed, "total_input": ours.total_input_tokens,
        "total_output": ours.total_output_tokens, "request_throughput": ours.request_per_s,
        "request_goodput": ours.goodput_req_s, "output_throughput": ours.output_tok_s,
        "total_token_throughput": ours.total_tok_s,
    }
    for name in ("ttft", "tpot", "itl", "e2el"):
        dist = getattr(ours, name)
        expected |= {f"mean_{name}_ms": dist.mean, f"median_{name}_ms": dist.median,
                     f"std_{name}_ms": dist.std}
        expected |= {f"{key}_{name}_ms": value for key, value in dist.percentiles.items()}
    assert 0 < ours.goodput_req_s < ours.request_per_s  # the objectives split the requests
    for key, value in expected.items():
        assert theirs[key] == pytest.approx(value, rel=1e-9, abs=1e-12), key


def _bursty(ttfts: list[float], latencies: list[float]) -> bool:
    """More than BURST_SHARE of the requests got their answer in one burst."""
    burst = sum(1 for ttft, latency in zip(ttfts, latencies, strict=True)
                if latency - ttft < 0.5 * latency)
    return burst > BURST_SHARE * len(ttfts)


def _vllm_bench_cmd(python: str, url: str, model: str, tokenizer: str, seed: int,
                    workload: dict[str, int], result_dir: str) -> list[str]:
    return vllm_bench_serve_argv(python, "--backend", "vllm", "--base-url", url,
            "--endpoint", "/v1/completions", "--model", model, "--tokenizer", tokenizer,
            "--dataset-name", "random", "--random-input-len", str(workload["input_len"]),
            "--random-output-len", str(workload["output_len"]), "--random-range-ratio", "0",
            "--num-prompts", str(workload["num_prompts"]),
            "--max-concurrency", str(workload["concurrency"]), "--request-rate", "inf",
            "--ignore-eos", "--num-warmups", "0", "--seed", str(seed),
            "--percentile-metrics", "ttft,tpot,itl,e2el", "--disable-tqdm",
            "--save-result", "--save-detailed", "--result-dir", result_dir,
            "--result-filename", "vllm.json")


def _run_ours(url: str, model: str, seed: int, workload: dict[str, int]) -> BenchResult:
    result = run_bench(BenchConfig(
        url=url, model=model, scenario="throughput", concurrency=(workload["concurrency"],),
        input_len=workload["input_len"], output_len=workload["output_len"],
        num_prompts=workload["num_prompts"], seed=1000 + seed, warmup=0, metrics_interval_s=0.0,
        timeouts=Timeouts(request_s=300, stall_s=120)))
    assert not result.failed_requests
    return result


def _rows(ours: BenchResult, vllm: dict[str, Any]) -> tuple[dict[str, float], dict[str, float]]:
    summary = ours.levels[0].summary()
    assert summary.ttft is not None and summary.tpot is not None
    assert vllm["failed"] == 0
    return ({"output_tok_s": summary.output_tok_s, "ttft_ms_p50": summary.ttft.median,
             "tpot_ms_p50": summary.tpot.median},
            {"output_tok_s": vllm["output_throughput"], "ttft_ms_p50": vllm["median_ttft_ms"],
             "tpot_ms_p50": vllm["median_tpot_ms"]})


def _compare(rounds: list[tuple[dict[str, float], dict[str, float]]], tolerance: float,
             ttft_slack_ms: float, log: list[str]) -> None:
    for key in ("output_tok_s", "ttft_ms_p50", "tpot_ms_p50"):
        ours_value = statistics.median(o[key] for o, _ in rounds)
        vllm_value = statistics.median(v[key] for _, v in rounds)
        allowed = tolerance * vllm_value
        if key == "ttft_ms_p50":
            allowed = max(allowed, ttft_slack_ms)
        assert abs(ours_value - vllm_value) <= allowed, (
            f"{key}: ours {ours_value:.3f}, vllm bench serve {vllm_value:.3f} "
            f"(allowed difference {allowed:.3f})\n" + "\n".join(log))
    if os.environ.get("STACKDECIDE_SHOW_BENCH"):
        print("\n".join(log))


def _run_vllm(cmd: list[str], result_dir: str) -> dict[str, Any]:
    done = subprocess.run(cmd, capture_output=True, text=True, timeout=600, check=False)
    result_file = Path(result_dir) / "vllm.json"
    assert done.returncode == 0 and result_file.exists(), done.stdout[-3000:] + done.stderr[-3000:]
    return json.loads(result_file.read_text())


def _require_quiet_machine() -> None:
    """Timing comparisons mean nothing while other work fights for the CPU: skip then."""
    load, cores = os.getloadavg()[0], os.cpu_count() or 1
    if load > 2 * cores:
        pytest.skip(f"load average {load:.1f} on {cores} cores: too busy to compare timings")


def _serve_steady(queue: Any) -> None:
    """Child process: the test suite's fake OpenAI server with fixed delays, until killed."""
    cores = sorted(os.sched_getaffinity(0))
    if len(cores) > 1:
        os.sched_setaffinity(0, {cores[-1]})  # the clients get the other core(s)
    spec = importlib.util.spec_from_file_location(
        "stackdecide_fake_openai", Path(__file__).with_name("test_bench.py"))
    assert spec is not None and spec.loader is not None
    fake = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = fake  # dataclasses look their module up there
    spec.loader.exec_module(fake)
    # 8 ms a token keeps both clients well below what one core can parse: at 3 ms the heavier
    # client became the bottleneck on a 2-core machine and the comparison measured client speed
    server = fake.FakeServer(fake.Behaviour(model="steady", first_token_delay_s=0.02,
                                            token_delay_s=0.008))
    queue.put(server.start())
    threading.Event().wait()


@pytest.mark.timing
def test_agrees_with_vllm_bench_serve_on_a_steady_stream(vllm_py: str, tmp_path: Path) -> None:
    _require_quiet_machine()
    tokenizer = scaffold_model("tiny", tmp_path / "tokenizer").path
    context = multiprocessing.get_context("fork")
    queue = context.Queue()
    server = context.Process(target=_serve_steady, args=(queue,), daemon=True)
    server.start()
    affinity = os.sched_getaffinity(0)
    try:
        url = queue.get(timeout=30)
        if len(affinity) > 1:  # both clients (ours here, vLLM's as a child) on the same core(s)
            os.sched_setaffinity(0, set(sorted(affinity)[:-1]))
        workload = {"input_len": 32, "output_len": 64, "num_prompts": 16, "concurrency": 4}
        rounds, log = [], []
        for seed in range(2):
            ours = _run_ours(url, "steady", seed, workload)
            with tempfile.TemporaryDirectory() as tmp:
                vllm = _run_vllm(_vllm_bench_cmd(vllm_py, url, "steady", str(tokenizer), seed,
                                                 workload, tmp), tmp)
            rounds.append(_rows(ours, vllm))
            log.append(f"round {seed}: ours {rounds[-1][0]} vllm {rounds[-1][1]}")
        _compare(rounds, STEADY_TOLERANCE, 5.0, log)
    finally:
        os.sched_setaffinity(0, affinity)
        server.kill()
        server.join(timeout=10)


def _vllm_steady_row(python: str, url: str, model: str, tokenizer: str, seed: int,
                     workload: dict[str, int]) -> tuple[dict[str, float], bool]:
    with tempfile.TemporaryDirectory() as tmp:
        vllm = _run_vllm(_vllm_bench_cmd(python, url, model, tokenizer, seed, workload, tmp), tmp)
    row = {"output_tok_s": vllm["output_throughput"], "ttft_ms_p50": vllm["median_ttft_ms"],
           "tpot_ms_p50": vllm["median_tpot_ms"]}
    return row, _bursty(vllm["ttfts"], vllm["latencies"])


def _our_steady_row(url: str, model: str, seed: int,
                    workload: dict[str, int]) -> tuple[dict[str, float], bool]:
    ours = _run_ours(url, model, seed, workload)
    records = ours.levels[0].records
    summary = ours.levels[0].summary()
    assert summary.ttft is not None and summary.tpot is not None
    row = {"output_tok_s": summary.output_tok_s, "ttft_ms_p50": summary.ttft.median,
           "tpot_ms_p50": summary.tpot.median}
    return row, _bursty([r.ttft_s for r in records], [r.latency_s for r in records])


@pytest.mark.timing
def test_agrees_with_vllm_bench_serve_on_the_cpu_engine(tiny_server: Any, vllm_py: str) -> None:
    _require_quiet_machine()
    url, model = tiny_server.url, tiny_server.served_model_name
    tokenizer = model_root(url, model)
    workload = {"input_len": 64, "output_len": 64, "num_prompts": 16, "concurrency": 4}
    ours_steady: list[dict[str, float]] = []
    vllm_steady: list[dict[str, float]] = []
    log = []
    for seed in range(MAX_ROUNDS):
        ours, ours_bursty = _our_steady_row(url, model, seed, workload)
        vllm, vllm_bursty = _vllm_steady_row(vllm_py, url, model, tokenizer, seed, workload)
        log.append(f"round {seed}: ours{' (bursty)' if ours_bursty else ''} {ours} "
                   f"vllm{' (bursty)' if vllm_bursty else ''} {vllm}")
        if not ours_bursty:
            ours_steady.append(ours)
        if not vllm_bursty:
            vllm_steady.append(vllm)
        if min(len(ours_steady), len(vllm_steady)) >= STEADY_ROUNDS:
            break
    if min(len(ours_steady), len(vllm_steady)) < STEADY_ROUNDS:
        pytest.skip(f"the engine streamed in bursts too often ({len(ours_steady)} steady runs "
                    f"of ours, {len(vllm_steady)} of vllm bench serve in {MAX_ROUNDS} rounds; "
                    f"{STEADY_ROUNDS} each needed):\n" + "\n".join(log))
    ours_runs, vllm_runs = ours_steady[:STEADY_ROUNDS], vllm_steady[:STEADY_ROUNDS]
    # The engine's own speed wanders between runs; the clients may differ by no more than 10%
    # or than either client's runs differ among themselves (half their range), if that is more.
    spread = 0.0
    for key in ("output_tok_s", "ttft_ms_p50", "tpot_ms_p50"):
        for runs in (ours_runs, vllm_runs):
            values = [run[key] for run in runs]
            spread = max(spread, (max(values) - min(values)) / 2 / statistics.median(values))
    if spread > MAX_SPREAD:
        pytest.skip(f"steady runs of one client differ by up to {spread:.0%} (half-range) on "
                    f"this machine now; comparing clients needs under {MAX_SPREAD:.0%}:\n"
                    + "\n".join(log))
    _compare(list(zip(ours_runs, vllm_runs, strict=True)), max(ENGINE_TOLERANCE, spread), 8.0,
             log)
