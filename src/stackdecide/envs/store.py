"""The environments under an env folder: listing them and removing what is not wanted."""

from __future__ import annotations

import os
import re
import shutil
from dataclasses import dataclass
from pathlib import Path

from stackdecide.envs.build import BUILDING_PREFIX, BuiltEnv, read_env

_BUILDING = re.compile(rf"^{re.escape(BUILDING_PREFIX)}[0-9a-f]+-(\d+)-[0-9a-f]+$")


@dataclass(frozen=True)
class EnvEntry:
    """One folder under the env folder: a complete environment, or an unfinished build."""

    path: Path
    env: BuiltEnv | None  # None: not a complete environment
    building_pid: int | None = None  # the process of an unfinished build, when it is one
    size_bytes: int = 0  # files counted once each; hard links into uv's cache count here too
    own_bytes: int = 0  # files no other folder links to (what removing it frees)

    @property
    def complete(self) -> bool:
        return self.env is not None

    @property
    def in_progress(self) -> bool:
        return self.building_pid is not None and _alive(self.building_pid)


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
                stat = os.lstat(os.path.join(root, name))
            except OSError:
                continue
            if (stat.st_dev, stat.st_ino) not in seen:
                seen.add((stat.st_dev, stat.st_ino))
                total += stat.st_size
                own += stat.st_size if stat.st_nlink == 1 else 0
    return total, own


def list_envs(env_dir: Path, sizes: bool = True) -> list[EnvEntry]:
    """Every folder under ``env_dir``: environments by build time, then unfinished builds."""
    if not env_dir.is_dir():
        return []
    entries = []
    for path in sorted(env_dir.iterdir()):
        if not path.is_dir():
            continue
        match = _BUILDING.match(path.name)
        env = None if match else read_env(path)
        size, own = folder_size(path) if sizes else (0, 0)
        entries.append(EnvEntry(path, env, int(match.group(1)) if match else None, size, own))
    return sorted(entries, key=lambda e: (e.env is None,
                                          str(e.env.manifest.get("built_at")) if e.env else "",
                                          e.path.name))


def prune(env_dir: Path, *, everything: bool = False, locks: tuple[str, ...] = ()
          ) -> list[Path]:
    """Remove unfinished builds whose process is gone and folders that are no environment; with
    ``locks`` also those environments (a lock hash or its first digits), with ``everything`` all.
    Returns what was removed."""
    removed = []
    for entry in list_envs(env_dir, sizes=False):
        if entry.in_progress:
            continue
        wanted = everything or not entry.complete or any(
            entry.env is not None and entry.env.lock_sha256.startswith(prefix) for prefix in locks)
        if wanted:
            shutil.rmtree(entry.path, ignore_errors=True)
            removed.append(entry.path)
    return removed
