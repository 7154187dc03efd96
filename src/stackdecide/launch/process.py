"""The engine's process group: stopping all of it, and turning SIGTERM/SIGHUP into Ctrl-C so the
cleanup that stops it runs however the launcher is asked to end.
"""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import threading
import time
from collections.abc import Callable, Iterator
from dataclasses import asdict, dataclass
from types import FrameType
from typing import Any

DEFAULT_GRACE_S = 20.0


@dataclass(frozen=True)
class StopReport:
    signal: str | None  # the last signal sent: SIGTERM, SIGKILL, or None if already gone
    waited_s: float
    left: tuple[int, ...] = ()  # PIDs still alive after SIGKILL (should be empty)

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def group_members(pgid: int) -> list[int]:
    """Live (non-zombie) processes of a process group; empty when the group is gone."""
    try:
        os.killpg(pgid, 0)
    except ProcessLookupError:
        return []
    except PermissionError:
        pass
    try:
        import psutil
    except ImportError:
        return [pgid]
    members = []
    for process in psutil.process_iter(["pid", "status"]):
        try:
            if os.getpgid(process.pid) == pgid and process.info["status"] != psutil.STATUS_ZOMBIE:
                members.append(process.pid)
        except (ProcessLookupError, PermissionError, psutil.Error):
            continue
    return members


def kill_group(pgid: int, grace_s: float = DEFAULT_GRACE_S,
               reap: Callable[[], object] = lambda: None) -> StopReport:
    """SIGTERM the group, wait up to ``grace_s``, SIGKILL what is left.

    ``reap`` is called while waiting: the launcher passes its child's ``poll`` so that the child
    does not linger as a zombie, which would count as a member still alive.
    """
    start = time.monotonic()
    sent: str | None = None
    for sig, wait_s in ((signal.SIGTERM, grace_s), (signal.SIGKILL, 10.0)):
        reap()
        if not group_members(pgid):
            break
        with contextlib.suppress(ProcessLookupError):
            os.killpg(pgid, sig)
            sent = sig.name
        deadline = time.monotonic() + wait_s
        while time.monotonic() < deadline:
            reap()
            if not group_members(pgid):
                break
            time.sleep(0.1)
    return StopReport(sent, round(time.monotonic() - start, 3), tuple(group_members(pgid)))


def stop_process_group(process: subprocess.Popen[bytes], pgid: int,
                       grace_s: float = DEFAULT_GRACE_S) -> StopReport:
    """Stop the group our child leads, and reap the child."""
    report = kill_group(pgid, grace_s, process.poll)
    with contextlib.suppress(subprocess.TimeoutExpired):
        process.wait(timeout=5)
    return report


@contextlib.contextmanager
def signals_interrupt() -> Iterator[None]:
    """Within the block, SIGTERM and SIGHUP raise ``KeyboardInterrupt`` like Ctrl-C does, so the
    cleanup that stops a server runs however the launcher is asked to end (main thread only)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return

    def handler(signum: int, frame: FrameType | None) -> None:
        raise KeyboardInterrupt(signal.Signals(signum).name)

    previous = {sig: signal.signal(sig, handler) for sig in (signal.SIGTERM, signal.SIGHUP)}
    try:
        yield
    finally:
        for sig, old in previous.items():
            signal.signal(sig, old)


def die_with_parent() -> None:
    """In the child before exec: get SIGTERM if the launcher dies without cleaning up (Linux)."""
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL(None, use_errno=True).prctl(1, signal.SIGTERM)  # PR_SET_PDEATHSIG


