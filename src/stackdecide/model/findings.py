"""What checks find: one severity scale and one finding type for the audit, preflight and rendering.

``error`` makes ``stackdecide check`` exit 1 and refuses a launch; ``warning`` is shown (and also makes
``check`` exit 1); ``info`` is shown only.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal

Severity = Literal["error", "warning", "info"]


@dataclass(frozen=True)
class Finding:
    """One thing a check of the decision found.

    ``subject`` is a candidate or criterion id, or ``decision``; ``where`` is ``file:line:col
    field.path`` in the decision file when the finding points at one place.
    """

    code: str  # stable identifier, e.g. "reported-total-mismatch"
    severity: Severity
    subject: str
    message: str
    where: str | None = None
    reported: float | None = None
    computed: float | None = None

    @property
    def difference(self) -> float | None:
        if self.reported is None or self.computed is None:
            return None
        return self.reported - self.computed

    def to_dict(self) -> dict[str, object]:
        return {"code": self.code, "severity": self.severity, "subject": self.subject,
                "message": self.message, "where": self.where, "reported": self.reported,
                "computed": self.computed}
