"""Candidate environments layered on an installed one (``--base-env PYTHON``).

A GPU machine usually comes with its CUDA build of torch (and the NVIDIA libraries, gigabytes)
already installed, often without network. A candidate environment layered on it installs only what
the base does not already provide as the candidate needs it, and sees the rest of the base: its
``site-packages`` gets a ``.pth`` file that appends the base's site folders to ``sys.path``, so
the environment's own packages come first and shadow the base's.

Which base packages a candidate may reuse is decided by the versions, with pip's rule (``==2.11.0``
accepts ``2.11.0+cu130``):

1. the resolver is asked without every base package (uv's ``--excludes``), except those the
   candidate pins and the base does not satisfy (``vllm==0.25.1`` over a base with 0.26.0);
2. once installed, every requirement of the environment's packages is checked against what the
   environment then sees (``unmet_requirements``); a base package at a version that does not
   satisfy one (vLLM 0.25.1 needs ``numba==0.65.0``, the base has 0.68.0) is resolved and
   installed in the environment too, and the check runs again;
3. so are the base's requirements on a package the environment shadows: a base package that does
   not work with it (the base's ``xgrammar 0.2.7`` needs ``apache-tvm-ffi>=0.1.10``, vLLM 0.25.1
   pins 0.1.9) is resolved and installed in the environment too, at a version that does.
"""

from __future__ import annotations

import json
import subprocess
from dataclasses import dataclass
from importlib import metadata
from pathlib import Path

from packaging.markers import UndefinedEnvironmentName
from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import canonicalize_name

from stackdecide.envs.uv import EnvError
from stackdecide.facts.pins import specifier_matches

PTH_FILE = "_stackdecide_base.pth"

# Run by the base (and the candidate's) interpreter: where its packages live, what they are, and
# the values PEP 508 markers are evaluated with. Standard library only.
_DESCRIBE = r"""
import importlib.metadata as m, json, os, platform, site, sys
paths = [p for p in site.getsitepackages() if os.path.isdir(p)]
if getattr(site, "ENABLE_USER_SITE", False) and os.path.isdir(site.getusersitepackages()):
    paths.append(site.getusersitepackages())
packages = {}
for dist in m.distributions(path=paths):
    name = dist.metadata["Name"]
    if name and name not in packages:
        packages[name] = dist.version
info = sys.implementation
markers = {
    "implementation_name": info.name,
    "implementation_version": "%d.%d.%d" % info.version[:3],
    "os_name": os.name, "platform_machine": platform.machine(),
    "platform_release": platform.release(), "platform_system": platform.system(),
    "platform_version": platform.version(), "python_full_version": platform.python_version(),
    "platform_python_implementation": platform.python_implementation(),
    "python_version": "%d.%d" % sys.version_info[:2], "sys_platform": sys.platform,
}
print(json.dumps({"python_version": markers["python_version"], "paths": paths,
                  "packages": packages, "markers": markers}))
"""


@dataclass(frozen=True)
class BaseEnv:
    """An installed environment: its interpreter, site folders and packages."""

    python: str
    python_version: str
    paths: tuple[str, ...]
    packages: dict[str, str]  # canonical name -> installed version
    markers: dict[str, str]

    def version(self, name: str) -> str | None:
        return self.packages.get(canonicalize_name(name))

    def satisfies(self, requirement: Requirement) -> bool:
        """Whether the base's version of the package meets ``requirement`` (pip's rule)."""
        return satisfied(requirement, self.version(requirement.name))

    def reusable(self, requirement_lines: tuple[str, ...], forced: frozenset[str]) -> tuple[str, ...]:
        """Base packages the resolver leaves out: all but those pinned differently or forced."""
        pinned_elsewhere = {canonicalize_name(r.name) for r in map(Requirement, requirement_lines)
                            if not self.satisfies(r)}
        return tuple(sorted(set(self.packages) - pinned_elsewhere - forced))

    def fingerprint(self) -> str:
        """What the base is, for a lock's hash: its interpreter and every package version."""
        listed = "".join(f"{name}=={version}\n" for name, version in sorted(self.packages.items()))
        return f"base={self.python}\n{listed}"


def satisfied(requirement: Requirement, version: str | None) -> bool:
    """Whether an installed ``version`` (None: not installed) meets ``requirement`` (facts.pins)."""
    return version is not None and specifier_matches(requirement.specifier, version) is True


