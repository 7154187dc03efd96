"""Decision file -> validated ``DecisionFile`` -> ``Decision``, with every error located.

Pydantic checks each part's shape; the checks here relate parts to each other (ids, weights,
scores against the criteria and their scales), so an error can name the exact field that is wrong.
A ``space:`` is expanded (``model.space``) before the schema sees the candidates: its
configurations follow the file's own, and an error about one names the axis or base key it came
from.
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any, TypeVar

import numpy as np
from pydantic import ValidationError

from stackdecide._text import did_you_mean, shown
from stackdecide.errors import DecisionFileError
from stackdecide.mcda.ahp import ahp_weights, parse_judgement, reciprocal_errors
from stackdecide.model._yaml import PathKey, Positions, load_yaml, read_text
from stackdecide.model.constraints import parse_constraint
from stackdecide.model.decision import DecisionMatrix
from stackdecide.model.lengths import read_lengths_file
from stackdecide.model.metrics import METRICS, unknown_metric_message
from stackdecide.model.schema import ENV_NAME, MAX_MAGNITUDE, SCHEMA_ID, DecisionFile, Space
from stackdecide.model.space import (
    Expansion,
    SpaceError,
    SpacePositions,
    candidates_of,
    expansion_of,
    midpoint_scores,
)
from stackdecide.model.stack import option_name

WEIGHT_SUM_TOLERANCE = 1e-6
MIN_WEIGHT, MAX_WEIGHT = 1 / MAX_MAGNITUDE, MAX_MAGNITUDE
D = TypeVar("D", bound=DecisionMatrix)


def load(path: str | Path, cls: type[D] = DecisionMatrix) -> D:  # type: ignore[assignment]
    """Read, validate and build a decision from a YAML file, as an instance of ``cls``."""
    path = Path(path)
    return parse(read_text(path), str(path), cls)


def parse(text: str, file: str = "<string>", cls: type[D] = DecisionMatrix) -> D:  # type: ignore[assignment]
    """Validate a decision given as YAML text; ``file`` names it in error messages."""
    data, positions = load_yaml(text, file)
    checker = _Checker(positions)
    if not isinstance(data, dict):
        checker.fail((), f"expected a mapping with keys schema, decision, criteria, candidates; "
                         f"got {type(data).__name__}")
    if "schema" in data and data["schema"] != SCHEMA_ID:
        checker.fail(("schema",), f"unknown schema '{data['schema']}', this version reads '{SCHEMA_ID}'")
    expansion = checker.expansion(data)
    if expansion is not None:
        data = _with_generated(data, expansion)
    try:
        model = DecisionFile.model_validate(data)
    except ValidationError as exc:
        raise checker.from_pydantic(exc, data) from None
    notes: tuple[str, ...] = ()
    if expansion is not None:
        model, notes = checker.space(model, expansion)
    _check_lengths_file(model, file, checker)
    return checker.build(_shown_free_text(model), cls, notes)


def _text_shown(item: Any, *fields: str) -> Any:
    """``item`` (a part of the file) with its text ``fields`` as ``_text.shown`` writes them."""
    texts = {name: getattr(item, name) for name in fields}
    update = {name: shown(text) for name, text in texts.items()
              if isinstance(text, str) and not text.isprintable()}
    return item.model_copy(update=update) if update else item


def _shown_free_text(model: DecisionFile) -> DecisionFile:
    """The file's free text (title, source, names, descriptions, notes, the GPU's name) with its
    control, bidi and zero-width characters escaped, once, so that every view shows the escape
    (``\\x1b``, ``\\u202e``) and no name can rewrite the terminal line or table that shows it.
    Ids are refused instead (``schema.Identifier``)."""
    meta = _text_shown(model.decision, "title", "source")
    if meta.hardware is not None:
        meta = meta.model_copy(update={"hardware": _text_shown(meta.hardware, "gpu")})
    return model.model_copy(update={
        "decision": meta,
        "criteria": [_text_shown(c, "name", "description") for c in model.criteria],
        "candidates": [_text_shown(c, "name", "notes") for c in model.candidates]})


def _with_generated(data: dict[str, Any], expansion: tuple[Space, Expansion]) -> dict[str, Any]:
    """The file's data with the space's configurations after its own candidates (a ``candidates``
    that is not a list is left for the schema to refuse)."""
    written = data.get("candidates")
    if written is not None and not isinstance(written, list):
        return data
    return {**data, "candidates": [*(written or []), *candidates_of(*expansion)]}


def _check_lengths_file(model: DecisionFile, file: str, checker: _Checker) -> None:
    """A workload's lengths file must exist and hold pairs (its own errors name its lines)."""
    name = model.benchmark.workload.lengths_file
    if not name:
        return
    path = Path(name)
    if not path.is_absolute() and Path(file).exists():
        path = Path(file).parent / path
    if not path.is_file():
        checker.fail(("benchmark", "workload", "lengths_file"), f"no such file: {path}")
    read_lengths_file(path)


