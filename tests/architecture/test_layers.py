"""The package reads top to bottom: a module imports only from its own layer or the layers below.

Every import counts, including those inside functions and under ``if TYPE_CHECKING`` (a type is a
dependency too). See docs/architecture.md for what each layer owns.
"""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[2] / "src" / "stackdecide"

# lowest first; a module may import its own layer and any layer listed before it
LAYERS: tuple[tuple[str, ...], ...] = (
    ("_version", "errors", "state", "_files", "_text"),
    ("facts", "mcda", "certify"),
    ("model",),
    ("audit", "evidence"),
    ("scoring", "predict"),
    ("robustness",),
    ("decision",),
    ("envs",),
    ("vllm",),
    ("launch",),
    ("bench",),
    ("loop", "orchestrate", "stable", "race", "search", "schedule"),
    ("report",),
    ("cli", "__init__", "__main__"),
)
LAYER_OF = {name: level for level, names in enumerate(LAYERS) for name in names}
CORE = max(LAYER_OF[name] for name in ("decision", "robustness", "scoring"))


def top_part(module: str) -> str:
    """``stackdecide.launch.preflight`` -> ``launch``; the package itself -> ``__init__``."""
    parts = module.split(".")
    return parts[1] if len(parts) > 1 else "__init__"


def module_name(path: Path) -> str:
    parts = path.relative_to(PACKAGE.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def imports_of(path: Path, source: str | None = None) -> list[tuple[int, str]]:
    """Every stackdecide module a file imports, with the line, wherever the import statement is."""
    module = module_name(path)
    source = path.read_text() if source is None else source
    package = module if path.name == "__init__.py" else module.rpartition(".")[0]
    found = []
    for node in ast.walk(ast.parse(source, str(path))):
        if isinstance(node, ast.Import):
            found += [(node.lineno, alias.name) for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            if node.level:
                base = package.split(".")[: len(package.split(".")) - node.level + 1]
                target = ".".join(base + ([node.module] if node.module else []))
            else:
                target = node.module or ""
            if target == "stackdecide":  # `from stackdecide import x` imports module x or a name
                found += [(node.lineno, f"stackdecide.{alias.name}") for alias in node.names]
            else:
                found.append((node.lineno, target))
    return [(line, name) for line, name in found if name == "stackdecide"
            or name.startswith("stackdecide.")]


def violations(path: Path, source: str | None = None) -> list[str]:
    here = top_part(module_name(path))
    level = LAYER_OF[here]
    wrong = []
    for line, target in imports_of(path, source):
        there = top_part(target)
        if there not in LAYER_OF:  # a name re-exported by the package, e.g. stackdecide.load
            there = "__init__"
        if LAYER_OF[there] > level:
            wrong.append(f"{path.relative_to(PACKAGE.parent)}:{line} ({here}) imports {target} "
                         f"({there}, a higher layer)")
    return wrong


SOURCES = sorted(PACKAGE.rglob("*.py"))


def test_every_top_level_part_has_a_layer() -> None:
    parts = {top_part(module_name(path)) for path in SOURCES}
    assert parts <= set(LAYER_OF), f"no layer for {sorted(parts - set(LAYER_OF))}"


@pytest.mark.parametrize("path", SOURCES, ids=lambda p: str(p.relative_to(PACKAGE)))
def test_imports_point_down(path: Path) -> None:
    assert violations(path) == []


def test_the_decision_core_never_imports_the_engine_side() -> None:
    core = [path for path in SOURCES if LAYER_OF[top_part(module_name(path))] <= CORE]
    engine_side = {"vllm", "launch", "bench", "loop", "race", "report", "cli"}
    offending = [(path, target) for path in core for _, target in imports_of(path)
                 if top_part(target) in engine_side]
    assert offending == []


def test_the_rule_catches_an_upward_import() -> None:
    """If audit imported launch again (as it once did through the roofline), this test would fail."""
    path = PACKAGE / "audit" / "checks.py"
    source = path.read_text() + "\n\ndef _late() -> None:\n    from stackdecide.launch import preflight\n"
    assert violations(path) == []
    assert [problem.split(" imports ")[1] for problem in violations(path, source)] == [
        "stackdecide.launch (launch, a higher layer)"]
