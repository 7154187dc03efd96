"""One streaming ``/v1/completions`` request, timed the way ``vllm bench serve`` times it.

The request function of ``vllm/benchmarks/lib/endpoint_request_func.py``
(``async_request_openai_completions``) is the reference: the clock starts just before the POST,
every server-sent event that carries ``choices`` is one arrival (the first gives TTFT, the others
inter-chunk latencies), the end-to-end latency stops at the last such arrival, and the token count
comes from the final ``usage`` chunk. Failures are classified so that the runner can tell a dead or
hung server (stop the run) from one refused request (record it and go on).
"""

from __future__ import annotations

import asyncio
import json
import time
from dataclasses import dataclass
from enum import StrEnum
from typing import Any

import aiohttp

from stackdecide.bench.stats import RequestRecord


class FailureKind(StrEnum):
    UNREACHABLE = "unreachable"  # no connection could be made
    DISCONNECTED = "disconnected"  # the connection broke mid-request
    STALLED = "stalled"  # nothing arrived for the stall timeout
    TIMEOUT = "timeout"  # the request took longer than the request timeout
    HTTP = "http"  # an answer other than 200
    PROTOCOL = "protocol"  # 200, but not an OpenAI-style completion stream
    SERVER_ERROR = "server_error"  # the stream carried an error event
    CANCELLED = "cancelled"  # in flight when the run was stopped


# A failure of these kinds means the server is gone or hung: the run stops and keeps what it has.
FATAL_KINDS = frozenset({FailureKind.UNREACHABLE, FailureKind.DISCONNECTED,
                         FailureKind.STALLED, FailureKind.TIMEOUT})


@dataclass(frozen=True)
class Timeouts:
    """Seconds. ``stall_s`` bounds the silence between two reads (also while waiting for the
    first token); ``request_s`` bounds a whole request; ``connect_s`` bounds opening a connection."""

    request_s: float = 3600.0
    stall_s: float = 120.0
    connect_s: float = 10.0

    def client_timeout(self) -> aiohttp.ClientTimeout:
        return aiohttp.ClientTimeout(total=None, sock_connect=self.connect_s,
                                     sock_read=self.stall_s)


def completion_payload(model: str, prompt: list[int] | str, max_tokens: int) -> dict[str, Any]:
    """The request body: the fields ``vllm bench serve`` sends, with a token-id or text prompt."""
    return {
        "model": model,
        "prompt": prompt,
        "max_tokens": max_tokens,
        "repetition_penalty": 1.0,
        "ignore_eos": True,
        "stream": True,
        "stream_options": {"include_usage": True},
    }


def error_text(body: bytes, limit: int = 300) -> str:
    """The message of an error body (OpenAI, FastAPI or plain text), shortened."""
    text = body.decode("utf-8", "replace").strip()
    try:
        data = json.loads(text)
    except ValueError:
        data = None
    if isinstance(data, dict):
        error = data.get("error")
        if isinstance(error, dict) and error.get("message"):
            text = str(error["message"])
        elif isinstance(error, str):
            text = error
        elif data.get("detail") or data.get("message"):
            text = str(data.get("detail") or data.get("message"))
    text = " ".join(text.split())
    return text if len(text) <= limit else text[: limit - 3] + "..."


class _StreamProtocolError(Exception):
    pass


class _StreamServerError(Exception):
    pass


