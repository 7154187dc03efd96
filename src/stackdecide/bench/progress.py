"""Progress of a benchmark run as a tqdm bar per phase on stderr (see ``bench.runner.Progress``)."""

from __future__ import annotations

from typing import Any


class TqdmProgress:
    """A tqdm bar per phase on stderr (hidden when stderr is not a terminal or when disabled)."""

    def __init__(self, enabled: bool) -> None:
        self.enabled = enabled
        self.bar: Any = None

    def start(self, label: str, total: int) -> None:
        from tqdm import tqdm

        self.finish()
        self.bar = tqdm(total=total, desc=label, unit="req", leave=False,
                        disable=None if self.enabled else True)

    def advance(self, n: int = 1) -> None:
        if self.bar is not None:
            self.bar.update(n)

    def finish(self) -> None:
        if self.bar is not None:
            self.bar.close()
            self.bar = None
