"""A wheelhouse for machines without network: every wheel of a candidate's lock, for the target
platform, fetched on a connected machine (``env download``) and installed there with
``env build --find-links DIR --offline``.

uv resolves for any platform but does not download wheels without installing them; pip does
(``pip download --no-deps --only-binary :all: --platform ...``), given the exact pins of the lock.
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from pathlib import Path

from stackdecide.envs.resolve import Resolution
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


def download_wheels(resolution: Resolution, dest: Path, sources: Sources | None = None,
                    timeout_s: float = 3600.0) -> list[Path]:
    """Fetch every wheel of the candidate's lock into ``dest``; the wheels now there."""
    lock = resolution.lock
    if lock is None:
        raise EnvError(f"candidate '{resolution.candidate_id}': nothing to download: "
                       f"{resolution.summary()}")
    dest.mkdir(parents=True, exist_ok=True)
    version = lock.python_version.replace(".", "")
    with tempfile.TemporaryDirectory(prefix="stackdecide-download-") as folder:
        pins = Path(folder) / "lock.txt"
        pins.write_text(lock.text)
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
    return sorted(dest.glob("*.whl"))
