"""Hard limits such as ``vram_gb <= 16``: a candidate that breaks one is infeasible, with the reason."""

from __future__ import annotations

import operator
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass

_OPERATORS: dict[str, Callable[[float, float], bool]] = {
    "<=": operator.le, "<": operator.lt, ">=": operator.ge, ">": operator.gt, "==": operator.eq,
}
_PATTERN = re.compile(r"^\s*([A-Za-z_][A-Za-z0-9_]*)\s*(<=|>=|==|<|>)\s*([-+]?[0-9.]+(?:[eE][-+]?\d+)?)\s*$")


@dataclass(frozen=True)
class Constraint:
    metric: str
    op: str
    limit: float
    text: str

    def holds(self, value: float) -> bool:
        return _OPERATORS[self.op](value, self.limit)

    def violation(self, value: float) -> str | None:
        """The reason this value breaks the constraint, or None when it holds."""
        if self.holds(value):
            return None
        return f"{self.metric} = {value:g} breaks '{self.text}'"


def parse_constraint(text: str) -> Constraint:
    """Parse ``metric OP number``; raises ValueError with the accepted form."""
    match = _PATTERN.match(text)
    if not match:
        raise ValueError(f"'{text}' is not a constraint; write 'metric OP number', OP one of "
                         + ", ".join(_OPERATORS))
    metric, op, limit = match.groups()
    return Constraint(metric, op, float(limit), text.strip())


def violations(constraints: tuple[Constraint, ...], values: Mapping[str, float]) -> list[str]:
    """Reasons the given metric values break constraints; metrics without a value are skipped."""
    reasons = []
    for constraint in constraints:
        if constraint.metric in values:
            reason = constraint.violation(values[constraint.metric])
            if reason:
                reasons.append(reason)
    return reasons
