"""Running ``uv``: finding its binary, the options every call shares, and its failures in one line.

uv (the PyPI package ships the binary) resolves, creates environments and installs; nothing here
second-guesses its answers. uv would download a managed Python when it finds none that fits,
which needs a host outside the package index: every call uses only interpreters installed here
(``--python-preference only-system``, ``UV_PYTHON_DOWNLOADS=never``).
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

from stackdecide.errors import EngineError

UV_ENV = "STACKDECIDE_UV"  # path of the uv binary to use, before the uv package and PATH
DEFAULT_TIMEOUT_S = 1800.0  # a cold build downloads vLLM and torch (hundreds of MB)

# Failures that say the index could not be reached, as opposed to an answer from it.
_NETWORK = re.compile(r"(dns error|failed to lookup address|Connect|connection (refused|reset)|"
                      r"timed out|network is unreachable|error sending request|"
                      r"Network connectivity is disabled|--offline|offline mode|"
                      r"was not found in the cache)", re.IGNORECASE)


class EnvError(EngineError):
    """An environment cannot be resolved, built or used; the message names candidate and pin."""


class UvMissing(EnvError):
    """No uv binary could be found."""


@dataclass(frozen=True)
class Sources:
    """Where packages come from, passed to every uv call (uv's own configuration applies too)."""

    find_links: tuple[str, ...] = ()  # wheel folders (a wheelhouse) or pages of links
    index_url: str | None = None  # replaces the default index
    extra_index_urls: tuple[str, ...] = ()
    offline: bool = False  # only the uv cache and local folders
    no_index: bool = False  # only --find-links

    def options(self) -> list[str]:
        out: list[str] = []
        for folder in self.find_links:
            out += ["--find-links", folder]
        if self.index_url:
            out += ["--index-url", self.index_url]
        for url in self.extra_index_urls:
            out += ["--extra-index-url", url]
        if self.no_index:
            out.append("--no-index")
        if self.offline:
            out.append("--offline")
        return out

    @classmethod
    def from_environment(cls, find_links: Sequence[str] = (), index_url: str | None = None,
                         extra_index_urls: Sequence[str] = (), offline: bool = False,
                         no_index: bool = False) -> Sources:
        """The given sources, plus pip's ``PIP_FIND_LINKS``, ``PIP_INDEX_URL`` and
        ``PIP_EXTRA_INDEX_URL`` when set: "installable as pinned" means from where ``pip install``
        takes packages on this machine (uv's own configuration applies as well)."""
        links = [*find_links, *os.environ.get("PIP_FIND_LINKS", "").split()]
        extra = [*extra_index_urls, *os.environ.get("PIP_EXTRA_INDEX_URL", "").split()]
        return cls(tuple(dict.fromkeys(links)), index_url or os.environ.get("PIP_INDEX_URL"),
                   tuple(dict.fromkeys(extra)), offline, no_index)

    def describe(self) -> str:
        return " ".join(self.options()) or "the default index"


@dataclass(frozen=True)
class UvResult:
    returncode: int
    stdout: str
    stderr: str

    @property
    def ok(self) -> bool:
        return self.returncode == 0


def find_uv() -> str:
    """The uv binary: ``$STACKDECIDE_UV``, the ``uv`` Python package's, or ``uv`` on PATH."""
    explicit = os.environ.get(UV_ENV)
    if explicit:
        if shutil.which(explicit) is None:
            raise UvMissing(f"${UV_ENV} names '{explicit}', which is not an executable")
        return explicit
    try:
        import uv

        path = uv.find_uv_bin()
        if path and os.access(path, os.X_OK):
            return str(path)
    except (ImportError, FileNotFoundError):
        pass
    found = shutil.which("uv")
    if found:
        return found
    raise UvMissing("uv is not installed: environments per candidate are resolved and built with "
                    "it; install it with `pip install 'stackdecide[envs]'` (or `pip install uv`), "
                    f"or name its binary in ${UV_ENV}")


def uv_env() -> dict[str, str]:
    env = dict(os.environ)
    env["UV_PYTHON_DOWNLOADS"] = "never"
    env.setdefault("UV_NO_PROGRESS", "1")
    env.pop("VIRTUAL_ENV", None)  # every call names its interpreter; an active venv must not leak
    return env


def run_uv(arguments: Sequence[str], *, timeout_s: float = DEFAULT_TIMEOUT_S,
           uv: str | None = None, env: Mapping[str, str] | None = None) -> UvResult:
    """Run ``uv ARGUMENTS`` (``env`` added to its environment); a timeout is a failure with its
    reason, not an exception."""
    command = [uv or find_uv(), *arguments]
    try:
        done = subprocess.run(command, capture_output=True, text=True, timeout=timeout_s,
                              env={**uv_env(), **(env or {})}, check=False,
                              stdin=subprocess.DEVNULL)
    except FileNotFoundError:
        raise UvMissing(f"uv binary '{command[0]}' disappeared") from None
    except subprocess.TimeoutExpired:
        return UvResult(124, "", f"uv {' '.join(arguments[:2])} did not finish within "
                                 f"{timeout_s:g} s")
    return UvResult(done.returncode, done.stdout, done.stderr)


def uv_version(uv: str | None = None) -> str:
    result = run_uv(["--version"], timeout_s=30, uv=uv)
    return result.stdout.strip().removeprefix("uv ") if result.ok else "unknown"


def is_network_failure(text: str) -> bool:
    """Whether uv failed because it could not reach an index (not because of the pins)."""
    return bool(_NETWORK.search(text))


def network_reason(stderr: str) -> str:
    """A network failure in a few words: the host that did not answer and the last cause."""
    host = re.search(r"https?://([^/\s)]+)", stderr)
    causes = [line.split(":", 1)[1].strip() for line in stderr.splitlines()
              if line.strip().startswith(("cause:", "Caused by:")) and ":" in line]
    last = causes[-1] if causes else failure_sentence(stderr)
    return f"{host.group(1)} did not answer ({last})" if host else last


def failure_sentence(stderr: str) -> str:
    """uv's own explanation, shortened to its sentences: ``error:`` and ``cause:`` lines and the
    resolver's "Because ..." chain, joined, without hints about flags we did not pass."""
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    kept: list[str] = []
    for line in lines:
        text = re.sub(r"^(error|cause|Caused by):\s*", "", line)
        if line.startswith(("hint:", "help:")) or text.startswith("×"):
            continue
        if text in ("No solution found when resolving dependencies:",
                    "No solution found when resolving dependencies"):
            continue
        text = text.lstrip("╰─▶ ").strip()
        if text and text not in kept:
            kept.append(text)
    sentence = " ".join(kept) or "uv failed without a message"
    sentence = re.sub(r"\s+", " ", sentence)
    return sentence if len(sentence) <= 600 else sentence[:597] + "..."
