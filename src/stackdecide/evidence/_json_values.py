"""Values read from hostile JSON: every way a file can be out of reach of float arithmetic, of
memory, or of one meaning is refused here with its place named, never left to become a
traceback, a NaN or a silently dropped number later.

``loads`` parses with integers too long for a float kept as ``HugeNumber`` (Python's own parser
would give an int that overflows on conversion, or refuse 4,300+ digits with a bare ValueError),
refuses a key written twice in one object (JSON readers keep either one), stops at the limits of
``JsonBudget`` before memory runs out, and turns nesting past the recursion limit into an
``EvidenceError``. ``Node`` reads a document's values strictly, naming the JSON path of a wrong
one; ``read_number``, ``read_integer`` and ``read_measured`` read one key of a flat result.
"""

from __future__ import annotations

import json
import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from itertools import pairwise
from json.decoder import scanstring
from json.scanner import make_scanner
from typing import Any

from stackdecide.errors import EvidenceError, Location
from stackdecide.model.metrics import METRICS

# What one evidence file may hold. The byte limit alone does not bound memory: a parsed number
# takes about 32 bytes and an object about 250, whatever they took in the file.
MAX_JSON_NUMBERS = 4_000_000  # a detailed vllm bench serve result: one per streamed token
MAX_JSON_OBJECTS = 250_000  # an export of 50,000 records with their scenario, hardware, software
MAX_JSON_STRINGS = 2_000_000  # counted before parsing, as pairs of quotes


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


@dataclass
class JsonBudget:
    """What the JSON documents of one file have used of the limits (a JSON lines file: all its
    lines together)."""

    numbers: int = 0
    objects: int = 0
    strings: int = 0


class _OverBudget(Exception):
    def __init__(self, what: str, limit: int) -> None:
        super().__init__(what)
        self.what = what
        self.limit = limit


class _RepeatedKey(Exception):
    pass


def loads(text: str, where: Location, budget: JsonBudget | None = None) -> Any:
    """``json.loads`` that cannot end in a traceback or run out of memory on hostile input:
    integers too long for a float become ``HugeNumber`` (refused where a number is read, with its
    digits shown); a key written twice in one object, more values than ``budget`` allows, and
    nesting deeper than the parser's recursion limit are ``EvidenceError``s."""
    budget = budget if budget is not None else JsonBudget()
    budget.strings += text.count('"') // 2
    if budget.strings > MAX_JSON_STRINGS:
        raise _too_many("strings", MAX_JSON_STRINGS, where)

    def count_number() -> None:
        budget.numbers += 1
        if budget.numbers > MAX_JSON_NUMBERS:
            raise _OverBudget("numbers", MAX_JSON_NUMBERS)

    def integer(digits: str) -> int | float:
        count_number()
        return json_int(digits)

    def decimal(digits: str) -> float:
        count_number()
        return float(digits)

    def constant(name: str) -> float:  # NaN, Infinity: refused where a number is read
        count_number()
        return float(name)

    def mapping(pairs: list[tuple[str, Any]]) -> dict[str, Any]:
        budget.objects += 1
        if budget.objects > MAX_JSON_OBJECTS:
            raise _OverBudget("objects", MAX_JSON_OBJECTS)
        result = dict(pairs)
        if len(result) != len(pairs):
            raise _RepeatedKey
        return result

    try:
        return json.loads(text, parse_int=integer, parse_float=decimal, parse_constant=constant,
                          object_pairs_hook=mapping)
    except RecursionError:
        raise EvidenceError("JSON nested too deeply (thousands of brackets): not an evidence "
                            "file", where) from None
    except _OverBudget as exc:
        raise _too_many(exc.what, exc.limit, where) from None
    except _RepeatedKey:
        raise _repeated_key(text, where) from None


def _too_many(what: str, limit: int, where: Location) -> EvidenceError:
    return EvidenceError(f"holds more than {limit:,} JSON {what}, more than an evidence file of "
                         "one benchmark holds; split it (one file per run, or evidence export "
                         "--candidate/--metric)", where)


_SCALAR = make_scanner(json.JSONDecoder())


class _Found(Exception):
    def __init__(self, key: str, path: str, offset: int) -> None:
        super().__init__(path)
        self.key = key
        self.path = path
        self.offset = offset


def _repeated_key(text: str, where: Location) -> EvidenceError:
    """The error for a key written twice in one object, placed at its second writing."""
    try:
        _walk(text, 0, "")
    except _Found as found:
        line = (where.line or 1) + text.count("\n", 0, found.offset)
        return EvidenceError(f"key '{found.key}' is written twice in one object; JSON readers keep "
                             "either value, so which one was measured is unknown: remove one",
                             Location(where.file, line, None, found.path))
    except (RecursionError, IndexError, StopIteration, ValueError):
        pass  # nested past the recursion limit: the key is named without its place
    return EvidenceError("a key is written twice in one object; JSON readers keep either value, "
                         "so which one was measured is unknown: remove one", where)


def _skip(text: str, index: int) -> int:
    """The index of the first character at or after ``index`` that is not white space."""
    while index < len(text) and text[index] in " \t\n\r":
        index += 1
    return index


