"""The metrics derived from a benchmark's requests: ``decode_tok_s``, ``prefill_tok_s``,
``output_tok_s``, defined once for ``stackdecide bench`` and for imported ``vllm bench serve`` files.

With per-request numbers (our own runs; vLLM files saved with ``--save-detailed``):

* ``prefill_tok_s`` is the median over successful requests of ``prompt tokens / TTFT``;
* ``decode_tok_s`` is ``1000 / median TPOT (ms)``, withheld when the stream is *bursty*: when the
  median request carried more than ``BURSTY_TOKENS_PER_CHUNK`` output tokens per arrival, its TPOT
  times the HTTP path, not decoding. An arrival is a streamed chunk, or a run of chunks that
  reached the client less than ``ARRIVAL_GAP_S`` apart: a small model on a CPU decodes faster than
  the API server streams (a few chunks of many tokens), and an API server or client short of CPU
  can hold a whole stream back and deliver its one-token chunks at once (measured on 2 cores:
  TTFT 210 ms = the whole request, median ITL 0, a "decode rate" of 300,000 tok/s);
* ``output_tok_s`` is all output tokens / the run's wall time.

From summary numbers only (a ``vllm bench serve`` file without ``--save-detailed``), the same
quantities as far as the summary allows, each function saying how it falls short:
``prefill_tok_s_from_summary`` and ``tokens_per_chunk_from_means``.
Pure functions: no I/O, no clocks.
"""

from __future__ import annotations

import statistics
from collections.abc import Sequence

# vLLM streams one token per chunk by default; more than this per chunk (median request) and
# per-token timings are not decode timings.
BURSTY_TOKENS_PER_CHUNK = 4.0
# Chunks read less than this apart were not streamed to the client one by one (no decode step of
# any model is this short), so they count as one arrival
ARRIVAL_GAP_S = 50e-6


def prefill_rates(prompt_tokens: Sequence[float], ttfts_s: Sequence[float]) -> list[float]:
    """Per request ``prompt tokens / TTFT`` in tok/s, for the requests with a positive TTFT."""
    return [tokens / ttft for tokens, ttft in zip(prompt_tokens, ttfts_s, strict=True) if ttft > 0]


def prefill_tok_s(prompt_tokens: Sequence[float], ttfts_s: Sequence[float]) -> float | None:
    """The median over requests of ``prompt tokens / TTFT``; None without a timed request.

    TTFT also holds queueing, one decode step and the HTTP path, so this is a lower bound of the
    engine's prefill rate.
    """
    rates = prefill_rates(prompt_tokens, ttfts_s)
    return float(statistics.median(rates)) if rates else None


def prefill_tok_s_from_summary(mean_prompt_tokens: float | None,
                               median_ttft_ms: float | None) -> float | None:
    """``prefill_tok_s`` from a summary: mean prompt tokens / median TTFT.

    Equal to ``prefill_tok_s`` of the requests when every prompt has the same length (as in
    ``vllm bench serve --dataset-name random`` and our runs) and their number is odd, since then
    the median request's rate is the prompt length over the median TTFT. With an even number it
    divides by the mean of the two middle TTFTs rather than averaging their two rates, which is a
    little lower; with prompts of different lengths it is an approximation.
    """
    if not mean_prompt_tokens or not median_ttft_ms or median_ttft_ms <= 0:
        return None
    return mean_prompt_tokens / (median_ttft_ms / 1000.0)


def arrivals(chunks: int, gaps_s: Sequence[float]) -> int:
    """How many separate arrivals a request's ``chunks`` made: its first chunk, and each later
    one whose gap from the one before (``gaps_s``, one per chunk after the first) is at least
    ``ARRIVAL_GAP_S``."""
    if chunks <= 0:
        return 0
    return 1 + sum(gap >= ARRIVAL_GAP_S for gap in gaps_s)


def tokens_per_chunk(output_tokens: Sequence[float], chunks: Sequence[int]) -> float | None:
    """The median over requests of output tokens per streamed chunk (or per arrival, given
    ``arrivals`` as ``chunks``); None without chunks."""
    ratios = [tokens / n for tokens, n in zip(output_tokens, chunks, strict=True) if n > 0]
    return float(statistics.median(ratios)) if ratios else None


def tokens_per_chunk_from_means(mean_itl_ms: float | None,
                                mean_tpot_ms: float | None) -> float | None:
    """Tokens per chunk estimated from a summary: mean ITL / mean TPOT.

    ITL is the gap between chunks and TPOT the time per token after the first, so with outputs
    of one length their ratio of means is the tokens per gap of the whole run, where
    ``tokens_per_chunk`` takes the median request's. Both are about 1 for a token-by-token stream
    and far above ``BURSTY_TOKENS_PER_CHUNK`` for a bursty one.
    """
    if not mean_itl_ms or not mean_tpot_ms or mean_tpot_ms <= 0:
        return None
    return mean_itl_ms / mean_tpot_ms


def is_bursty(tokens_per_chunk: float | None) -> bool:
    """Whether a stream arrived in bursts of tokens (unknown counts as not bursty)."""
    return tokens_per_chunk is not None and tokens_per_chunk > BURSTY_TOKENS_PER_CHUNK


def decode_tok_s(median_tpot_ms: float | None, tokens_per_chunk: float | None) -> float | None:
    """``1000 / median TPOT``: one stream's decode rate; None without a TPOT or when bursty."""
    if not median_tpot_ms or median_tpot_ms <= 0 or is_bursty(tokens_per_chunk):
        return None
    return 1000.0 / median_tpot_ms


def output_tok_s(total_output_tokens: float, duration_s: float) -> float:
    """Output tokens per second of wall time over the whole run (0 without a duration)."""
    return total_output_tokens / duration_s if duration_s > 0 else 0.0


def cost_per_mtok_out(price_per_gpu_hour: float, gpus: int,
                      output_tok_s: float | None) -> float | None:
    """The GPU cost of a million output tokens at ``output_tok_s``: ``price x gpus / 3600 s``
    per second, over ``output_tok_s / 1e6`` million tokens per second; None without a rate."""
    if output_tok_s is None or output_tok_s <= 0:
        return None
    return price_per_gpu_hour * gpus / 3600.0 / (output_tok_s / 1e6)
