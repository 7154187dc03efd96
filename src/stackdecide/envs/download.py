"""A wheelhouse for machines without network: every wheel of a candidate's lock, for the target
platform, fetched on a connected machine (``env download``) and installed there with
``env build --find-links DIR --offline``.

uv resolves for any platform but does not download wheels without installing them; pip does
(``pip download --no-deps --only-binary :all: --platform ...``), given the exact pins of the lock.

For an environment layered on an installed one (``--base-env`` there), ``--base-freeze FILE``
(that environment's ``pip freeze``) keeps its versions wherever the pins allow, and only the
wheels the lock needs at other versions, or that the base lacks, are fetched.
"""

from __future__ import annotations

import re
import subprocess
import sys
import tempfile
from collections.abc import Mapping
from dataclasses import replace
from pathlib import Path
from urllib.parse import unquote, urlsplit

from packaging.requirements import InvalidRequirement, Requirement
from packaging.utils import InvalidWheelFilename, canonicalize_name, parse_wheel_filename

from stackdecide.envs.base import satisfied
from stackdecide.envs.requirements import StackRequirements
from stackdecide.envs.resolve import Lock, Resolution, resolve
from stackdecide.envs.uv import EnvError, Sources, failure_sentence

# uv's --python-platform -> pip's --platform tags (every manylinux a current wheel may carry)
_PLATFORM_TAGS = {
    "x86_64-unknown-linux-gnu": ("manylinux_2_17_x86_64", "manylinux2014_x86_64",
                                 "manylinux_2_27_x86_64", "manylinux_2_28_x86_64",
                                 "manylinux_2_31_x86_64", "manylinux_2_34_x86_64",
                                 "manylinux_2_35_x86_64", "linux_x86_64"),
    "aarch64-unknown-linux-gnu": ("manylinux_2_17_aarch64", "manylinux2014_aarch64",
                                  "manylinux_2_28_aarch64", "manylinux_2_34_aarch64",
                                  "linux_aarch64"),
}


def platform_tags(platform: str) -> tuple[str, ...]:
    try:
        return _PLATFORM_TAGS[platform]
    except KeyError:
        raise EnvError(f"no wheel platform tags known for {platform!r}; use one of "
                       f"{', '.join(sorted(_PLATFORM_TAGS))}") from None


TORCH_INDEX = "https://download.pytorch.org/whl/{backend}"  # where uv's --torch-backend looks


def _pip_sources(sources: Sources, torch_backend: str | None = None) -> list[str]:
    """uv's source options for pip (which has no --offline: no index is the offline case)."""
    offline = sources.no_index or sources.offline
    torch = ["--extra-index-url", TORCH_INDEX.format(backend=torch_backend)] \
        if torch_backend and not offline else []
    out = [option for option in Sources(sources.find_links, sources.index_url,
                                        sources.extra_index_urls, no_index=offline).options()]
    return torch + out


def read_freeze(path: Path) -> dict[str, str]:
    """``name==version`` lines of a ``pip freeze`` (canonical name -> version); a direct URL to a
    wheel gives the wheel's version. Editable lines and other URLs name no version and are left
    out; anything else is an error."""
    try:
        text = path.read_text()
    except (OSError, UnicodeDecodeError) as exc:
        raise EnvError(f"--base-freeze {path}: cannot read it: {exc}") from None
    versions: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.split("#", 1)[0].strip()
        if not line or line.startswith("-"):
            continue
        try:
            requirement = Requirement(line)
        except InvalidRequirement:
            raise EnvError(f"--base-freeze {path}:{number}: '{line}' is not a requirement line "
                           "of pip freeze (name==version)") from None
        if requirement.url:  # `torch @ https://.../torch-2.11.0%2Bcu130-...whl`: the wheel's version
            wheel = _wheel_version(requirement.url)
            if wheel is not None:
                versions[canonicalize_name(requirement.name)] = wheel
            continue
        pinned = [spec for spec in requirement.specifier if spec.operator == "=="]
        if len(pinned) != 1 or len(requirement.specifier) != 1:
            raise EnvError(f"--base-freeze {path}:{number}: '{line}' pins no single version; "
                           "give the output of `pip freeze` on the machine")
        versions[canonicalize_name(requirement.name)] = pinned[0].version
    if not versions:
        raise EnvError(f"--base-freeze {path}: no name==version line; give the output of "
                       "`pip freeze` on the machine")
    return versions