def _walk(text: str, index: int, path: str) -> int:
    """Walk the JSON value at ``index`` (valid JSON up to the first repeated key), raising
    ``_Found`` at the second writing of a key within one object; returns where the value ends."""
    index = _skip(text, index)
    opening = text[index]
    if opening == "{":
        seen: set[str] = set()
        index = _skip(text, index + 1)
        if text[index] == "}":
            return index + 1
        while True:
            start = index
            key, index = scanstring(text, index + 1)
            child = f"{path}.{key}" if path else key
            if key in seen:
                raise _Found(key, child, start)
            seen.add(key)
            index = _skip(text, _walk(text, _skip(text, index) + 1, child))  # past ':'
            if text[index] == "}":
                return index + 1
            index = _skip(text, index + 1)  # past ','
    if opening == "[":
        index = _skip(text, index + 1)
        if text[index] == "]":
            return index + 1
        item = 0
        while True:
            index = _skip(text, _walk(text, index, f"{path}[{item}]"))
            if text[index] == "]":
                return index + 1
            index += 1
            item += 1
    return int(_SCALAR(text, index)[1])


# -- strict reading ------------------------------------------------------------------------------
def shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _finite(value: Any, at: Location) -> float:
    """``value`` as a finite float, or the error naming ``at``: a text, a true/false, NaN,
    Infinity or a number beyond float is not a measurement."""
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


def _whole(value: Any, at: Location) -> int:
    number = _finite(value, at)
    if number != int(number) or number < 0:
        raise EvidenceError(f"expected a whole number, got {shown(value)}", at)
    return int(number)


@dataclass(frozen=True)
class Node:
    """One value of a JSON document and where it sits (file, line, JSON path), read strictly:
    a value of the wrong type is refused naming that place, never skipped. An absent key reads
    as null."""

    value: Any
    where: Location  # the document: its file, and its line in a JSON lines file
    path: str = ""

    @property
    def location(self) -> Location:
        return Location(self.where.file, self.where.line, None, self.path or self.where.field)

    @property
    def present(self) -> bool:
        return self.value is not None

    def fail(self, message: str) -> EvidenceError:
        return EvidenceError(message, self.location)

    def get(self, key: str) -> Node:
        """The value at ``key`` of this object (null when this one is null)."""
        child = f"{self.path}.{key}" if self.path else key
        if self.value is None:
            return Node(None, self.where, child)
        if not isinstance(self.value, Mapping):
            raise self.fail(f"expected an object, got {shown(self.value)}")
        return Node(self.value.get(key), self.where, child)

    def is_object(self) -> bool:
        return isinstance(self.value, Mapping)

    def names(self) -> list[str]:
        """The keys of this object (none when null)."""
        if self.value is None:
            return []
        if not isinstance(self.value, Mapping):
            raise self.fail(f"expected an object, got {shown(self.value)}")
        return list(self.value)

    def elements(self) -> list[Node]:
        """The items of this list (none when null)."""
        if self.value is None:
            return []
        if not isinstance(self.value, list):
            raise self.fail(f"expected a list, got {shown(self.value)}")
        return [Node(item, self.where, f"{self.path}[{index}]")
                for index, item in enumerate(self.value)]

    def number(self) -> float | None:
        return None if self.value is None else _finite(self.value, self.location)

    def integer(self, minimum: int = 0) -> int | None:
        if self.value is None:
            return None
        number = _whole(self.value, self.location)
        if number < minimum:
            raise self.fail(f"expected a whole number of at least {minimum}, got {number}")
        return number

    def text(self) -> str | None:
        if self.value is None or isinstance(self.value, str):
            return self.value
        raise self.fail(f"expected a text, got {shown(self.value)}")

    def measured(self, metric: str, scale: float = 1.0) -> float | None:
        """This number times ``scale``, refused when it is not a possible value of ``metric`` (a
        negative latency or throughput)."""
        number = self.number()
        if number is None:
            return None
        value = number * scale
        known = METRICS.get(metric)
        problem = known.problem(value) if known is not None else None
        if problem:
            raise self.fail(problem)
        return value


def check_percentiles(values: Sequence[tuple[float, float, Location]]) -> None:
    """Percentiles of one distribution, ``(percentile, value, where)``, must not fall as the
    percentile rises: a p99 below the p50 describes no run, and would pass an SLO it failed."""
    ordered = sorted(values, key=lambda item: item[0])
    for (low, low_value, _), (high, high_value, where) in pairwise(ordered):
        if high_value < low_value - 1e-9 * abs(low_value):
            raise EvidenceError(f"p{high:g} ({high_value:g}) is below p{low:g} ({low_value:g}); "
                                "percentiles rise with the percentile, so these numbers describe "
                                "no run (a damaged or hand-edited file)", where)


# -- one key of a flat result (vllm bench serve) --------------------------------------------------
def read_number(result: Mapping[str, Any], key: str, where: Location) -> float | None:
    """The number at ``key``, None when absent or null; NaN, Infinity and numbers beyond float
    are refused, naming the key: a value that cannot be measured is not silently dropped."""
    value = result.get(key)
    if value is None:
        return None
    return _finite(value, Location(where.file, where.line, None, key))


def read_measured(result: Mapping[str, Any], key: str, metric: str, where: Location) -> float | None:
    """The number at ``key``, refused when it is not a possible value of ``metric`` (a negative
    latency or throughput), with the file's own key named."""
    return Node(result, where).get(key).measured(metric)


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


def read_integer(result: Mapping[str, Any], key: str, where: Location) -> int | None:
    value = result.get(key)
    if value is None:
        return None
    return _whole(value, Location(where.file, where.line, None, key))
