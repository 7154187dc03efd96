"""Helpers for the hardening suite: run the CLI as a user would, and tell a refusal from a crash."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path

import pytest
from click.testing import CliRunner, Result

from stackdecide.cli import main


@pytest.fixture(autouse=True)
def in_a_scratch_folder(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``score`` remembers the decision it scored in ./.stackdecide: keep that out of the
    checkout, where ``launch`` without FILE would pick it up."""
    monkeypatch.chdir(tmp_path)

DECISION = """\
schema: stackdecide/v1
decision:
  title: Hardening
criteria:
  - {{id: speed, weight: {w1}, scale: {scale}}}
  - {{id: stability, weight: {w2}}}
candidates:
  - id: a
    scores: {{speed: {s1}, stability: 9}}
  - id: b
    scores: {{speed: {s2}, stability: 5}}
"""


def decision_text(w1: str = "0.6", w2: str = "0.4", scale: str = "[0, 10]", s1: str = "7",
                  s2: str = "9") -> str:
    """A valid two-criterion decision with the given numbers written in."""
    return DECISION.format(w1=w1, w2=w2, scale=scale, s1=s1, s2=s2)


def cli(args: Sequence[str], input: str | None = None) -> Result:
    """Run ``stackdecide ARGS``; an exception other than the exit itself is re-raised, so a test
    shows the traceback a user would have seen instead of a bare exit code 1."""
    result = CliRunner().invoke(main, list(args), input=input)
    if result.exception is not None and not isinstance(result.exception, SystemExit):
        raise result.exception
    return result


def refused(args: Sequence[str], *expected: str) -> str:
    """Run the CLI, assert it refused with exit 2 and one ``error:`` line naming each of
    ``expected``; returns that message."""
    result = cli(args)
    assert result.exit_code == 2, (result.exit_code, result.stdout, result.stderr)
    message = result.stderr.strip().splitlines()[-1]
    assert message.startswith("error: ") or message.startswith("Error: "), result.stderr
    for text in expected:
        assert text in message, (text, message)
    return message


def vllm_result(**changes: object) -> dict[str, object]:
    """A ``vllm bench serve --save-result`` result (the keys it writes; see
    tests/evidence/test_importers.py for where they come from), with ``changes`` applied."""
    result: dict[str, object] = {
        "date": "20250821-142233", "endpoint_type": "vllm", "backend": "vllm", "label": None,
        "model_id": "Qwen/Qwen3-4B", "tokenizer_id": "Qwen/Qwen3-4B", "num_prompts": 20,
        "request_rate": "inf", "burstiness": 1.0, "max_concurrency": 1, "duration": 20.75,
        "completed": 20, "failed": 0, "total_input_tokens": 20480, "total_output_tokens": 2560,
        "request_throughput": 0.96, "request_goodput": None, "output_throughput": 123.3,
        "total_token_throughput": 1110.1, "max_output_tokens_per_s": 131.0,
        "max_concurrent_requests": 1, "mean_ttft_ms": 60.2, "median_ttft_ms": 59.8,
        "std_ttft_ms": 1.1, "p99_ttft_ms": 64.0, "mean_tpot_ms": 7.6, "median_tpot_ms": 7.6,
        "std_tpot_ms": 0.1, "p99_tpot_ms": 7.9, "mean_itl_ms": 7.6, "median_itl_ms": 7.5,
        "std_itl_ms": 0.4, "p99_itl_ms": 9.1,
    }
    result.update(changes)
    return result
