"""A space in the decision file, expanded to named candidates (docs/space.md).

A ``space:`` block is a base configuration and axes over it: engine keys (``engine.KEY``),
environment variables (``env.NAME``), stack pins (``stack.FIELD``, ``stack.packages.NAME``) and
the hardware (``hardware.gpu``, ``hardware.count``). Every combination of the axes' values is one
configuration, except where

* an axis has a ``when`` condition that does not hold (it then does not apply: the base's value
  stays, and the axis is no part of the id), or
* an ``exclude`` rule names it (every axis the rule names has one of the rule's values).

Each configuration becomes an ordinary candidate whose id is built from its values
(``bf16-tp2-kv-fp8``): the axes in a fixed order (hardware, ``engine.model``, the parallel
layout, other engine keys, env, stack; alphabetical within each), so the id and the order of the
candidates do not depend on the order the file lists the axes in. An axis with one value is no
part of any id (it tells no two configurations apart). Expansion is a pure function of the
``Space``; ``expansion_of`` caches it for the views and checks that ask for it per candidate.

Which configurations cannot start or do not fit is the static checks' to say (``audit.space``);
hardware other than the decision's is marked here (``hardware_absence``).
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, replace
from functools import cached_property
from typing import Any, Literal

from packaging.utils import canonicalize_name

from stackdecide._text import did_you_mean
from stackdecide.errors import Location
from stackdecide.facts.gpus import gpu_matches
from stackdecide.model._yaml import PathKey, Positions
from stackdecide.model.metrics import MAX_COUNT
from stackdecide.model.schema import (
    ENV_NAME,
    MAX_SPACE_LIMIT,
    Candidate,
    Criterion,
    DecisionFile,
    Hardware,
    Space,
)
from stackdecide.model.stack import PARALLEL_OPTIONS, option_name

Section = Literal["engine", "env", "stack", "hardware"]

# The combinations a space may enumerate (before exclusions) while counting what it holds.
MAX_COMBINATIONS = 100_000
MAX_ID_LENGTH = 80  # the schema's Identifier
MAX_LABEL_LENGTH = 40
STACK_FIELDS = ("vllm", "torch", "flashinfer", "transformers", "cuda", "python")
HARDWARE_KEYS = ("gpu", "count")
AXIS_FORMS = ("engine.KEY, env.NAME, stack.FIELD (" + ", ".join(STACK_FIELDS) +
              "), stack.packages.NAME, hardware.gpu or hardware.count")

# Short names of the id parts of well-known keys; any other key's part starts with its own name.
# "" puts the value alone: flashinfer, bf16, h100.
ENGINE_PREFIXES = {
    "model": "", "dtype": "", "attention_backend": "", "quantization": "quant",
    "tensor_parallel_size": "tp", "pipeline_parallel_size": "pp", "data_parallel_size": "dp",
    "enable_expert_parallel": "ep", "kv_cache_dtype": "kv", "max_num_seqs": "seqs",
    "max_num_batched_tokens": "batch", "max_model_len": "len", "gpu_memory_utilization": "mem",
    "block_size": "block", "enable_prefix_caching": "prefix-cache",
    "enable_chunked_prefill": "chunked-prefill", "enforce_eager": "eager",
}
ENV_PREFIXES = {"VLLM_ATTENTION_BACKEND": "", "VLLM_USE_DEEP_GEMM": "deepgemm"}
HARDWARE_PREFIXES = {"gpu": "", "count": "gpus"}
# dtype names as ids write them
DTYPE_LABELS = {"bfloat16": "bf16", "float16": "fp16", "half": "fp16", "float32": "fp32",
                "float": "fp32"}
# version specifiers as ids write them: ==0.26.0 -> 0.26.0, >=0.25 -> ge0.25
SPECIFIER_WORDS = (("===", ""), ("==", ""), (">=", "ge"), ("<=", "le"), ("~=", "compat"),
                   ("!=", "ne"), (">", "gt"), ("<", "lt"), (",", "_"), ("*", "x"))
LABEL = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]*")
PREFIX = re.compile(r"([A-Za-z0-9][A-Za-z0-9_.-]*)?")
ENGINE_KEY = re.compile(r"[A-Za-z][A-Za-z0-9_-]*")
DISTRIBUTION = re.compile(r"[A-Za-z0-9]([A-Za-z0-9._-]*[A-Za-z0-9])?")


class SpaceError(ValueError):
    """A space that cannot be expanded: the path in the file, and what is wrong there."""

    def __init__(self, path: PathKey, message: str, key: bool = False) -> None:
        super().__init__(message)
        self.path, self.message, self.key = path, message, key


@dataclass(frozen=True)
class Axis:
    """One axis, read: what it sets, its values with their short names, and when it applies."""

    key: str  # as written in the file: engine.tensor-parallel-size
    id: str  # one spelling: engine.tensor_parallel_size
    section: Section
    field: str  # the engine key or env name as written, the stack field, packages.NAME, gpu
    prefix: str  # how its id part starts: tp in tp2
    values: tuple[Any, ...]
    labels: tuple[str, ...]  # each value's short name, in ids and views
    named: bool  # labels given by the file (values: {name: value})
    when: tuple[tuple[str, frozenset[int]], ...] = ()  # (axis id, value indices) it applies under

    @property
    def varies(self) -> bool:
        """Whether it tells configurations apart: a part of their ids."""
        return len(self.values) > 1

    def part(self, index: int) -> str:
        """Its part of an id at value ``index``: tp2, kv-fp8, prefix-cache, no-prefix-cache."""
        label, value = self.labels[index], self.values[index]
        if not self.named and isinstance(value, bool) and self.prefix:
            return self.prefix if value else f"no-{self.prefix}"
        if not self.prefix:
            return label
        joined = label[0].isdigit() and self.prefix[-1].isalpha()
        return f"{self.prefix}{label}" if joined else f"{self.prefix}-{label}"


@dataclass(frozen=True)
class Setting:
    """One axis at one of its values, as a configuration has it."""

    axis: str  # the axis id: engine.kv_cache_dtype
    label: str
    value: Any


@dataclass(frozen=True)
class Configuration:
    """One combination of the axes: its id and the value of each axis that applies to it."""

    id: str
    settings: tuple[Setting, ...]  # in id order
    excluded_by: int | None = None  # the exclude rule (its index) that keeps it out

    def setting(self, axis_id: str) -> Setting | None:
        return next((s for s in self.settings if s.axis == axis_id), None)


@dataclass(frozen=True)
class Expansion:
    """What a space holds: its axes, the configurations it generates, and those excluded."""

    axes: tuple[Axis, ...]  # in id order
    configurations: tuple[Configuration, ...]
    excluded: tuple[Configuration, ...]

    @property
    def combinations(self) -> int:
        """Combinations of the axes where their conditions hold, before exclusions."""
        return len(self.configurations) + len(self.excluded)

    @cached_property
    def by_id(self) -> dict[str, Configuration]:
        return {c.id: c for c in self.configurations}

    def axis(self, axis_id: str) -> Axis:
        return next(a for a in self.axes if a.id == axis_id)


# -- reading the axes ----------------------------------------------------------------------------

def axis_identity(key: str) -> tuple[Section, str, str] | None:
    """``(section, field, id)`` of an axis key (``engine.tensor-parallel-size`` ->
    ``engine``, ``tensor-parallel-size``, ``engine.tensor_parallel_size``); None when it is no
    axis key."""
    section, _, rest = key.partition(".")
    if section == "engine" and ENGINE_KEY.fullmatch(rest):
        return "engine", rest, f"engine.{option_name(rest)}"
    if section == "env" and ENV_NAME.fullmatch(rest):
        return "env", rest, f"env.{rest}"
    if section == "stack" and rest in STACK_FIELDS:
        return "stack", rest, f"stack.{rest}"
    package = rest.removeprefix("packages.")
    if section == "stack" and package != rest and DISTRIBUTION.fullmatch(package):
        name = f"packages.{canonicalize_name(package)}"
        return "stack", name, f"stack.{name}"
    if section == "hardware" and rest in HARDWARE_KEYS:
        return "hardware", rest, f"hardware.{rest}"
    return None


def _key_problem(key: str) -> str:
    """Why ``key`` is no axis key, in a sentence naming the forms that are."""
    section, dot, rest = key.partition(".")
    if section == "engine" and "." in rest:
        return (f"'{key}': an axis sets a whole engine key, not a key inside one; give whole "
                f"values (engine.{rest.split('.')[0]}: [{{...}}, {{...}}])")
    if section == "engine":
        return f"'{key}': '{rest}' is not an engine key (letters, digits, _ and -)"
    if section == "env":
        return (f"'{key}': '{rest}' is not an environment variable name (letters, digits and _, "
                "not starting with a digit)")
    if section == "stack":
        return f"'{key}': stack axes are stack.FIELD ({', '.join(STACK_FIELDS)}) and " \
               "stack.packages.NAME"
    if section == "hardware":
        return f"'{key}': hardware axes are hardware.gpu and hardware.count (the GPU table gives " \
               "the rest)"
    hint = did_you_mean(section, ("engine", "env", "stack", "hardware")) if dot else ""
    return f"unknown axis '{key}'{hint}; axes are {AXIS_FORMS}"


def _same(a: Any, b: Any) -> bool:
    """Whether two written values are the same value: true is not 1, "0" is 0."""
    if isinstance(a, bool) or isinstance(b, bool):
        return isinstance(a, bool) and isinstance(b, bool) and a == b
    if isinstance(a, str) != isinstance(b, str):
        return isinstance(a, int | float | str) and isinstance(b, int | float | str) \
            and str(a) == str(b)
    return bool(a == b)


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9_.]+", "-", text.lower()).strip("-")


def default_label(section: Section, field: str, value: Any) -> str | None:
    """The short name of a value in ids and views; None when it has none (a list or mapping)."""
    if value is None:
        return "default"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        text = f"{value:g}"
    elif isinstance(value, int | str):
        text = str(value).strip()
    else:
        return None
    if section == "stack":
        for written, word in SPECIFIER_WORDS:
            text = text.replace(written, word)
    elif section == "hardware" and field == "gpu":
        text = re.sub(r"^nvidia\s+", "", text, flags=re.IGNORECASE)
    elif section == "engine" and option_name(field) == "model":
        text = text.rstrip("/").rsplit("/", 1)[-1]
    elif section == "engine" and option_name(field) in ("dtype", "kv_cache_dtype"):
        text = DTYPE_LABELS.get(text.lower(), text)
    return _slug(text)[:MAX_LABEL_LENGTH] or None


def _checked_value(section: Section, field: str, value: Any, path: PathKey) -> Any:
    """A value as the candidate takes it (a version number as text), or why it cannot be one."""
    if section == "env":
        if value is not None and not isinstance(value, str):
            raise SpaceError(path, f"{value!r}: environment values are text; quote it "
                                   f"('{value}')")
    elif section == "stack":
        if isinstance(value, int | float) and not isinstance(value, bool):
            return str(value)
        if value is not None and not isinstance(value, str):
            raise SpaceError(path, f"{value!r}: a stack pin is a version or specifier such as "
                                   "'==0.26.0', or null for none")
    elif section == "hardware" and field == "gpu":
        if not isinstance(value, str) or not value.strip():
            raise SpaceError(path, f"{value!r}: hardware.gpu values are GPU names such as "
                                   "'NVIDIA H100'")
        return value.strip()
    elif section == "hardware" and (isinstance(value, bool) or not isinstance(value, int)
                                    or not 1 <= value <= MAX_COUNT):
        raise SpaceError(path, f"{value!r}: hardware.count values are whole numbers of GPUs")
    return value


def _prefix(section: Section, field: str, written: str | None, path: PathKey) -> str:
    if written is not None:
        if not PREFIX.fullmatch(written):
            raise SpaceError(path, f"'{written}': an axis name is letters, digits, _ . and -, "
                                   "starting with a letter or digit (or '' for the value alone)")
        return written
    if section == "engine":
        name = option_name(field)
        return ENGINE_PREFIXES.get(name, name)
    if section == "env":
        return ENV_PREFIXES.get(field, field.lower().removeprefix("vllm_"))
    if section == "hardware":
        return HARDWARE_PREFIXES[field]
    return field.removeprefix("packages.")


def _read_axis(key: str, spec: Any) -> Axis:
    path: PathKey = ("space", "axes", key)
    identity = axis_identity(key)
    if identity is None:
        raise SpaceError(path, _key_problem(key), key=True)
    section, field, axis_id = identity
    named = isinstance(spec.values, dict)
    items = list(spec.values.items()) if named else list(enumerate(spec.values))
    if not items:
        raise SpaceError(path, f"axis {key} has no values; give at least one")
    values: list[Any] = []
    labels: list[str] = []
    for name, raw in items:
        where = (*path, "values", name)
        value = _checked_value(section, field, raw, where)
        if named:
            label = str(name)
            if not LABEL.fullmatch(label) or len(label) > MAX_LABEL_LENGTH:
                raise SpaceError(where, f"'{label}': a value's name is letters, digits, _ . and -, "
                                        f"starting with a letter or digit, at most "
                                        f"{MAX_LABEL_LENGTH} characters", key=True)
        else:
            found = default_label(section, field, value)
            if found is None:
                raise SpaceError(where, f"{_shown(value)} has no short name for an id; name the "
                                        f"values of {key}: values: {{name: value, ...}}")
            label = found
        for before, other in enumerate(values):
            if _same(other, value):
                raise SpaceError(where, f"{_shown(value)} is already the value "
                                        f"{labels[before]} of axis {key}")
        values.append(value)
        labels.append(label)
    prefix = _prefix(section, field, spec.name, (*path, "name"))
    return Axis(key, axis_id, section, field, prefix, tuple(values), tuple(labels), named)


def _shown(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _order(axis: Axis) -> tuple[int, int, str]:
    """Where an axis's part goes in an id: hardware, the model, the parallel layout, the other
    engine keys, env, stack."""
    name = option_name(axis.field)
    if axis.section == "hardware":
        return 0, HARDWARE_KEYS.index(axis.field), ""
    if axis.section == "engine" and name == "model":
        return 1, 0, ""
    if axis.section == "engine" and name in PARALLEL_OPTIONS:
        return 2, PARALLEL_OPTIONS.index(name), ""
    return {"engine": 3, "env": 4, "stack": 5}[axis.section], 0, axis.id


def _values_of(axis: Axis, wanted: Any, path: PathKey) -> frozenset[int]:
    """The indices of ``axis``'s values that ``wanted`` (a value, a value's name, or a list of
    them) names; every one must name a value."""
    items = wanted if isinstance(wanted, list) else [wanted]
    if not items:
        raise SpaceError(path, "an empty list names no value; give at least one")
    found: set[int] = set()
    for item in items:
        hits = {j for j, value in enumerate(axis.values)
                if _same(value, item) or (axis.named and axis.labels[j] == str(item))}
        if not hits:
            shown = ", ".join(axis.labels if axis.named else (_shown(v) for v in axis.values))
            raise SpaceError(path, f"axis {axis.key} has no value {_shown(item)}; its values: "
                                   f"{shown}")
        found |= hits
    return frozenset(found)


def _referenced(ref: str, axes: Mapping[str, Axis], path: PathKey) -> Axis:
    identity = axis_identity(ref)
    axis = axes.get(identity[2]) if identity else None
    if axis is None:
        keys = [a.key for a in axes.values()]
        raise SpaceError(path, f"no axis '{ref}'{did_you_mean(ref, keys)}; axes: {', '.join(keys)}",
                         key=True)
    return axis


def read_axes(space: Space) -> tuple[Axis, ...]:
    """The axes of a space, each checked, in the order they are enumerated: id order, with the
    axes a condition names before the axis it conditions."""
    by_id: dict[str, Axis] = {}
    for key, spec in space.axes.items():
        axis = _read_axis(key, spec)
        if axis.id in by_id:
            raise SpaceError(("space", "axes", key), f"axis {key} sets the same thing as axis "
                                                      f"{by_id[axis.id].key}; keep one of them",
                             key=True)
        by_id[axis.id] = axis
    for axis, spec in zip(list(by_id.values()), space.axes.values(), strict=True):
        key = axis.key
        when = []
        for ref, wanted in spec.when.items():
            path: PathKey = ("space", "axes", key, "when", ref)
            parent = _referenced(ref, by_id, path)
            if parent.id == axis.id:
                raise SpaceError(path, f"axis {key} cannot apply under its own values", key=True)
            when.append((parent.id, _values_of(parent, wanted, path)))
        by_id[axis.id] = replace(axis, when=tuple(when))
    return _enumeration_order(by_id)


def _enumeration_order(by_id: Mapping[str, Axis]) -> tuple[Axis, ...]:
    waiting = sorted(by_id.values(), key=_order)
    placed: list[Axis] = []
    while waiting:
        ready = next((a for a in waiting if all(p in {b.id for b in placed} for p, _ in a.when)),
                     None)
        if ready is None:
            raise SpaceError(("space", "axes", waiting[0].key, "when"),
                             f"the conditions of axes {', '.join(a.key for a in waiting)} name "
                             "each other in a circle; one of them must apply unconditionally")
        placed.append(ready)
        waiting.remove(ready)
    return tuple(placed)


def _rules(space: Space, axes: Mapping[str, Axis]) -> list[list[tuple[str, frozenset[int]]]]:
    rules = []
    for index, rule in enumerate(space.exclude):
        path: PathKey = ("space", "exclude", index)
        if not rule:
            raise SpaceError(path, "an empty rule would exclude every configuration; name the "
                                   "axes and values to exclude")
        parts = []
        for ref, wanted in rule.items():
            axis = _referenced(ref, axes, (*path, ref))
            parts.append((axis.id, _values_of(axis, wanted, (*path, ref))))
        rules.append(parts)
    return rules


# -- expansion -----------------------------------------------------------------------------------

Choice = dict[str, int | None]  # axis id -> value index; None where the axis does not apply


def _applies(axis: Axis, chosen: Choice) -> bool:
    return all(chosen.get(parent) is not None and chosen[parent] in indices
               for parent, indices in axis.when)


def _combinations(axes: tuple[Axis, ...]) -> Iterator[Choice]:
    """Every combination where the conditions hold, in enumeration order (each axis's values in
    the order the file gives them)."""
    chosen: Choice = {}

    def walk(i: int) -> Iterator[Choice]:
        if i == len(axes):
            yield dict(chosen)
            return
        axis = axes[i]
        for index in (range(len(axis.values)) if _applies(axis, chosen) else (None,)):
            chosen[axis.id] = index
            yield from walk(i + 1)
        del chosen[axis.id]

    return walk(0)


def _configuration(axes: tuple[Axis, ...], prefix: str | None, chosen: Choice,
                   excluded_by: int | None = None) -> Configuration:
    applied = sorted(((a, i) for a in axes if (i := chosen[a.id]) is not None),
                     key=lambda pair: _order(pair[0]))
    settings = tuple(Setting(a.id, a.labels[i], a.values[i]) for a, i in applied)
    parts = [a.part(i) for a, i in applied if a.varies]
    name = "-".join(([prefix] if prefix else []) + parts) or "base"  # no axis varies
    return Configuration(name, settings, excluded_by)


def expand(space: Space) -> Expansion:
    """Every configuration of ``space``, and those its rules exclude; ``SpaceError`` for a space
    that is not one (naming the place in the file), or that holds more than its ``limit``."""
    axes = read_axes(space)
    by_id = {a.id: a for a in axes}
    rules = _rules(space, by_id)
    kept: list[Choice] = []
    excluded: list[tuple[Choice, int]] = []
    for count, chosen in enumerate(_combinations(axes), start=1):
        if count > MAX_COMBINATIONS:
            raise SpaceError(("space", "axes"), f"the axes combine to more than "
                                                f"{MAX_COMBINATIONS:,} configurations; a space "
                                                f"holds at most {space.limit:,} (space.limit)")
        rule = next((r for r, parts in enumerate(rules)
                     if all(chosen[a] is not None and chosen[a] in v for a, v in parts)), None)
        if rule is None:
            kept.append(chosen)
        else:
            excluded.append((chosen, rule))
    if len(kept) > space.limit:
        where = ("space", "limit") if "limit" in space.model_fields_set else ("space",)
        raise SpaceError(where, f"the space holds {len(kept):,} configurations, more than its "
                                f"limit of {space.limit:,}: remove values, exclude combinations, "
                                f"or raise space.limit (at most {MAX_SPACE_LIMIT:,})")
    configurations = tuple(_configuration(axes, space.prefix, c) for c in kept)
    _check_ids(configurations, by_id)
    return Expansion(tuple(sorted(axes, key=_order)), configurations,
                     tuple(_configuration(axes, space.prefix, c, r) for c, r in excluded))


def _check_ids(configurations: tuple[Configuration, ...], axes: Mapping[str, Axis]) -> None:
    seen: dict[str, Configuration] = {}
    for config in configurations:
        if len(config.id) > MAX_ID_LENGTH:
            raise SpaceError(("space", "axes"), f"the id '{config.id}' has {len(config.id)} "
                                                f"characters, more than {MAX_ID_LENGTH}: give "
                                                "the axes shorter names (name: ...) or the values "
                                                "short ones (values: {name: value})")
        first = seen.setdefault(config.id, config)
        if first is not config:
            raise _same_id(first, config, axes)


def _same_id(first: Configuration, second: Configuration, axes: Mapping[str, Axis]) -> SpaceError:
    """Two configurations with one id: some axis gives two of its values the same short name."""
    for setting in first.settings:
        other = second.setting(setting.axis)
        if other is not None and not _same(other.value, setting.value):
            axis = axes[setting.axis]
            return SpaceError(("space", "axes", axis.key),
                              f"values {_shown(setting.value)} and {_shown(other.value)} of axis "
                              f"{axis.key} have the same short name '{setting.label}', so two "
                              f"configurations are both '{first.id}'; name the values "
                              "(values: {name: value})", key=True)
    return SpaceError(("space", "axes"), f"two configurations are both '{first.id}'; name the "
                                         "values of the axes (values: {name: value})")


def candidate_of(space: Space, config: Configuration, axes: Mapping[str, Axis]) -> Candidate:
    """The candidate a configuration is: the base with each axis's value set (null unsets)."""
    base = space.base
    engine, env = dict(base.engine), dict(base.env)
    stack = base.stack.model_dump()
    for setting in config.settings:
        axis = axes[setting.axis]
        if axis.section == "engine":
            # the axis's spelling replaces the base's, where the base had the option
            option = option_name(axis.field)
            engine = {(axis.field if option_name(k) == option else k): v for k, v in engine.items()}
            engine[axis.field] = setting.value
            if setting.value is None:  # null: the engine's own default
                del engine[axis.field]
        elif axis.section == "env":
            env.pop(axis.field, None)
            if setting.value is not None:
                env[axis.field] = setting.value
        elif axis.section == "stack" and axis.field.startswith("packages."):
            packages = {k: v for k, v in stack["packages"].items()
                        if canonicalize_name(k) != axis.field.removeprefix("packages.")}
            if setting.value is not None:
                packages[axis.field.removeprefix("packages.")] = setting.value
            stack["packages"] = packages
        elif axis.section == "stack":
            stack[axis.field] = setting.value
    return Candidate.model_validate({
        "id": config.id, "stack": stack, "model": base.model, "engine": engine, "env": env,
        "scores": dict(base.scores), "uncertainty": dict(base.uncertainty), "notes": base.notes})


