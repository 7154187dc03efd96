"""Secrets in a decision file reach vLLM by environment only and no output stackdecide writes: the
dry run, command.json and outcome.json (refused, started and failed launches), the log lines a
failed launch repeats, the markdown and HTML reports, and check's and score's JSON."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import stackdecide
from engine_inputs import SPEC, faked, plan, write_decision
from engine_support import require_vllm
from stackdecide.launch.plan import LaunchOptions, LaunchRefused, free_port
from stackdecide.launch.runs import COMMAND_FILE, OUTCOME_FILE
from stackdecide.launch.server import LaunchFailed, start_server
from stackdecide.report.data import build_report
from stackdecide.report.markdown import render_markdown

from .conftest import cli

KEY = "sk-live-0123456789abcdef"
TOKEN = "hf_abcdefghijklmnopqrstuvwx"
MARKED = "license-42-ABCDEFGH"
OPTIONS = LaunchOptions(timeout_s=30, grace_s=1.0)


@pytest.fixture(autouse=True)
def no_key_of_our_own(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("VLLM_API_KEY", raising=False)


def secret_decision(folder: Path, **engine: object) -> Path:
    """A candidate with an API key, a hub token in its env and a variable the decision marks."""
    return write_decision(folder, {"api_key": KEY, **engine},
                          {"HF_TOKEN": TOKEN, "LICENSE": MARKED}, secrets=["LICENSE"])


def assert_no_secret(text: str) -> None:
    for secret in (KEY, TOKEN, MARKED):
        assert secret not in text, secret


def run_files(run_dir: str | Path) -> str:
    return "".join((Path(run_dir) / name).read_text() for name in (COMMAND_FILE, OUTCOME_FILE))


def test_the_dry_run_shows_secrets_as_stars(tmp_path: Path) -> None:
    require_vllm()
    path = secret_decision(tmp_path, load_format="dummy")
    result = cli(["launch", str(path), "--candidate", "a", "--dry-run", "--port",
                  str(free_port())])
    assert result.exit_code == 0, result.output
    assert_no_secret(result.output)
    assert "  VLLM_API_KEY=***" in result.output and "  HF_TOKEN=***" in result.output
    assert "  LICENSE=***" in result.output
    command, portable = (line for line in result.output.splitlines() if "--port" in line
                         and ("vllm serve" in line or "api_server" in line) and "='***'" in line)
    assert "VLLM_API_KEY='***'" in command and "VLLM_API_KEY='***' " in portable
    assert "--api-key" not in result.output


def test_a_refused_launch_writes_no_secret(tmp_path: Path) -> None:
    launch = plan(secret_decision(tmp_path, trust_remote_code=True))
    with pytest.raises(LaunchRefused) as refused:
        start_server(launch, OPTIONS)
    outcome = refused.value.outcome
    assert outcome is not None
    files = run_files(outcome.run_dir)
    assert_no_secret(files + str(refused.value))
    recorded = json.loads((Path(outcome.run_dir) / COMMAND_FILE).read_text())
    assert recorded["env"]["VLLM_API_KEY"] == "***" and recorded["env"]["LICENSE"] == "***"
    assert recorded["engine"]["api_key"] == "***" and recorded["rendered"]["api_key"] == \
        "VLLM_API_KEY=***"


@pytest.mark.slow
def test_a_started_launch_writes_no_secret(tmp_path: Path) -> None:
    launch = faked(plan(secret_decision(tmp_path)))
    server = start_server(launch, OPTIONS)
    try:
        assert server.api_key == KEY
        assert_no_secret(run_files(server.run_dir) + repr(server) + repr(server.outcome))
        outcome = json.loads((server.run_dir / OUTCOME_FILE).read_text())
        assert outcome["env"]["VLLM_API_KEY"] == outcome["env"]["HF_TOKEN"] == "***"
    finally:
        server.stop()
    assert_no_secret(run_files(server.run_dir))


@pytest.mark.slow
def test_log_lines_a_failed_launch_repeats_are_scrubbed(tmp_path: Path) -> None:
    """The engine's own log keeps what it printed (its run folder is its owner's only); what
    stackdecide repeats of it, in the error and in outcome.json, does not."""
    launch = faked(plan(secret_decision(tmp_path)), fail=True)
    with pytest.raises(LaunchFailed) as failed:
        start_server(launch, OPTIONS)
    outcome = failed.value.outcome
    assert any("invalid api key *** for hub token ***" in seen for seen in outcome.evidence)
    assert_no_secret(str(failed.value) + run_files(outcome.run_dir))


def test_the_reports_show_secrets_as_stars(tmp_path: Path) -> None:
    path = secret_decision(tmp_path)
    report = build_report(stackdecide.load(path), engine_spec=SPEC)
    assert report.winner_config is not None and report.winner_config.engine["api_key"] == KEY
    markdown = render_markdown(report)
    assert_no_secret(markdown)
    assert "VLLM_API_KEY='***'" in markdown and "LICENSE='***'" in markdown
    no_command = render_markdown(build_report(stackdecide.load(path)))  # the keys as written
    assert_no_secret(no_command)
    assert "api_key: '***'" in no_command and "LICENSE=***" in no_command
    pytest.importorskip("matplotlib")
    from stackdecide.report.page import render_html

    page = render_html(report)
    assert_no_secret(page)
    assert "LICENSE=&#x27;***&#x27;" in page and "api_key: &#x27;***&#x27;" in page


def test_check_and_score_json_hold_no_secret(tmp_path: Path) -> None:
    path = secret_decision(tmp_path, served_model_name=["a", "--x"])
    checked = cli(["check", str(path), "--format", "json", "--no-engine-keys"])
    scored = cli(["score", str(path), "--format", "json"])
    assert '"launch:value-is-an-option"' in checked.stdout + scored.stdout
    assert_no_secret(checked.output + scored.output)
