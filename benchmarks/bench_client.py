"""The benchmark client's own ceiling: how many streamed tokens per second it can take in.

A local aiohttp server (its own process, pinned to another core when there is one) streams
OpenAI-style completion chunks as fast as it can: one ``data: {...}`` event of the size vLLM sends
per token, then a usage chunk and ``[DONE]``. Our client (``BenchRunner``, pinned to one core)
consumes them and records every arrival, as in a real run. For reference, a bare aiohttp reader
that only counts bytes reads the same streams: the ratio says how much of the transport's speed
our parsing and bookkeeping keep.

    .venv/bin/python benchmarks/bench_client.py [--tokens 4096] [--streams 8] [--concurrency 1,8]

Target: >= 20,000 streamed tokens/s on one core (client CPU time), so that the client is never
what limits a measurement (an H200 decodes a 4B model at ~300 tok/s per stream, ~8,500 tok/s at
64 streams).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import multiprocessing
import os
import time
from collections.abc import Callable

import aiohttp
from aiohttp import web

from stackdecide.bench.runner import BenchConfig, BenchRunner
from stackdecide.bench.stream import Timeouts

TARGET_TOK_S = 20_000


def _chunk(index: int) -> bytes:
    # The shape and size of a vLLM 0.32 completion chunk (about 250 bytes).
    return ("data: " + json.dumps({
        "id": "cmpl-812acb7a49b1c1fb", "object": "text_completion", "created": 1795741851,
        "model": "bench-model", "choices": [{
            "index": 0, "text": f" w{index % 4096}", "logprobs": None, "finish_reason": None,
            "stop_reason": None, "prompt_token_ids": None, "token_ids": None}]}) + "\n\n").encode()


def serve(port_queue: multiprocessing.Queue, core: int | None) -> None:
    if core is not None:
        os.sched_setaffinity(0, {core})
    chunks = [_chunk(i) for i in range(4096)]

    async def models(request: web.Request) -> web.Response:
        return web.json_response({"data": [{"id": "bench-model", "max_model_len": 1 << 20}]})

    async def completions(request: web.Request) -> web.StreamResponse:
        body = await request.json()
        tokens, prompt_len = body["max_tokens"], len(body["prompt"])
        response = web.StreamResponse(headers={"Content-Type": "text/event-stream"})
        await response.prepare(request)
        for i in range(tokens):
            await response.write(chunks[i % len(chunks)])  # one event per write, as vLLM does
        usage = {"prompt_tokens": prompt_len, "completion_tokens": tokens,
                 "total_tokens": prompt_len + tokens}
        await response.write(("data: " + json.dumps({"choices": [], "usage": usage})
                              + "\n\ndata: [DONE]\n\n").encode())
        await response.write_eof()
        return response

    async def main() -> None:
        app = web.Application()
        app.router.add_get("/v1/models", models)
        app.router.add_post("/v1/completions", completions)
        runner = web.AppRunner(app, access_log=None)
        await runner.setup()
        site = web.TCPSite(runner, "127.0.0.1", 0)
        await site.start()
        port_queue.put(runner.addresses[0][1])
        await asyncio.Event().wait()

    asyncio.run(main())


async def raw_read(url: str, tokens: int, streams: int, concurrency: int) -> int:
    """Bytes-only reader: the transport's ceiling for the same streams."""
    semaphore = asyncio.Semaphore(concurrency)
    payload = {"model": "bench-model", "prompt": [1] * 16, "max_tokens": tokens, "stream": True}

    async def one(session: aiohttp.ClientSession) -> int:
        async with semaphore, session.post(f"{url}/v1/completions", json=payload) as response:
            return sum([len(chunk) async for chunk in response.content.iter_any()])

    async with aiohttp.ClientSession() as session:
        sizes = await asyncio.gather(*(one(session) for _ in range(streams)))
    return sum(sizes)


def measure(label: str, run: Callable[[], int]) -> tuple[float, float]:
    wall0, cpu0 = time.perf_counter(), time.process_time()
    tokens = run()
    wall, cpu = time.perf_counter() - wall0, time.process_time() - cpu0
    print(f"  {label:<28} {tokens / wall:>12,.0f} tok/s wall   {tokens / cpu:>12,.0f} tok/s "
          f"per client CPU-second")
    return tokens / wall, tokens / cpu


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--tokens", type=int, default=4096, help="tokens per stream")
    parser.add_argument("--streams", type=int, default=8, help="streams per level")
    parser.add_argument("--concurrency", default="1,8")
    args = parser.parse_args()
    cores = sorted(os.sched_getaffinity(0))
    server_core, client_core = (cores[-1], cores[0]) if len(cores) > 1 else (None, None)
    queue: multiprocessing.Queue = multiprocessing.Queue()
    server = multiprocessing.Process(target=serve, args=(queue, server_core), daemon=True)
    server.start()
    try:
        port = queue.get(timeout=30)
        url = f"http://127.0.0.1:{port}"
        if client_core is not None:
            os.sched_setaffinity(0, {client_core})
        print(f"client on core {client_core}, server on core {server_core}; "
              f"{args.streams} streams x {args.tokens} tokens per level")
        worst = float("inf")
        for concurrency in (int(c) for c in args.concurrency.split(",")):
            print(f"concurrency {concurrency}:")
            def bare(c: int = concurrency) -> int:
                asyncio.run(raw_read(url, args.tokens, args.streams, c))
                return args.tokens * args.streams

            _, raw_cpu = measure("bare aiohttp reader (bytes)", bare)

            def ours(c: int = concurrency) -> int:
                runner = BenchRunner(BenchConfig(
                    url=url, scenario="throughput", concurrency=(c,), input_len=16,
                    output_len=args.tokens, num_prompts=args.streams, warmup=0,
                    server_metrics=False, timeouts=Timeouts(request_s=600, stall_s=60)))
                result = runner.run()
                assert result.complete and not result.failed_requests
                return result.levels[0].summary().total_output_tokens

            _, cpu = measure("stackdecide bench client", ours)
            worst = min(worst, cpu)
            print(f"  ours / bare reader (CPU)     {cpu / raw_cpu:>12.2f}")
        print(f"slowest level: {worst:,.0f} streamed tok/s per client CPU-second; target "
              f"{TARGET_TOK_S:,}: ratio {worst / TARGET_TOK_S:.2f} "
              f"({'met' if worst >= TARGET_TOK_S else 'NOT met'})")
    finally:
        server.terminate()
        server.join(timeout=10)


if __name__ == "__main__":
    main()
