"""Request lengths of a benchmark: fixed, uniform around a mean, or pairs read from a file.

``uniform`` follows ``vllm bench serve --random-range-ratio``: a length ``L`` with range ``r`` is
drawn from the integers in ``[floor(L (1 - r)), ceil(L (1 + r))]``. A lengths file holds one
``input_len,output_len`` pair a line (CSV, a header line allowed) or JSON lines with those keys;
requests draw pairs from it uniformly with replacement, seeded.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from stackdecide.model.lengths import read_lengths_file

__all__ = ["Lengths", "read_lengths_file"]


@dataclass(frozen=True)
class Lengths:
    """How long each request's prompt and output are."""

    input_len: int
    output_len: int
    input_range: float = 0.0
    output_range: float = 0.0
    pairs: tuple[tuple[int, int], ...] = ()  # from a lengths file; replaces the above
    source: str = ""  # the lengths file, for records

    def sample(self, rng: np.random.Generator, count: int) -> list[tuple[int, int]]:
        """``count`` (input_len, output_len) pairs."""
        if self.pairs:
            picks = rng.integers(0, len(self.pairs), size=count)
            return [self.pairs[int(i)] for i in picks]
        inputs = _uniform(rng, self.input_len, self.input_range, count)
        outputs = _uniform(rng, self.output_len, self.output_range, count)
        return list(zip(inputs, outputs, strict=True))

    @property
    def largest(self) -> tuple[int, int]:
        """The longest prompt and output this workload can ask for."""
        if self.pairs:
            return max(p[0] for p in self.pairs), max(p[1] for p in self.pairs)
        return (math.ceil(self.input_len * (1 + self.input_range)),
                math.ceil(self.output_len * (1 + self.output_range)))

    def describe(self) -> str:
        if self.pairs:
            return f"{len(self.pairs)} length pairs from {self.source or 'a file'}"

        def one(length: int, spread: float) -> str:
            return f"{length}" + (f" +-{spread:.0%}" if spread else "")
        return f"{one(self.input_len, self.input_range)} in / {one(self.output_len, self.output_range)} out"

    def scenario(self) -> dict[str, int | float | str]:
        """What records say about the lengths (mean lengths when they vary)."""
        if self.pairs:
            return {"input_len": round(float(np.mean([p[0] for p in self.pairs]))),
                    "output_len": round(float(np.mean([p[1] for p in self.pairs]))),
                    "lengths_file": Path(self.source).name}
        data: dict[str, int | float | str] = {"input_len": self.input_len,
                                              "output_len": self.output_len}
        if self.input_range:
            data["input_range"] = self.input_range
        if self.output_range:
            data["output_range"] = self.output_range
        return data


def _uniform(rng: np.random.Generator, length: int, spread: float, count: int) -> list[int]:
    if not spread:
        return [length] * count
    low = max(1, math.floor(length * (1 - spread)))
    high = max(low, math.ceil(length * (1 + spread)))
    return rng.integers(low, high + 1, size=count).tolist()
