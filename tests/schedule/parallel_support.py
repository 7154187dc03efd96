"""Helpers of the scheduler engine tests: the candidates, an interrupting listener, the engines'
process groups from their run folders."""

from __future__ import annotations

import json
from pathlib import Path

from stackdecide.schedule.base import Event

PAIR = ("cpu-bf16", "cpu-fp32")


class InterruptWhenAllReady:
    """A progress listener that raises KeyboardInterrupt in the driver, as Ctrl-C would, once
    every candidate answered its first completion."""

    def __init__(self, candidates: tuple[str, ...]) -> None:
        self.waiting = set(candidates)
        self.events: list[Event] = []

    def __call__(self, event: Event) -> None:
        self.events.append(event)
        if event.phase == "ready: completion":
            self.waiting.discard(event.candidate_id)
            if not self.waiting:
                raise KeyboardInterrupt


def engine_groups(runs: Path) -> dict[str, int]:
    """Candidate -> process group of every engine started under ``runs``."""
    groups = {}
    for outcome in runs.glob("*/outcome.json"):
        data = json.loads(outcome.read_text())
        if data.get("pgid"):
            groups[data["candidate_id"]] = data["pgid"]
    return groups