def _field_names(model_path: PathKey, data: Any) -> list[str]:
    """Valid keys at a path of the file, for 'did you mean' hints."""
    from stackdecide.model import schema

    node: Any = schema.DecisionFile
    for part in model_path:
        if isinstance(part, int):
            continue
        fields = getattr(node, "model_fields", None)
        if not fields:
            return []
        field = fields.get(part) or next(
            (f for f in fields.values() if f.alias == part), None)
        if field is None:
            return []
        node = _model_in(field.annotation)
    fields = getattr(node, "model_fields", {})
    return [f.alias or name for name, f in fields.items()]


def _model_in(annotation: Any) -> Any:
    """The pydantic model inside an annotation such as ``list[Criterion]`` or ``Targets | None``."""
    from pydantic import BaseModel

    stack = [annotation]
    while stack:
        item = stack.pop()
        if isinstance(item, type) and issubclass(item, BaseModel):
            return item
        stack.extend(getattr(item, "__args__", ()))
        origin = getattr(item, "__origin__", None)
        if origin is not None:
            stack.append(origin)
    return None


def _closest(name: str, options: list[str]) -> str:
    """The "did you mean" hint, or with nothing close, every valid option (a file has few)."""
    return did_you_mean(name, options) or (
        f"; expected one of: {', '.join(options)}" if options else "")


def _describe(value: Any) -> str:
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


