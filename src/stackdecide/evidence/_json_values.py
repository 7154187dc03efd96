"""Numbers read from hostile JSON: every way a value can be out of reach of float arithmetic is
refused here with the key named, never left to become a traceback or a NaN later.

``loads`` parses with integers too long for a float kept as ``HugeNumber`` (Python's own parser
would give an int that overflows on conversion, or refuse 4,300+ digits with a bare ValueError)
and turns nesting past the recursion limit into an ``EvidenceError``. ``number``, ``integer`` and
``measured`` read one key of a ``vllm bench serve`` result.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping
from typing import Any

from stackdecide.errors import EvidenceError, Location
from stackdecide.model.metrics import METRICS


class HugeNumber(float):
    """A JSON integer too long for a float: kept as +-inf (so every finiteness check refuses it)
    but shown as the digits written, not as "inf"."""

    digits: str

    def __new__(cls, digits: str) -> HugeNumber:
        number = super().__new__(cls, -math.inf if digits.startswith("-") else math.inf)
        number.digits = digits
        return number

    def __repr__(self) -> str:
        return f"{self.digits[:12]}... (a {len(self.digits.lstrip('-'))}-digit number)"


FLOAT_DIGITS = 308  # longer integers overflow float (1.8e308); Python refuses over 4300 anyway


def json_int(digits: str) -> int | float:
    return HugeNumber(digits) if len(digits.lstrip("-")) > FLOAT_DIGITS else int(digits)


def loads(text: str, where: Location) -> Any:
    """``json.loads`` that cannot end in a traceback on hostile input: integers too long for a
    float become ``HugeNumber`` (refused where a number is read, with its digits shown), and
    nesting deeper than the parser's recursion limit is an ``EvidenceError``."""
    try:
        return json.loads(text, parse_int=json_int)
    except RecursionError:
        raise EvidenceError("JSON nested too deeply (thousands of brackets): not an evidence "
                            "file", where) from None


def read_number(result: Mapping[str, Any], key: str, where: Location) -> float | None:
    """The number at ``key``, None when absent or null; NaN, Infinity and numbers beyond float
    are refused, naming the key: a value that cannot be measured is not silently dropped."""
    value = result.get(key)
    if value is None:
        return None
    at = Location(where.file, where.line, None, key)
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise EvidenceError(f"expected a number, got {shown(value)}", at)
    try:
        number = float(value)
    except OverflowError:  # an integer beyond float's range
        number = math.inf
    if not math.isfinite(number):
        raise EvidenceError(f"{shown(value)} is not a finite number; a measurement must be one "
                            "(fix or remove this key)", at)
    return number


def read_measured(result: Mapping[str, Any], key: str, metric: str, where: Location) -> float | None:
    """The number at ``key``, refused when it is not a possible value of ``metric`` (a negative
    latency or throughput), with the file's own key named."""
    value = read_number(result, key, where)
    known = METRICS.get(metric)
    problem = known.problem(value) if known is not None and value is not None else None
    if problem:
        raise EvidenceError(problem, Location(where.file, where.line, None, key))
    return value


def check_counts(result: Mapping[str, Any], completed: int, failed: int,
                 where: Location) -> None:
    """The run's counts must describe one possible run: prompts sent cover those completed and
    failed, a limit on concurrency is at least 1, the run took time."""
    prompts = read_integer(result, "num_prompts", where)
    if prompts is not None and completed + failed > prompts:
        raise EvidenceError(f"completed ({completed}) + failed ({failed}) is more than num_prompts "
                            f"({prompts}): the counts of this run contradict each other",
                            Location(where.file, where.line, None, "completed"))
    concurrency = read_integer(result, "max_concurrency", where)
    if concurrency is not None and concurrency < 1:
        raise EvidenceError(f"max_concurrency {concurrency} allows no request at all; vLLM writes "
                            "null for no limit", Location(where.file, where.line, None,
                                                          "max_concurrency"))
    duration = read_number(result, "duration", where)
    if duration is not None and duration <= 0:
        raise EvidenceError(f"duration {duration:g} s: a run that completed requests took time",
                            Location(where.file, where.line, None, "duration"))
    for key in ("total_input_tokens", "total_output_tokens"):
        read_integer(result, key, where)  # whole numbers >= 0, or refused naming the key


def shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def read_integer(result: Mapping[str, Any], key: str, where: Location) -> int | None:
    value = read_number(result, key, where)
    if value is None:
        return None
    if value != int(value) or value < 0:
        raise EvidenceError(f"expected a whole number, got {shown(result[key])}",
                            Location(where.file, where.line, None, key))
    return int(value)