def candidates_of(space: Space, expansion: Expansion) -> list[Candidate]:
    axes = {a.id: a for a in expansion.axes}
    return [candidate_of(space, config, axes) for config in expansion.configurations]


def midpoint_scores(criteria: list[Criterion]) -> dict[str, float]:
    """The score of a configuration whose base gives none: the middle of each criterion's scale,
    the same for every configuration, so no judgement tells them apart."""
    return {c.id: (c.scale.low + c.scale.high) / 2 for c in criteria}


# -- hardware ------------------------------------------------------------------------------------

def configuration_hardware(config: Configuration, hardware: Hardware | None) -> Hardware | None:
    """The hardware a configuration is for: the decision's, with its hardware axes' values. A GPU
    other than the decision's takes nothing else of the decision's block (memory, compute
    capability, bandwidth and price are the GPU table's, or unknown)."""
    gpu, count = config.setting("hardware.gpu"), config.setting("hardware.count")
    if gpu is None and count is None:
        return hardware
    fields: dict[str, Any] = hardware.model_dump() if hardware is not None else {}
    if gpu is not None and (hardware is None or not gpu_matches(gpu.value, hardware.gpu)):
        fields = {"gpu": gpu.value, "count": fields.get("count", 1)}
    if count is not None:
        fields["count"] = count.value
    return Hardware(**fields)


