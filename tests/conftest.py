from __future__ import annotations

from pathlib import Path

import pytest
import yaml

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


@pytest.fixture(autouse=True)
def faults_keep_their_traceback(monkeypatch: pytest.MonkeyPatch) -> None:
    """A fault of stackdecide's own is raised in the tests, not turned into exit 3, so that a test
    hitting one fails with its traceback (tests/cli/test_cli.py checks what a user sees)."""
    monkeypatch.setenv("STACKDECIDE_DEBUG", "1")


@pytest.fixture(autouse=True)
def no_model_hub(monkeypatch: pytest.MonkeyPatch, tmp_path_factory: pytest.TempPathFactory) -> None:
    """No test reaches the real Hugging Face hub: a model id without a local config is looked up
    at a closed local port, in an empty cache (tests/model/test_hub.py serves its own hub)."""
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path_factory.getbasetemp() / "hf-hub-cache"))


@pytest.fixture
def rtx4090_path() -> Path:
    return ROOT / "criteria" / "rtx4090.yaml"


@pytest.fixture
def rtx4090_table_path(tmp_path: Path) -> Path:
    """The seed report's decision with its engine configuration changed where it cannot start (an
    fp8 (e4m3) KV cache, FLASHINFER, 32,768 tokens of context), so that all three candidates are
    feasible: its criteria, weights, scores and published totals as written."""
    data = yaml.safe_load((ROOT / "criteria" / "rtx4090.yaml").read_text())
    data = {key: value for key, value in data.items() if not key.startswith("x-")}
    for candidate in data["candidates"]:
        candidate["engine"].update(kv_cache_dtype="fp8", attention_backend="FLASHINFER",
                                   max_model_len=32768)
    path = tmp_path / "rtx4090-table.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


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
