"""Hostile engine configurations: options smuggled in values, code the server would load, secrets.

Each case has an id, a family, the input in words and the verdict (refused, warned, redacted or
accepted), and asserts that verdict both where ``check`` and ``score`` look (the static checks, no
vLLM needed) and where ``launch`` looks (the plan, rendered for a parser built like vLLM 0.32's).
docs/hostile/engine.md is the table of these cases; a test below keeps the two the same.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

import stackdecide
from engine_inputs import codes, plan, static, write_decision
from stackdecide.audit.engine_config import problem_location
from stackdecide.report.launch import render_plan

from .conftest import cli

ROOT = Path(__file__).resolve().parents[2]
TABLE = ROOT / "docs" / "hostile" / "engine.md"
SECRET = "sk-live-0123456789abcdef"


@dataclass(frozen=True)
class Case:
    id: str
    family: str
    input: str  # the hostile input, in words (docs/hostile/engine.md)
    verdict: str  # refused, warned, redacted or accepted
    check: Callable[[Path], None]  # sets the input up in a folder and asserts the verdict


def _words(argv: tuple[str, ...], words: tuple[str, ...]) -> bool:
    return any(argv[i:i + len(words)] == words for i in range(len(argv)))


# -- options in values -----------------------------------------------------------------------------

def option_refused(engine: dict[str, Any], field: str, word: str) -> Callable[[Path], None]:
    """An error at ``field`` in check/score, located in the file; the launch refused; the word
    nowhere in the command."""
    def check(tmp: Path) -> None:
        path = write_decision(tmp, engine)
        problems = static(path)
        (problem,) = [p for p in problems if p.code == "value-is-an-option"]
        assert (problem.severity, problem.field) == ("error", field)
        assert "would reach vLLM as an option" in problem.message
        decision = stackdecide.load(path)
        where = problem_location(decision, 0, problem)
        key = field.removeprefix("engine.")
        assert where is not None and where.startswith(f"{path}:")
        assert where.endswith(f"candidates[0].engine.{key}")
        launch = plan(path)
        assert not launch.ok and "value-is-an-option" in codes(launch.problems, "error")
        assert launch.command is not None and word not in launch.command.argv
    return check


def value_accepted(engine: dict[str, Any], words: tuple[str, ...]) -> Callable[[Path], None]:
    """No finding above info; the launch would start, with ``words`` in the command in a row."""
    def check(tmp: Path) -> None:
        path = write_decision(tmp, engine)
        assert codes(static(path), "error") == codes(static(path), "warning") == []
        launch = plan(path)
        assert launch.ok, launch.problems
        assert launch.command is not None and _words(launch.command.argv, words)
    return check


def value_warned(engine: dict[str, Any], field: str) -> Callable[[Path], None]:
    """A warning that the value only looks like an option; it stays one value of the command."""
    def check(tmp: Path) -> None:
        path = write_decision(tmp, engine)
        (problem,) = [p for p in static(path) if p.severity != "info"]
        assert (problem.code, problem.severity, problem.field) == (
            "value-looks-like-an-option", "warning", field)
        launch = plan(path)
        assert launch.ok and "value-looks-like-an-option" in codes(launch.problems, "warning")
    return check


def rendering_refused(engine: dict[str, Any], code: str, field: str) -> Callable[[Path], None]:
    """What only vLLM's argument kinds tell (a list inside a list of values): the launch refused."""
    def check(tmp: Path) -> None:
        launch = plan(write_decision(tmp, engine))
        assert not launch.ok
        assert [(p.code, p.field) for p in launch.problems if p.severity == "error"] == [
            (code, field)]
    return check


def check_says_where(tmp: Path) -> None:
    """``stackdecide check`` names the file, line, column and list item; ``score`` ranks the
    candidate as unable to start."""
    path = write_decision(tmp, {"served_model_name": ["tiny", "--trust-remote-code"]})
    result = cli(["check", str(path), "--no-engine-keys"])
    assert result.exit_code == 1
    line = next(line for line in result.stdout.splitlines() if line.startswith("error: "))
    assert line.startswith(f"error: {path}:")
    assert "candidates[0].engine.served_model_name[1]: cannot start as written: " \
           "'--trust-remote-code' would reach vLLM as an option" in line
    score = cli(["score", str(path)])
    assert "no candidate is feasible" in score.stdout


