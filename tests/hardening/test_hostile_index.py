"""docs/hostile/README.md counts the cases of each list of hostile inputs, by family: the counts
stay those of the lists (which their own tests keep equal to the cases tested)."""

from __future__ import annotations

import re
from collections import Counter
from pathlib import Path

HOSTILE = Path(__file__).resolve().parents[2] / "docs" / "hostile"
SECTION = re.compile(r"^## \[(\w+\.md)\]\(\1\): .*, (\d+) cases$", re.MULTILINE)
ROW = re.compile(r"^\| ([^|`]+?) \| (\d+) \|$", re.MULTILINE)


def families(list_file: Path) -> Counter[str]:
    """Cases per family of one list: its table rows ``| `id` | family | input | verdict |``."""
    rows = [line.split("|") for line in list_file.read_text(encoding="utf-8").splitlines()
            if line.startswith("| `")]
    return Counter(row[2].strip() for row in rows)


def test_the_index_counts_every_case_of_every_list() -> None:
    text = (HOSTILE / "README.md").read_text(encoding="utf-8")
    sections = SECTION.split(text)[1:]  # name, total, body; name, total, body; ...
    indexed = {name: (int(total), body) for name, total, body in
               zip(sections[::3], sections[1::3], sections[2::3], strict=True)}
    lists = sorted(path.name for path in HOSTILE.glob("*.md") if path.name != "README.md")
    assert sorted(indexed) == lists
    for name, (total, body) in indexed.items():
        counted = families(HOSTILE / name)
        assert {family: int(count) for family, count in ROW.findall(body)} == counted, name
        assert total == sum(counted.values()), name
    everything = sum(total for total, _ in indexed.values())
    assert f"{everything} cases in all" in text
