"""Rendering typed by vLLM's argument kinds: a list is values, never options; secrets go by
environment and every view of a command shows them as ``***``."""

from __future__ import annotations

import pytest

from engine_inputs import SPEC
from stackdecide.audit.engine_config import (
    is_secret_name,
    redact_text,
    secret_values,
    value_problem,
)
from stackdecide.launch.checks import engine_key_problems
from stackdecide.vllm.render import render, render_for_version, serve_command

KEY = "sk-test-0123456789abcdef"
MODEL = {"model": "m"}


def test_a_list_item_that_is_an_option_is_refused_as_the_static_check_says() -> None:
    command = render({**MODEL, "served_model_name": ["m", "--trust-remote-code"]}, SPEC)
    (problem,) = command.problems
    assert problem == value_problem("served_model_name", 1, "--trust-remote-code")
    assert problem.field == "engine.served_model_name[1]" and not command.ok
    assert "--trust-remote-code" not in command.argv and "--served-model-name" not in command.argv


@pytest.mark.parametrize(("engine", "field"), [
    ({"model": "--trust-remote-code"}, "engine.model"),
    ({"middleware": ["--x"]}, "engine.middleware[0]"),  # append: --middleware before each
    ({"max_model_len": "--max-model-len=9"}, "engine.max_model_len"),
    ({"gpu_memory_utilization": -0.5}, "engine.gpu_memory_utilization"),
])
def test_every_kind_of_option_refuses_an_option_as_its_value(engine: dict[str, object],
                                                             field: str) -> None:
    command = render({**MODEL, **engine}, SPEC)
    assert [(p.code, p.field) for p in command.problems] == [("value-is-an-option", field)]


def test_negative_whole_numbers_and_lists_of_values_render() -> None:
    command = render({**MODEL, "max_model_len": -1, "served_model_name": ["a", "b"],
                      "middleware": ["x.A", "x.B"]}, SPEC)
    assert command.ok
    assert command.argv[3:-4] == ("--model", "m", "--max-model-len", "-1", "--served-model-name",
                                  "a", "b", "--middleware", "x.A", "--middleware", "x.B")


def test_a_list_inside_a_list_of_values_is_refused() -> None:
    command = render({**MODEL, "served_model_name": [["a", "--x"]]}, SPEC)
    assert [(p.code, p.field) for p in command.problems] == [
        ("invalid-value", "engine.served_model_name[0]")]


def test_a_flag_with_an_optional_value_is_bare_when_true() -> None:
    """vLLM's bool | str options (nargs "?", const True): --hf-token alone uses the stored token;
    "--hf-token true" would send "true" as the token."""
    assert render({**MODEL, "hf_token": True}, SPEC).argv[5:-4] == ("--hf-token",)
    assert "--hf-token" not in render({**MODEL, "hf_token": False}, SPEC).argv


def test_the_api_key_goes_by_environment_and_is_shown_redacted() -> None:
    command = render({**MODEL, "api_key": KEY, "hf_token": KEY + "-hf"}, SPEC,
                     env={"WANDB_API_KEY": KEY + "-w", "VLLM_LOGGING_LEVEL": "INFO"})
    assert command.ok
    assert command.env["VLLM_API_KEY"] == KEY and command.env["HF_TOKEN"] == KEY + "-hf"
    assert not any(KEY in word for word in command.argv) and "--api-key" not in command.argv
    assert command.secret_env == {"VLLM_API_KEY", "HF_TOKEN", "WANDB_API_KEY"}
    assert command.rendered["api_key"] == "VLLM_API_KEY=***"
    assert command.shown_env == {"VLLM_API_KEY": "***", "HF_TOKEN": "***", "WANDB_API_KEY": "***",
                                 "VLLM_LOGGING_LEVEL": "INFO"}
    for shown in (command.shell(), serve_command(command), repr(command)):
        assert KEY not in shown
    assert "VLLM_API_KEY='***'" in command.shell()


def test_names_the_decision_marks_are_secrets() -> None:
    command = render(MODEL, SPEC, env={"LICENSE": KEY}, secrets=["license"])
    assert command.secret_env == {"LICENSE"} and KEY not in command.shell()
    refused = render({**MODEL, "tokenizer": KEY}, SPEC, secrets=["tokenizer"])
    assert [p.code for p in refused.problems] == ["secret-on-command-line"]
    assert KEY not in refused.shell() and KEY not in refused.problems[0].message


def test_the_portable_command_passes_the_key_by_environment_too() -> None:
    command = render_for_version({**MODEL, "api_key": KEY}, "0.10.1.1")
    assert command.env["VLLM_API_KEY"] == KEY and not any(KEY in w for w in command.argv)
    assert "VLLM_API_KEY='***' vllm serve m" in serve_command(command)


def test_check_says_a_shared_problem_once() -> None:
    """``check`` shows the static checks' finding; the same problem from rendering is left out."""
    engine = {**MODEL, "served_model_name": ["m", "--x"]}
    assert [p.code for p in engine_key_problems(engine, {}, SPEC)] == []
    assert [p.code for p in engine_key_problems({**MODEL, "no_such_key": 1}, {}, SPEC)] == [
        "unknown-key"]


@pytest.mark.parametrize(("name", "secret"), [
    ("api_key", True), ("api-key", True), ("hf_token", True), ("HF_TOKEN", True),
    ("HUGGING_FACE_HUB_TOKEN", True), ("AWS_SECRET_ACCESS_KEY", True), ("DB_PASSWORD", True),
    ("OPENAI_API_KEY", True), ("max_num_batched_tokens", False), ("tokenizer", False),
    ("return_tokens_as_token_ids", False), ("ssl_keyfile", False), ("VLLM_LOGGING_LEVEL", False),
])
def test_what_is_named_like_a_secret(name: str, secret: bool) -> None:
    assert is_secret_name(name) is secret


def test_free_text_is_scrubbed_of_secrets_long_enough_to_find() -> None:
    values = secret_values({"api_key": KEY, "kv_transfer_config": {"password": "pw-1234"}},
                           {"HF_TOKEN": "x"})
    assert values == (KEY, "pw-1234", "x")
    assert redact_text(f"key {KEY}, pw-1234, x marks", values) == "key ***, ***, x marks"


@pytest.mark.parametrize("key", ["served_model_name", "api_key", "middleware"])
def test_an_empty_list_renders_nothing(key: str) -> None:
    """``[]`` is no value, as ``None`` is: not a bare option whose values are missing."""
    command = render({**MODEL, key: []}, SPEC)
    assert command.ok and command.argv[3:] == ("--model", "m", "--host", "127.0.0.1", "--port",
                                               "8000")
    assert "VLLM_API_KEY" not in command.env
