"""One virtual environment per lock, content-addressed: ``<env dir>/<lock hash>/``.

An environment is built in a temporary folder next to its final place (``.building-*``) and
renamed only once every package is installed and its manifest written, so a folder under its
hash is always complete: an interrupted build (Ctrl-C, a kill, a full disk) leaves at most a
``.building-*`` folder that nothing uses and ``env prune`` removes. Downloads are shared through
uv's cache (``$UV_CACHE_DIR``, by default ``~/.cache/uv``), so a second environment with the same
torch links its files instead of fetching them again.

Every folder stackdecide makes here holds a marker (``.stackdecide-env``: who made it, when) from
the moment it exists, before anything is installed: ``env prune`` and a rebuild remove only
folders that carry it, never a folder someone else put in the env folder.
"""

from __future__ import annotations

import functools
import json
import os
import re
import secrets
import shutil
import stat
import subprocess
import sys
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from stackdecide._files import write_json_atomic
from stackdecide._version import __version__
from stackdecide.envs.base import BaseEnv, layer_on, site_packages, unmet_requirements
from stackdecide.envs.requirements import StackRequirements
from stackdecide.envs.resolve import Lock, Resolution, resolve
from stackdecide.envs.uv import (
    EnvError,
    Sources,
    failure_sentence,
    is_network_failure,
    run_uv,
    uv_version,
)
from stackdecide.facts.pins import vllm_version

ENV_DIR_ENV = "STACKDECIDE_ENV_DIR"
MANIFEST = "stackdecide-env.json"
MARKER = ".stackdecide-env"  # in every folder stackdecide makes under the env folder
MANIFEST_SCHEMA = "stackdecide/env/v1"
_SHA256 = re.compile(r"[0-9a-f]{64}")
BUILDING_PREFIX = ".building-"
INSTALL_TIMEOUT_S = 3600.0
MAX_LAYER_ROUNDS = 6  # resolve-install-check rounds over a base environment


def default_env_dir() -> Path:
    """``$STACKDECIDE_ENV_DIR``, else ``$XDG_CACHE_HOME/stackdecide/envs`` (``~/.cache/...``)."""
    explicit = os.environ.get(ENV_DIR_ENV)
    if explicit:
        return Path(explicit).expanduser()
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "stackdecide" / "envs"


class EnvDirError(EnvError):
    """The env folder is not a folder (a file, a FIFO, a link to nothing or to itself)."""

    exit_code = 2


def usable_env_dir(env_dir: Path | None = None) -> Path:
    """``env_dir`` (default: ``default_env_dir()``), absolute, when it is a folder or none exists
    there yet; else an error saying what is there and where the path came from."""
    folder = (env_dir or default_env_dir()).absolute()
    named = f"${ENV_DIR_ENV} ({folder})" if env_dir is None and os.environ.get(ENV_DIR_ENV) \
        else f"the env folder {folder}"
    try:
        mode = os.stat(folder).st_mode
    except FileNotFoundError:
        if os.path.islink(folder):
            raise EnvDirError(f"{named} is a link to {os.readlink(folder)}, which does not exist; "
                              "point it at a folder") from None
        return folder  # made when the first environment is built
    except OSError as exc:  # a link loop, a file where a parent folder should be, no permission
        raise EnvDirError(f"{named} cannot be used: {exc.strerror or exc}") from None
    if not stat.S_ISDIR(mode):
        what = "a file" if stat.S_ISREG(mode) else "a FIFO, socket or device"
        raise EnvDirError(f"{named} is {what}, not a folder; point it at a folder")
    return folder


def mark(folder: Path) -> None:
    """Say in ``folder`` that stackdecide made it (``MARKER``)."""
    write_json_atomic(folder / MARKER, {
        "made_by": f"stackdecide {__version__}", "pid": os.getpid(),
        "at": datetime.now(UTC).isoformat(timespec="seconds")})


