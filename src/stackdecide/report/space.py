"""A space's expansion and static pruning as text or JSON (``stackdecide space``, ``check``).
Pure: returns text, never prints."""

from __future__ import annotations

import json
from typing import Any

from tabulate import tabulate

from stackdecide.audit.space import SpacePruning, Verdict
from stackdecide.model.ranking import JSON_VERSION
from stackdecide.model.space import Axis

REASONS = {"excluded": "excluded by a rule", "cannot-start": "cannot start",
           "does-not-fit": "does not fit"}


def counts(pruning: SpacePruning) -> dict[str, int]:
    """How many configurations the space holds, and what became of them."""
    return {"combinations": pruning.combinations, "excluded": pruning.count("excluded"),
            "generated": pruning.generated, "cannot_start": pruning.count("cannot-start"),
            "does_not_fit": pruning.count("does-not-fit"), "remain": pruning.count("remains"),
            "remain_on_other_hardware": pruning.not_present}


def summary_line(pruning: SpacePruning) -> str:
    """``space: 72 combinations: 12 excluded by a rule, 6 cannot start, ...``, in one line."""
    n = counts(pruning)
    other = (f" ({n['remain_on_other_hardware']} on hardware other than the decision's, ranked "
             "by prediction)") if n["remain_on_other_hardware"] else ""
    return (f"space: {n['combinations']} combinations: {n['excluded']} excluded by a rule, "
            f"{n['cannot_start']} cannot start, {n['does_not_fit']} do not fit, {n['remain']} "
            f"remain{other}")


def _shown(axis: Axis, verdict: Verdict) -> str:
    setting = verdict.configuration.setting(axis.id)
    if setting is None:
        return "-"
    plain = isinstance(setting.value, str | int | float) and not isinstance(setting.value, bool)
    return str(setting.value) if plain and not axis.named else setting.label  # true, default


def _rule_text(rule: dict[str, Any]) -> str:
    return "{" + ", ".join(f"{axis}: {value}" for axis, value in rule.items()) + "}"


def _why(pruning: SpacePruning, verdict: Verdict) -> str:
    if verdict.status == "excluded":
        assert verdict.rule is not None
        return f"excluded by exclude[{verdict.rule}] {_rule_text(pruning.rules[verdict.rule])}"
    return f"{REASONS[verdict.status]}: " + "; ".join(f"{p.message} [{p.code}]"
                                                     for p in verdict.problems)


def render_text(pruning: SpacePruning, tablefmt: str = "simple") -> str:
    """The counts, each removed configuration with why, and the remaining ones with the value of
    each axis."""
    lines = [f"{pruning.file or 'decision'}: {summary_line(pruning)} (limit {pruning.limit})"]
    removed = [v for v in pruning.verdicts if v.status != "remains"]
    if removed:
        lines += ["", f"removed ({len(removed)}):"]
        lines += [f"  {v.id}: {_why(pruning, v)}" for v in removed]
    remaining = pruning.remaining
    lines += ["", f"remaining ({len(remaining)}):"]
    if remaining:
        headers = ["configuration", *(a.id.replace(".", "\n", 1) for a in pruning.axes)]
        other_hardware = pruning.not_present > 0
        headers += ["hardware"] if other_hardware else []
        headers += ["warnings"]
        rows = []
        for verdict in remaining:
            row = [verdict.id, *(_shown(a, verdict) for a in pruning.axes)]
            if other_hardware:
                row.append(f"other: {verdict.absent}" if verdict.absent else "decision's")
            row.append(", ".join(p.code for p in verdict.problems if p.severity == "warning"))
            rows.append(row)
        lines.append(tabulate(rows, headers, tablefmt=tablefmt))
    return "\n".join(lines) + "\n"


def _axis_dict(axis: Axis, axes: dict[str, Axis]) -> dict[str, Any]:
    return {"axis": axis.id, "key": axis.key, "values": list(axis.values),
            "labels": list(axis.labels),
            "when": {parent: [axes[parent].values[i] for i in sorted(indices)]
                     for parent, indices in axis.when}}


def _verdict_dict(verdict: Verdict) -> dict[str, Any]:
    settings = verdict.configuration.settings
    return {"id": verdict.id, "status": verdict.status,
            "values": {s.axis: s.value for s in settings},
            "labels": {s.axis: s.label for s in settings},
            "rule": verdict.rule,
            "hardware": verdict.hardware.model_dump(exclude_none=True) if verdict.hardware else None,
            "on_decision_hardware": verdict.absent is None, "other_hardware": verdict.absent,
            "problems": [p.to_dict() for p in verdict.problems]}


def space_dict(pruning: SpacePruning) -> dict[str, Any]:
    """The pruning as plain data: counts, axes, and every configuration with its verdict."""
    axes = {a.id: a for a in pruning.axes}
    return {"version": JSON_VERSION, "file": pruning.file, "limit": pruning.limit,
            "counts": counts(pruning), "axes": [_axis_dict(a, axes) for a in pruning.axes],
            "exclude": list(pruning.rules),
            "configurations": [_verdict_dict(v) for v in pruning.verdicts]}


def render_json(pruning: SpacePruning) -> str:
    return json.dumps(space_dict(pruning), indent=2, default=str) + "\n"


def render(pruning: SpacePruning, fmt: str = "table") -> str:
    if fmt == "json":
        return render_json(pruning)
    return render_text(pruning, "github" if fmt == "markdown" else "simple")
