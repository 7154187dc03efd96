from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# fixtures of the real CPU engine (tiny_server, ...), for tests in every folder
pytest_plugins = ("engine_fixtures",)


@pytest.fixture
def rtx4090_path() -> Path:
    return ROOT / "criteria" / "rtx4090.yaml"


SMALL = """\
schema: stackdecide/v1
decision:
  title: Small decision
criteria:
  - {id: speed, weight: 0.6}
  - {id: stability, weight: 0.4}
candidates:
  - id: a
    scores: {speed: 7, stability: 9}
  - id: b
    scores: {speed: 9, stability: 5}
"""


@pytest.fixture
def small_text() -> str:
    return SMALL
