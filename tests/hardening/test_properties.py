"""Finding 6: whatever a decision or evidence file holds, the answer is a result or a located error.

Property-based tests (hypothesis) of the YAML loader, the decision schema and the evidence
importers. For every generated input the outcome must be one of:

* a valid result: a decision that scores by every method to finite totals whose JSON has no NaN,
  or evidence records whose values lie in their metrics' domains;
* exit 2 / a ``StackdecideError`` subclass whose message starts with the file's name.

Never another exception, never a hang: each example has a deadline, and each test an alarm. The
inputs start from valid files and mutate them (replace, drop or add a value anywhere; splice text
into the YAML or JSON), so most examples get deep into the checks instead of failing at the first
character. ``derandomize=True`` makes the examples the same on every run, so CI is reproducible;
the example counts keep the whole module near 30 s on two cores.
"""

from __future__ import annotations

import json
import math
import os
import signal
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from stackdecide.errors import DecisionFileError, EvidenceError, StackdecideError
from stackdecide.evidence.importers import RunContext, parse_evidence_text
from stackdecide.mcda.methods import METHODS
from stackdecide.model.loader import parse
from stackdecide.model.metrics import METRICS
from stackdecide.report.text import render_json
from stackdecide.scoring import score

from .conftest import cli, vllm_result

# a whole test; the per-example deadline below catches slow examples first
ALARM_S = 120 * max(int(os.environ.get("STACKDECIDE_FUZZ", "0") or 0), 1)


# STACKDECIDE_FUZZ=N runs N times the examples with fresh random choices: a deeper search for a
# developer's machine. CI leaves it unset: the same examples every run.
DEEPER = int(os.environ.get("STACKDECIDE_FUZZ", "0") or 0)


def fuzz_settings(examples: int, deadline_s: float = 3) -> settings:
    """``examples`` examples (times ``STACKDECIDE_FUZZ``), each within ``deadline_s``."""
    return settings(max_examples=examples * max(DEEPER, 1), deadline=timedelta(seconds=deadline_s),
                    derandomize=not DEEPER, database=None, print_blob=True,
                    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large,
                                           HealthCheck.function_scoped_fixture])


@pytest.fixture(autouse=True)
def no_hang() -> Iterator[None]:
    """A hang in Python code (a loop that never ends) becomes a failure, not a stuck CI job."""
    def expire(signum: int, frame: object) -> None:
        raise TimeoutError(f"no answer within {ALARM_S} s: a hang")

    previous = signal.signal(signal.SIGALRM, expire)
    signal.alarm(ALARM_S)
    try:
        yield
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)


# -- values a hostile file can hold ----------------------------------------------------------------
EDGE_NUMBERS = [0, -0.0, 1, -1, 1e-308, 5e-324, 1e308, -1e308, 1.7976931348623157e308, 1e12,
                1e12 + 1, -1e12, 1e-12, 2**53 + 1, 2**63, 10**400, -(10**400), 0.5, 100]
numbers = st.one_of(st.sampled_from(EDGE_NUMBERS),
                    st.floats(allow_nan=True, allow_infinity=True),
                    st.integers(min_value=-(10**30), max_value=10**30))
texts = st.one_of(st.text(max_size=12),
                  st.sampled_from(["", " ", "35%", "1e400", "nan", "inf", "-inf", "1/3", "auto",
                                   "0x10", "2025-08-20", "=", "~", "null", "yes", "9" * 400,
                                   "a b", "x\x00y", "LD_PRELOAD", "max-model-len"]))
leaves = st.one_of(st.none(), st.booleans(), numbers, texts)
values = st.recursive(leaves, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(texts, inner, max_size=4)), max_leaves=8)


