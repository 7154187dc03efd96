"""Rendering engine configs into argv/env from vLLM's own argument definitions.

Two parsers built like vLLM's (argparse actions of the same kinds) stand for a new vLLM (0.32:
``--attention-backend``, BooleanOptionalAction booleans, an option alias) and an old one (0.9.2:
``--use-v2-block-manager``, store_true flags, no attention-backend flag). They go through the same
dump code that reads the installed vLLM. The real parser is tested in ``test_render_installed``.
"""

from __future__ import annotations

import argparse
import json
import shlex

import pytest

from stackdecide.vllm import _introspect as _vllm_introspect
from stackdecide.vllm.args import VllmArgSpec
from stackdecide.vllm.render import REMOVED_KEYS, render

KV_DTYPES_NEW = ["auto", "bfloat16", "float16", "fp8", "fp8_e4m3", "fp8_e5m2", "fp8_inc"]


def _spec(parser: argparse.ArgumentParser, version: str, backends: list[str]) -> VllmArgSpec:
    dump = {"vllm_version": version, "server_module": "vllm.entrypoints.openai.api_server",
            "actions": _vllm_introspect.dump_actions(parser),
            "attention_backends": {name: None for name in backends},
            "quantization_methods": ["fp8", "awq"]}
    # The dump travels as JSON between interpreters: make sure it survives that.
    return VllmArgSpec.from_dump(json.loads(json.dumps(dump)), "/opt/vllm/bin/python")


@pytest.fixture
def new_spec() -> VllmArgSpec:
    p = argparse.ArgumentParser()
    p.add_argument("model_tag", nargs="?")
    p.add_argument("--host")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--model", type=str)
    p.add_argument("--served-model-name", nargs="+", type=str)
    p.add_argument("--tensor-parallel-size", "-tp", type=int, default=1)
    p.add_argument("--gpu-memory-utilization", "--device-memory-utilization", type=float,
                   default=0.92)
    p.add_argument("--max-model-len", type=str)
    p.add_argument("--kv-cache-dtype", choices=KV_DTYPES_NEW, default="auto")
    p.add_argument("--quantization", "-q", type=str)
    p.add_argument("--attention-backend", type=str)
    p.add_argument("--enable-prefix-caching", action=argparse.BooleanOptionalAction)
    p.add_argument("--trust-remote-code", action=argparse.BooleanOptionalAction, default=False)
    p.add_argument("--disable-log-stats", action="store_true")
    p.add_argument("--compilation-config", "-cc", type=json.loads)
    return _spec(p, "0.32.0", ["FLASH_ATTN", "FLASHINFER", "TRITON_ATTN", "CPU_ATTN"])


@pytest.fixture
def old_spec() -> VllmArgSpec:
    p = argparse.ArgumentParser()
    p.add_argument("--host")
    p.add_argument("--port", type=int, default=8000)
    p.add_argument("--model", type=str)
    p.add_argument("--gpu-memory-utilization", type=float, default=0.9)
    p.add_argument("--kv-cache-dtype", choices=["auto", "fp8", "fp8_e5m2", "fp8_e4m3"])
    p.add_argument("--enable-prefix-caching", action=argparse.BooleanOptionalAction)
    p.add_argument("--use-v2-block-manager", action="store_true", default=True)
    p.add_argument("--trust-remote-code", action="store_true")
    p.add_argument("--enforce-eager", action="store_true")
    return _spec(p, "0.9.2", ["FLASH_ATTN", "FLASHINFER", "XFORMERS"])


RECOMMENDED = {  # the report's configuration (criteria/rtx4090.yaml)
    "model": "Qwen/Qwen3-4B-Instruct-2507-FP8", "tensor_parallel_size": 1,
    "gpu_memory_utilization": 0.85, "max_model_len": 131072, "enable_prefix_caching": True,
    "use_v2_block_manager": True, "kv_cache_dtype": "fp8_e5m2", "quantization": "fp8",
    "attention_backend": "FLASHINFER", "trust_remote_code": True,
}


def _codes(result) -> list[str]:
    return [p.code for p in result.problems]