def is_marked(folder: Path) -> bool:
    """Whether ``folder`` is a real folder (not a link) holding stackdecide's marker file."""
    try:
        return stat.S_ISDIR(os.lstat(folder).st_mode) and \
            stat.S_ISREG(os.lstat(folder / MARKER).st_mode)
    except OSError:
        return False


@dataclass(frozen=True)
class BuiltEnv:
    """A complete environment: its folder, interpreter and what is installed in it."""

    path: Path
    lock_sha256: str
    python_version: str
    distributions: tuple[str, ...]  # "name==version", as ``uv pip freeze`` lists them
    manifest: dict[str, Any]
    built_now: bool = False  # False when an existing environment was reused
    build_s: float | None = None

    @property
    def python(self) -> str:
        return str(self.path / "bin" / "python")

    @property
    def short(self) -> str:
        return self.lock_sha256[:16]

    def version(self, name: str) -> str | None:
        wanted = canonicalize_name(name)
        for line in self.distributions:
            package, _, version = line.partition("==")
            if canonicalize_name(package) == wanted:
                return version
        return None

    @property
    def vllm(self) -> str | None:
        return vllm_version(self.version)


def env_path(env_dir: Path, lock: Lock) -> Path:
    return env_dir / lock.short


def read_env(path: Path) -> BuiltEnv | None:
    """The environment in ``path`` if it is complete (has its manifest, of the shape
    ``build_env`` writes), else None: a folder whose manifest has another shape is no
    environment stackdecide can use."""
    manifest_file = path / MANIFEST
    if not manifest_file.is_file() or not (path / "bin" / "python").exists():
        return None
    try:
        manifest = json.loads(manifest_file.read_text())
    except (OSError, ValueError):
        return None
    if not _is_manifest(manifest):
        return None
    return BuiltEnv(path, manifest["lock_sha256"], manifest["python_version"],
                    tuple(manifest.get("distributions") or ()), manifest,
                    build_s=manifest.get("build_s"))


def _is_manifest(manifest: Any) -> bool:
    """Whether ``manifest`` (a manifest file's JSON) has the shape ``build_env`` writes in every
    field read back: this schema, the lock's sha256, a Python version, the distributions as
    text, the build time in seconds, a layered environment's base interpreter."""
    if not isinstance(manifest, dict) or manifest.get("schema") != MANIFEST_SCHEMA:
        return False
    lock, distributions = manifest.get("lock_sha256"), manifest.get("distributions") or []
    build_s = manifest.get("build_s")
    return all((
        isinstance(lock, str) and _SHA256.fullmatch(lock) is not None,
        isinstance(manifest.get("python_version"), str),
        isinstance(distributions, list) and all(isinstance(line, str) for line in distributions),
        build_s is None or (isinstance(build_s, int | float) and not isinstance(build_s, bool)),
        isinstance(manifest.get("base_env") or "", str),
    ))


@functools.cache
def interpreter_version(python: str) -> str:
    """``X.Y`` of an interpreter, asked by running it once per process."""
    try:
        done = subprocess.run([python, "-c", "import sys; print('%d.%d' % sys.version_info[:2])"],
                              capture_output=True, text=True, timeout=60, check=False)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EnvError(f"cannot run the base interpreter '{python}': {exc}") from None
    if done.returncode != 0:
        raise EnvError(f"the base interpreter '{python}' does not run: {done.stderr.strip()}")
    return done.stdout.strip()


def _failed_pin(requirements: StackRequirements, sentence: str) -> str:
    """The pin a failure names, when it names one of the candidate's packages."""
    where = requirements.field_in(sentence)
    package = next((name for name, field in requirements.fields.items() if field == where), None)
    return f" (pin {requirements.pin_of(package)})" if package else ""


