"""A model id is enough where a network exists: its config.json comes from the hub, is cached,
and names the commit it came from. Every test here talks to a local stand-in for the hub
(``hub_server``), never the real one."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path

import huggingface_hub.constants
import pytest
from click.testing import CliRunner
from hub_server import HubServer, serve_hub

import stackdecide
from stackdecide.audit.models import candidate_model
from stackdecide.cli import main
from stackdecide.facts.shapes import SHAPES, parse_shape
from stackdecide.model import hub
from stackdecide.model.hub import HubUnavailable, find_model_shape, hub_shape, is_hub_id

DATA = Path(__file__).resolve().parents[1] / "data" / "hub"
COMMIT = "5206a32e0bd3067aef1ce90f5528ade7d866253f"
REPO = "nvidia/Llama-3.1-8B-Instruct-FP8"
# Llama-3.1-8B-Instruct's published config.json, and a ModelOpt 0.19 hf_quant_config.json (the
# layout vLLM's ModelOptFp8Config reads when config.json has no quantization_config), as a
# ModelOpt FP8 checkpoint of it publishes them
FILES = {"config.json": (DATA / "llama-3.1-8b-instruct-config.json").read_bytes(),
         "hf_quant_config.json": (DATA / "hf_quant_config.json").read_bytes(),
         "README.md": b"# weights not served here\n"}


@pytest.fixture(autouse=True)
def online(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[None]:
    """Each test with its own empty hub cache, online unless it says otherwise, and asking afresh
    (the module answers each repository once per process)."""
    monkeypatch.setenv("HF_HUB_CACHE", str(tmp_path / "hub-cache"))
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.delenv("TRANSFORMERS_OFFLINE", raising=False)
    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)  # read at its import
    hub._fetch.cache_clear()
    yield
    hub._fetch.cache_clear()


@pytest.fixture
def local_hub(monkeypatch: pytest.MonkeyPatch) -> Iterator[HubServer]:
    with serve_hub({REPO: FILES}, COMMIT) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        yield server


def test_a_hub_id_alone_gives_the_published_config_at_its_commit(local_hub: HubServer,
                                                                  tmp_path: Path) -> None:
    assert REPO.lower() not in {h.lower() for s in SHAPES.values() for h in s.hub_ids}
    shape = hub_shape(REPO)
    # from this server, at its commit: a built-in (or any other) shape would not say so
    assert shape.source == (f"{local_hub.url}/{REPO}/blob/{COMMIT}/config.json "
                            "(with hf_quant_config.json)")
    assert f"GET /{REPO}/resolve/main/config.json" in local_hub.requests
    assert f"GET /{REPO}/resolve/main/hf_quant_config.json" in local_hub.requests
    assert not any("README" in line for line in local_hub.requests)  # only what vLLM reads
    published = parse_shape(json.loads(FILES["config.json"]), REPO)
    assert (shape.name, shape.num_layers, shape.num_kv_heads, shape.params) == \
        (REPO, 32, 8, published.params)
    snapshot = tmp_path / "hub-cache" / "models--nvidia--Llama-3.1-8B-Instruct-FP8" / "snapshots"
    assert sorted(p.name for p in (snapshot / COMMIT).iterdir()) == \
        ["config.json", "hf_quant_config.json"]


def test_the_cache_answers_when_the_hub_is_gone(monkeypatch: pytest.MonkeyPatch) -> None:
    with serve_hub({REPO: FILES}, COMMIT) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        hub_shape(REPO)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there
    cached = hub_shape(REPO)
    assert cached.source.startswith(f"{REPO} at commit {COMMIT}, from the hub cache ")
    assert cached.source.endswith(f"{COMMIT} (with hf_quant_config.json)")
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")
    assert hub_shape(REPO).source == cached.source


def test_unreachable_or_offline_says_how_to_give_a_folder(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    with pytest.raises(HubUnavailable) as unreachable:
        hub_shape(REPO)
    assert unreachable.value.message.startswith(
        f"no shape for '{REPO}': http://127.0.0.1:9 could not be reached (")
    assert "config.json of 'nvidia/Llama-3.1-8B-Instruct-FP8' is not in the hub cache" in \
        unreachable.value.message
    assert "model.config: path/to/config.json" in unreachable.value.message
    with serve_hub({REPO: FILES}, COMMIT) as server:
        monkeypatch.setenv("HF_ENDPOINT", server.url)
        monkeypatch.setenv("HF_HUB_OFFLINE", "1")
        with pytest.raises(HubUnavailable, match=re.escape("HF_HUB_OFFLINE is set, and config.json")):
            hub_shape(REPO)
        assert server.requests == []


def test_a_model_the_hub_does_not_have(local_hub: HubServer) -> None:
    with pytest.raises(HubUnavailable, match=re.escape(f"{local_hub.url} has no model 'acme/none' ")):
        hub_shape("acme/none")


def test_model_show_takes_a_hub_id(local_hub: HubServer) -> None:
    result = CliRunner().invoke(main, ["model", "show", REPO])
    assert result.exit_code == 0, result.output
    assert f"  source: {local_hub.url}/{REPO}/blob/{COMMIT}/config.json" in result.output
    missing = CliRunner().invoke(main, ["model", "show", "acme/none"])
    assert missing.exit_code != 0
    assert "give a model folder or its config.json instead" in missing.output
    # built-ins and their hub ids still need no hub
    assert find_model_shape("meta-llama/Llama-3.1-8B") is SHAPES["llama-3.1-8b"]
    assert not any("Llama-3.1-8B/" in line for line in local_hub.requests)


DECISION = f"""\
schema: stackdecide/v1
decision:
  title: A model named by its id only
  model: {{id: {REPO}}}
criteria:
  - {{id: speed, weight: 1}}
candidates:
  - id: a
    engine: {{model: {REPO}, max_model_len: 8192}}
    scores: {{speed: 5}}
"""


def test_a_decision_model_id_without_a_config_is_fetched(local_hub: HubServer) -> None:
    decision = stackdecide.parse(DECISION)
    facts = candidate_model(decision, "a")
    assert facts.shape is not None and facts.missing is None
    assert facts.shape_source == f"{local_hub.url}/{REPO}/blob/{COMMIT}/config.json " \
        "(with hf_quant_config.json)"


def test_a_decision_offline_says_what_to_give(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")
    facts = candidate_model(stackdecide.parse(DECISION), "a")
    assert facts.shape is None and facts.missing is not None
    assert facts.missing.startswith(f"no shape for '{REPO}': http://127.0.0.1:9 could not be "
                                    "reached")
    assert facts.missing.endswith("give decision.model.config (a config.json or model folder) "
                                  "or decision.model.shape")


def test_what_reads_as_a_hub_id(tmp_path: Path) -> None:
    assert is_hub_id("Qwen/Qwen3-8B") and is_hub_id("nvidia/Llama-3.1-8B-Instruct-FP8")
    assert not any(is_hub_id(name) for name in (
        "qwen3-8b", "/models/llama", "a/b/c", "<run folder>/model", "../x", "https://hf.co/a/b",
        None, 3))
    (tmp_path / "org" / "name").mkdir(parents=True)
    assert not is_hub_id(str(tmp_path / "org" / "name"))
