"""What rendering and preflight find wrong with an engine configuration."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import asdict, dataclass
from typing import Any, Literal

ProblemSeverity = Literal["error", "warning", "info"]


@dataclass(frozen=True)
class Problem:
    """One finding. ``error`` refuses the launch; ``warning`` and ``info`` are shown and recorded.

    ``field`` names the engine key (``engine.kv_cache_dtype``), environment variable
    (``env.VLLM_ATTENTION_BACKEND``) or launch option (``--port``) the finding is about.
    """

    code: str  # stable identifier, e.g. "fp8-e5m2-with-fp8-checkpoint"
    message: str
    field: str | None = None
    severity: ProblemSeverity = "error"

    def __str__(self) -> str:
        where = f"{self.field}: " if self.field else ""
        return f"{self.severity}: {where}{self.message} [{self.code}]"

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)


def errors(problems: Iterable[Problem]) -> list[Problem]:
    return [p for p in problems if p.severity == "error"]
