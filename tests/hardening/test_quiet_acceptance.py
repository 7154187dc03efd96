"""Finding 5: what used to be accepted without a word is now refused (located) or warned about.

Binding the server beyond loopback, environment names no shell could set, variables that change
which code the server loads, one engine option written twice in two spellings (the last silently
won), and YAML tags outside the standard safe set.
"""

from __future__ import annotations

from pathlib import Path

import pytest

import stackdecide
from stackdecide.audit.engine_config import check_env
from stackdecide.launch import preflight
from stackdecide.launch.preflight import PortState

from .conftest import cli, decision_text, refused


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "", "192.168.1.10", "my-server.example"])
def test_binding_beyond_loopback_is_a_warning(host: str) -> None:
    problems = preflight.check_host(host)
    assert [(p.code, p.severity, p.field) for p in problems] == [
        ("host-exposed", "warning", "--host")]
    assert "127.0.0.1" in problems[0].message and "authentication" in problems[0].message


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.2", "::1", "localhost", "LOCALHOST"])
def test_loopback_is_quiet(host: str) -> None:
    assert preflight.check_host(host) == []


@pytest.mark.parametrize("host", ["bad host", " 0.0.0.0", "tab\there", "a" * 300, "nul\x00"])
def test_a_host_that_is_no_address_is_an_error(host: str) -> None:
    assert [p.code for p in preflight.check_host(host)] == ["bad-host"]


def test_the_launch_plan_carries_the_exposure_warning() -> None:
    """``plan_launch`` runs ``check_port(port_state(host, port))``: the warning comes with it
    without the launcher having to call anything new."""
    problems = preflight.check_port(PortState("0.0.0.0", 8000, in_use=False))
    assert [p.code for p in problems] == ["host-exposed"]
    problems = preflight.check_port(PortState("0.0.0.0", 8000, in_use=True))
    assert [p.code for p in problems] == ["host-exposed", "port-in-use"]
    assert preflight.check_port(PortState("127.0.0.1", 8000, in_use=False)) == []


def _candidate_block(extra: str) -> str:
    return decision_text().replace("  - id: a\n", f"  - id: a\n{extra}", 1)


def _write(tmp_path: Path, text: str) -> Path:
    path = tmp_path / "d.yaml"
    path.write_text(text)
    return path


@pytest.mark.parametrize("name", ["BAD NAME", "1ST", "A-B", "X=Y", ""])
def test_an_env_name_no_shell_could_set_is_refused_at_its_key(tmp_path: Path, name: str) -> None:
    path = _write(tmp_path, _candidate_block(f'    env: {{"{name}": "1"}}\n'))
    refused(["score", str(path)], f"{path}:9:11 candidates[0].env.{name}",
            "is not an environment variable name")


@pytest.mark.parametrize("name", ["LD_PRELOAD", "PYTHONPATH", "PATH", "LD_LIBRARY_PATH"])
def test_variables_that_change_loaded_code_are_warned_about(tmp_path: Path, name: str) -> None:
    assert [p.code for p in check_env({name: "/somewhere", "VLLM_LOGGING_LEVEL": "INFO"})] == [
        "env-changes-loaded-code"]
    path = _write(tmp_path, _candidate_block(f'    env: {{{name}: "/opt/x"}}\n'))
    result = cli(["check", str(path), "--no-engine-keys"])
    assert result.exit_code == 1, result.stdout  # a warning: check fails, score still ranks
    assert f"warning: {path}:9:" in result.stdout
    assert f"candidates[0].env.{name}: {name}='/opt/x' changes which" in result.stdout
    assert cli(["score", str(path)]).exit_code == 0


def test_one_engine_option_written_twice_is_refused_at_the_second(tmp_path: Path) -> None:
    path = _write(tmp_path, _candidate_block(
        "    engine:\n      max_model_len: 4096\n      max-model-len: 8192\n"))
    refused(["score", str(path)], f"{path}:11:7 candidates[0].engine.max-model-len",
            "same vLLM option as 'max_model_len'", "--max-model-len")


def test_a_nul_character_cannot_reach_the_engine(tmp_path: Path) -> None:
    path = _write(tmp_path, _candidate_block('    env: {A: "x\\0y"}\n'))
    refused(["score", str(path)], "candidates[0].env.A", "NUL")
    path = _write(tmp_path, _candidate_block('    engine: {model: "m\\0"}\n'))
    refused(["score", str(path)], "candidates[0].engine.model", "NUL")


@pytest.mark.parametrize("tagged", ["!!binary aGVsbG8=", "!!timestamp 2025-08-20", "!!set {a, b}",
                                    "!!omap [a: 1]", "!!pairs [a: 1]",
                                    "!!python/name:os.system", "!!python/tuple [1]",
                                    "!custom text", "!<tag:example.com,2000:x> text"])
def test_tags_outside_the_standard_safe_set_are_refused_at_their_value(tmp_path: Path,
                                                                       tagged: str) -> None:
    text = decision_text().replace("  title: Hardening\n", f"  title: Hardening\n  date: {tagged}\n")
    path = _write(tmp_path, text)
    refused(["score", str(path)], f"{path}:4:9 decision.date", "unsupported YAML tag")


@pytest.mark.parametrize(("tagged", "value"), [("!!str 2025-08-20", "2025-08-20"),
                                               ("2025-08-20", "2025-08-20"),
                                               ("2025-08-20 10:00:00", "2025-08-20 10:00:00"),
                                               ("!!str 12", "12")])
def test_standard_tags_and_plain_dates_stay_as_written(tmp_path: Path, tagged: str,
                                                       value: str) -> None:
    text = decision_text().replace("  title: Hardening\n", f"  title: Hardening\n  date: {tagged}\n")
    decision = stackdecide.load(_write(tmp_path, text))
    assert decision.model.decision.date == value


def test_merge_keys_still_work(tmp_path: Path) -> None:
    text = decision_text().replace(
        "candidates:\n", "x-env: &env {VLLM_LOGGING_LEVEL: INFO}\ncandidates:\n").replace(
        "  - id: a\n", "  - id: a\n    env: {<<: *env, EXTRA: '1'}\n", 1)
    decision = stackdecide.load(_write(tmp_path, text))
    assert decision.candidates[0].env == {"VLLM_LOGGING_LEVEL": "INFO", "EXTRA": "1"}


@pytest.mark.parametrize("name", ["HF_ENDPOINT", "HTTPS_PROXY", "all_proxy", "REQUESTS_CA_BUNDLE"])
def test_variables_that_route_the_hub_token_elsewhere_are_warned_about(tmp_path: Path,
                                                                       name: str) -> None:
    assert [p.code for p in check_env({name: "https://example.invalid", "HF_HOME": "/x"})] == [
        "env-routes-credentials"]
    assert check_env({name: " "}) == []  # set to nothing: nothing moves
    path = _write(tmp_path, _candidate_block(f'    env: {{{name}: "https://example.invalid"}}\n'))
    result = cli(["check", str(path), "--no-engine-keys"])
    assert result.exit_code == 1, result.stdout
    assert f"candidates[0].env.{name}: {name}='https://example.invalid': " in result.stdout
    assert "Hugging Face token" in result.stdout