def _paths(node: Any, prefix: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    """Every place in a nested dict/list document, parents before children."""
    found = [prefix] if prefix else []
    if isinstance(node, dict):
        for key, child in node.items():
            found += _paths(child, (*prefix, key))
    elif isinstance(node, list):
        for index, child in enumerate(node):
            found += _paths(child, (*prefix, index))
    return found


def _apply(document: Any, path: tuple[Any, ...], action: str, value: Any) -> None:
    parent = document
    for part in path[:-1]:
        parent = parent[part]
    last = path[-1]
    if action == "replace":
        parent[last] = value
    elif action == "drop":
        del parent[last]
    elif isinstance(parent, dict):  # add a key beside the chosen one
        parent[f"{last}_extra" if isinstance(last, str) else "extra"] = value
    else:
        parent.append(value)


@st.composite
def mutated(draw: st.DrawFn, base: dict[str, Any], most: int = 3) -> dict[str, Any]:
    """``base`` with one to ``most`` values replaced, dropped or added anywhere."""
    document = json.loads(json.dumps(base))
    for _ in range(draw(st.integers(1, most))):
        paths = _paths(document)
        if not paths:
            break
        path = draw(st.sampled_from(paths))
        _apply(document, path, draw(st.sampled_from(["replace", "replace", "drop", "add"])),
               draw(values))
    return document


@st.composite
def spliced(draw: st.DrawFn, text: str, pieces: list[str]) -> str:
    """``text`` with a few characters replaced by syntax fragments or arbitrary text."""
    for _ in range(draw(st.integers(1, 3))):
        start = draw(st.integers(0, len(text)))
        end = draw(st.integers(start, min(len(text), start + 8)))
        piece = draw(st.one_of(st.sampled_from(pieces), st.text(max_size=6)))
        text = text[:start] + piece + text[end:]
    return text


# -- decision files --------------------------------------------------------------------------------
DECISION: dict[str, Any] = {
    "schema": "stackdecide/v1",
    "decision": {"title": "Fuzzed", "hardware": {"gpu": "NVIDIA H100", "vram_gb": 80},
                 "model": {"id": "Qwen/Qwen3-4B", "shape": "qwen3-4b"},
                 "targets": {"decode_tok_s": [100, 200], "context_tokens": 4096}},
    "criteria": [
        {"id": "speed", "weight": 0.5, "scale": [0, 10], "uncertainty": 1,
         "measure": {"metric": "decode_tok_s", "value": "linear", "worst": 50, "best": 150}},
        {"id": "latency", "weight": "30%", "direction": "cost",
         "measure": {"metric": "ttft_ms_p50", "value": "target", "target": [10, 50]}},
        {"id": "stability", "weight": 0.2},
    ],
    "candidates": [
        {"id": "a", "engine": {"model": "Qwen/Qwen3-4B", "max_model_len": 4096},
         "env": {"VLLM_LOGGING_LEVEL": "INFO"}, "scores": {"speed": 7, "latency": 3,
                                                          "stability": 9},
         "reported_total": 70},
        {"id": "b", "scores": {"speed": 9, "latency": 5, "stability": 5},
         "uncertainty": {"speed": 0.5}},
    ],
    "constraints": ["decode_tok_s >= 10"],
    "sensitivity": {"weight_bounds": {"speed": [0.1, 0.9]}, "samples": 100},
}
DECISION_TEXT = yaml.safe_dump(DECISION, sort_keys=False)
YAML_PIECES = ["!!binary aGk=", "!!python/name:os.system", "!foo", "&a", "*a", "<<: *a", "{", "}",
               "[", "]", ": ", "- ", "\n  ", "\t", "'", '"', "#", "|", ">", "?", "%YAML 1.1\n",
               "---\n", "...", "1e308", ".nan", "-.inf", "9" * 400, "\x00", "\ufeff", "~"]


def check_decision_text(text: str, tmp_path: Path) -> None:
    """The library answers with a scored decision or a located DecisionFileError; the CLI with
    exit 0 and JSON free of NaN, or exit 2 and one error line naming the file."""
    try:
        decision = parse(text, "fuzz.yaml")
    except DecisionFileError as exc:
        assert exc.location is not None and exc.location.file == "fuzz.yaml", repr(exc)
        assert str(exc).startswith("fuzz.yaml")
    else:
        for method in METHODS:
            try:
                ranking = score(decision, method=method)
            except StackdecideError as exc:  # located errors only, never the NaN guard
                assert "not finite" not in str(exc), str(exc)
                continue
            assert all(math.isfinite(total) for total in ranking.totals), ranking.totals
            json.loads(render_json(ranking), parse_constant=_no_constant)
    path = tmp_path / "fuzz.yaml"
    path.write_text(text, encoding="utf-8", errors="surrogatepass")
    result = cli(["score", str(path), "--format", "json"])
    assert result.exit_code in (0, 2), (result.exit_code, result.stderr)
    if result.exit_code == 0:
        json.loads(result.stdout, parse_constant=_no_constant)
    else:
        assert result.stderr.startswith(f"error: {path}"), result.stderr


def _no_constant(name: str) -> float:
    raise AssertionError(f"{name} in JSON output")


def test_the_base_decision_is_valid(tmp_path: Path) -> None:
    """The mutations start from a file that scores: the properties test the checks, not typos."""
    parse(DECISION_TEXT, "fuzz.yaml")
    check_decision_text(DECISION_TEXT, tmp_path)


@pytest.mark.slow
@fuzz_settings(400)
@given(document=mutated(DECISION))
def test_schema_any_value_anywhere(document: dict[str, Any], tmp_path: Path) -> None:
    check_decision_text(yaml.safe_dump(document, sort_keys=False, allow_unicode=True), tmp_path)


@fuzz_settings(300)
@given(text=spliced(DECISION_TEXT, YAML_PIECES))
def test_yaml_loader_any_splice(text: str, tmp_path: Path) -> None:
    check_decision_text(text, tmp_path)


@fuzz_settings(100)
@given(text=st.text(max_size=200))
def test_yaml_loader_arbitrary_text(text: str, tmp_path: Path) -> None:
    check_decision_text(text, tmp_path)


# -- evidence files --------------------------------------------------------------------------------
RECORD: dict[str, Any] = {
    "candidate": "a", "metric": "ttft_ms_p50", "value": 42.5, "unit": "ms", "repeats": 3,
    "spread": 1.5, "scenario": {"concurrency": 1, "input_len": 128, "request_rate": "inf"},
    "hardware": {"gpu": "NVIDIA H100", "vram_gb": 80, "count": 1},
    "software": {"vllm": "0.10.1"}, "timestamp": "2025-08-21T14:22:33+00:00", "note": "n",
}
EXPORT = {"format": "stackdecide-evidence/v1", "tool_version": "0.1.0", "records": [RECORD]}
JSON_PIECES = ["NaN", "Infinity", "-Infinity", "1e400", "9" * 400, "-" + "9" * 5000, "[" * 50,
               "{", "}", ",", ":", '"', "\\u0000", "\n", "null", "true", "0.0", "-0"]


def check_evidence_text(text: str, context: RunContext | None = None) -> None:
    """Records all inside their metrics' domains, or a located EvidenceError."""
    try:
        result = parse_evidence_text(text, "fuzz.json", context)
    except EvidenceError as exc:
        assert exc.location is not None and exc.location.file == "fuzz.json", repr(exc)
        assert str(exc).startswith("fuzz.json")
        return
    for record in result.records:
        assert METRICS[record.metric].problem(record.value) is None, record
        json.loads(record.model_dump_json())


@fuzz_settings(400)
@given(document=mutated(vllm_result(), most=4))
def test_vllm_results_any_value_anywhere(document: dict[str, Any]) -> None:
    check_evidence_text(json.dumps(document), RunContext(candidate="a"))


@fuzz_settings(250)
@given(document=mutated(EXPORT, most=4))
def test_our_exports_any_value_anywhere(document: dict[str, Any]) -> None:
    check_evidence_text(json.dumps(document))


@fuzz_settings(250)
@given(text=st.one_of(spliced(json.dumps(vllm_result()), JSON_PIECES),
                      spliced(json.dumps(RECORD) + "\n" + json.dumps(RECORD), JSON_PIECES)))
def test_evidence_text_any_splice(text: str) -> None:
    check_evidence_text(text, RunContext(candidate="a") if "backend" in text else None)


@fuzz_settings(10)
@given(depth=st.integers(1, 300_000), opener=st.sampled_from(["[", '{"a":']))
def test_evidence_nested_to_any_depth(depth: int, opener: str) -> None:
    closer = "]" if opener == "[" else "}"
    check_evidence_text(opener * depth + "1" + closer * depth)