def hardware_absence(config: Configuration, hardware: Hardware | None) -> str | None:
    """Why a configuration is for hardware other than the decision's, or None when it is the
    decision's: such a configuration is ranked by prediction, never launched here."""
    gpu, count = config.setting("hardware.gpu"), config.setting("hardware.count")
    if gpu is None and count is None:
        return None
    if hardware is None:
        return "the decision names no hardware"
    reasons = []
    if gpu is not None and not gpu_matches(gpu.value, hardware.gpu):
        reasons.append(f"{gpu.value}, not the decision's {hardware.gpu}")
    if count is not None and count.value > hardware.count:
        reasons.append(f"{count.value} GPUs, not the decision's {hardware.count}")
    return "; ".join(reasons) or None


# -- a loaded decision's space -------------------------------------------------------------------

_CACHE_SIZE = 16
_expansions: dict[str, Expansion] = {}


def expansion_of(space: Space) -> Expansion:
    """``expand(space)``, computed once per space (checks and views ask per candidate)."""
    key = space.model_dump_json()
    found = _expansions.get(key)
    if found is None:
        found = expand(space)
        if len(_expansions) >= _CACHE_SIZE:
            del _expansions[next(iter(_expansions))]
        _expansions[key] = found
    return found


def configuration_of(model: DecisionFile, candidate_id: str) -> Configuration | None:
    """The configuration of the decision's space a candidate is, or None for one written by
    hand."""
    return None if model.space is None else expansion_of(model.space).by_id.get(candidate_id)