async def stream_completion(session: aiohttp.ClientSession, url: str, payload: dict[str, Any],
                            record: RequestRecord, timeouts: Timeouts) -> None:
    """Send one request and fill ``record`` in place (also when it fails part-way).

    Cancellation propagates untouched, so a stopped run leaves the record unfinished and the caller
    can mark it.
    """
    clock = time.perf_counter
    record.success = False
    content_type = ""
    try:
        async with asyncio.timeout(timeouts.request_s):
            for attempt in range(2):
                start, answered = clock(), False
                try:
                    async with session.post(url, json=payload) as response:
                        answered = True
                        content_type = response.headers.get("Content-Type", "")
                        if response.status != 200:
                            body = await response.content.read(4096)
                            record.error_kind = FailureKind.HTTP
                            record.error = (f"HTTP {response.status} {response.reason or ''}"
                                            .rstrip() + (f": {error_text(body)}"
                                                         if body.strip() else ""))
                            return
                        finished = await _read_events(response, record, start, clock)
                    break
                except (aiohttp.ServerDisconnectedError, aiohttp.ClientOSError) as exc:
                    # Closed before any answer: a pooled keep-alive connection the server had
                    # just closed (vLLM's HTTP keep-alive is 5 s), found on reading the answer or
                    # on writing the request ("Can not write request body", seen at 256 streams
                    # on 2 cores). The request never ran; send it once more, on a new connection,
                    # timed from then. A second close is real.
                    if answered or attempt or isinstance(exc, aiohttp.ClientConnectorError):
                        raise
    except _StreamServerError as exc:
        record.error_kind, record.error = FailureKind.SERVER_ERROR, str(exc)
        return
    except _StreamProtocolError as exc:
        record.error_kind, record.error = FailureKind.PROTOCOL, str(exc)
        return
    except aiohttp.ConnectionTimeoutError:
        record.error_kind = FailureKind.UNREACHABLE
        record.error = f"no connection within {timeouts.connect_s:g} s"
        return
    except aiohttp.ServerTimeoutError:
        record.error_kind = FailureKind.STALLED
        record.error = f"nothing received for {timeouts.stall_s:g} s (stall timeout)"
        return
    except TimeoutError:
        record.error_kind = FailureKind.TIMEOUT
        record.error = f"not finished within {timeouts.request_s:g} s (request timeout)"
        return
    except aiohttp.ClientConnectorError as exc:
        record.error_kind = FailureKind.UNREACHABLE
        record.error = f"cannot connect: {exc.os_error or exc}"
        return
    except (aiohttp.ClientError, ConnectionError) as exc:
        record.error_kind = FailureKind.DISCONNECTED
        record.error = f"connection lost: {type(exc).__name__}: {exc}".rstrip(": ")
        return
    if record.chunks and not finished and not record.usage_reported:
        # A stream cut short (server stopped mid-answer) ends without usage and [DONE].
        record.error_kind = FailureKind.DISCONNECTED
        record.error = (f"the stream ended after {record.chunks} chunks without its usage chunk "
                        "or [DONE]")
        return
    if record.chunks == 0:
        record.error_kind = FailureKind.PROTOCOL
        record.error = ("answered 200 but streamed no completion chunks"
                        f" (Content-Type {content_type or 'missing'})")
        return
    if not record.usage_reported:
        record.output_tokens = record.chunks
    record.success = True


async def _read_events(response: aiohttp.ClientResponse, record: RequestRecord, start: float,
                       clock: Any) -> bool:
    """Parse the SSE stream (``data:`` lines, blank line ends an event) and time each event.

    Returns whether the ``[DONE]`` sentinel arrived.
    """
    loads = json.loads
    last = start
    pending = b""
    data_lines: list[bytes] = []

    def dispatch(data: bytes) -> bool:
        """Handle one event's data; True at the ``[DONE]`` sentinel."""
        nonlocal last
        if data == b"[DONE]":
            return True
        try:
            event = loads(data)
        except ValueError:
            raise _StreamProtocolError(
                f"a streamed event is not JSON: {data[:80].decode('utf-8', 'replace')!r}") from None
        if not isinstance(event, dict):
            raise _StreamProtocolError("a streamed event is not a JSON object")
        if event.get("error"):
            raise _StreamServerError(f"the stream carried an error: "
                                     f"{error_text(json.dumps(event).encode())}")
        if event.get("choices"):
            now = clock()
            if record.chunks == 0:
                record.ttft_s = now - start
            else:
                record.itl_s.append(now - last)
            last = now
            record.chunks += 1
            record.latency_s = now - start
        usage = event.get("usage")
        if usage:
            tokens = usage.get("completion_tokens")
            if tokens is not None:
                record.output_tokens = int(tokens)
                record.usage_reported = True
            if usage.get("prompt_tokens") is not None:
                record.prompt_len = int(usage["prompt_tokens"])
        return False

    async for chunk in response.content.iter_any():
        lines = (pending + chunk).split(b"\n")
        pending = lines.pop()
        for line in lines:
            if line.endswith(b"\r"):
                line = line[:-1]
            if not line:
                if data_lines:
                    done = dispatch(b"\n".join(data_lines))
                    data_lines.clear()
                    if done:
                        return True
            elif line.startswith(b"data:"):
                data_lines.append(line[6:] if line[5:6] == b" " else line[5:])
            # other SSE fields (event:, id:, retry:) and comments (":") carry no tokens
    # A last event without its blank line still counts, as in vLLM's parser.
    if pending.startswith(b"data:"):
        data_lines.append(pending[5:].strip())
    return bool(data_lines) and dispatch(b"\n".join(data_lines))
