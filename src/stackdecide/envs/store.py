"""The environments under an env folder: listing them and removing what is not wanted.

Only folders that carry stackdecide's marker (``build.MARKER``, written when the folder is made)
are ever removed. Anything else in the env folder is listed and left alone: a link (never
followed), a folder someone put there, and an environment built before stackdecide marked its
folders, which ``env prune`` names with the command that removes it by hand.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import stat
from dataclasses import dataclass
from pathlib import Path

from stackdecide.envs.build import BUILDING_PREFIX, MARKER, BuiltEnv, is_marked, read_env
from stackdecide.errors import StackdecideError

_BUILDING = re.compile(rf"^{re.escape(BUILDING_PREFIX)}[0-9a-f]+-(\d+)-[0-9a-f]+$")
_LOCK_PREFIX = re.compile(r"[0-9a-f]+")


@dataclass(frozen=True)
class EnvEntry:
    """One entry of the env folder: a complete environment, an unfinished build, or something
    stackdecide did not make (``marked`` False; a link has ``link`` True and is never followed)."""

    path: Path
    env: BuiltEnv | None  # None: not a complete environment
    building_pid: int | None = None  # the process of an unfinished build, when it is one
    size_bytes: int = 0  # files counted once each; hard links into uv's cache count here too
    own_bytes: int = 0  # files no other folder links to (what removing it frees)
    marked: bool = True  # stackdecide made it (it holds build.MARKER)
    link: bool = False

    @property
    def complete(self) -> bool:
        return self.env is not None

    @property
    def in_progress(self) -> bool:
        return self.building_pid is not None and _alive(self.building_pid)

    @property
    def kept_because(self) -> str | None:
        """Why ``env prune`` never removes this entry; None when it may."""
        if self.link:
            return "a symbolic link (env prune never follows or removes links)"
        if self.marked:
            return None
        if self.complete:
            return (f"an environment built before stackdecide marked its folders (no {MARKER}); "
                    f"if no run uses it, remove it by hand: rm -rf {shlex.quote(str(self.path))}")
        return (f"not made by stackdecide (no {MARKER}: someone else's folder, or a build "
                "interrupted before stackdecide marked its folders); env prune leaves it alone")


@dataclass(frozen=True)
class Pruned:
    removed: tuple[Path, ...]
    kept: tuple[tuple[Path, str], ...]  # asked for but left alone, and why


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    return True


def folder_size(path: Path) -> tuple[int, int]:
    """Bytes of the files under ``path`` (each once), and of those not linked from elsewhere."""
    seen: set[tuple[int, int]] = set()
    total = own = 0
    for root, _dirs, files in os.walk(path):
        for name in files:
            try:
                stat_ = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            if (stat_.st_dev, stat_.st_ino) not in seen:
                seen.add((stat_.st_dev, stat_.st_ino))
                total += stat_.st_size
                own += stat_.st_size if stat_.st_nlink == 1 else 0
    return total, own


def _entry(path: Path, sizes: bool) -> EnvEntry | None:
    """The entry at ``path``: a folder, or a link (to anything); None for files."""
    try:
        mode = os.lstat(path).st_mode
    except OSError:
        return None
    if stat.S_ISLNK(mode):
        return EnvEntry(path, None, marked=False, link=True)
    if not stat.S_ISDIR(mode):
        return None
    match = _BUILDING.match(path.name)
    env = None if match else read_env(path)
    size, own = folder_size(path) if sizes else (0, 0)
    return EnvEntry(path, env, int(match.group(1)) if match else None, size, own,
                    marked=is_marked(path))


def list_envs(env_dir: Path, sizes: bool = True) -> list[EnvEntry]:
    """Every folder (and link) under ``env_dir``: environments by build time, then the rest."""
    if not env_dir.is_dir():
        return []
    entries = [entry for path in sorted(env_dir.iterdir())
               if (entry := _entry(path, sizes)) is not None]
    return sorted(entries, key=lambda e: (e.env is None,
                                          str(e.env.manifest.get("built_at")) if e.env else "",
                                          e.path.name))


def lock_prefixes(locks: tuple[str, ...]) -> tuple[str, ...]:
    """Lock hashes or their first digits, in lower case; a blank one (which would match every
    environment) or one that is no hexadecimal digits is bad input (exit 2)."""
    prefixes = tuple(lock.strip().lower() for lock in locks)
    for written, prefix in zip(locks, prefixes, strict=True):
        if not _LOCK_PREFIX.fullmatch(prefix):
            raise StackdecideError(f"'{written}' is not a lock hash or its first digits "
                                   "(hexadecimal, as `stackdecide env list` shows them); an empty "
                                   "one would match every environment: use --all for that")
    return prefixes


def prune(env_dir: Path, *, everything: bool = False, locks: tuple[str, ...] = ()) -> Pruned:
    """Remove unfinished builds whose process is gone and folders that are no environment; with
    ``locks`` also those environments (a lock hash or its first digits), with ``everything`` all.
    Only folders stackdecide made (``build.MARKER``) are removed; whatever else was asked for is
    returned as kept, with why."""
    prefixes = lock_prefixes(locks)
    removed: list[Path] = []
    kept: list[tuple[Path, str]] = []
    for entry in list_envs(env_dir, sizes=False):
        if entry.in_progress:
            continue
        wanted = everything or not entry.complete or any(
            entry.env is not None and entry.env.lock_sha256.startswith(prefix)
            for prefix in prefixes)
        if not wanted:
            continue
        why = entry.kept_because
        if why is None:
            try:
                shutil.rmtree(entry.path)
            except OSError as exc:
                why = f"could not be removed: {exc.strerror or exc}"
        if why is None:
            removed.append(entry.path)
        else:
            kept.append((entry.path, why))
    return Pruned(tuple(removed), tuple(kept))