def candidate_hardware(model: DecisionFile, candidate_id: str) -> Hardware | None:
    """The hardware a candidate is for: a configuration's own (``configuration_hardware``), else
    the decision's ``hardware``."""
    config = configuration_of(model, candidate_id)
    hardware = model.decision.hardware
    return hardware if config is None else configuration_hardware(config, hardware)


def elsewhere(model: DecisionFile) -> dict[str, str]:
    """The configurations of the decision's space for hardware other than its own, and why:
    ranked by prediction, never launched or certified here."""
    if model.space is None:
        return {}
    found = {}
    for config in expansion_of(model.space).configurations:
        if (why := hardware_absence(config, model.decision.hardware)) is not None:
            found[config.id] = why
    return found


class SpacePositions(Positions):
    """Positions of a decision whose candidates from ``first`` on were generated by its space:
    a place in one of those (``candidates[7].engine.kv_cache_dtype``) is the axis that set it, or
    the base's key it came from."""

    def __init__(self, inner: Positions, first: int, expansion: Expansion) -> None:
        super().__init__(inner.file)
        self._inner, self._first, self._expansion = inner, first, expansion

    def locate(self, path: PathKey, key: bool = False) -> Location:
        return self._inner.locate(self.source(path) or path, key=key)

    def source(self, path: PathKey) -> PathKey | None:
        """Where in the space a generated candidate's ``path`` comes from; None for any other."""
        if len(path) < 2 or path[0] != "candidates" or not isinstance(path[1], int):
            return None
        index = path[1] - self._first
        if not 0 <= index < len(self._expansion.configurations):
            return None
        config, rest = self._expansion.configurations[index], path[2:]
        if not rest or rest[0] not in ("engine", "env", "stack", "model", "scores", "uncertainty",
                                       "notes"):
            return ("space",)
        if len(rest) > 1:
            name = str(rest[1])
            if rest[0] == "engine":
                name = option_name(name)
            elif rest[0] == "stack" and name == "packages" and len(rest) > 2:
                name = f"packages.{canonicalize_name(str(rest[2]))}"
            setting = config.setting(f"{rest[0]}.{name}")
            if setting is not None:
                return ("space", "axes", self._expansion.axis(setting.axis).key)
        return ("space", "base", *rest)
