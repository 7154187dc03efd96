"""vLLM's own argument definitions, read from the interpreter that will run it and cached.

Building vLLM's parser imports vLLM (tens of seconds on a small machine), so the dump is cached per
interpreter and vLLM version under ``$STACKDECIDE_CACHE_DIR`` (default ``~/.cache/stackdecide``).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from stackdecide._files import write_json_atomic
from stackdecide.errors import EngineError
from stackdecide.vllm.probe import RuntimeVersions, probe_runtime, run_introspection, vllm_python

CACHE_ENV = "STACKDECIDE_CACHE_DIR"
CACHE_FORMAT = 1


@dataclass(frozen=True)
class ArgAction:
    """One option of vLLM's server parser."""

    dest: str
    options: tuple[str, ...]
    kind: str  # store, store_true, store_false, boolean_optional, append, store_const, count
    nargs: int | str | None = None
    choices: tuple[str, ...] | None = None
    type: str | None = None
    default: Any = None
    deprecated: bool = False
    help: str = ""

    @property
    def long_option(self) -> str:
        """The option written in rendered commands: the one spelled like the key, else the longest
        ``--`` spelling (vLLM gives some options aliases, e.g. ``--device-memory-utilization``)."""
        own = "--" + self.dest.replace("_", "-")
        if own in self.options:
            return own
        longs = [o for o in self.options if o.startswith("--") and not o.startswith("--no-")]
        return max(longs, key=len) if longs else self.options[0]

    @property
    def negative_option(self) -> str | None:
        return next((o for o in self.options if o.startswith("--no-")), None)

    @property
    def positional(self) -> bool:
        return not self.options


@dataclass(frozen=True)
class VllmArgSpec:
    """The arguments a particular vLLM accepts, learned from its parser."""

    vllm_version: str
    python: str
    server_module: str
    actions: dict[str, ArgAction]  # by dest
    attention_backends: dict[str, tuple[str, ...] | None] = field(default_factory=dict)
    quantization_methods: tuple[str, ...] | None = None

    def action(self, key: str) -> ArgAction | None:
        action = self.actions.get(key)
        return None if action is None or action.positional else action

    @property
    def keys(self) -> list[str]:
        return sorted(k for k, a in self.actions.items() if not a.positional)

    @classmethod
    def from_dump(cls, data: dict[str, Any], python: str) -> VllmArgSpec:
        actions = {}
        for item in data["actions"]:
            action = ArgAction(
                dest=item["dest"], options=tuple(item["options"]), kind=item["kind"],
                nargs=item.get("nargs"),
                choices=tuple(item["choices"]) if item.get("choices") is not None else None,
                type=item.get("type"), default=item.get("default"),
                deprecated=bool(item.get("deprecated")), help=item.get("help", ""))
            actions.setdefault(action.dest, action)  # first definition wins, as in argparse
        backends = {name: tuple(dtypes) if dtypes else None
                    for name, dtypes in (data.get("attention_backends") or {}).items()}
        methods = data.get("quantization_methods")
        return cls(str(data["vllm_version"]), python, data["server_module"], actions, backends,
                   tuple(methods) if methods is not None else None)


def cache_dir() -> Path:
    base = os.environ.get(CACHE_ENV)
    if base:
        return Path(base)
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "stackdecide"


def _cache_file(runtime: RuntimeVersions) -> Path:
    identity = f"{runtime.python}|{runtime.vllm_location}|{runtime.vllm}|{CACHE_FORMAT}"
    digest = hashlib.sha256(identity.encode()).hexdigest()[:12]
    name = f"{runtime.vllm_distribution or 'vllm'}-{runtime.vllm}-{digest}.json"
    return cache_dir() / "vllm-args" / name


def load_arg_spec(python: str | None = None, runtime: RuntimeVersions | None = None,
                  use_cache: bool = True) -> VllmArgSpec:
    """vLLM's argument definitions for ``python`` (default: see ``probe.vllm_python``)."""
    python = vllm_python(python)
    runtime = runtime or probe_runtime(python, with_torch=False)
    if runtime.vllm is None:
        why = f" ({runtime.error})" if runtime.error else ""
        raise EngineError(f"vLLM is not installed in '{python}'{why}; install it (for the CPU "
                          "build: scripts/install-engine-cpu.sh PYTHON) or pass --python")
    path = _cache_file(runtime)
    if use_cache and path.is_file():
        try:
            return VllmArgSpec.from_dump(json.loads(path.read_text()), python)
        except (ValueError, KeyError, TypeError):
            pass  # a damaged cache entry is rebuilt below
    data = run_introspection(python, "args", timeout=600)
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        write_json_atomic(path, data)
    except OSError:
        pass  # an unwritable cache only costs time
    return VllmArgSpec.from_dump(data, python)


def find_engine_spec(python: str | None = None) -> tuple[VllmArgSpec | None, str]:
    """The argument definitions of the vLLM that ``python`` runs (default: as ``launch`` picks
    it), or None and the reason. The first call for a vLLM version imports vLLM (slow); later
    calls read a cache."""
    try:
        return load_arg_spec(python), ""
    except EngineError as exc:
        return None, exc.message
