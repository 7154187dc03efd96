"""docs/architecture.md is the map of the code: every module under src/stackdecide is on it."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
PACKAGE = ROOT / "src" / "stackdecide"
MAP = ROOT / "docs" / "architecture.md"


def modules() -> list[str]:
    """Every module as its path below the package (``scoring/certainty.py``); packages' own
    ``__init__.py`` are their folder's entry, not a module of their own."""
    return sorted(str(path.relative_to(PACKAGE)) for path in PACKAGE.rglob("*.py")
                  if path.name != "__init__.py")


def listed(text: str) -> set[str]:
    return set(re.findall(r"`([\w/]+\.py)`", text))


def test_every_module_is_on_the_map() -> None:
    every_module = MAP.read_text().partition("## Every module")[2]
    missing = [module for module in modules() if module not in listed(every_module)]
    assert not missing, f"docs/architecture.md does not list: {', '.join(missing)}"


def test_the_map_names_no_module_that_is_gone() -> None:
    every_module = MAP.read_text().partition("## Every module")[2]
    assert every_module, "docs/architecture.md has no 'Every module' section"
    gone = sorted(listed(every_module) - set(modules()))
    assert not gone, f"docs/architecture.md lists modules that do not exist: {', '.join(gone)}"


def test_a_module_left_off_the_map_is_found() -> None:
    text = MAP.read_text()
    assert "scoring/certainty.py" in listed(text)
    assert "scoring/certainty.py" not in listed(text.replace("`scoring/certainty.py`", ""))