def _wheel_version(url: str) -> str | None:
    try:
        _, version, _, _ = parse_wheel_filename(unquote(urlsplit(url).path.rsplit("/", 1)[-1]))
    except InvalidWheelFilename:
        return None  # a source tree or an archive: no version to keep
    return str(version)


_NOT_FOUND = re.compile(r"\b([A-Za-z0-9][A-Za-z0-9._-]*) was not found in the "
                        r"(?:package registry|provided package locations)")


def resolve_over_freeze(requirements: StackRequirements, sources: Sources,
                        base: Mapping[str, str]) -> Resolution:
    """The lock of ``requirements`` together with every package of ``base`` (its versions
    preferred): where a pin needs another version of a base package, the base packages that
    require it change too, as a layered build's check asks. Base packages the index does not
    have (local builds) are left out of the question, with a warning naming them."""
    asked = frozenset(base)
    absent: list[str] = []
    while True:
        resolution = resolve(requirements, sources, forced=asked, preferences=base)
        found = _NOT_FOUND.search(resolution.reason or "") if resolution.status == "conflict" \
            else None
        missing = canonicalize_name(found.group(1)) if found else None
        if missing is None or missing not in asked:
            break
        asked -= {missing}
        absent.append(missing)
    if absent:
        resolution = replace(resolution, warnings=(
            *resolution.warnings, f"not in the package index, so left out of the lock's question: "
                                  f"{', '.join(sorted(absent))} (of the base)"))
    return resolution


def beyond_base(lock: Lock, base: Mapping[str, str]) -> tuple[tuple[str, str], ...]:
    """Packages of ``lock`` the base does not have at a version the pin accepts (pip's rule:
    ``==2.11.0`` accepts an installed ``2.11.0+cu130``)."""
    return tuple((name, version) for name, version in lock.packages
                 if not satisfied(Requirement(f"{name}=={version}"),
                                  base.get(canonicalize_name(name))))


def download_wheels(resolution: Resolution, dest: Path, sources: Sources | None = None,
                    timeout_s: float = 3600.0, base: Mapping[str, str] | None = None
                    ) -> tuple[tuple[tuple[str, str], ...], list[Path]]:
    """Fetch the wheels of the candidate's lock into ``dest`` (over ``base``, a ``pip freeze``:
    only those it lacks); the packages fetched, and the wheels now there."""
    lock = resolution.lock
    if lock is None:
        raise EnvError(f"candidate '{resolution.candidate_id}': nothing to download: "
                       f"{resolution.summary()}")
    dest.mkdir(parents=True, exist_ok=True)
    wanted = lock.packages if base is None else beyond_base(lock, base)
    if not wanted:
        return wanted, sorted(dest.glob("*.whl"))
    version = lock.python_version.replace(".", "")
    with tempfile.TemporaryDirectory(prefix="stackdecide-download-") as folder:
        pins = Path(folder) / "lock.txt"
        pins.write_text("".join(f"{name}=={pinned}\n" for name, pinned in wanted))
        command = [sys.executable, "-m", "pip", "download", "--quiet", "--no-deps",
                   "--only-binary", ":all:", "--python-version", version,
                   "--implementation", "cp", "--dest", str(dest), "-r", str(pins),
                   *_pip_sources(sources or Sources(), lock.torch_backend)]
        for tag in platform_tags(lock.platform):
            command += ["--platform", tag]
        try:
            done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s,
                                  check=False, stdin=subprocess.DEVNULL)
        except subprocess.TimeoutExpired:
            raise EnvError(f"candidate '{resolution.candidate_id}': downloading its wheels did "
                           f"not finish within {timeout_s:g} s") from None
    if done.returncode != 0:
        raise EnvError(f"candidate '{resolution.candidate_id}': cannot download its wheels for "
                       f"{lock.platform}, Python {lock.python_version}: "
                       f"{failure_sentence(done.stderr)}")
    return wanted, sorted(dest.glob("*.whl"))