def spelled_with_dashes(tmp: Path) -> None:
    """``max-model-len`` is the command's --max-model-len: the checks read it as vLLM does."""
    path = write_decision(tmp, {"max-model-len": 131072})
    (problem,) = [p for p in static(path) if p.severity == "error"]
    assert problem.code == "max-model-len-above-model"
    where = problem_location(stackdecide.load(path), 0, problem)
    assert where is not None and where.endswith("candidates[0].engine.max-model-len")
    launch = plan(path)
    assert not launch.ok and launch.command is not None
    assert _words(launch.command.argv, ("--max-model-len", "131072"))


# -- code loading ----------------------------------------------------------------------------------

def code_loading(field: str, loads: str, engine: dict[str, Any] | None = None,
                 env: dict[str, str] | None = None) -> Callable[[Path], None]:
    """A warning in check/score naming what it loads; refused at launch unless allowed."""
    code = "env-changes-loaded-code" if field.startswith("env.") else "engine-loads-code"

    def check(tmp: Path) -> None:
        path = write_decision(tmp, engine, env)
        (problem,) = [p for p in static(path) if p.severity != "info"]
        assert (problem.code, problem.severity, problem.field) == (code, "warning", field)
        assert loads in problem.message and "--allow-code-loading" in problem.message
        launch = plan(path)
        assert not launch.ok and codes(launch.problems, "error") == [code]
        allowed = plan(path, allow_code_loading=True)
        assert allowed.ok and codes(allowed.problems, "warning") == [code]
    return check


def opted_in_by_the_decision(tmp: Path) -> None:
    path = write_decision(tmp, {"trust_remote_code": True}, allow_code_loading=True)
    assert codes(static(path), "warning") == ["engine-loads-code"]
    launch = plan(path)
    assert launch.ok and launch.command is not None and "--trust-remote-code" in launch.command.argv


def loads_nothing(engine: dict[str, Any]) -> Callable[[Path], None]:
    def check(tmp: Path) -> None:
        path = write_decision(tmp, engine)
        assert [p for p in static(path) if p.severity != "info"] == []
        assert plan(path).ok
    return check


# -- secrets ---------------------------------------------------------------------------------------

def redacted_in_the_dry_run(engine: dict[str, Any], env: dict[str, str], variable: str,
                            **decision: Any) -> Callable[[Path], None]:
    """Passed to vLLM as ``variable``, never in the command; ``***`` in the dry run and in the
    plan's own copy of the engine keys and environment."""
    def check(tmp: Path) -> None:
        path = write_decision(tmp, engine, env, **decision)
        launch = plan(path)
        assert launch.ok, launch.problems
        assert launch.command is not None and SECRET in launch.command.env[variable]
        assert not any(SECRET in word for word in launch.command.argv)
        shown = render_plan(launch)
        assert SECRET not in shown and f"{variable}=***" in shown
        assert SECRET not in repr(launch) and SECRET not in str(launch.engine) + str(launch.env)
    return check


def secret_refused(engine: dict[str, Any], code: str, env: dict[str, str] | None = None,
                   **decision: Any) -> Callable[[Path], None]:
    """Refused in check and at launch, the value in no message."""
    def check(tmp: Path) -> None:
        path = write_decision(tmp, engine, env, **decision)
        problems = [p for p in static(path) if p.severity == "error"]
        assert codes(problems) == [code]
        launch = plan(path)
        assert not launch.ok and code in codes(launch.problems, "error")
        assert SECRET not in render_plan(launch)
        assert all(SECRET not in p.message for p in [*problems, *launch.problems])
    return check


def secret_in_check_json(tmp: Path) -> None:
    path = write_decision(tmp, {"api_key": SECRET, "served_model_name": ["tiny", "--x"]},
                          {"HF_TOKEN": SECRET})
    result = cli(["check", str(path), "--format", "json", "--no-engine-keys"])
    assert result.exit_code == 1 and '"launch:value-is-an-option"' in result.stdout
    assert SECRET not in result.stdout + result.stderr


def not_a_secret(tmp: Path) -> None:
    """Names that merely hold "token" (max_num_batched_tokens) are shown as written."""
    path = write_decision(tmp, {"max_num_batched_tokens": 2048}, {"TOKENIZERS_PARALLELISM": "false"})
    launch = plan(path)
    assert launch.ok and launch.command is not None
    assert _words(launch.command.argv, ("--max-num-batched-tokens", "2048"))
    assert "TOKENIZERS_PARALLELISM=false" in render_plan(launch)


