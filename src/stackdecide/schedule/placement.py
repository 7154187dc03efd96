"""Which candidates run now, and on which GPUs: pure functions of what each needs and what is free.

A candidate needs ``tensor x pipeline x data parallel`` GPUs (none on a CPU decision). Candidates
are placed in the order given; one that does not fit the free GPUs now waits, and a later, smaller
one may take the GPUs left (backfilling), so a long TP-2 candidate does not idle a GPU another
TP-1 candidate could use. A candidate that needs more GPUs than the host has never runs: that is
said at once, not found out after the others.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass


@dataclass(frozen=True)
class Request:
    candidate_id: str
    gpus: int  # GPUs needed; 0: a CPU engine


@dataclass(frozen=True)
class Placement:
    candidate_id: str
    gpus: tuple[int, ...]  # device indices on the host; () for a CPU engine


def unplaceable(requests: Sequence[Request], total_gpus: int) -> list[tuple[Request, str]]:
    """Requests that can never run here, with why."""
    return [(r, f"needs {r.gpus} GPUs; {total_gpus} available") for r in requests
            if r.gpus > total_gpus]


def place(pending: Sequence[Request], free: Sequence[int], running: int,
          limit: int | None) -> list[Placement]:
    """The pending requests to start now, on disjoint GPUs from ``free``.

    ``running``: candidates already running; ``limit``: most at once (None: as many as the GPUs
    allow; candidates without GPUs then run one at a time, since they share the CPU they are
    measured on). GPUs are taken lowest index first.
    """
    available = sorted(free)
    started: list[Placement] = []
    for request in pending:
        at_once = running + len(started)
        cpu_only = request.gpus == 0
        cap = limit if limit is not None else (1 if cpu_only else None)
        if cap is not None and at_once >= cap:
            if limit is not None:
                break
            continue
        if request.gpus > len(available):
            continue
        chosen = tuple(available[:request.gpus])
        available = available[request.gpus:]
        started.append(Placement(request.candidate_id, chosen))
    return started
