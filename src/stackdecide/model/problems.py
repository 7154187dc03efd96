"""What rendering and preflight find wrong with one candidate's engine configuration."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any

from stackdecide.model.findings import Finding, Severity


@dataclass(frozen=True)
class Problem:
    """One finding. ``error`` refuses the launch; ``warning`` and ``info`` are shown and recorded.

    ``field`` names the engine key (``engine.kv_cache_dtype``), environment variable
    (``env.VLLM_ATTENTION_BACKEND``) or launch option (``--port``) the finding is about.
    """

    code: str  # stable identifier, e.g. "fp8-e5m2-with-fp8-checkpoint"
    message: str
    field: str | None = None
    severity: Severity = "error"

    def __str__(self) -> str:
        where = f"{self.field}: " if self.field else ""
        return f"{self.severity}: {where}{self.message} [{self.code}]"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)

    def finding(self, candidate_id: str, where: str | None = None) -> Finding:
        """The same problem as a finding about ``candidate_id``, for ``check``, ``score`` and reports."""
        return Finding(f"launch:{self.code}", self.severity, candidate_id,
                       f"cannot start as written: {self.message}" if self.severity == "error"
                       else self.message, where or self.field)


def errors(problems: Iterable[Problem]) -> list[Problem]:
    return [p for p in problems if p.severity == "error"]
