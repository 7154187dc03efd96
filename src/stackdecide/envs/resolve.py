"""A candidate's pins resolved to a locked set of packages with ``uv pip compile``, or why not.

The verdict is one of:

``ok``          installable as pinned: the lock lists every package and version
``conflict``    not installable: the resolver's own sentence says why (no such version, pins that
                contradict what vLLM requires)
``bad-pin``     a pin that is not PEP 440, or a CUDA pin that names no single version
``unchecked``   the index could not be asked (no network, an index that does not answer); says so
                rather than guess
``no-pins``     the candidate pins nothing: it runs in the current environment

A CUDA variant (``stack.cuda``) is asked separately, with uv's ``--torch-backend``: package indexes
other than PyTorch's rarely serve ``+cuXYZ`` builds, so the base pins can resolve while the CUDA
build stays ``variant_unchecked`` with the reason.
"""

from __future__ import annotations

import hashlib
import tempfile
import time
from collections.abc import Mapping
from dataclasses import dataclass, field, replace
from pathlib import Path

from packaging.requirements import Requirement
from packaging.utils import canonicalize_name

from stackdecide.envs.base import BaseEnv
from stackdecide.envs.requirements import StackRequirements
from stackdecide.envs.uv import (
    Sources,
    failure_sentence,
    is_network_failure,
    network_reason,
    run_uv,
)
from stackdecide.facts.pins import vllm_version

RESOLVE_TIMEOUT_S = 300.0


@dataclass(frozen=True)
class Lock:
    """The exact packages of one environment; ``sha256`` names it (and its folder)."""

    python_version: str
    platform: str
    packages: tuple[tuple[str, str], ...]  # (name, version), sorted by name
    torch_backend: str | None = None  # "cu128": installing needs PyTorch's index for that build
    # layered on an installed environment (envs.base): what it provides, taken as installed
    base: tuple[tuple[str, str], ...] = ()
    base_fingerprint: str = ""

    @property
    def text(self) -> str:
        """The packages to install (a layered lock leaves out those the base provides)."""
        return "".join(f"{name}=={version}\n" for name, version in self.packages)

    @property
    def sha256(self) -> str:
        canonical = f"python={self.python_version}\nplatform={self.platform}\n{self.text}" \
                    f"{self.base_fingerprint}"
        return hashlib.sha256(canonical.encode()).hexdigest()

    @property
    def short(self) -> str:
        return self.sha256[:16]

    def version(self, name: str) -> str | None:
        wanted = canonicalize_name(name)
        return next((v for n, v in (*self.packages, *self.base)
                     if canonicalize_name(n) == wanted), None)

    @property
    def vllm(self) -> str | None:
        return vllm_version(self.version)

    @property
    def torch(self) -> str | None:
        return self.version("torch")


@dataclass(frozen=True)
class Resolution:
    """One candidate's verdict, with the lock when it resolved."""

    candidate_id: str
    status: str  # ok, conflict, bad-pin, unchecked, no-pins
    requirements: StackRequirements
    lock: Lock | None = None
    reason: str | None = None
    variant_unchecked: str | None = None  # why the CUDA build of torch could not be checked
    warnings: tuple[str, ...] = field(default=())  # uv's warnings (an extra a version lacks)
    seconds: float = 0.0

    @property
    def ok(self) -> bool:
        return self.status == "ok"

    def summary(self) -> str:
        """One line for people: the verdict, its reason, the versions that matter."""
        if self.status == "no-pins":
            return "no stack pins: runs in the current environment"
        if self.status == "ok" and self.lock is not None:
            found = "".join(f"{name} {version}, " for name, version in (
                ("vllm", self.lock.vllm), ("torch", self.lock.torch)) if version)
            count = len(self.lock.packages)
            reused = f" over {len(self.lock.base)} of the base environment's" \
                if self.lock.base_fingerprint else ""
            text = f"installable as pinned ({found}{count} package{'s' if count != 1 else ''}" \
                   f"{reused}, lock {self.lock.short}, Python {self.lock.python_version})"
            if self.variant_unchecked:
                text += f"; {self.variant_unchecked}"
            return text
        if self.status == "unchecked":
            return f"could not check: {self.reason}"
        return f"cannot be installed as pinned: {self.reason}"



def parse_lock(text: str) -> tuple[tuple[str, str], ...]:
    """``name==version`` lines of uv's output (without header and annotations)."""
    packages = []
    for raw in text.splitlines():
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith("-") or "==" not in line:
            continue
        name, _, version = line.partition("==")
        packages.append((name.strip().split("[", 1)[0], version.split(";", 1)[0].strip()))
    return tuple(sorted(packages, key=lambda item: canonicalize_name(item[0])))


