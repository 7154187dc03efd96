"""Per-directory state under ``.stackdecide/``: the decision last scored here, run folders."""

from __future__ import annotations

import json
from pathlib import Path

from stackdecide._files import write_json_atomic

STATE_DIR = ".stackdecide"
_LAST = "last-decision.json"


def state_dir(base: Path | None = None) -> Path:
    return (base or Path.cwd()) / STATE_DIR


def record_last_decision(decision_file: str | Path, base: Path | None = None) -> None:
    """Remember the decision file scored in this directory, for ``launch --winner`` without FILE."""
    directory = state_dir(base)
    directory.mkdir(parents=True, exist_ok=True)
    write_json_atomic(directory / _LAST, {"file": str(Path(decision_file).absolute())})


def last_decision(base: Path | None = None) -> Path | None:
    """The decision file last scored in this directory, if it still exists."""
    try:
        data = json.loads((state_dir(base) / _LAST).read_text())
        path = Path(data["file"])
    except (OSError, ValueError, KeyError, TypeError):
        return None
    return path if path.is_file() else None