def test_new_vllm_takes_the_backend_as_a_flag_and_drops_the_removed_key(new_spec) -> None:
    result = render(RECOMMENDED, new_spec, port=8123)
    argv = list(result.argv)
    assert argv[:3] == ["/opt/vllm/bin/python", "-m", "vllm.entrypoints.openai.api_server"]
    assert argv[argv.index("--attention-backend") + 1] == "FLASHINFER"
    assert "VLLM_ATTENTION_BACKEND" not in result.env
    # the option spelled like the key, not vLLM's longer alias
    assert argv[argv.index("--gpu-memory-utilization") + 1] == "0.85"
    assert "--device-memory-utilization" not in argv
    assert "--enable-prefix-caching" in argv and "--trust-remote-code" in argv
    assert not any("v2-block" in word for word in argv)
    dropped = next(p for p in result.problems if p.code == "removed-key")
    assert dropped.severity == "warning" and dropped.field == "engine.use_v2_block_manager"
    assert "0.10.0" in dropped.message and "0.32.0" in dropped.message
    assert argv[-4:] == ["--host", "127.0.0.1", "--port", "8123"]
    assert result.ok


def test_old_vllm_takes_the_backend_from_the_environment(old_spec) -> None:
    engine = {k: v for k, v in RECOMMENDED.items() if k in (
        "model", "attention_backend", "use_v2_block_manager", "kv_cache_dtype",
        "trust_remote_code")}
    result = render(engine, old_spec)
    assert result.env["VLLM_ATTENTION_BACKEND"] == "FLASHINFER"
    assert "--attention-backend" not in result.argv
    assert "--use-v2-block-manager" in result.argv  # 0.9.2 still had it
    assert "--trust-remote-code" in result.argv
    assert "attention-backend-env" in _codes(result) and result.ok
    assert result.shell().startswith("VLLM_ATTENTION_BACKEND=FLASHINFER ")


def test_booleans_follow_each_parsers_spelling(new_spec, old_spec) -> None:
    new = render({"model": "m", "enable_prefix_caching": False, "disable_log_stats": True,
                  "trust_remote_code": False}, new_spec)
    assert "--no-enable-prefix-caching" in new.argv
    assert "--disable-log-stats" in new.argv
    assert "--no-trust-remote-code" in new.argv
    old = render({"model": "m", "enforce_eager": False, "trust_remote_code": True}, old_spec)
    assert "--enforce-eager" not in old.argv and old.ok  # store_true already off by default
    cannot = render({"model": "m", "use_v2_block_manager": False}, old_spec)
    assert not cannot.ok and "can only turn it on" in cannot.problems[0].message
    wrong = render({"model": "m", "enable_prefix_caching": "yes"}, new_spec)
    assert not wrong.ok and "not true or false" in wrong.problems[0].message


def test_unknown_key_names_the_closest_valid_one(new_spec) -> None:
    result = render({"model": "m", "max_model_length": 4096, "gpu-memory-utilisation": 0.8},
                    new_spec)
    messages = {p.field: p.message for p in result.problems}
    assert "did you mean 'max_model_len'?" in messages["engine.max_model_length"]
    assert "did you mean 'gpu_memory_utilization'?" in messages["engine.gpu_memory_utilisation"]
    assert not result.ok


def test_choices_come_from_the_parser(new_spec, old_spec) -> None:
    assert render({"model": "m", "kv_cache_dtype": "fp8_inc"}, new_spec).ok
    old = render({"model": "m", "kv_cache_dtype": "fp8_inc"}, old_spec)
    assert not old.ok and "choices: auto, fp8, fp8_e5m2, fp8_e4m3" in old.problems[0].message
    typo = render({"model": "m", "kv_cache_dtype": "fp8-e4m3"}, new_spec)
    assert "did you mean 'fp8_e4m3'?" in typo.problems[0].message


