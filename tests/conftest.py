from __future__ import annotations

from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
# fixtures of the real CPU engine (tiny_server, ...), for tests in every folder
pytest_plugins = ("engine_fixtures",)

# A test that uses one of these fixtures takes seconds of real time whatever it checks: the
# four-slot server of tests/bench/test_capacity_run.py answers at its own pace, and each capacity
# search against it runs for 10-25 s.
SLOW_FIXTURES = frozenset({"slot_server"})


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """The tiers' markers that follow from the fixtures a test uses (docs/testing.md); the others
    are written on the tests."""
    engine_fixtures = config.pluginmanager.get_plugin("engine_fixtures").ENGINE_FIXTURES
    for item in items:
        fixtures = set(getattr(item, "fixturenames", ()))
        if fixtures & engine_fixtures:
            item.add_marker(pytest.mark.engine)
        if fixtures & SLOW_FIXTURES:
            item.add_marker(pytest.mark.slow)


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