def _describe(python: str) -> dict[str, object]:
    try:
        done = subprocess.run([python, "-I", "-c", _DESCRIBE], capture_output=True, text=True,
                              timeout=120, check=False, stdin=subprocess.DEVNULL)
    except (OSError, subprocess.TimeoutExpired) as exc:
        raise EnvError(f"--base-env: cannot run '{python}': {exc}") from None
    last = (done.stderr.strip().splitlines() or ["no output"])[-1].strip()
    if done.returncode != 0:
        raise EnvError(f"--base-env: '{python}' did not describe its packages (is it a Python "
                       f"3.8+ interpreter?): {last}")
    try:
        return dict(json.loads(done.stdout.strip().splitlines()[-1]))
    except (ValueError, IndexError, TypeError):
        raise EnvError(f"--base-env: '{python}' did not describe its packages (is it a Python "
                       f"3.8+ interpreter?): unexpected output") from None


def read_base_env(python: str) -> BaseEnv:
    """The environment of interpreter ``python`` (a path, or a name on PATH)."""
    described = _describe(python)
    packages = {canonicalize_name(str(name)): str(version)
                for name, version in dict(described["packages"]).items()}  # type: ignore[call-overload]
    return BaseEnv(python, str(described["python_version"]),
                   tuple(described["paths"]), packages, dict(described["markers"]))  # type: ignore[call-overload]


def site_packages(env: Path, python_version: str) -> Path:
    return env / "lib" / f"python{python_version}" / "site-packages"


def layer_on(env: Path, base: BaseEnv) -> None:
    """Make ``env`` see the base's packages after its own (``site.addsitedir`` runs the base's
    own ``.pth`` files too: namespace packages, editable installs)."""
    lines = "".join(f"import site; site.addsitedir({path!r})\n" for path in base.paths)
    (site_packages(env, base.python_version) / PTH_FILE).write_text(lines)


@dataclass(frozen=True)
class Unmet:
    """A requirement of an installed package that what the environment sees does not meet."""

    required_by: str  # "vllm 0.25.1"
    requirement: str  # "numba==0.65.0"
    name: str  # canonical name of the required package
    found: str | None  # the version the environment sees, None when it has none
    from_base: str | None = None  # canonical name of the requiring package, when the base's

    def sentence(self) -> str:
        found = f"sees {self.found}" if self.found else "has none"
        by = f"the base's {self.required_by}" if self.from_base else self.required_by
        return f"{by} requires {self.requirement}, the environment {found}"

    def to_install(self, base: BaseEnv) -> str | None:
        """The base package to resolve and install in the environment so that this is met: the
        required one (a candidate's package needs another version), or the requiring one (a base
        package does not work with what the environment shadows); None when nothing will do."""
        if self.from_base:
            return self.from_base
        return self.name if self.name in base.packages else None


def unmet_requirements(own_paths: tuple[str, ...], base: BaseEnv, extras: dict[str, set[str]]
                       ) -> list[Unmet]:
    """Requirements of the environment's own packages (and of base packages on a package the
    environment shadows) that what it sees does not meet; ``extras``: package -> extras asked."""
    own = _installed(own_paths)
    seen = {**{name: (name, version) for name, version in base.packages.items()},
            **{name: (name, dist.version) for name, dist in own.items()}}
    unmet: list[Unmet] = []
    checked = [(dist, True) for dist in own.values()] + [
        (dist, False) for name, dist in _installed(base.paths).items() if name not in own]
    for dist, is_own in checked:
        name = canonicalize_name(dist.metadata["Name"])
        for text in dist.requires or []:
            try:
                requirement = Requirement(text)
            except InvalidRequirement:
                continue
            wanted = canonicalize_name(requirement.name)
            if not is_own and wanted not in own:
                continue  # the base's own consistency is not this environment's to judge
            if not _applies(requirement, base.markers, extras.get(name, set())):
                continue
            found = seen.get(wanted, (None, None))[1]
            if not satisfied(requirement, found):
                unmet.append(Unmet(f"{dist.metadata['Name']} {dist.version}", str(requirement),
                                   wanted, found, from_base=None if is_own else name))
    return unmet


def _installed(paths: tuple[str, ...]) -> dict[str, metadata.Distribution]:
    found: dict[str, metadata.Distribution] = {}
    for dist in metadata.distributions(path=list(paths)):
        name = dist.metadata["Name"]
        if name:
            found.setdefault(canonicalize_name(name), dist)
    return found


def _applies(requirement: Requirement, markers: dict[str, str], extras: set[str]) -> bool:
    if requirement.marker is None:
        return True
    try:
        return any(requirement.marker.evaluate({**markers, "extra": extra})
                   for extra in ("", *sorted(extras)))
    except UndefinedEnvironmentName:
        return True
