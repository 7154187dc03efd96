"""Which engine arguments each vLLM release takes: what was added, renamed, moved or removed.

Read from the source of every release from 0.8.0 to 0.32.0 that was published as a wheel
(``RELEASES``; there is no 0.21): the fields of ``EngineArgs`` and the options ``add_cli_args``
builds in vllm/engine/arg_utils.py, the config classes they come from (vllm/config/*.py, before
0.10.1 vllm/config.py) and vllm/envs.py. A change is dated by the first release read that has it,
so a version between two releases read (a patch release such as 0.14.1) is only known where both
neighbours agree; elsewhere it is ``UNKNOWN`` and a key is rendered as written, with a note.

Keys the table does not name are taken to exist in every release. Where vLLM is installed, its own
parser is the authority (``vllm.args``); this table renders the portable command for a
candidate's pinned vLLM without one (``vllm.render.render_for_version``) and says, for a removed
or newer key, since when.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal

from packaging.version import InvalidVersion, Version

from stackdecide.audit.engine_config import parse_token_count
from stackdecide.facts.pins import release_for
from stackdecide.model.problems import Problem
from stackdecide.model.stack import ATTENTION_ENV
from stackdecide.vllm.args import ArgAction, VllmArgSpec

RELEASES: tuple[str, ...] = (
    "0.8.0", "0.8.1", "0.8.2", "0.8.3", "0.8.4", "0.8.5", "0.9.0", "0.9.1", "0.9.2", "0.10.0",
    "0.10.1", "0.10.1.1", "0.10.2", "0.11.0", "0.11.1", "0.11.2", "0.12.0", "0.13.0", "0.14.0",
    "0.15.0", "0.16.0", "0.17.0", "0.18.0", "0.19.0", "0.20.0", "0.20.2", "0.22.0", "0.23.0",
    "0.24.0", "0.25.0", "0.26.0", "0.27.0", "0.28.0", "0.29.0", "0.30.0", "0.31.0", "0.32.0")
OLDEST, NEWEST = RELEASES[0], RELEASES[-1]
ARG_UTILS = "vllm/engine/arg_utils.py EngineArgs"
ASYNC_ARGS = "vllm/engine/arg_utils.py AsyncEngineArgs"
COMPILATION = "vllm/config/compilation.py CompilationConfig"
PASS_CONFIG = "vllm/config/compilation.py PassConfig"
SERVER_MODULE = "vllm.entrypoints.openai.api_server"

Presence = Literal["yes", "no", "unknown"]
YES: Presence = "yes"
NO: Presence = "no"
UNKNOWN: Presence = "unknown"


@dataclass(frozen=True)
class KeyHistory:
    """One engine key over vLLM's releases. ``key`` is the ``EngineArgs`` field, or ``a.b`` for a
    field inside a JSON-valued argument (``compilation_config.mode``)."""

    key: str
    added_in: str | None = None  # first release read that has it; None: 0.8.0 had it
    removed_in: str | None = None  # first release read without it; None: 0.32.0 has it
    moved_to: tuple[str, ...] = ()  # where its value went: rendered there for newer vLLMs, back for older
    inverted: bool = False  # the key it moved to takes the opposite boolean
    env: str | None = None  # the environment variable that set it before ``added_in``
    env_removed_in: str | None = None  # first release that no longer reads ``env``
    note: str = ""
    source: str = ARG_UTILS
    defaults: tuple[tuple[str, str], ...] = ()  # (since release, the default then), oldest first

    @property
    def last_in(self) -> str | None:
        """The last release read that accepted it."""
        return release_before(self.removed_in) if self.removed_in else None


def _moved(key: str, removed_in: str, to: str, note: str = "", source: str = ARG_UTILS,
           added_in: str | None = None) -> KeyHistory:
    return KeyHistory(key, added_in, removed_in, (to,), note=note, source=source)


HISTORY: tuple[KeyHistory, ...] = (
    # -- the attention backend: an environment variable, then a flag ---------------------------
    KeyHistory("attention_backend", "0.13.0", env=ATTENTION_ENV, env_removed_in="0.15.0",
               note="before 0.13.0 only the VLLM_ATTENTION_BACKEND environment variable chose "
               "it; 0.13.0 and 0.14.x read both (the variable with a deprecation warning, "
               "vllm/config/attention.py AttentionConfig._set_from_env_if_set); 0.15.0 and later "
               "read only the flag (vllm/envs.py has no VLLM_ATTENTION_BACKEND)"),
    KeyHistory("attention_config", "0.13.0", note="--attention-config.backend is the same choice"),
    # -- keys the decisions use, and when they came -------------------------------------------
    KeyHistory("data_parallel_size", "0.8.3", note="ParallelConfig.data_parallel_size"),
    KeyHistory("kv_cache_memory_bytes", "0.10.2", note="a KV-cache size in bytes, in place of "
               "gpu_memory_utilization's share"),
    KeyHistory("runner", "0.10.1", note="with convert, what task was"),
    KeyHistory("convert", "0.10.1", note="with runner, what task was"),
    KeyHistory("async_scheduling", "0.10.0"),
    KeyHistory("speculative_config", "0.8.2", note="replaced the speculative_* keys in 0.8.3"),
    KeyHistory("structured_outputs_config", "0.11.0",
               note="replaced guided_decoding_backend and its guided_decoding_* options"),
    KeyHistory("eplb_config", "0.10.2", note="replaced the eplb_* keys and num_redundant_experts"),
    KeyHistory("pooler_config", "0.11.0", note="replaced override_pooler_config"),
    KeyHistory("cudagraph_capture_sizes", "0.11.1", note="took over cuda_graph_sizes"),
    KeyHistory("max_cudagraph_capture_size", "0.11.1"),
    KeyHistory("optimization_level", "0.12.0", note="-O; before, -O was compilation_config.level"),
    KeyHistory("max_num_scheduled_tokens", "0.26.0"),
    KeyHistory("kv_cache_dtype_skip_layers", "0.19.0"),
    KeyHistory("quantization_config", "0.20.0"),
    KeyHistory("enable_log_requests", "0.10.1", source=ASYNC_ARGS,
               defaults=((OLDEST, "requests logged (disable_log_requests false)"),
                         ("0.10.1", "false: requests not logged"))),
    # -- keys whose default changed (EngineArgs._set_default_args; gpu_memory_utilization's and the
    # scheduler's defaults are facts.vllm_defaults')
    KeyHistory("enable_prefix_caching", note="always --enable-prefix-caching / "
               "--no-enable-prefix-caching (argparse.BooleanOptionalAction)",
               defaults=((OLDEST, "None: on with the V1 engine (EngineArgs._set_default_args_v1; "
                          "_set_default_args in 0.11.0), off with V0 and for pooling models "
                          "without last-token pooling"),
                         ("0.11.1", "None: on, off for hybrid models (not ModelConfig.is_hybrid)"),
                         ("0.12.0", "None: ModelConfig.is_prefix_caching_supported (EngineArgs."
                          "_set_default_chunked_prefill_and_prefix_caching_args)"))),
    KeyHistory("enable_chunked_prefill", note="0.8.0-0.8.4 took a value (StoreBoolean: "
               "--enable-chunked-prefill false); later a BooleanOptionalAction",
               defaults=((OLDEST, "None: on with the V1 engine (always on in V1 before 0.10)"),
                         ("0.12.0", "None: ModelConfig.is_chunked_prefill_supported"))),
    # -- removed, with where the setting went -------------------------------------------------
    _moved("speculative_model", "0.8.3", "speculative_config.model"),
    _moved("num_speculative_tokens", "0.8.3", "speculative_config.num_speculative_tokens"),
    _moved("speculative_draft_tensor_parallel_size", "0.8.3",
           "speculative_config.draft_tensor_parallel_size"),
    _moved("speculative_max_model_len", "0.8.3", "speculative_config.max_model_len"),
    _moved("speculative_model_quantization", "0.8.3", "speculative_config.quantization"),
    _moved("ngram_prompt_lookup_max", "0.8.3", "speculative_config.prompt_lookup_max"),
    _moved("ngram_prompt_lookup_min", "0.8.3", "speculative_config.prompt_lookup_min"),
    *(KeyHistory(key, removed_in="0.8.3", note="a V0 speculative-decoding option") for key in (
        "speculative_disable_by_batch_size", "spec_decoding_acceptance_method",
        "typical_acceptance_sampler_posterior_threshold",
        "typical_acceptance_sampler_posterior_alpha", "speculative_disable_mqa_scorer",
        "disable_logprobs_during_spec_decoding")),
    KeyHistory("use_v2_block_manager", removed_in="0.10.0", note="the v2 block manager has "
               "been the only one since 0.6.x; the flag had no effect"),
    *(KeyHistory(key, removed_in="0.10.0", note="tokenizer pools are gone") for key in (
        "tokenizer_pool_size", "tokenizer_pool_type", "tokenizer_pool_extra_config")),
    KeyHistory("device", removed_in="0.10.0", note="the platform picks the device"),
    KeyHistory("enable_reasoning", removed_in="0.10.0", note="reasoning_parser alone enables it"),
    *(KeyHistory(key, removed_in="0.10.0", note="a removed LoRA or prompt-adapter option")
      for key in ("long_lora_scaling_factors", "max_prompt_adapters", "max_prompt_adapter_token",
                  "qlora_adapter_name_or_path")),
    KeyHistory("disable_log_requests", removed_in="0.10.1", moved_to=("enable_log_requests",),
               inverted=True, source=ASYNC_ARGS, note="the inverse of enable_log_requests; "
               "0.10.1-0.16.x still took a deprecated --disable-log-requests"),
    KeyHistory("num_scheduler_steps", removed_in="0.10.1", note="multi-step scheduling was a V0 "
               "feature"),
    KeyHistory("multi_step_stream_outputs", removed_in="0.10.1", note="multi-step scheduling was "
               "a V0 feature"),
    KeyHistory("enable_prompt_adapter", removed_in="0.10.2", note="prompt adapters were removed"),
    KeyHistory("override_neuron_config", removed_in="0.10.2", note="the Neuron backend moved out"),
    KeyHistory("max_seq_len_to_capture", removed_in="0.11.0", note="CUDA graph sizes are set "
               "through compilation_config (max_cudagraph_capture_size from 0.11.1)"),
    KeyHistory("preemption_mode", removed_in="0.11.0", note="V1 always preempts by "
               "recomputation"),
    KeyHistory("disable_async_output_proc", removed_in="0.11.0", note="a V0 option"),
    KeyHistory("scheduler_delay_factor", removed_in="0.11.0", note="a V0 option"),
    KeyHistory("rope_scaling", removed_in="0.11.1", note="set it through hf_overrides"),
    KeyHistory("rope_theta", removed_in="0.11.1", note="set it through hf_overrides"),
    KeyHistory("enable_lora_bias", removed_in="0.11.1", note="LoRA biases are no longer "
               "supported"),
    _moved("guided_decoding_backend", "0.12.0", "structured_outputs_config.backend",
           "use structured_outputs_config"),
    _moved("guided_decoding_disable_any_whitespace", "0.12.0",
           "structured_outputs_config.disable_any_whitespace", added_in="0.9.0"),
    _moved("guided_decoding_disable_additional_properties", "0.12.0",
           "structured_outputs_config.disable_additional_properties", added_in="0.9.0"),
    KeyHistory("guided_decoding_disable_fallback", "0.9.0", "0.12.0",
               note="structured outputs no longer fall back"),
    _moved("num_redundant_experts", "0.12.0", "eplb_config.num_redundant_experts",
           added_in="0.9.2"),
    _moved("eplb_window_size", "0.12.0", "eplb_config.window_size", added_in="0.9.2"),
    _moved("eplb_step_interval", "0.12.0", "eplb_config.step_interval", added_in="0.9.2"),
    _moved("eplb_log_balancedness", "0.12.0", "eplb_config.log_balancedness", added_in="0.9.2"),
    _moved("override_pooler_config", "0.12.0", "pooler_config"),
    KeyHistory("num_lookahead_slots", removed_in="0.12.0", note="a V0 speculative-decoding "
               "option"),
    KeyHistory("lora_extra_vocab_size", removed_in="0.12.0", note="LoRA adapters no longer add "
               "vocabulary"),
    KeyHistory("task", removed_in="0.13.0", note="use runner and convert (task generate: runner "
               "generate; task embed: runner pooling, convert embed)"),
    _moved("cuda_graph_sizes", "0.13.0", "cudagraph_capture_sizes", "0.9.0-0.11.0 read a "
           "single value as the largest size to capture", added_in="0.9.0"),
    KeyHistory("disable_mm_preprocessor_cache", removed_in="0.13.0",
               note="use mm_processor_cache_gb: 0"),
    KeyHistory("enable_multimodal_encoder_data_parallel", "0.9.1", "0.13.0",
               note="use mm_encoder_tp_mode: data"),
    KeyHistory("logits_processor_pattern", removed_in="0.17.0"),
    KeyHistory("swap_space", removed_in="0.18.0", note="the V1 engine preempts by recomputation, "
               "with no CPU swap space"),
    KeyHistory("max_num_partial_prefills", removed_in="0.27.0"),
    KeyHistory("max_long_partial_prefills", removed_in="0.27.0"),
    KeyHistory("calculate_kv_scales", removed_in="0.28.0", note="FP8 KV-cache scales come from "
               "the checkpoint, else 1.0"),
    KeyHistory("override_attention_dtype", "0.9.2", "0.28.0"),
    KeyHistory("enable_bf16x3_router_gemm", "0.26.0", "0.30.0"),
    KeyHistory("enable_mamba_fine_grained_prefix_cache", "0.30.0", "0.31.0"),
    # -- inside compilation_config -------------------------------------------------------------
    KeyHistory("compilation_config.mode", "0.11.1", source=COMPILATION,
               note="-O.mode; the same numbers as level (3: VLLM_COMPILE was PIECEWISE)"),
    KeyHistory("compilation_config.level", removed_in="0.18.0",
               moved_to=("compilation_config.mode",), source=COMPILATION,
               note="deprecated for mode from 0.11.1"),
    KeyHistory("compilation_config.cudagraph_mode", "0.10.1", source=COMPILATION),
    KeyHistory("compilation_config.use_cudagraph", removed_in="0.11.1", source=COMPILATION,
               note="use cudagraph_mode"),
    KeyHistory("compilation_config.full_cuda_graph", "0.9.0", "0.11.1", source=COMPILATION,
               note="use cudagraph_mode: FULL_AND_PIECEWISE"),
    KeyHistory("compilation_config.pass_config.fuse_allreduce_rms", "0.12.0", source=PASS_CONFIG),
    KeyHistory("compilation_config.pass_config.enable_fi_allreduce_fusion", "0.10.0", "0.13.0",
               ("compilation_config.pass_config.fuse_allreduce_rms",), source=PASS_CONFIG),
    KeyHistory("compilation_config.pass_config.eliminate_noops", "0.12.0", source=PASS_CONFIG),
    KeyHistory("compilation_config.pass_config.enable_noop", None, "0.13.0",
               ("compilation_config.pass_config.eliminate_noops",), source=PASS_CONFIG),
    KeyHistory("compilation_config.pass_config.fuse_norm_quant", "0.12.0", source=PASS_CONFIG),
    KeyHistory("compilation_config.pass_config.fuse_act_quant", "0.12.0", source=PASS_CONFIG),
    KeyHistory("compilation_config.pass_config.enable_fusion", None, "0.13.0",
               ("compilation_config.pass_config.fuse_norm_quant",
                "compilation_config.pass_config.fuse_act_quant"), source=PASS_CONFIG,
               note="split into fuse_norm_quant and fuse_act_quant"),
)
KEYS: dict[str, KeyHistory] = {entry.key: entry for entry in HISTORY}
REMOVED_KEYS: dict[str, KeyHistory] = {entry.key: entry for entry in HISTORY
                                       if entry.removed_in and "." not in entry.key}

# kv_cache_dtype names and the release that first took each (vllm/config/cache.py CacheDType;
# 0.8.0 listed them in arg_utils' --kv-cache-dtype choices)
KV_CACHE_DTYPES: dict[str, str] = {
    "auto": OLDEST, "fp8": OLDEST, "fp8_e4m3": OLDEST, "fp8_e5m2": OLDEST, "fp8_inc": "0.10.0",
    "bfloat16": "0.11.0", "fp8_ds_mla": "0.11.1", "float16": "0.18.0",
    "turboquant_k8v4": "0.20.0", "turboquant_4bit_nc": "0.20.0", "turboquant_k3v4_nc": "0.20.0",
    "turboquant_3bit_nc": "0.20.0", "int8_per_token_head": "0.20.0",
    "fp8_per_token_head": "0.20.0", "nvfp4": "0.20.0", "int4_per_token_head": "0.25.0",
    "nvfp4_4over6": "0.28.0", "nvfp4_ds_mla": "0.30.0", "ultraquant_4bit": "0.32.0",
}
# max_model_len's forms: "32k"/"32K" (arg_utils human_readable_int) from 0.8.4; "auto" or -1, the
# largest that fits memory (vllm/utils/argparse_utils.py human_readable_int_or_auto), from 0.14.0
MAX_MODEL_LEN_SIZES_IN = "0.8.4"
MAX_MODEL_LEN_AUTO_IN = "0.14.0"
# From 0.9.0 every boolean field becomes an argparse.BooleanOptionalAction (arg_utils get_kwargs):
# --no-KEY turns it off. These kept a plain store_true (off by default, nothing turns them off).
NEGATABLE_IN = "0.9.0"
STORE_TRUE_KEYS = frozenset({
    "disable_log_stats", "disable_log_requests", "disable_async_output_proc",
    "disable_mm_preprocessor_cache", "enable_prompt_adapter",
    "enable_multimodal_encoder_data_parallel", "aggregate_engine_logging",
    "data_parallel_multi_port_external_lb", "headless", "grpc"})
# BooleanOptionalAction before 0.9.0: from 0.8.0 (an explicit add_argument), from 0.8.5 (the
# scheduler group's get_kwargs)
NEGATABLE_EARLIER_IN = {"enable_prefix_caching": OLDEST, "enable_chunked_prefill": "0.8.5"}
STORE_BOOLEAN_UNTIL = {"enable_chunked_prefill": "0.8.5"}  # took "true"/"false" before that release


def _v(version: str) -> Version:
    return Version(version)


def _parsed(version: str) -> Version | None:
    try:
        return Version(version)
    except InvalidVersion:
        return None


def release_before(version: str) -> str | None:
    """The release read just before ``version`` (None for the oldest)."""
    earlier = [r for r in RELEASES if _v(r) < _v(version)]
    return earlier[-1] if earlier else None


def presence(added_in: str | None, removed_in: str | None, version: str) -> Presence:
    """Whether a release has a thing added in ``added_in`` and removed in ``removed_in``."""
    v = _parsed(version)
    if v is None:
        return UNKNOWN
    if added_in is not None:
        before = release_before(added_in)
        if before is None or v > _v(before):
            if v < _v(added_in):
                return UNKNOWN  # a release between two read ones
        else:
            return NO
    if removed_in is not None and v >= _v(removed_in):
        return NO
    if removed_in is not None and v > _v(release_before(removed_in) or removed_in):
        return UNKNOWN
    return YES


def key_presence(key: str, version: str) -> Presence:
    """Whether vLLM ``version`` takes ``key``; a key the table does not name is taken to exist."""
    entry = KEYS.get(key)
    return YES if entry is None else presence(entry.added_in, entry.removed_in, version)


def release_for_pin(pin: str | None) -> tuple[str | None, str]:
    """The vLLM release to render a candidate's pin for, by the one rule for pins
    (``facts.pins.release_for``, with no installed vLLM: the command is for another machine);
    and how it was chosen (or why there is none)."""
    version, how = release_for(pin, None, RELEASES)
    if version is None:
        return None, how
    if version > _v(NEWEST):
        how += f", newer than the flag history ({NEWEST}): keys added since are not known"
    return str(version), how


# -- nested keys -------------------------------------------------------------------------------

def _get(values: Mapping[str, Any], path: str) -> tuple[bool, Any]:
    head, _, rest = path.partition(".")
    if head not in values:
        return False, None
    value = values[head]
    if not rest:
        return True, value
    return _get(value, rest) if isinstance(value, Mapping) else (False, None)


def _set(values: dict[str, Any], path: str, value: Any) -> bool:
    head, _, rest = path.partition(".")
    if not rest:
        values[head] = value
        return True
    inner = values.setdefault(head, {})
    if not isinstance(inner, dict):
        return False  # a JSON string or other value we do not rewrite
    values[head] = inner = dict(inner)
    return _set(inner, rest, value)


def _pop(values: dict[str, Any], path: str) -> None:
    """Remove ``path``, and each enclosing mapping it leaves empty."""
    head, _, rest = path.partition(".")
    if not rest:
        values.pop(head, None)
        return
    inner = dict(values[head])
    _pop(inner, rest)
    if inner:
        values[head] = inner
    else:
        values.pop(head)


def _negate(value: Any) -> Any:
    return not value if isinstance(value, bool) else value


# -- rendering for a release -------------------------------------------------------------------

def adapt(values: Mapping[str, Any], version: str) -> tuple[dict[str, Any], list[Problem]]:
    """``values`` (engine keys spelled with ``_``) as vLLM ``version`` takes them: a key moved or
    renamed since (or before) written where that release reads it, and max_model_len in a form
    it parses; with a problem saying each change."""
    adapted = dict(values)
    problems: list[Problem] = []
    for entry in HISTORY:
        if not entry.moved_to:
            continue
        old_here = presence(entry.added_in, entry.removed_in, version)
        new_here = [_presence_of(path, version) for path in entry.moved_to]
        found_old, old_value = _get(adapted, entry.key)
        if found_old and old_here == NO and all(p != NO for p in new_here) and not any(
                _get(adapted, path)[0] for path in entry.moved_to):
            value = _negate(old_value) if entry.inverted else old_value
            if all(_set(adapted, path, value) for path in entry.moved_to):
                _pop(adapted, entry.key)
                problems.append(_moved_problem(entry.key, entry.moved_to, old_value, value,
                                               version, f"vLLM removed it in {entry.removed_in}"))
            continue
        found_new = [_get(adapted, path) for path in entry.moved_to]
        if all(found for found, _ in found_new) and old_here != NO and \
                any(p == NO for p in new_here) and not found_old:
            values_new = {json.dumps(value, sort_keys=True) for _, value in found_new}
            if len(values_new) != 1:
                continue  # split keys set apart cannot go back into one
            value = found_new[0][1]
            old_value = _negate(value) if entry.inverted else value
            if _set(adapted, entry.key, old_value):
                for path in entry.moved_to:
                    _pop(adapted, path)
                came = max((_added(path) or OLDEST for path in entry.moved_to), key=_v)
                problems.append(_moved_problem(" and ".join(entry.moved_to), (entry.key,),
                                               value, old_value, version, f"it came with {came}"))
    for entry in HISTORY:  # a field inside a JSON argument that this release does not have
        found, _ = _get(adapted, entry.key)
        if "." in entry.key and found and _presence_of(entry.key, version) == NO:
            _pop(adapted, entry.key)
            when = f"removed in {entry.removed_in}" if entry.removed_in and presence(
                None, entry.removed_in, version) == NO else f"it came with {_added(entry.key)}"
            problems.append(Problem("key-dropped", f"dropped: vLLM {version} has no {entry.key} "
                                    f"({when})", f"engine.{entry.key}", "warning"))
    problems += _adapt_max_model_len(adapted, version)
    return adapted, problems


def _presence_of(path: str, version: str) -> Presence:
    """A nested key is there when its own entry says so and its top-level key is there."""
    top = key_presence(path.split(".", 1)[0], version)
    own = key_presence(path, version) if "." in path else YES
    return NO if NO in (top, own) else UNKNOWN if UNKNOWN in (top, own) else YES


def _added(path: str) -> str | None:
    dates = [KEYS[p].added_in for p in (path, path.split(".", 1)[0]) if p in KEYS]
    return max((d for d in dates if d), key=_v, default=None)


def _moved_problem(old: str, new: tuple[str, ...], old_value: Any, new_value: Any, version: str,
                   why: str) -> Problem:
    inverted = f" ({old_value!r} becomes {new_value!r})" if old_value != new_value else ""
    return Problem("key-moved", f"written as {' and '.join(new)}{inverted}: vLLM {version} "
                   f"reads it there ({old}: {why})", f"engine.{old.split(' ')[0]}", "info")


def _adapt_max_model_len(values: dict[str, Any], version: str) -> list[Problem]:
    value = values.get("max_model_len")
    if value is None or isinstance(value, bool):
        return []
    text = str(value).strip()
    where = "engine.max_model_len"
    if text.lower() == "auto" or text == "-1":
        if presence(MAX_MODEL_LEN_AUTO_IN, None, version) != NO:
            return []
        values.pop("max_model_len")
        return [Problem("value-dropped", f"dropped max_model_len {text}: vLLM {version} has no "
                        f"'auto' (it came with {MAX_MODEL_LEN_AUTO_IN}); it derives max_model_len "
                        "from the model's config instead of the largest that fits", where,
                        "warning")]
    if isinstance(value, int) or text.isdigit():
        return []
    tokens = parse_token_count(text)
    if tokens is None or presence(MAX_MODEL_LEN_SIZES_IN, None, version) != NO:
        return []
    values["max_model_len"] = tokens
    return [Problem("value-rewritten", f"max_model_len {text} written as {tokens}: vLLM {version} "
                    f"takes a plain integer (sizes such as 32k came with {MAX_MODEL_LEN_SIZES_IN})",
                    where, "info")]


def kv_cache_dtypes(version: str) -> tuple[str, ...]:
    """The kv_cache_dtype names vLLM ``version`` may take (those it may not, left out)."""
    return tuple(name for name, since in KV_CACHE_DTYPES.items()
                 if presence(since, None, version) != NO)


def _negatable(key: str, version: str) -> bool:
    since = NEGATABLE_EARLIER_IN.get(key, NEGATABLE_IN)
    return key not in STORE_TRUE_KEYS and presence(since, None, version) != NO


def table_spec(values: Mapping[str, Any], version: str) -> VllmArgSpec:
    """An argument spec for vLLM ``version`` built from the table, for the keys in ``values``:
    each key the release takes (or may take), spelled ``--key-name``; booleans as that release
    spells them; kv_cache_dtype's names of that release. What ``vllm.render.render`` needs in
    place of the parser of a vLLM that is not installed."""
    actions: dict[str, ArgAction] = {}
    for key, value in values.items():
        if key_presence(key, version) == NO:
            continue
        option = "--" + key.replace("_", "-")
        if isinstance(value, bool) and presence(STORE_BOOLEAN_UNTIL.get(key), None, version) == NO:
            actions[key] = ArgAction(key, (option,), "store")  # renders "--key true|false"
        elif isinstance(value, bool) and _negatable(key, version):
            negative = "--no-" + key.replace("_", "-")
            actions[key] = ArgAction(key, (option, negative), "boolean_optional")
        elif isinstance(value, bool):
            actions[key] = ArgAction(key, (option,), "store_true", default=False)
        elif isinstance(value, list):
            actions[key] = ArgAction(key, (option,), "store", nargs="+")
        else:
            choices = kv_cache_dtypes(version) if key == "kv_cache_dtype" else None
            actions[key] = ArgAction(key, (option,), "store", choices=choices)
    if key_presence("attention_backend", version) != NO:  # where VLLM_ATTENTION_BACKEND moves to
        actions.setdefault("attention_backend", ArgAction("attention_backend",
                                                          ("--attention-backend",), "store"))
    return VllmArgSpec(version, "python", SERVER_MODULE, actions)


def removed_problem(key: str, version: str | None) -> Problem:
    """A key vLLM removed (``key in REMOVED_KEYS``): dropped from the command with a warning,
    since newer vLLMs refuse it; ``version`` is the vLLM rendered for, when there is one."""
    entry = REMOVED_KEYS[key]
    moved = f"; it moved to {' and '.join(entry.moved_to)}" if entry.moved_to else ""
    note = f"; {entry.note}" if entry.note else ""
    refused = f"vLLM {version} has no such argument" if version else \
        f"a vLLM of {entry.removed_in} or later refuses it"
    return Problem("removed-key", f"dropped: vLLM removed '{key}' in {entry.removed_in} (last "
                   f"accepted by {entry.last_in}{moved}{note}); {refused}", f"engine.{key}",
                   "warning")


def too_new_problem(key: str, version: str) -> Problem | None:
    """A key that came with a later vLLM than ``version``, where the table says so."""
    entry = KEYS.get(key)
    if entry is None or not entry.added_in or presence(entry.added_in, None, version) != NO:
        return None
    return Problem("key-too-new", f"dropped: vLLM {version} has no argument '{key}' (it came "
                   f"with vLLM {entry.added_in})", f"engine.{key}")


def unknown_problems(values: Mapping[str, Any], version: str) -> list[Problem]:
    """An info for each key the table cannot place in ``version`` (a release between two read
    ones where it changed): rendered as written."""
    problems = []
    for key in values:
        entry = KEYS.get(key)
        if entry is not None and key_presence(key, version) == UNKNOWN:
            change = f"added in {entry.added_in}" if entry.added_in and \
                presence(entry.added_in, None, version) == UNKNOWN else \
                f"removed in {entry.removed_in}"
            problems.append(Problem("key-unchecked", f"rendered as written: whether vLLM "
                                    f"{version} takes it is not known ({change}; releases "
                                    "between those read were not)", f"engine.{key}", "info"))
    return problems
