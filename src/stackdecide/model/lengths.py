"""A lengths file: the (input_len, output_len) pairs a benchmark draws request lengths from.

One pair a line, as CSV (``input_len,output_len``; a header line allowed; ``#`` comments) or as
JSON lines with those keys. Read when the decision file is loaded, so that a missing or malformed
file is refused before any server starts, with the file and line.
"""

from __future__ import annotations

import json
from pathlib import Path

from stackdecide._files import read_user_text
from stackdecide.errors import DecisionFileError, Location

MAX_LENGTHS_FILE_BYTES = 64 * 1024 * 1024


def read_lengths_file(path: str | Path) -> tuple[tuple[int, int], ...]:
    """(input_len, output_len) pairs from a CSV or JSON-lines file; errors name file and line."""
    path = Path(path)
    text = read_user_text(path, kind="lengths file", content="CSV or JSON lines",
                          limit=MAX_LENGTHS_FILE_BYTES, error=DecisionFileError)
    pairs: list[tuple[int, int]] = []
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        where = Location(str(path), number)
        if line.startswith("{"):
            try:
                item = json.loads(line)
                values = [item["input_len"], item["output_len"]]
            except (ValueError, KeyError, TypeError):
                raise DecisionFileError("expected a JSON object with input_len and output_len",
                                        where) from None
        else:
            values = [part.strip() for part in line.split(",")]
            if number == 1 and not values[0].lstrip("-").isdigit():
                continue  # a header line
            if len(values) < 2:
                raise DecisionFileError("expected input_len,output_len", where)
        try:
            pair = (int(values[0]), int(values[1]))
        except (ValueError, TypeError):
            raise DecisionFileError(f"lengths must be whole numbers, got {values[:2]}",
                                    where) from None
        if min(pair) < 1:
            raise DecisionFileError(f"lengths must be at least 1 token, got {pair}", where)
        pairs.append(pair)
    if not pairs:
        raise DecisionFileError("no input_len,output_len pairs", Location(str(path)))
    return tuple(pairs)