def _create(folder: Path, base_python: str, requirements: StackRequirements) -> None:
    created = run_uv(["venv", str(folder), "--python", base_python, "--python-preference",
                      "only-system", "--relocatable", "--allow-existing", "--quiet"],
                     timeout_s=300)  # --allow-existing: the folder exists, holding its marker
    if not created.ok:
        raise EnvError(f"candidate '{requirements.candidate_id}': cannot create a virtual "
                       f"environment with {base_python}: {failure_sentence(created.stderr)}")


def _sync(folder: Path, lock: Lock, sources: Sources, requirements: StackRequirements) -> None:
    """Install exactly the lock's packages (and remove any other the folder itself holds)."""
    (folder / "lock.txt").write_text(lock.text)
    synced = run_uv(["pip", "sync", str(folder / "lock.txt"), "--python",
                     str(folder / "bin" / "python"), "--python-preference", "only-system",
                     "--quiet", *sources.options(),
                     *(["--torch-backend", lock.torch_backend] if lock.torch_backend else [])],
                    timeout_s=INSTALL_TIMEOUT_S)
    if not synced.ok:
        sentence = failure_sentence(synced.stderr)
        where = "the index could not be reached" if is_network_failure(synced.stderr) \
            else "installing its lock failed"
        raise EnvError(f"candidate '{requirements.candidate_id}': {where}"
                       f"{_failed_pin(requirements, sentence)} from {sources.describe()}: "
                       f"{sentence}")


def _freeze(folder: Path, requirements: StackRequirements) -> tuple[str, ...]:
    frozen = run_uv(["pip", "freeze", "--python", str(folder / "bin" / "python"),
                     "--python-preference", "only-system"], timeout_s=120)
    if not frozen.ok:
        raise EnvError(f"candidate '{requirements.candidate_id}': cannot list the installed "
                       f"packages: {failure_sentence(frozen.stderr)}")
    return tuple(sorted((line.strip() for line in frozen.stdout.splitlines()
                         if "==" in line), key=str.lower))


def _install_layered(folder: Path, resolution: Resolution, base: BaseEnv, sources: Sources
                     ) -> Lock:
    """Install over ``base`` until every requirement is met: a base package at a version that
    does not do is resolved and installed in the environment too (envs.base)."""
    requirements = resolution.requirements
    assert resolution.lock is not None
    lock, forced = resolution.lock, frozenset[str]()
    layer_on(folder, base)
    extras = {canonicalize_name(r.name): set(r.extras) for r in map(Requirement, requirements.lines)}
    own = (str(site_packages(folder, base.python_version)),)
    for _ in range(MAX_LAYER_ROUNDS):
        _sync(folder, lock, sources, requirements)
        unmet = unmet_requirements(own, base, extras)
        if not unmet:
            return lock
        fixable = frozenset(name for name in (u.to_install(base) for u in unmet) if name) - forced
        if not fixable:
            break
        forced |= fixable
        again = resolve(requirements, sources, base, forced)
        if again.lock is None:
            raise EnvError(f"candidate '{requirements.candidate_id}': over the base environment "
                           f"{base.python}, {', '.join(sorted(fixable))} must be installed "
                           f"again, and cannot be: {again.summary()}")
        lock = again.lock
    raise EnvError(f"candidate '{requirements.candidate_id}': its packages do not fit the base "
                   f"environment {base.python}: " + "; ".join(u.sentence() for u in unmet[:4]))


def _find_built(env_dir: Path, lock: Lock) -> BuiltEnv | None:
    """The environment built for ``lock``: under its hash, or (layered, resolved again while
    building) one whose manifest says it started from it."""
    existing = read_env(env_path(env_dir, lock))
    if existing is not None or not lock.base_fingerprint or not env_dir.is_dir():
        return existing
    for folder in sorted(env_dir.iterdir()):
        env = read_env(folder) if not folder.name.startswith(BUILDING_PREFIX) else None
        if env is not None and env.manifest.get("first_lock_sha256") == lock.sha256:
            return env
    return None


