"""Which model a candidate serves: its shape and checkpoint format, from the decision file alone.

One rule for every reader (memory checks, rooflines, capacity, the report, launch):

* the model spec is the candidate's own ``model:`` over the decision's (``DecisionMatrix.model_of``);
* the shape comes from, in order: the ``config.json`` of a local folder the engine serves
  (``engine.model``), ``model.config`` (a config.json or a model folder, relative to the decision
  file), the built-in ``model.shape``, a built-in published under the engine's or the spec's model
  id, the ``config.json`` the hub publishes under that id (``model.hub``); else there is none,
  and every check that needs one says so (``ModelFacts.missing``);
* the weight format comes from facts about the checkpoint first (its ``quantization_config``, the
  engine's ``quantization``, an FP8 model id), then ``model.weights``; unset means 16 bit;
* the checkpoint's ``quantization_config`` itself (what vLLM's rules on the KV cache read:
  ``quant_method``, ``kv_cache_scheme``...) comes only from a ``config.json`` of that checkpoint.
  A model id or ``model.weights`` can say the weights are quantized, never how: with either
  saying so and no such config, ``ModelFacts.quantization_unknown`` says what to give.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from stackdecide.errors import StackdecideError
from stackdecide.facts.dtypes import UnknownDtypeError, format_from_engine, is_fp8, weight_format
from stackdecide.facts.shapes import SHAPES, ModelShape, shape_for_id, shape_from_path, text_config
from stackdecide.model.hub import candidate_hub_shape
from stackdecide.model.schema import ModelSpec

if TYPE_CHECKING:
    from stackdecide.model.decision import DecisionMatrix

# Hub ids of FP8 checkpoints say so: Qwen/Qwen3-4B-Instruct-2507-FP8, RedHatAI/...-FP8-dynamic.
FP8_NAME = re.compile(r"(^|[-_.])fp8($|[-_.])", re.IGNORECASE)  # matched on the last path part


@dataclass(frozen=True)
class ModelFacts:
    """What is known about the model a candidate serves."""

    id: str | None
    shape: ModelShape | None
    weights: str | None  # checkpoint format (facts.dtypes): bf16, fp8, fp8-block, awq-g128...
    fp8_checkpoint: bool
    fp8_reason: str | None  # which fact says the checkpoint is FP8
    shape_source: str | None  # "decision.model.shape", "<dir>/config.json", ...
    weights_source: str | None = None  # which fact set ``weights``
    missing: str | None = None  # why there is no shape: what the file should give
    # the checkpoint's quantization_config as its config.json has it (None: unquantized), and
    # why it is not known when it is not (quantized weights said by the id or model.weights only)
    quantization_config: Mapping[str, Any] | None = None
    quantization_unknown: str | None = None

    @property
    def weights_or_default(self) -> str:
        return self.weights or "bf16"


def _config_path(config: str, base_dir: Path | None) -> Path:
    path = Path(config).expanduser()
    return path if path.is_absolute() or base_dir is None else base_dir / path


def _served_folder(engine: Mapping[str, Any]) -> Path | None:
    model = engine.get("model")
    if not isinstance(model, str) or not model:
        return None
    path = Path(model).expanduser()
    return path if (path / "config.json").is_file() else None


def _shape(engine: Mapping[str, Any], spec: ModelSpec | None, where: str,
           base_dir: Path | None) -> tuple[ModelShape | None, str | None, str | None]:
    """The shape, where it came from, and (without one) what the decision file should give."""
    folder = _served_folder(engine)
    if folder is not None:
        try:
            shape = shape_from_path(folder, str(engine.get("model")))
            return shape, shape.source, None
        except StackdecideError as exc:
            return None, None, f"engine.model {folder}: {exc.message}"
    if spec is not None and spec.config:
        try:
            shape = shape_from_path(_config_path(spec.config, base_dir), spec.id)
            return shape, shape.source, None
        except StackdecideError as exc:
            return None, None, f"{where}.config: {exc.message}"
    if spec is not None and spec.shape:
        if spec.shape in SHAPES:
            return SHAPES[spec.shape], f"{where}.shape", None
        return None, None, (f"unknown model shape '{spec.shape}' (known: {', '.join(SHAPES)}); "
                            f"give {where}.config (a config.json)")
    for model_id, label in ((engine.get("model"), "engine.model"),
                            (spec.id if spec else None, f"{where}.id")):
        found = shape_for_id(str(model_id) if model_id else None)
        if found is not None:
            return found, f"{label} {model_id} is the built-in shape {found.name}", None
    if (fetched := candidate_hub_shape(engine, spec.id if spec else None, where)) is not None:
        return fetched
    name = (spec.id if spec else None) or engine.get("model")
    return None, None, (f"no shape for '{name}'; give {where}.config (a config.json or model "
                        f"folder) or {where}.shape" if name else
                        "no model named; give decision.model (id and config or shape)")


def model_facts(engine: Mapping[str, Any], spec: ModelSpec | None, where: str = "decision.model",
                base_dir: Path | None = None) -> ModelFacts:
    """Combine the engine config, the model spec and any config.json; ``where`` names the spec
    in messages, ``base_dir`` is the folder relative ``model.config`` paths start from."""
    shape, shape_source, missing = _shape(engine, spec, where, base_dir)
    weights, source = spec.weights if spec else None, f"{where}.weights"
    quantization = str(engine.get("quantization") or "").lower()
    from_engine = format_from_engine(quantization)
    model_name = str(engine.get("model") or "")
    fp8_spec = weights if is_fp8(weights) else None
    # Facts about the candidate's own checkpoint outrank what the decision file says of it.
    if shape is not None and shape.quantization:
        weights = shape.quantization
        source = f"{shape.source or shape.name} has quantization_config.quant_method " \
                 f"{shape.quant_method}"
    elif from_engine is not None:
        weights = fp8_spec if fp8_spec and is_fp8(from_engine) else from_engine
        source = f"engine.quantization is {quantization}"
    elif _served_folder(engine) is None and FP8_NAME.search(model_name.rstrip("/").rsplit("/", 1)[-1]):
        weights = fp8_spec or "fp8"
        source = f"the model id {model_name} names an FP8 checkpoint"
    if weights is None:
        source = None
    fp8 = is_fp8(weights)
    config, unknown = _quantization_config(shape, weights, source, from_engine, where, missing)
    return ModelFacts(spec.id if spec else engine.get("model"), shape, weights, fp8,
                      source if fp8 else None, shape_source, source, missing, config, unknown)


def _quantized(weights: str | None) -> bool:
    try:
        return weights is not None and weight_format(weights).quantized
    except UnknownDtypeError:
        return True  # a format this table does not know: not the 16 bit of an unquantized one


def _quantization_config(shape: ModelShape | None, weights: str | None, source: str | None,
                         from_engine: str | None, where: str, missing: str | None
                         ) -> tuple[Mapping[str, Any] | None, str | None]:
    """The checkpoint's quantization_config, or why it is not known. A shape's config is the
    checkpoint's own when it has a quantization_config, or when nothing says the weights are
    quantized (unset means 16 bit); the engine's ``quantization`` is a fact of its own."""
    config = text_config(shape.config).get("quantization_config") if shape is not None else None
    if isinstance(config, Mapping) and config:
        return config, None
    if from_engine is not None or not _quantized(weights):
        return None, None
    if shape is None:
        return None, missing or "no model shape"
    return None, (f"{source} ({weights}), but no config.json of that checkpoint gives its "
                  f"quantization_config; give {where}.config (the checkpoint's config.json)")


def candidate_model(decision: DecisionMatrix, candidate_id: str | None = None) -> ModelFacts:
    """The model of one candidate (its ``model:`` over the decision's), or with no candidate the
    decision's own ``model``."""
    base_dir = Path(decision.source_file).parent if decision.source_file else None
    if candidate_id is None:
        return model_facts({}, decision.model.decision.model, "decision.model", base_dir)
    index = decision.candidate_index(candidate_id)
    candidate = decision.model.candidates[index]
    where = f"candidates[{index}].model" if candidate.model is not None else "decision.model"
    return model_facts(candidate.engine, decision.model_of(candidate_id), where, base_dir)


def model_label(facts: ModelFacts) -> str:
    """``qwen3-4b (fp8-block)``: the shape and weights a number was computed for."""
    name = facts.shape.name if facts.shape else (facts.id or "?")
    return f"{name} ({facts.weights_or_default})"
