"""Predicted values as a table or JSON: each marked predicted, never shown as measured. Pure:
returns text."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import asdict
from typing import Any

from tabulate import tabulate

from stackdecide._text import first_of
from stackdecide.model.cells import Cell
from stackdecide.predict import DEFAULT_LEVEL, Predicted, Prediction
from stackdecide.scoring.predicted import StartCell

# what the text shows of each axis in the basis column
AXIS_LABELS = {"gpu": "GPU", "model": "model", "weights": "weights", "kv_cache_dtype": "KV",
               "attention_backend": "attention", "layout": "layout", "vllm": "vLLM",
               "load": "load", "start": "start"}


def number_text(value: float) -> str:
    """A predicted number as the views show it: whole above 100, three digits below."""
    return f"{value:,.0f}" if abs(value) >= 100 else f"{value:.3g}"


def predicted_value_text(cell: Cell) -> str:
    """A predicted cell's value, marked: ``~233 tok/s``."""
    assert cell.raw is not None
    return f"~{number_text(cell.raw)}" + (f" {cell.unit}" if cell.unit else "")


def predicted_interval_text(cell: Cell) -> str:
    """A predicted mean's interval: ``197 .. 275``."""
    assert cell.interval is not None
    return f"{number_text(cell.interval[0])} .. {number_text(cell.interval[1])}"


def basis_text(predicted: Predicted) -> str:
    """Where a prediction comes from: launches of the configuration itself, else which of its
    axes no launch shares (their prior widths count in full); ``basis`` has every count."""
    counts = {axis: n for axis, _, n in predicted.basis}
    if counts.get("config"):
        n = counts["config"]
        return f"this configuration: {n} launch value{'s' if n != 1 else ''}"
    if not any(counts.values()):
        return "no launch shares an axis: prior only"
    unseen = [AXIS_LABELS.get(axis, axis.removeprefix("axis:")) for axis, n in counts.items()
              if not n and axis not in ("config", "config_load")]
    return "never launched" + (f"; no launch shares its {', '.join(unseen)}" if unseen else "")


def _efficiency_text(predicted: Predicted) -> str:
    if predicted.efficiency is None:
        return "no roofline"
    assert predicted.efficiency_low is not None and predicted.efficiency_high is not None
    return (f"{predicted.efficiency:.0%} ({predicted.efficiency_low:.0%}-"
            f"{predicted.efficiency_high:.0%})")


def prediction_rows(prediction: Prediction) -> tuple[list[str], list[list[Any]]]:
    level = f"{prediction.level:.0%}"
    headers = ["candidate", "criterion", "metric", "load", "predicted", f"{level} interval",
               "ceiling", "efficiency", "judged", "basis"]
    rows = []
    for p in prediction.predictions:
        rows.append([
            p.candidate, p.criterion, p.metric, p.load.label if p.load else "",
            f"~{number_text(p.value)} {p.unit}", f"{number_text(p.low)} .. {number_text(p.high)}",
            f"{number_text(p.ceiling.value)} ({p.ceiling.bound})" if p.ceiling else "",
            _efficiency_text(p), "" if p.judged is None else number_text(p.judged), basis_text(p)])
    return headers, rows


def starts_lines(starts: Sequence[StartCell]) -> list[str]:
    """The chances to start of the configurations no launch tried, one line per criterion and
    chance (in a space they share the base's judged prior, so usually one line). Their
    intervals are at ``DEFAULT_LEVEL``, the level scoring makes them at, whatever ``--level``
    the rates were predicted at."""
    groups: dict[tuple[str, float | None, tuple[float, float] | None],
                 tuple[Cell, list[str]]] = {}
    for candidate, criterion, cell in starts:
        groups.setdefault((criterion, cell.raw, cell.interval), (cell, []))[1].append(candidate)
    return [f"{criterion}: {predicted_value_text(cell)} ({DEFAULT_LEVEL:.0%} interval "
            f"{predicted_interval_text(cell)}) for {len(candidates)} configuration"
            f"{'s' if len(candidates) != 1 else ''} no launch tried, from the judged score and "
            f"the space's launches on this hardware: {first_of(candidates, 4)}"
            for (criterion, _, _), (cell, candidates) in groups.items()]


def prediction_text(prediction: Prediction, title: str = "", tablefmt: str = "simple",
                    starts: Sequence[StartCell] = ()) -> str:
    """Every predicted cell, marked predicted (``~``), with its interval, ceiling, efficiency and
    basis; the chances to start of configurations no launch tried (``starts``); then the cells
    without a prediction, and what calibrated the model."""
    fits = ", ".join(f"{metric} {int(fit['launch_values'])}" for metric, fit in
                     prediction.extra.items())
    lines = [f"PREDICTED, not measured{': ' + title if title else ''}",
             f"~value: median of one launch; interval: {prediction.level:.0%} of launches fall "
             f"inside (launch noise included); efficiency: the configuration's mean share of its "
             f"roofline ceiling",
             f"calibrated by launch values: {fits or 'none'}", ""]
    headers, rows = prediction_rows(prediction)
    if rows:
        lines.append(tabulate(rows, headers=headers, tablefmt=tablefmt, disable_numparse=True))
    lines += starts_lines(starts)
    for missing in prediction.unpredicted:
        lines.append(f"{missing.candidate} / {missing.criterion}: not predicted: {missing.reason}")
    lines += [f"note: {note}" for note in prediction.notes]
    return "\n".join(lines).rstrip() + "\n"


def prediction_dict(prediction: Prediction, starts: Sequence[StartCell] = ()) -> dict[str, Any]:
    """The prediction as plain data: every cell with its intermediates, ``source: predicted``;
    ``starts``: each never-launched configuration's chance to start."""
    return {
        "level": prediction.level,
        "predictions": [{**asdict(p), "basis": [{"axis": a, "level": v, "launch_values": n}
                                                for a, v, n in p.basis]}
                        for p in prediction.predictions],
        "starts": [{"candidate": candidate, "criterion": criterion, "probability": cell.raw,
                    "low": cell.interval[0] if cell.interval else None,
                    "high": cell.interval[1] if cell.interval else None}
                   for candidate, criterion, cell in starts],
        "unpredicted": [asdict(u) for u in prediction.unpredicted],
        "calibration": prediction.extra,
        "notes": list(prediction.notes),
    }


def prediction_json(prediction: Prediction, starts: Sequence[StartCell] = ()) -> str:
    return json.dumps(prediction_dict(prediction, starts), indent=2, sort_keys=False) + "\n"