def build_env(resolution: Resolution, env_dir: Path | None = None, *,
              base_python: str | None = None, sources: Sources | None = None,
              base: BaseEnv | None = None) -> BuiltEnv:
    """The environment of a resolved candidate: reused when its lock was built before, else built
    into a temporary folder and renamed into place once complete. With ``base`` (the resolution
    was made over it), the environment is layered on that installed one (envs.base)."""
    lock = resolution.lock
    requirements = resolution.requirements
    if lock is None:
        raise EnvError(f"candidate '{resolution.candidate_id}': nothing to build: "
                       f"{resolution.summary()}")
    env_dir = usable_env_dir(env_dir)
    existing = _find_built(env_dir, lock)
    if existing is not None:
        return existing
    base_python = base_python or (base.python if base is not None else sys.executable)
    version = interpreter_version(base_python)
    if version != lock.python_version:
        raise EnvError(f"candidate '{resolution.candidate_id}': its lock is for Python "
                       f"{lock.python_version}, but the base interpreter {base_python} is "
                       f"{version}; pass --base-python with a Python {lock.python_version} (or "
                       "pin stack.python)")
    sources = sources or Sources()
    folder = env_dir / f"{BUILDING_PREFIX}{lock.short}-{os.getpid()}-{secrets.token_hex(3)}"
    try:
        env_dir.mkdir(parents=True, exist_ok=True)
        folder.mkdir()
    except OSError as exc:
        raise EnvError(f"candidate '{resolution.candidate_id}': cannot make a folder in the env "
                       f"folder {env_dir}: {exc.strerror or exc}") from None
    start = time.monotonic()
    first = lock
    try:
        mark(folder)
        _create(folder, base_python, requirements)
        if base is None:
            _sync(folder, lock, sources, requirements)
        else:
            lock = _install_layered(folder, resolution, base, sources)
        distributions = _freeze(folder, requirements)
        if base is not None:  # what the environment runs with: its own, then the base's
            own = {canonicalize_name(line.partition("==")[0]) for line in distributions}
            distributions = tuple(sorted((*distributions, *(
                f"{name}=={version}" for name, version in base.packages.items()
                if name not in own)), key=str.lower))
        build_s = round(time.monotonic() - start, 1)
        final = env_path(env_dir, lock)
        manifest = {
            "schema": MANIFEST_SCHEMA, "lock_sha256": lock.sha256,
            "python_version": lock.python_version, "platform": lock.platform,
            "base_python": base_python, "requirements": list(requirements.lines),
            "requirements_key": requirements.key, "excludes": list(requirements.excludes),
            "packages": [f"{n}=={v}" for n, v in lock.packages],
            "distributions": list(distributions), "sources": sources.describe(),
            "uv_version": uv_version(), "built_at": datetime.now(UTC).isoformat(timespec="seconds"),
            "build_s": build_s, "candidates": [requirements.candidate_id],
            **({"base_env": base.python, "base_paths": list(base.paths),
                "from_base": sorted(set(base.packages) - {canonicalize_name(n)
                                                          for n, _ in lock.packages}),
                "first_lock_sha256": first.sha256} if base is not None else {}),
        }
        write_json_atomic(folder / MANIFEST, manifest, indent=2)
        if final.exists() and read_env(final) is None:  # not an environment: never used
            if not is_marked(final):
                raise EnvError(f"candidate '{resolution.candidate_id}': {final} is in the way of "
                               "its environment and was not made by stackdecide (no "
                               f"{MARKER}); move it away or remove it yourself")
            shutil.rmtree(final)
        try:
            folder.rename(final)
        except OSError:  # built meanwhile by another process: theirs is as good as ours
            shutil.rmtree(folder, ignore_errors=True)
            reused = read_env(final)
            if reused is None:
                raise
            return reused
    except BaseException:
        shutil.rmtree(folder, ignore_errors=True)  # nothing half-built stays under a hash
        raise
    return BuiltEnv(final, lock.sha256, lock.python_version, distributions, manifest,
                    built_now=True, build_s=build_s)
