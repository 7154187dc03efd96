"""Which attention backend of vLLM runs what, and which checkpoints refuse an ``fp8_e5m2`` KV cache.

The rules are read from vLLM's own source, release by release: the Python code of every minor
release from 0.11.1 to 0.34.0 (``COVERED``). An entry holds from the release it names
(``since``) until the next entry of the same rule, or the end of what was read. A backend named
with ``--attention-backend`` (or ``VLLM_ATTENTION_BACKEND``) is checked by vLLM with the
backend's ``validate_configuration`` (``vllm/v1/attention/backend.py`` ``AttentionBackend``;
``vllm/attention/backends/abstract.py`` before 0.14), and vLLM refuses to start when it names a
reason: "Selected backend ... is not valid for this configuration"
(``vllm/platforms/cuda.py`` ``CudaPlatform.get_attn_backend_cls``, 0.11.1 on). The reasons
modelled here are the GPU's compute capability, the head size, MLA or not, a sliding window
(checked from 0.26), FP8 KV-cache dtypes and FlashInfer-MLA's ``qk_nope_head_dim``. On a CPU
vLLM ignores the backend named (``vllm/platforms/cpu.py`` ``CpuPlatform.get_attn_backend_cls``).

What the table does not know is said, never passed in silence: a backend it has no entry for, a
release outside ``COVERED``, a KV-cache dtype other than the FP8 ones, a layer kind other than
full or sliding-window attention, an MLA-like config vLLM does not run as MLA.

Everything here is data and pure functions: versions and configs in, reasons out.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from packaging.version import Version

from stackdecide.facts.pins import release_for

Capability = tuple[int, int]

# The releases whose source the rules were read from: every minor release in this span.
COVERED = (Version("0.11.1"), Version("0.35"))
COVERED_LABEL = "0.11.1 to 0.34.x"
# The newest release read: the rules' version when nothing else says which vLLM runs.
NEWEST_READ = "0.34.0"

FP8_KV_DTYPES = ("fp8", "fp8_e4m3", "fp8_e5m2")  # vLLM's --kv-cache-dtype spellings of FP8
UNQUANTIZED_KV_DTYPES = ("auto", "bfloat16", "float16", "half", "bf16", "fp16")


@dataclass(frozen=True)
class Capabilities:
    """Compute capabilities from ``lowest`` to ``highest``, or only the SM ``majors`` listed."""

    lowest: Capability = (0, 0)
    highest: Capability = (99, 9)
    majors: tuple[int, ...] = ()

    def admits(self, capability: Capability) -> bool:
        if self.majors:
            return capability[0] in self.majors
        return self.lowest <= capability <= self.highest

    def describe(self) -> str:
        if self.majors:
            return "SM " + " or ".join(f"{major}.x" for major in self.majors)
        if self.highest[0] >= 99:
            return f"SM {self.lowest[0]}.{self.lowest[1]} and newer"
        return f"SM {self.lowest[0]}.{self.lowest[1]} to {self.highest[0]}.{self.highest[1]}"


ANY_GPU = Capabilities()


@dataclass(frozen=True)
class HeadSizes:
    """Head sizes a backend takes: only ``sizes`` when given, else multiples of ``multiple_of``
    from ``minimum`` to ``maximum``; ``wider`` is a larger maximum on some GPUs only."""

    sizes: tuple[int, ...] = ()
    multiple_of: int = 1
    minimum: int = 1
    maximum: int | None = None
    wider: tuple[int, Capabilities] | None = None

    def admits(self, size: int, capability: Capability | None) -> bool | None:
        """Whether ``size`` runs; None when it depends on a GPU that is not known."""
        if self.sizes:
            return size in self.sizes
        if size % self.multiple_of or size < self.minimum:
            return False
        if self.maximum is None or size <= self.maximum:
            return True
        if self.wider is None or size > self.wider[0]:
            return False
        return None if capability is None else self.wider[1].admits(capability)

    def describe(self) -> str:
        if self.sizes:
            return ", ".join(map(str, self.sizes))
        parts = [f"multiples of {self.multiple_of}"] if self.multiple_of > 1 else []
        if self.minimum > 1:
            parts.append(f"at least {self.minimum}")
        if self.maximum is not None:
            parts.append(f"up to {self.maximum}" + (
                f" ({self.wider[0]} on {self.wider[1].describe()})" if self.wider else ""))
        return ", ".join(parts) or "any"


@dataclass(frozen=True)
class BackendRules:
    """What one attention backend takes, from release ``since`` until its next entry."""

    name: str  # the AttentionBackendEnum member
    since: str
    source: str  # vllm/<path> and class the entry was read from
    mla: bool  # runs only MLA layers (is_mla), or only non-MLA ones
    capabilities: Capabilities
    head_sizes: HeadSizes
    fp8_kv: tuple[str, ...]  # the FP8 dtypes in supported_kv_cache_dtypes
    fp8_kv_capabilities: Capabilities | None = None  # a GPU limit on the FP8 KV cache only
    fp8_kv_why: str = ""
    sliding_window: bool = True  # takes sliding-window layers (supports_sliding_window, 0.26 on)
    qk_nope_head_dims: tuple[int, ...] = ()  # only these (FlashInfer MLA's kernel)
    # FP8 KV dtypes the backend accepts and then fails on, on these GPUs: (dtype, GPUs, why)
    fp8_kv_failing: tuple[tuple[str, Capabilities, str], ...] = ()


_FA = "vllm/v1/attention/backends/flash_attn.py FlashAttentionBackend"
_FA_FP8 = ("FlashAttention's FP8 KV cache needs FlashAttention 3 (SM 9.x){}; other GPUs run "
           "FlashAttention 2, which has none")
_FI = "vllm/v1/attention/backends/flashinfer.py FlashInferBackend"
_FI_E5M2 = ("FLASHINFER accepts an fp8_e5m2 KV cache and its engine dies on the first "
            "forward pass on SM 9.x: \"The dtype of q torch.float8_e4m3fn does not match the "
            "q_data_type torch.float8_e5m2\" (measured: vLLM 0.26.0, FlashInfer 0.6.14, an "
            "H100, docs/results/h100-space)")
_TRITON = "vllm/v1/attention/backends/triton_attn.py TritonAttentionBackend"
_FLEX = "vllm/v1/attention/backends/flex_attention.py FlexAttentionBackend"
_MLA = "vllm/v1/attention/backends/mla/"
# MLACommonBackend.get_supported_head_sizes (mla/common.py; from 0.15
# vllm/model_executor/layers/attention/mla_attention.py): kv_lora_rank + qk_rope_head_dim
_MLA_HEADS = {"0.11.1": HeadSizes((576,)), "0.18.0": HeadSizes((320, 576)),
              "0.30.0": HeadSizes((320, 512, 576))}
_FA4 = Capabilities(majors=(9, 10, 11))  # vllm_flash_attn/flash_attn_interface.py _is_fa4_supported


def _mla_entries(name: str, source: str, capabilities: Capabilities, fp8: tuple[str, ...],
                 qk_nope: Mapping[str, tuple[int, ...]] | None = None,
                 heads: Mapping[str, HeadSizes] | None = None,
                 fp8_since: str | None = None, sliding_since: str | None = None
                 ) -> tuple[BackendRules, ...]:
    """An MLA backend's entries: one per release where the MLA head sizes, its FP8 dtypes, its
    qk_nope_head_dim rule or sliding-window support change."""
    heads = heads or _MLA_HEADS
    cuts = sorted({*heads, *(qk_nope or {}), "0.26.0", *filter(None, (fp8_since, sliding_since))},
                  key=Version)

    def at(table: Mapping[str, Any], release: str, default: Any) -> Any:
        found = [key for key in table if Version(key) <= Version(release)]
        return table[max(found, key=Version)] if found else default

    return tuple(BackendRules(
        name, release, source, True, capabilities, at(heads, release, HeadSizes()),
        fp8 if fp8_since is None or Version(release) >= Version(fp8_since) else (),
        sliding_window=Version(release) < Version("0.26.0") or (
            sliding_since is not None and Version(release) >= Version(sliding_since)),
        qk_nope_head_dims=at(qk_nope or {}, release, ()))
        for release in cuts)


BACKENDS: dict[str, tuple[BackendRules, ...]] = {
    # head sizes: get_supported_head_sizes to 0.11.x, supports_head_size from 0.12 (FA4 takes up
    # to 512 from 0.20); FP8 KV: supports_kv_cache_dtype / supports_combination with
    # fa_utils.flash_attn_supports_fp8 (to 0.21) and flash_attn_supports_kv_cache_dtype (0.27 on):
    # FA3 on SM 9.x, from 0.27 FA4 on SM 10.x too; never e5m2 (get_fp8_dtype_for_flashattn
    # raises on it to 0.21, supported_kv_cache_dtypes leaves it out from 0.22).
    "FLASH_ATTN": (
        BackendRules("FLASH_ATTN", "0.11.1", _FA, False, Capabilities((8, 0)),
                     HeadSizes((32, 64, 96, 128, 160, 192, 224, 256)), ("fp8", "fp8_e4m3"),
                     Capabilities(majors=(9,)), _FA_FP8.format("")),
        BackendRules("FLASH_ATTN", "0.12.0", _FA, False, Capabilities((8, 0)),
                     HeadSizes(multiple_of=8, maximum=256), ("fp8", "fp8_e4m3"),
                     Capabilities(majors=(9,)), _FA_FP8.format("")),
        BackendRules("FLASH_ATTN", "0.20.0", _FA, False, Capabilities((8, 0)),
                     HeadSizes(multiple_of=8, maximum=256, wider=(512, _FA4)), ("fp8", "fp8_e4m3"),
                     Capabilities(majors=(9,)), _FA_FP8.format("")),
        BackendRules("FLASH_ATTN", "0.27.0", _FA, False, Capabilities((8, 0)),
                     HeadSizes(multiple_of=8, maximum=256, wider=(512, _FA4)), ("fp8", "fp8_e4m3"),
                     Capabilities(majors=(9, 10)), _FA_FP8.format(" or 4 (SM 10.x)")),
    ),
    # supports_compute_capability: SM 7.5 to 12.1, SM 8.0 to 12.1 from 0.24;
    # get_supported_head_sizes: 64, 128, 256, and 512 from 0.22
    "FLASHINFER": (
        BackendRules("FLASHINFER", "0.11.1", _FI, False, Capabilities((7, 5), (12, 1)),
                     HeadSizes((64, 128, 256)), FP8_KV_DTYPES),
        BackendRules("FLASHINFER", "0.22.0", _FI, False, Capabilities((7, 5), (12, 1)),
                     HeadSizes((64, 128, 256, 512)), FP8_KV_DTYPES),
        BackendRules("FLASHINFER", "0.24.0", _FI, False, Capabilities((8, 0), (12, 1)),
                     HeadSizes((64, 128, 256, 512)), FP8_KV_DTYPES),
        BackendRules("FLASHINFER", "0.26.0", _FI, False, Capabilities((8, 0), (12, 1)),
                     HeadSizes((64, 128, 256, 512)), FP8_KV_DTYPES,
                     fp8_kv_failing=(("fp8_e5m2", Capabilities(majors=(9,)), _FI_E5M2),)),
        # 0.27 on: the e5m2 failure above was not measured again
        BackendRules("FLASHINFER", "0.27.0", _FI, False, Capabilities((8, 0), (12, 1)),
                     HeadSizes((64, 128, 256, 512)), FP8_KV_DTYPES),
    ),
    "TRITON_ATTN": (
        BackendRules("TRITON_ATTN", "0.11.1", _TRITON, False, ANY_GPU, HeadSizes(minimum=32),
                     FP8_KV_DTYPES),
    ),
    "FLEX_ATTENTION": (
        BackendRules("FLEX_ATTENTION", "0.11.1", _FLEX, False, ANY_GPU, HeadSizes(), ()),
    ),
    "FLASHMLA": _mla_entries("FLASHMLA", f"{_MLA}flashmla.py FlashMLABackend",
                             Capabilities(majors=(9, 10)), ("fp8", "fp8_e4m3")),
    "FLASH_ATTN_MLA": _mla_entries("FLASH_ATTN_MLA", f"{_MLA}flashattn_mla.py FlashAttnMLABackend",
                                   Capabilities(majors=(9,)), ()),
    "CUTLASS_MLA": _mla_entries("CUTLASS_MLA", f"{_MLA}cutlass_mla.py CutlassMLABackend",
                                Capabilities(majors=(10,)), ("fp8", "fp8_e4m3")),
    # supports_combination: qk_nope_head_dim 128 (0.15), 64 or 128 (0.18), 64, 128 or 192 (0.19)
    "FLASHINFER_MLA": _mla_entries(
        "FLASHINFER_MLA", f"{_MLA}flashinfer_mla.py FlashInferMLABackend", Capabilities(majors=(10,)),
        ("fp8", "fp8_e4m3"), qk_nope={"0.15.0": (128,), "0.18.0": (64, 128),
                                      "0.19.0": (64, 128, 192)}),
    # FP8 KV from 0.18 (supported_kv_cache_dtypes); any head size from 0.18
    # (get_supported_head_sizes returns []); sliding windows from 0.34
    "TRITON_MLA": _mla_entries(
        "TRITON_MLA", f"{_MLA}triton_mla.py TritonMLABackend", ANY_GPU, ("fp8", "fp8_e4m3"),
        heads={"0.11.1": HeadSizes((576,)), "0.18.0": HeadSizes()}, fp8_since="0.18.0",
        sliding_since="0.34.0"),
}

# vLLM runs these model types' kv_lora_rank attention as MLA (vLLM 0.32
# vllm/transformers_utils/model_arch_config_convertor.py ModelArchConfigConvertorBase
# .is_deepseek_mla); ModelConfig.use_mla is false under VLLM_MLA_DISABLE=1 (0.11.1 on).
MLA_MODEL_TYPES = frozenset({
    "axk1", "deepseek_v2", "deepseek_v3", "deepseek_v32", "deepseek_v4", "deepseek_v41", "dots3_note",
    "deepseek_mtp", "k3_dspark", "glm5_next", "glm5_next_text", "glm_moe_dsa", "glm4_moe_lite",
    "glm4_moe_lite_mtp", "kimi_k2", "kimi_linear", "longcat_flash", "pangu_ultra_moe",
    "pangu_ultra_moe_mtp", "bailing_hybrid", "bailing_hybrid_mtp", "bailing_hybrid_v3_mtp", "hy_v4",
    "hy_v4_mtp"})
ATTENTION_LAYER_KINDS = ("full_attention", "sliding_attention")  # what an attention backend runs
# Keys of configs whose layers are not all attention (Mamba, linear attention...).
HYBRID_KEYS = ("layers_block_type", "hybrid_override_pattern", "full_attention_interval",
               "attn_layer_period", "attn_type_list", "linear_attn_config")


# -- which vLLM the rules are read for ---------------------------------------------------------------

@dataclass(frozen=True)
class RulesVersion:
    """The vLLM release the rules are applied for, and why that one."""

    version: Version | None  # None: not a release (an unreadable pin)
    said_by: str  # "stack.vllm 0.11.0", "the installed vLLM 0.32.0 (no stack.vllm pin)"...

    @property
    def covered(self) -> bool:
        return self.version is not None and COVERED[0] <= self.version < COVERED[1]

    @property
    def label(self) -> str:
        return f"vLLM {self.version}" if self.version is not None else "vLLM ?"


def releases_read() -> tuple[str, ...]:
    """Every release an entry of the rules starts at, and the newest read."""
    starts = {rules.since for entries in BACKENDS.values() for rules in entries}
    return tuple(sorted({*starts, NEWEST_READ}, key=Version))


def rules_version(pin: str | None, installed: str | None) -> RulesVersion:
    """The release the rules are applied for, by the one rule for pins (``facts.pins.release_for``)."""
    return RulesVersion(*release_for(pin, installed, releases_read()))


def backend_rules(name: str, version: Version) -> BackendRules | None:
    """The entry of backend ``name`` that holds for ``version``; None when the table has none."""
    found = [rules for rules in BACKENDS.get(name, ()) if Version(rules.since) <= version]
    return found[-1] if found else None


def span_of(rules: BackendRules, *fields: str) -> str:
    """The releases over which ``fields`` of a backend keep the values ``rules`` has (all of an
    entry's releases when no field is named): ``0.12.0 to 0.19.x``."""
    entries = BACKENDS[rules.name]
    index = entries.index(rules)

    def same(other: BackendRules) -> bool:
        return bool(fields) and all(getattr(other, f) == getattr(rules, f) for f in fields)

    first = index
    while first > 0 and same(entries[first - 1]):
        first -= 1
    last = index
    while last + 1 < len(entries) and same(entries[last + 1]):
        last += 1
    if last + 1 == len(entries):
        return f"{entries[first].since} to {COVERED_LABEL.rsplit(' ', 1)[-1]}"
    end = Version(entries[last + 1].since)
    return f"{entries[first].since} to " + (f"{end.major}.{end.minor - 1}.x"
                                            if end.micro == 0 and end.minor else f"before {end}")


# -- what the model asks of an attention backend --------------------------------------------------

@dataclass(frozen=True)
class AttentionNeeds:
    """What a model's attention layers ask of the backend vLLM runs them with."""

    mla: bool
    head_size: int  # vLLM's ModelConfig.get_head_size: kv_lora_rank + qk_rope_head_dim for MLA
    sliding_window: bool  # some layer keeps a window
    qk_nope_head_dim: int = 0
    other_layers: tuple[str, ...] = ()  # layer kinds the backend named does not run or the table
    # does not know (linear attention, mamba...): not checked
    unknown: str | None = None  # why the attention type itself is not known to the table


def attention_needs(config: Mapping[str, Any], head_dim: int, sliding_window: bool,
                    env: Mapping[str, str]) -> AttentionNeeds:
    """What the layers of a ``config.json`` (its text part) ask of an attention backend under
    the candidate's ``env``."""
    rank = config.get("kv_lora_rank")
    rope, nope = int(config.get("qk_rope_head_dim") or 0), int(config.get("qk_nope_head_dim") or 0)
    model_type = str(config.get("model_type") or "?")
    unknown = None
    mla = False
    head_size = head_dim
    if rank is not None and model_type not in MLA_MODEL_TYPES:
        unknown = (f"model_type {model_type} has kv_lora_rank but is not one vLLM 0.32 runs as MLA "
                   "(ModelArchConfigConvertorBase.is_deepseek_mla)")
    elif rank is not None and "index_topk" in config:
        unknown = "sparse MLA (index_topk) runs on sparse MLA backends, which these rules leave out"
    elif rank is not None and env.get("VLLM_MLA_DISABLE") == "1":
        head_size = rope + nope  # vLLM runs the MLA weights as plain attention
    elif rank is not None:
        mla, head_size = True, int(rank) + rope
    types = config.get("layer_types")
    kinds = sorted({str(kind) for kind in types} if isinstance(types, list) else set())
    other = [f"{kind} layers" for kind in kinds if kind not in ATTENTION_LAYER_KINDS]
    other += [f"the layers {key} marks as not attention" for key in HYBRID_KEYS
              if key in config and not other]
    return AttentionNeeds(mla, head_size, sliding_window, nope, tuple(other), unknown)


# -- the checks --------------------------------------------------------------------------------

@dataclass(frozen=True)
class Refusal:
    """One reason vLLM refuses a backend for a configuration, with the source that says so."""

    about: str  # "capability", "head_size", "mla", "sliding_window", "qk_nope_head_dim", "kv_cache_dtype"
    reason: str
    source: str
    releases: str  # the releases the entry holds for


# the fields of an entry each kind of refusal reads
_FIELDS = {"capability": ("capabilities",), "mla": ("mla",), "head_size": ("head_sizes",),
           "sliding_window": ("sliding_window",), "qk_nope_head_dim": ("qk_nope_head_dims",),
           "kv_cache_dtype": ("fp8_kv", "fp8_kv_capabilities", "fp8_kv_failing")}


@dataclass(frozen=True)
class BackendVerdict:
    refusals: tuple[Refusal, ...] = ()
    unchecked: tuple[str, ...] = ()  # what could not be checked, and why


def check_backend(name: str, needs: AttentionNeeds | None, kv_cache_dtype: str,
                  capability: Capability | None, version: RulesVersion) -> BackendVerdict:
    """Why vLLM ``version`` refuses attention backend ``name`` for a model with ``needs`` (None:
    no model shape), a KV cache of ``kv_cache_dtype`` and a GPU of ``capability`` (None: not
    known), and what could not be checked."""
    if not version.covered:
        return BackendVerdict(unchecked=(f"the rules cover vLLM {COVERED_LABEL}, not "
                                         f"{version.said_by}",))
    assert version.version is not None
    rules = backend_rules(name, version.version)
    if rules is None:
        return BackendVerdict(unchecked=(f"it is not a backend the rules know (they know "
                                         f"{', '.join(BACKENDS)})",))
    refusals: list[Refusal] = []
    unchecked: list[str] = []

    def refuse(about: str, reason: str, member: str) -> None:
        refusals.append(Refusal(about, reason, f"{rules.source}.{member}",
                                span_of(rules, *_FIELDS[about])))

    if capability is not None and not rules.capabilities.admits(capability):
        refuse("capability", f"{name} runs on {rules.capabilities.describe()}, not SM "
               f"{capability[0]}.{capability[1]}", "supports_compute_capability")
    if needs is not None and needs.unknown:
        unchecked.append(needs.unknown)
    elif needs is not None:
        if needs.mla != rules.mla:
            refuse("mla", f"{name} runs {'only MLA' if rules.mla else 'no MLA'} attention; this "
                   f"model's layers are {'MLA' if needs.mla else 'not MLA'} (vLLM: "
                   f"\"{'MLA' if needs.mla else 'non-MLA'} not supported\")", "is_mla")
        else:
            fits = rules.head_sizes.admits(needs.head_size, capability)
            if fits is False:
                refuse("head_size", f"{name} takes head sizes {rules.head_sizes.describe()}, not "
                       f"{needs.head_size}", "supports_head_size")
            elif fits is None:
                unchecked.append(f"head size {needs.head_size} depends on the GPU, which is not "
                                 "known")
            if needs.sliding_window and not rules.sliding_window:
                refuse("sliding_window", f"{name} takes no sliding-window layers",
                       "supports_sliding_window")
            if rules.qk_nope_head_dims and needs.qk_nope_head_dim not in rules.qk_nope_head_dims:
                refuse("qk_nope_head_dim", f"{name} needs qk_nope_head_dim in "
                       f"{', '.join(map(str, rules.qk_nope_head_dims))}, not {needs.qk_nope_head_dim}",
                       "supports_combination")
        if needs.other_layers:
            unchecked.append(f"{', '.join(needs.other_layers)}: vLLM runs them on backends of "
                             "their own, which these rules leave out")
    kv_reason = fp8_kv_refusal(rules, kv_cache_dtype, capability)
    if kv_reason is not None:
        refuse("kv_cache_dtype", kv_reason, "supports_kv_cache_dtype")
    elif kv_cache_dtype.lower() not in (*UNQUANTIZED_KV_DTYPES, *FP8_KV_DTYPES):
        unchecked.append(f"its KV-cache dtype {kv_cache_dtype}: the rules know the FP8 ones only")
    return BackendVerdict(tuple(refusals), tuple(unchecked))


def fp8_kv_refusal(rules: BackendRules, kv_cache_dtype: str,
                   capability: Capability | None) -> str | None:
    """Why a backend cannot hold an FP8 KV cache of ``kv_cache_dtype`` (vLLM's spelling), or None."""
    dtype = kv_cache_dtype.lower()
    if dtype not in FP8_KV_DTYPES:
        return None
    if dtype not in rules.fp8_kv:
        if not rules.fp8_kv:
            return f"{rules.name} has no FP8 KV cache"
        return f"{rules.name} has no {dtype} KV cache (its FP8 ones: {', '.join(rules.fp8_kv)})"
    limit = rules.fp8_kv_capabilities
    if capability is not None and limit is not None and not limit.admits(capability):
        return f"{rules.fp8_kv_why}; SM {capability[0]}.{capability[1]} has none"
    for failing, gpus, why in rules.fp8_kv_failing:
        if dtype == failing and capability is not None and gpus.admits(capability):
            return why
    return None


# -- checkpoints and the fp8_e5m2 KV cache -----------------------------------------------------

@dataclass(frozen=True)
class CheckpointKv:
    """Whether vLLM gives a checkpoint's attention layers a KV-cache quantization method (then it
    refuses an fp8_e5m2 cache: "fp8_e5m2 kv-cache is not supported with fp8 checkpoints"), and
    which KV-cache dtype ``auto`` becomes."""

    refuses_e5m2: bool
    reason: str
    source: str
    releases: str  # the releases the rule holds for
    auto_kv_dtype: str = "auto"


_ATTENTION = "vllm/model_executor/layers/attention/attention.py _init_kv_cache_quant"
_QUANT = "vllm/model_executor/layers/quantization/"


def _kv_scheme_is_fp8(scheme: Any) -> bool:
    return isinstance(scheme, Mapping) and scheme.get("type") == "float" and scheme.get("num_bits") == 8


def checkpoint_kv(quantization_config: Mapping[str, Any] | None, engine_quantization: str | None,
                  version: Version) -> CheckpointKv:
    """How vLLM ``version`` quantizes the KV cache of a checkpoint with this
    ``quantization_config`` (None: an unquantized checkpoint) served with ``--quantization
    engine_quantization``. The method each config gives attention layers (``get_quant_method``):

    * ``fp8`` (``Fp8Config``, also ``--quantization fp8``): always ``Fp8KVCacheMethod``;
    * ``compressed-tensors``: always ``CompressedTensorsKVCacheMethod``, but from 0.24 the
      fp8_e5m2 refusal exempts one without a ``kv_cache_scheme`` (``_init_kv_cache_quant``); from
      0.22 a ``kv_cache_scheme`` turns ``auto`` into ``fp8`` (``Attention.__init__``);
    * ``modelopt``: ``ModelOptKVCacheMethod`` when it names a KV-cache algorithm
      (``kv_cache_quant_algo``, or a float 8-bit ``kv_cache_scheme`` from 0.17), which turns
      ``auto`` into ``fp8_e4m3`` from 0.14 (``vllm/utils/torch_utils.py``
      ``resolve_kv_cache_dtype_string``);
    * ``quark``: always ``QuarkKVCacheMethod``;
    * any other method gives attention layers none.
    """
    config = quantization_config or {}
    method = str(config.get("quant_method") or "").lower()
    engine = str(engine_quantization or "").lower()
    if method == "fp8" or (not method and engine == "fp8"):
        said = "quantization_config.quant_method fp8" if method else "engine.quantization fp8"
        return CheckpointKv(True, f"{said}: Fp8Config gives attention layers Fp8KVCacheMethod",
                            f"{_QUANT}fp8.py Fp8Config.get_quant_method", COVERED_LABEL)
    if method == "compressed-tensors":
        scheme = config.get("kv_cache_scheme")
        source = f"{_QUANT}compressed_tensors/compressed_tensors.py CompressedTensorsConfig"
        auto = "fp8" if scheme is not None and version >= Version("0.22") else "auto"
        if scheme is None and version >= Version("0.24"):
            return CheckpointKv(False, "compressed-tensors without a kv_cache_scheme: vLLM 0.24 "
                                "and later exempt it", _ATTENTION, "0.24.0 to 0.34.x", auto)
        said = "a kv_cache_scheme" if scheme is not None else \
            "no kv_cache_scheme, which vLLM before 0.24 does not exempt"
        return CheckpointKv(True, f"compressed-tensors with {said}: "
                            "CompressedTensorsKVCacheMethod", source,
                            COVERED_LABEL if scheme is not None else "0.11.1 to 0.23.x", auto)
    if method.startswith("modelopt"):
        inner = config.get("quantization") if isinstance(config.get("quantization"), Mapping) \
            else config
        algo = inner.get("kv_cache_quant_algo") or config.get("kv_cache_quant_algo")
        scheme = _kv_scheme_is_fp8(inner.get("kv_cache_scheme")) and version >= Version("0.17")
        if algo or scheme:
            auto = "fp8_e4m3" if version >= Version("0.14") and (
                scheme or str(algo).lower() == "fp8") else "auto"
            return CheckpointKv(True, f"modelopt with KV-cache quantization "
                                f"({algo or 'kv_cache_scheme FP8'}): ModelOptKVCacheMethod",
                                f"{_QUANT}modelopt.py ModelOptQuantConfigBase.get_quant_method",
                                COVERED_LABEL if algo else "0.17.0 to 0.34.x", auto)
        return CheckpointKv(False, "modelopt without KV-cache quantization", f"{_QUANT}modelopt.py",
                            COVERED_LABEL)
    if method == "quark":
        return CheckpointKv(True, "quark: QuarkKVCacheMethod for every attention layer",
                            f"{_QUANT}quark/quark.py QuarkConfig.get_quant_method", COVERED_LABEL)
    said = f"quant_method {method}" if method else "an unquantized checkpoint"
    return CheckpointKv(False, f"{said}: no KV-cache quantization method", _ATTENTION,
                        COVERED_LABEL)


def effective_kv_cache_dtype(kv_cache_dtype: str, checkpoint: CheckpointKv | None) -> str:
    """The KV-cache dtype vLLM runs: ``auto`` becomes what the checkpoint declares."""
    if kv_cache_dtype.lower() == "auto" and checkpoint is not None:
        return checkpoint.auto_kv_dtype
    return kv_cache_dtype
