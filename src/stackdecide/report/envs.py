"""Views of environments per candidate: resolution verdicts, built and listed environments."""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

from tabulate import tabulate

from stackdecide._text import shown
from stackdecide.envs.build import BuiltEnv
from stackdecide.envs.resolve import Lock, Resolution
from stackdecide.envs.store import EnvEntry


def render_resolutions(resolutions: Sequence[Resolution], show_lock: bool = False) -> str:
    """One line per candidate: whether its stack installs as pinned, and why not."""
    lines = []
    for resolution in resolutions:
        pins = ", ".join(resolution.requirements.lines) or "-"
        target = f"Python {resolution.requirements.python_version}, " \
                 f"{resolution.requirements.platform}"
        lines.append(f"{resolution.candidate_id}: {resolution.summary()}")
        lines.append(f"  pins: {pins} ({target})")
        lines += [f"  uv warning: {warning}" for warning in resolution.warnings]
        if show_lock and resolution.lock is not None:
            lines += [f"    {name}=={version}" for name, version in resolution.lock.packages]
    return "\n".join(lines) + ("\n" if lines else "")


MARKS = {"ok": "ok", "conflict": "UNRESOLVABLE", "bad-pin": "UNRESOLVABLE",
         "unchecked": "unchecked", "no-pins": "current env"}


def render_stack_marks(resolutions: Sequence[Resolution]) -> str:
    """One mark per candidate (``UNRESOLVABLE`` where its stack cannot be installed as pinned)."""
    return "".join(f"  [{MARKS[r.status]}{', CUDA build unchecked' if r.variant_unchecked else ''}]"
                   f" {r.candidate_id}: {r.summary()}\n" for r in resolutions)


def stack_dict(resolution: Resolution) -> dict[str, Any]:
    """A verdict as JSON: status, reason, and the lock's packages when it resolved."""
    lock = resolution.lock
    return {"candidate": resolution.candidate_id, "status": resolution.status,
            "summary": resolution.summary(), "reason": resolution.reason,
            "variant_unchecked": resolution.variant_unchecked,
            "requirements": list(resolution.requirements.lines),
            "python_version": resolution.requirements.python_version,
            "platform": resolution.requirements.platform,
            "lock_sha256": lock.sha256 if lock else None,
            "packages": [f"{n}=={v}" for n, v in lock.packages] if lock else None}


def render_built(envs: dict[str, BuiltEnv]) -> str:
    if not envs:
        return "no candidate pins its stack: nothing to build (they run in the current environment)\n"
    rows = [[candidate, env.short, env.vllm or "-",
             env.version("torch") or "-", env.python_version,
             f"{env.build_s:.1f} s" if env.built_now and env.build_s is not None else "reused",
             str(env.path)] for candidate, env in envs.items()]
    return tabulate(rows, headers=["candidate", "lock", "vllm", "torch", "python", "build",
                                   "environment"], disable_numparse=True) + "\n"


def _state(entry: EnvEntry) -> str:
    """What an entry that is no complete environment is, and whether ``env prune`` removes it."""
    if entry.link:
        return "link (never followed)"
    if not entry.marked:
        return "not stackdecide's (env prune keeps it)"
    return "building" if entry.in_progress else "incomplete (env prune removes it)"


def render_entries(entries: Sequence[EnvEntry]) -> str:
    if not entries:
        return "no environments\n"
    rows = []
    for entry in entries:
        size = f"{entry.size_bytes / 2**20:,.0f} MiB ({entry.own_bytes / 2**20:,.0f} MiB own)"
        if entry.env is None:
            rows.append([shown(entry.path.name), "-", "-", "-", _state(entry), size])
            continue
        env = entry.env
        rows.append([env.short, env.vllm or "-",
                     env.version("torch") or "-", env.python_version,
                     str(env.manifest.get("built_at", "-")), size])
    return tabulate(rows, headers=["lock", "vllm", "torch", "python", "built",
                                   "size (own: not linked from uv's cache)"],
                    disable_numparse=True) + "\n"


def render_download(candidate_id: str, lock: Lock, fetched: Sequence[tuple[str, str]],
                    base_freeze: Path | None, wheels: int, dest: Path,
                    warnings: Sequence[str] = ()) -> str:
    """One line per candidate of `env download`: what was asked for, what the folder holds."""
    asked = (f"{len(fetched)} of its {len(lock.packages)} packages are not in {base_freeze} at "
             "those versions" if base_freeze is not None else f"{len(lock.packages)} packages")
    return f"{candidate_id}: lock {lock.short}, {asked}; {wheels} wheels in {dest}" + "".join(
        f"\n  warning: {text}" for text in warnings)