def test_values_stay_single_argv_words_without_a_shell(new_spec) -> None:
    path = "/models/my model; rm -rf ~"
    result = render({"model": path, "served_model_name": ["a", "b"],
                     "compilation_config": {"mode": 3, "cudagraph_capture_sizes": [1, 2]}},
                    new_spec)
    argv = list(result.argv)
    assert argv[argv.index("--model") + 1] == path
    assert argv[argv.index("--served-model-name") + 1: argv.index("--served-model-name") + 3] == \
        ["a", "b"]
    assert json.loads(argv[argv.index("--compilation-config") + 1]) == {
        "mode": 3, "cudagraph_capture_sizes": [1, 2]}
    assert shlex.split(result.shell()) == argv  # the display line quotes what the argv holds
    assert result.served_model_name == "a"


def test_types_are_checked(new_spec) -> None:
    result = render({"model": "m", "tensor_parallel_size": "two",
                     "gpu_memory_utilization": True}, new_spec)
    assert {p.field for p in result.problems} == {"engine.tensor_parallel_size",
                                                  "engine.gpu_memory_utilization"}


def test_env_backend_moves_to_the_flag_on_new_vllm(new_spec) -> None:
    result = render({"model": "m"}, new_spec, env={"VLLM_ATTENTION_BACKEND": "TRITON_ATTN",
                                                   "OTHER": "1"})
    assert "--attention-backend" in result.argv and "TRITON_ATTN" in result.argv
    assert result.env == {"OTHER": "1"}
    assert "attention-env-moved" in _codes(result)
    conflict = render({"model": "m", "attention_backend": "FLASHINFER"}, new_spec,
                      env={"VLLM_ATTENTION_BACKEND": "FLASH_ATTN"})
    assert "attention-backend-conflict" in _codes(conflict) and not conflict.ok


def test_unknown_backend_name_is_refused(new_spec) -> None:
    result = render({"model": "m", "attention_backend": "FLASH_INFER"}, new_spec)
    assert "did you mean 'FLASHINFER'?" in result.problems[0].message and not result.ok


def test_dashed_keys_launcher_keys_and_missing_model(new_spec) -> None:
    result = render({"max-model-len": 2048, "port": 9999, "host": "0.0.0.0"}, new_spec,
                    host="127.0.0.1", port=8001)
    assert "--max-model-len" in result.argv
    assert result.argv[-4:] == ("--host", "127.0.0.1", "--port", "8001")
    assert {"launcher-owned", "missing-model"} <= set(_codes(result))


def test_removed_keys_table_is_only_a_hint(new_spec) -> None:
    """A key the parser knows is rendered even if the table says it went away elsewhere."""
    p = argparse.ArgumentParser()
    p.add_argument("--model")
    p.add_argument("--task", choices=["auto", "generate"])
    spec = _spec(p, "0.12.0", [])
    assert "task" in REMOVED_KEYS
    assert render({"model": "m", "task": "generate"}, spec).ok


@pytest.mark.parametrize(("engine", "marked", "served"), [
    ({"model": "org/private-7b", "served_model_name": ["name0123", "alias"]},
     ["served_model_name"], None),
    ({"model": "org/private-7b"}, ["MODEL"], None),
    ({"model": "org/private-7b", "served_model_name": "name0123"}, ["model"], "name0123"),
    ({"model": "org/private-7b", "served_model_name": ["name0123", "alias"]}, [], "name0123"),
    ({"model": "org/private-7b"}, ["api_key"], "org/private-7b"),
])
def test_a_marked_served_name_is_refused_and_recorded_nowhere(
        new_spec: VllmArgSpec, engine: dict[str, object], marked: list[str],
        served: str | None) -> None:
    """The name the server is served as goes in every request and run file: a key it comes
    from that the decision marks secret is refused, saying so, and the command does not hold
    its value (the launch records ``served_model_name``)."""
    command = render(engine, new_spec, secrets=marked)
    assert command.served_model_name == served
    refused = [p for p in command.problems if p.code == "secret-on-command-line"]
    assert [p.field for p in refused] == [f"engine.{key.lower()}" for key in marked
                                          if key != "api_key"]
    assert all("it cannot be one" in p.message and "every request" in p.message for p in refused)
    assert command.ok is not refused
    for key in marked:
        value = engine.get(key.lower())
        names = value if isinstance(value, list) else [value] if value else []
        assert not [name for name in names if name in command.argv or repr(name) in repr(command)]