class _Checker:
    def __init__(self, positions: Positions) -> None:
        self.positions = positions

    def error(self, path: PathKey, message: str, key: bool = False) -> DecisionFileError:
        return DecisionFileError(message, self.positions.locate(path, key=key))

    def fail(self, path: PathKey, message: str, key: bool = False) -> None:
        raise self.error(path, message, key)

    def from_pydantic(self, exc: ValidationError, data: Any, within: PathKey = ()) -> DecisionFileError:
        errors = exc.errors(include_url=False)
        first = errors[0]
        path = (*within, *(p for p in first["loc"] if not _is_model_tag(p)))
        kind = first["type"]
        if kind == "extra_forbidden":
            key = str(path[-1])
            message = f"unknown key '{key}'{_closest(key, _field_names(path[:-1], data))}"
        elif kind == "missing":
            message = "required field is missing"
        else:
            message = f"{_describe(first.get('input'))}: {first['msg']}"
            message = message.replace("Value error, ", "")
        more = len(errors) - 1
        if more:
            message += f" (and {more} more error{'s' if more > 1 else ''})"
        return self.error(path, message, key=kind == "extra_forbidden")

    def expansion(self, data: Any) -> tuple[Space, Expansion] | None:
        """The file's space, validated and expanded; None without one."""
        if not isinstance(data, dict) or data.get("space") is None:
            return None
        try:
            space = Space.model_validate(data["space"])
        except ValidationError as exc:
            raise self.from_pydantic(exc, data, ("space",)) from None
        try:
            return space, expansion_of(space)
        except SpaceError as exc:
            raise self.error(exc.path, exc.message, exc.key) from None

    def space(self, model: DecisionFile, generated: tuple[Space, Expansion]
              ) -> tuple[DecisionFile, tuple[str, ...]]:
        """Checks of the space against the rest of the file; its configurations scored at the
        middle of each scale when its base gives no scores (and a note that says so)."""
        space, expansion = generated
        first = len(model.candidates) - len(expansion.configurations)
        self.positions = SpacePositions(self.positions, first, expansion)
        for i, candidate in enumerate(model.candidates[:first]):
            if candidate.id in expansion.by_id:
                self.fail(("candidates", i, "id"),
                          f"duplicate id '{candidate.id}': the space generates a configuration of "
                          "that id; rename this candidate or give the space a prefix "
                          "(space.prefix)")
        hardware_axis = next((a for a in expansion.axes if a.section == "hardware"), None)
        if hardware_axis is not None and model.decision.hardware is None:
            self.fail(("space", "axes", hardware_axis.key),
                      "a hardware axis needs decision.hardware: the hardware the decision is "
                      "measured on, which other hardware is marked against", key=True)
        criteria_ids = [c.id for c in model.criteria]
        for section in ("scores", "uncertainty"):
            for key in getattr(space.base, section):
                if key not in criteria_ids:
                    self.fail(("space", "base", section, key),
                              f"no criterion '{key}'{_closest(key, criteria_ids)}", key=True)
        scored = space.base.scores
        missing = [c for c in criteria_ids if c not in scored]
        if scored and missing:
            self.fail(("space", "base", "scores"),
                      f"the base scores {', '.join(scored)} but not {', '.join(missing)}: score "
                      "every criterion, or none (each configuration then scores the middle of "
                      "each scale)")
        if scored:
            return model, ()
        middle = midpoint_scores(model.criteria)
        candidates = [*model.candidates[:first],
                      *(c.model_copy(update={"scores": middle}) for c in model.candidates[first:])]
        note = (f"space: the base gives no judged scores, so its {len(expansion.configurations)} "
                "configurations all score the middle of each criterion's scale, and no judgement "
                "tells them apart until measurements (or predictions) do")
        return model.model_copy(update={"candidates": candidates}), (note,)

    def build(self, model: DecisionFile, cls: type[D], space_notes: tuple[str, ...] = ()) -> D:
        criteria_ids = self._unique([c.id for c in model.criteria], "criteria")
        self._unique([c.id for c in model.candidates], "candidates")
        weights, weight_note = self._weights(model, criteria_ids)
        scales = {c.id: c.scale for c in model.criteria}
        for i, candidate in enumerate(model.candidates):
            for key in candidate.scores:
                if key not in scales:
                    self.fail(("candidates", i, "scores", key),
                              f"no criterion '{key}'{_closest(key, criteria_ids)}", key=True)
            for key in candidate.uncertainty:
                if key not in scales:
                    self.fail(("candidates", i, "uncertainty", key),
                              f"no criterion '{key}'{_closest(key, criteria_ids)}", key=True)
            self._engine_and_env(i, candidate.engine, candidate.env)
            missing = [c for c in criteria_ids if c not in candidate.scores]
            if missing:
                self.fail(("candidates", i, "scores"),
                          f"candidate '{candidate.id}' has no score for {', '.join(missing)}")
            for key, score in candidate.scores.items():
                scale = scales[key]
                if not scale.low <= score <= scale.high:
                    self.fail(("candidates", i, "scores", key),
                              f"{score:g} is outside the scale {scale}")
        for i, criterion in enumerate(model.criteria):
            if criterion.scale.low == criterion.scale.high:
                self.fail(("criteria", i, "scale"), "scale needs low < high")
            if criterion.measure and criterion.measure.metric not in METRICS:
                self.fail(("criteria", i, "measure", "metric"),
                          unknown_metric_message(criterion.measure.metric))
        for i, text in enumerate(model.constraints):
            try:
                parse_constraint(text)
            except ValueError as exc:
                self.fail(("constraints", i), str(exc))
        for key in model.benchmark.noise:
            # a metric, or a criterion: its metric in its scenario (one stream and 64 differ)
            if key not in METRICS and key not in criteria_ids:
                self.fail(("benchmark", "noise", key),
                          f"{unknown_metric_message(key)}; or a criterion id: "
                          f"{', '.join(criteria_ids)}", key=True)
        candidate_ids = [c.id for c in model.candidates]
        for i, scenario in enumerate(model.benchmark.scenarios):
            if scenario.scenario == "capacity" and model.benchmark.slo is None:
                self.fail(("benchmark", "scenarios", i, "scenario"),
                          "the capacity scenario needs benchmark.slo, e.g. "
                          "{ttft_ms_p99: 1000, tpot_ms_p99: 50}")
            if scenario.reference is not None and scenario.reference not in candidate_ids:
                self.fail(("benchmark", "scenarios", i, "reference"),
                          f"no candidate '{scenario.reference}'"
                          f"{_closest(scenario.reference, candidate_ids)}")
        self._sensitivity(model, criteria_ids)
        notes = ((weight_note,) if weight_note else ()) + space_notes
        return cls.from_model(model, np.array(weights, dtype=float), notes, self.positions)

    def _engine_and_env(self, index: int, engine: dict[str, Any], env: dict[str, str]) -> None:
        """Engine keys that vLLM would read as one option, environment names a shell could not
        set, and NUL characters (no process argument or variable can hold one) are refused."""
        spelled: dict[str, str] = {}
        for key, value in engine.items():
            path = ("candidates", index, "engine", key)
            option = option_name(str(key))  # how vLLM's parser (and render) reads the key
            if option in spelled:
                self.fail(path, f"engine key '{key}' is the same vLLM option as '{spelled[option]}' "
                                "above (--" + option.replace("_", "-") + "); keep one of them",
                          key=True)
            spelled[option] = str(key)
            if _holds_nul(value) or "\x00" in str(key):
                self.fail(path, "a NUL character cannot be passed to vLLM; remove it")
        for key, value in env.items():
            path = ("candidates", index, "env", key)
            if not ENV_NAME.fullmatch(key):
                self.fail(path, f"'{key}' is not an environment variable name: use letters, digits "
                                "and _, not starting with a digit", key=True)
            if "\x00" in value:
                self.fail(path, "a NUL character cannot be passed in an environment variable; "
                                "remove it")

    def _unique(self, ids: list[str], section: str) -> list[str]:
        seen: dict[str, int] = {}
        for i, item in enumerate(ids):
            if item in seen:
                self.fail((section, i, "id"),
                          f"duplicate id '{item}' (first used at {section}[{seen[item]}])")
            seen[item] = i
        return ids

    def _weights(self, model: DecisionFile, ids: list[str]) -> tuple[list[float], str | None]:
        if model.weighting.method == "ahp":
            return self._ahp(model, ids)
        raw: list[float] = []
        for i, criterion in enumerate(model.criteria):
            path = ("criteria", i, "weight")
            value = criterion.weight
            if value is None:
                self.fail(path, "weight is missing (or set weighting.method: ahp)")
            if isinstance(value, str):
                text = value.strip()
                try:
                    number = float(text.rstrip("%"))
                except ValueError:
                    self.fail(path, f"'{value}' is not a weight; write 0.35, 35 or '35%'")
                value = number / 100 if text.endswith("%") else number
            if not math.isfinite(value):
                self.fail(path, f"{value} is not a finite number")
            if value <= 0:
                self.fail(path, f"weight {value:g} must be positive (drop the criterion instead)")
            if not MIN_WEIGHT <= value <= MAX_WEIGHT:
                # normalising divides by the sum: beyond these, the sum overflows or a share
                # underflows to 0, and the ranking would rest on inf or NaN
                self.fail(path, f"weight {value:g} is outside {MIN_WEIGHT:g}..{MAX_WEIGHT:g}, the "
                                "range weights can be normalised in; scale the weights together")
            raw.append(float(value))
        total = sum(raw)
        if abs(total - 1.0) <= WEIGHT_SUM_TOLERANCE:
            return raw, None
        if abs(total - 100.0) <= 100 * WEIGHT_SUM_TOLERANCE:
            return [w / 100 for w in raw], None
        if model.decision.normalize_weights:
            shown = ", ".join(f"{w:g}" for w in raw)
            return [w / total for w in raw], (
                f"weights ({shown}) add up to {total:g}; normalised to 1 because "
                "decision.normalize_weights is true")
        self.fail(("criteria",), f"weights add up to {total:g}, not 1 (or 100%); fix them or set "
                                 "decision.normalize_weights: true")
        raise AssertionError  # unreachable: fail() raises

    def _ahp(self, model: DecisionFile, ids: list[str]) -> tuple[list[float], str]:
        ahp = model.weighting.ahp
        assert ahp is not None  # schema guarantees it for method 'ahp'
        base = ("weighting", "ahp")
        if sorted(ahp.order) != sorted(ids) or len(set(ahp.order)) != len(ahp.order):
            self.fail((*base, "order"), f"order must list each criterion once: {', '.join(ids)}")
        for i, criterion in enumerate(model.criteria):
            if criterion.weight is not None:
                self.fail(("criteria", i, "weight"),
                          "give weights either directly or by AHP comparisons, not both")
        n = len(ahp.order)
        if len(ahp.matrix) != n or any(len(row) != n for row in ahp.matrix):
            self.fail((*base, "matrix"), f"matrix must be {n} x {n} (one row and column per "
                                         "criterion in order)")
        values = np.ones((n, n))
        for i, row in enumerate(ahp.matrix):
            for j, cell in enumerate(row):
                try:
                    values[i, j] = parse_judgement(cell)
                except (ValueError, ZeroDivisionError):
                    self.fail((*base, "matrix", i, j), f"'{cell}' is not a number or fraction like 1/3")
                if values[i, j] <= 0 or not 1 / 9 - 1e-9 <= values[i, j] <= 9 + 1e-9:
                    self.fail((*base, "matrix", i, j),
                              f"{cell} is outside Saaty's scale 1/9..9")
        for i in range(n):
            if abs(values[i, i] - 1) > 1e-9:
                self.fail((*base, "matrix", i, i), "the diagonal must be 1")
        bad = reciprocal_errors(values)
        if bad:
            i, j = bad[0]
            self.fail((*base, "matrix", j, i),
                      f"not reciprocal: [{i}][{j}] = {values[i, j]:g} needs [{j}][{i}] = "
                      f"1/{values[i, j]:g}, found {values[j, i]:g}")
        result = ahp_weights(values)
        by_id = dict(zip(ahp.order, result.weights, strict=True))
        note = (f"weights from AHP pairwise comparisons (lambda_max {result.lambda_max:.3f}, "
                f"consistency ratio {result.consistency_ratio:.3f})")
        return [float(by_id[i]) for i in ids], note

    def _sensitivity(self, model: DecisionFile, ids: list[str]) -> None:
        spec = model.sensitivity
        base = ("sensitivity",)
        for key, bounds in spec.weight_bounds.items():
            if key not in ids:
                self.fail((*base, "weight_bounds", key), f"no criterion '{key}'{_closest(key, ids)}",
                          key=True)
            if not 0 <= bounds.low <= bounds.high <= 1:
                self.fail((*base, "weight_bounds", key), f"bounds {bounds} must lie within 0..1")
        lows = sum(b.low for b in spec.weight_bounds.values())
        highs = sum(spec.weight_bounds.get(c, None).high if c in spec.weight_bounds else 1.0
                    for c in ids)
        if lows > 1 + 1e-9 or highs < 1 - 1e-9:
            self.fail((*base, "weight_bounds"),
                      f"no weights satisfy these bounds: lows add up to {lows:g} and highs to "
                      f"{highs:g}, but weights add up to 1")
        seen: set[str] = set()
        for i, key in enumerate(spec.importance_order):
            if key not in ids:
                self.fail((*base, "importance_order", i), f"no criterion '{key}'{_closest(key, ids)}")
            if key in seen:
                self.fail((*base, "importance_order", i), f"'{key}' appears twice")
            seen.add(key)
        if len(spec.importance_order) > 1:  # an order can contradict the bounds
            from stackdecide.mcda.weights import weight_region

            problem = weight_region(ids, spec.weight_bounds, spec.importance_order).conflict(ids)
            if problem:
                self.fail((*base, "importance_order"), problem)


def _holds_nul(value: Any) -> bool:
    if isinstance(value, str):
        return "\x00" in value
    if isinstance(value, dict):
        return any(_holds_nul(k) or _holds_nul(v) for k, v in value.items())
    if isinstance(value, list):
        return any(_holds_nul(item) for item in value)
    return False


def _is_model_tag(part: Any) -> bool:
    # pydantic inserts tags such as 'function-before[...]' into locations of wrapped validators
    return isinstance(part, str) and part.startswith("function-")