CASES = [
    # options in values
    Case("list-item-long", "option in a value", "`served_model_name: [tiny, \"--trust-remote-code\"]`",
         "refused", option_refused({"served_model_name": ["tiny", "--trust-remote-code"]},
                                   "engine.served_model_name[1]", "--trust-remote-code")),
    Case("list-item-pair", "option in a value",
         "`served_model_name: [tiny, \"--max-model-len\", \"131072\"]`", "refused",
         option_refused({"served_model_name": ["tiny", "--max-model-len", "131072"]},
                        "engine.served_model_name[1]", "--max-model-len")),
    Case("list-item-equals", "option in a value",
         "`served_model_name: [tiny, \"--kv-cache-dtype=fp8_e5m2\"]`", "refused",
         option_refused({"served_model_name": ["tiny", "--kv-cache-dtype=fp8_e5m2"]},
                        "engine.served_model_name[1]", "--kv-cache-dtype=fp8_e5m2")),
    Case("list-item-short", "option in a value", "`served_model_name: [tiny, \"-tp\", \"8\"]`",
         "refused", option_refused({"served_model_name": ["tiny", "-tp", "8"]},
                                   "engine.served_model_name[1]", "-tp")),
    Case("list-item-joined", "option in a value", "`served_model_name: [tiny, \"-O3\"]`", "refused",
         option_refused({"served_model_name": ["tiny", "-O3"]}, "engine.served_model_name[1]",
                        "-O3")),
    Case("list-item-first", "option in a value",
         "`logits_processors: [\"--allowed-local-media-path\", \"/\"]`", "refused",
         option_refused({"logits_processors": ["--allowed-local-media-path", "/"]},
                        "engine.logits_processors[0]", "--allowed-local-media-path")),
    Case("list-item-lora", "option in a value", "`lora_modules: [a=/p, \"--trust-remote-code\"]`",
         "refused", option_refused({"lora_modules": ["a=/p", "--trust-remote-code"]},
                                   "engine.lora_modules[1]", "--trust-remote-code")),
    Case("scalar-long", "option in a value", "`model: \"--trust-remote-code\"`", "refused",
         option_refused({"model": "--trust-remote-code"}, "engine.model", "--trust-remote-code")),
    Case("scalar-equals", "option in a value", "`tokenizer: \"--allowed-local-media-path=/\"`",
         "refused", option_refused({"tokenizer": "--allowed-local-media-path=/"},
                                   "engine.tokenizer", "--allowed-local-media-path=/")),
    Case("scalar-short", "option in a value", "`tokenizer: \"-q\"`", "refused",
         option_refused({"tokenizer": "-q"}, "engine.tokenizer", "-q")),
    Case("scalar-config", "option in a value", "`load_format: \"--config\"` (vLLM reads a file)",
         "refused", option_refused({"load_format": "--config"}, "engine.load_format",
                                   "--config")),
    Case("scalar-dotted", "option in a value", "`load_format: \"-O.mode\"`", "refused",
         option_refused({"load_format": "-O.mode"}, "engine.load_format", "-O.mode")),
    Case("negative-float", "option in a value", "`gpu_memory_utilization: -0.5` (a dotted option "
         "to vLLM)", "refused", option_refused({"gpu_memory_utilization": -0.5},
                                               "engine.gpu_memory_utilization", "-0.5")),
    Case("lone-dash", "option in a value", "`tokenizer: \"-\"`", "refused",
         option_refused({"tokenizer": "-"}, "engine.tokenizer", "-")),
    Case("nested-list", "option in a value", "`served_model_name: [[\"--trust-remote-code\"]]`",
         "refused", rendering_refused({"served_model_name": [["--trust-remote-code"]]},
                                      "invalid-value", "engine.served_model_name[0]")),
    Case("located", "option in a value", "`check` and `score` of a list item `--trust-remote-code`",
         "refused", check_says_where),
    Case("dash-spelling", "option in a value", "`max-model-len: 131072` spelled with dashes",
         "refused", spelled_with_dashes),
    Case("negative-int", "option in a value", "`max_model_len: -1`", "accepted",
         value_accepted({"max_model_len": -1}, ("--max-model-len", "-1"))),
    Case("negative-int-text", "option in a value", "`max_model_len: \"-1\"`", "accepted",
         value_accepted({"max_model_len": "-1"}, ("--max-model-len", "-1"))),
    Case("list-of-values", "option in a value", "`served_model_name: [tiny, tiny-alias]`",
         "accepted", value_accepted({"served_model_name": ["tiny", "tiny-alias"]},
                                    ("--served-model-name", "tiny", "tiny-alias"))),
    Case("mapping-value", "option in a value", "`compilation_config: {mode: 3, x: \"--y\"}`",
         "accepted", value_accepted({"compilation_config": {"mode": 3, "x": "--y"}},
                                    ("--compilation-config", '{"mode":3,"x":"--y"}'))),
    Case("dashes-inside", "option in a value", "`model: org/model--v2`", "accepted",
         value_accepted({"model": "org/model--v2"}, ("--model", "org/model--v2"))),
    Case("en-dash", "option in a value", "`model: \"\u2013trust-remote-code\"` (EN DASH)", "warned",
         value_warned({"model": "\u2013trust-remote-code"}, "engine.model")),
    Case("em-dash-item", "option in a value",
         "`served_model_name: [tiny, \"\u2014trust-remote-code\"]` (EM DASH)", "warned",
         value_warned({"served_model_name": ["tiny", "\u2014trust-remote-code"]},
                      "engine.served_model_name[1]")),
    Case("minus-sign", "option in a value", "`tokenizer: \"\u2212q\"` (MINUS SIGN)", "warned",
         value_warned({"tokenizer": "\u2212q"}, "engine.tokenizer")),
    Case("fullwidth", "option in a value", "`tokenizer: \"\uff0d\uff0dx\"` (FULLWIDTH HYPHEN-MINUS)",
         "warned", value_warned({"tokenizer": "\uff0d\uff0dx"}, "engine.tokenizer")),
    Case("leading-space", "option in a value", "`tokenizer: \"  --x\"`", "warned",
         value_warned({"tokenizer": "  --x"}, "engine.tokenizer")),
    # code loading
    Case("trust-remote-code", "code loading", "`trust_remote_code: true`", "warned; refused at launch",
         code_loading("engine.trust_remote_code", "Python code shipped with the model",
                      {"trust_remote_code": True})),
    Case("local-media", "code loading", "`allowed_local_media_path: /`", "warned; refused at launch",
         code_loading("engine.allowed_local_media_path", "files of this machine",
                      {"allowed_local_media_path": "/"})),
    Case("middleware", "code loading", "`middleware: [evil.Middleware]`", "warned; refused at launch",
         code_loading("engine.middleware", "imported by name into the API server",
                      {"middleware": ["evil.Middleware"]})),
    Case("tool-parser-plugin", "code loading", "`tool_parser_plugin: /tmp/p.py`",
         "warned; refused at launch",
         code_loading("engine.tool_parser_plugin", "that Python file",
                      {"tool_parser_plugin": "/tmp/p.py"})),
    Case("logits-processors", "code loading", "`logits_processors: [evil.Processor]`",
         "warned; refused at launch",
         code_loading("engine.logits_processors", "run at every sampling step",
                      {"logits_processors": ["evil.Processor"]})),
    Case("worker-extension", "code loading", "`worker_extension_cls: evil.Ext`",
         "warned; refused at launch",
         code_loading("engine.worker_extension_cls", "into every worker",
                      {"worker_extension_cls": "evil.Ext"})),
    Case("args-file", "code loading", "`config: /tmp/args.yaml`", "warned; refused at launch",
         code_loading("engine.config", "which stackdecide neither sees nor checks",
                      {"config": "/tmp/args.yaml"})),
    Case("connector-module", "code loading", "`kv_transfer_config: {kv_connector_module_path: evil}`",
         "warned; refused at launch",
         code_loading("engine.kv_transfer_config", "imported as the KV-cache connector",
                      {"kv_transfer_config": {"kv_connector_module_path": "evil"}})),
    Case("compile-backend-json", "code loading",
         "`compilation_config: '{\"backend\": \"evil.Backend\"}'` (JSON text)",
         "warned; refused at launch",
         code_loading("engine.compilation_config", "a compiler backend imported by name",
                      {"compilation_config": '{"backend": "evil.Backend"}'})),
    Case("triton-cache", "code loading", "env `TRITON_CACHE_DIR: /tmp/k`", "warned; refused at launch",
         code_loading("env.TRITON_CACHE_DIR", "compiled Triton kernels",
                      env={"TRITON_CACHE_DIR": "/tmp/k"})),
    Case("inductor-cache", "code loading", "env `TORCHINDUCTOR_CACHE_DIR: /tmp/k`",
         "warned; refused at launch",
         code_loading("env.TORCHINDUCTOR_CACHE_DIR", "torch.compile's compiled kernels",
                      env={"TORCHINDUCTOR_CACHE_DIR": "/tmp/k"})),
    Case("hf-modules", "code loading", "env `HF_MODULES_CACHE: /tmp/m`", "warned; refused at launch",
         code_loading("env.HF_MODULES_CACHE", "model code", env={"HF_MODULES_CACHE": "/tmp/m"})),
    Case("gconv", "code loading", "env `GCONV_PATH: /tmp/g`", "warned; refused at launch",
         code_loading("env.GCONV_PATH", "character-set modules", env={"GCONV_PATH": "/tmp/g"})),
    Case("user-site", "code loading", "env `PYTHONUSERBASE: /tmp/u`", "warned; refused at launch",
         code_loading("env.PYTHONUSERBASE", "Python packages from that user site",
                      env={"PYTHONUSERBASE": "/tmp/u"})),
    Case("startup-file", "code loading", "env `PYTHONSTARTUP: /tmp/s.py`", "warned; refused at launch",
         code_loading("env.PYTHONSTARTUP", "that Python file", env={"PYTHONSTARTUP": "/tmp/s.py"})),
    Case("preload", "code loading", "env `LD_PRELOAD: /tmp/x.so`", "warned; refused at launch",
         code_loading("env.LD_PRELOAD", "shared libraries", env={"LD_PRELOAD": "/tmp/x.so"})),
    Case("opted-in", "code loading", "`trust_remote_code: true` with `decision.allow_code_loading: true`",
         "warned", opted_in_by_the_decision),
    Case("vllm-own-value", "code loading", "`worker_cls: auto`, `trust_remote_code: false`",
         "accepted", loads_nothing({"worker_cls": "auto", "trust_remote_code": False})),
    # secrets
    Case("api-key", "secret", "`api_key: sk-...`", "redacted",
         redacted_in_the_dry_run({"api_key": SECRET}, {}, "VLLM_API_KEY")),
    Case("api-key-dash", "secret", "`api_key: \"--sk-...\"` (goes by environment, not argv)",
         "redacted", redacted_in_the_dry_run({"api_key": f"--{SECRET}"}, {}, "VLLM_API_KEY")),
    Case("hf-token-key", "secret", "`hf_token: hf_...`", "redacted",
         redacted_in_the_dry_run({"hf_token": SECRET}, {}, "HF_TOKEN")),
    Case("hf-token-env", "secret", "env `HF_TOKEN: hf_...`", "redacted",
         redacted_in_the_dry_run({}, {"HF_TOKEN": SECRET}, "HF_TOKEN")),
    Case("password-env", "secret", "env `DB_PASSWORD: ...`", "redacted",
         redacted_in_the_dry_run({}, {"DB_PASSWORD": SECRET}, "DB_PASSWORD")),
    Case("marked-env", "secret", "env `LICENSE: ...` with `decision.secrets: [LICENSE]`",
         "redacted", redacted_in_the_dry_run({}, {"LICENSE": SECRET}, "LICENSE",
                                             secrets=["LICENSE"])),
    Case("marked-key", "secret", "`tokenizer_revision: ...` with `decision.secrets: "
         "[tokenizer_revision]` (vLLM reads it from argv only)", "refused",
         secret_refused({"tokenizer_revision": SECRET}, "secret-on-command-line",
                        secrets=["tokenizer_revision"])),
    Case("secret-in-json", "secret",
         "`kv_transfer_config: {kv_connector_extra_config: {api_key: ...}}`", "refused",
         secret_refused({"kv_transfer_config": {"kv_connector_extra_config": {"api_key": SECRET}}},
                        "secret-on-command-line")),
    Case("two-api-keys", "secret", "`api_key: [k1, k2]`", "refused",
         secret_refused({"api_key": [SECRET, SECRET + "2"]}, "secret-not-one-value")),
    Case("key-conflict", "secret", "`api_key: k1` and env `VLLM_API_KEY: k2`", "refused",
         secret_refused({"api_key": SECRET}, "secret-conflict", {"VLLM_API_KEY": "other-key"})),
    Case("check-json", "secret", "`check --format json` of a candidate with `api_key` and `HF_TOKEN`",
         "redacted", secret_in_check_json),
    Case("token-count", "secret", "`max_num_batched_tokens: 2048`, env `TOKENIZERS_PARALLELISM`",
         "accepted", not_a_secret),
]


@pytest.mark.parametrize("case", CASES, ids=[case.id for case in CASES])
def test_hostile_engine_input(case: Case, tmp_path: Path) -> None:
    case.check(tmp_path)


def table_row(case: Case) -> str:
    return f"| `{case.id}` | {case.family} | {case.input} | {case.verdict} |"


def test_the_table_of_cases_is_the_list_tested() -> None:
    """docs/hostile/engine.md lists exactly these cases, in this order."""
    assert len(CASES) >= 35 and len({case.id for case in CASES}) == len(CASES)
    rows = [line for line in TABLE.read_text(encoding="utf-8").splitlines()
            if line.startswith("| `")]
    assert rows == [table_row(case) for case in CASES]