def _compile(requirements: StackRequirements, sources: Sources, folder: Path,
             torch_backend: str | None = None, preferences: Mapping[str, str] | None = None
             ) -> tuple[int, str, str]:
    inputs = folder / "requirements.in"
    inputs.write_text(requirements.text())
    arguments = ["pip", "compile", str(inputs), "--python-version", requirements.python_version,
                 "--python-platform", requirements.platform, "--python-preference",
                 "only-system", "--no-header", "--no-annotate", "--quiet", *sources.options()]
    output = folder / "preferred.txt"
    if preferences:  # uv keeps the versions an existing output file pins where it can
        output.write_text("".join(f"{name}=={version}\n"
                                  for name, version in sorted(preferences.items())))
        arguments += ["--output-file", str(output)]
    if requirements.excludes:
        excludes = folder / "excludes.txt"
        excludes.write_text("".join(f"{name}\n" for name in requirements.excludes))
        arguments += ["--excludes", str(excludes)]
    if torch_backend:
        arguments += ["--torch-backend", torch_backend]
    # PyTorch's CUDA index is often out of reach (air-gapped mirrors): one retry says enough
    result = run_uv(arguments, timeout_s=RESOLVE_TIMEOUT_S,
                    env={"UV_HTTP_RETRIES": "1"} if torch_backend else None)
    stdout = output.read_text() if preferences and result.returncode == 0 else result.stdout
    return result.returncode, stdout, result.stderr


def _warnings(stderr: str) -> tuple[str, ...]:
    return tuple(line.removeprefix("warning:").strip() for line in stderr.splitlines()
                 if line.startswith("warning:"))


def resolve(requirements: StackRequirements, sources: Sources | None = None,
            base: BaseEnv | None = None, forced: frozenset[str] = frozenset(),
            preferences: Mapping[str, str] | None = None) -> Resolution:
    """Ask uv for the lock of ``requirements`` on its target Python and platform; over ``base``,
    for what it does not provide (all its packages but ``forced`` and those pinned otherwise).
    ``forced`` base packages are asked for too: one nothing of the candidate requires (a base
    package that must change with what the environment shadows) is installed all the same.
    ``preferences`` (name -> version: an installed environment's, as ``pip freeze`` lists it)
    are kept wherever the pins allow, so that the lock differs from them where it must."""
    sources = sources or Sources()
    candidate = requirements.candidate_id
    if requirements.problems:
        return Resolution(candidate, "bad-pin", requirements, reason="; ".join(requirements.problems))
    if requirements.empty:
        return Resolution(candidate, "no-pins", requirements)
    start = time.monotonic()
    reused: tuple[str, ...] = ()
    if base is not None:
        if base.python_version != requirements.python_version:
            return Resolution(candidate, "conflict", requirements,
                              reason=f"the base environment ({base.python}) is Python "
                                     f"{base.python_version}, the candidate's lock is for "
                                     f"{requirements.python_version}")
        reused = base.reusable(requirements.lines, forced)
    named = {canonicalize_name(Requirement(line).name) for line in requirements.lines}
    asked = replace(requirements, lines=requirements.lines + tuple(sorted(forced - named)),
                    excludes=tuple(sorted({*requirements.excludes, *reused})))
    with tempfile.TemporaryDirectory(prefix="stackdecide-resolve-") as folder:
        code, out, err = _compile(asked, sources, Path(folder), preferences=preferences)
        if code != 0:
            network = is_network_failure(err)
            sentence = network_reason(err) if network else failure_sentence(err)
            status = "unchecked" if network else "conflict"
            return Resolution(candidate, status, requirements, reason=sentence,
                              seconds=time.monotonic() - start)
        lock = Lock(requirements.python_version, requirements.platform, parse_lock(out))
        if base is not None:
            lock = replace(lock, base=tuple((name, base.packages[name]) for name in reused),
                           base_fingerprint=base.fingerprint())
        warnings = _warnings(err)
        variant_note = None
        if requirements.cuda_variant:
            code, variant_out, variant_err = _compile(asked, sources, Path(folder),
                                                      requirements.cuda_variant, preferences)
            if code == 0:
                lock = replace(lock, packages=parse_lock(variant_out),
                               torch_backend=requirements.cuda_variant)
            elif is_network_failure(variant_err):
                variant_note = (f"cannot check the CUDA variant {requirements.cuda_variant} of "
                                f"torch {lock.torch} (uv --torch-backend "
                                f"{requirements.cuda_variant}: {network_reason(variant_err)}); "
                                "checked: the pins without it")
            else:
                return Resolution(candidate, "conflict", requirements,
                                  reason=f"CUDA variant {requirements.cuda_variant}: "
                                         f"{failure_sentence(variant_err)}",
                                  seconds=time.monotonic() - start)
    return Resolution(candidate, "ok", requirements, lock, None, variant_note, warnings,
                      time.monotonic() - start)
