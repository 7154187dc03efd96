"""What vLLM sets when a configuration leaves them out: ``max_num_batched_tokens``, ``max_num_seqs``
and ``gpu_memory_utilization``, release by release and by GPU.

Read from vLLM's source, every minor release from 0.11.1 to 0.34.0 (``COVERED``), for the
OpenAI-compatible server that ``vllm serve`` and stackdecide start (usage context
``OPENAI_API_SERVER``):

* ``EngineArgs.get_batch_defaults`` (``vllm/engine/arg_utils.py``) picks the scheduler defaults by
  the first GPU's NVML total and name (``BATCH_TIERS``).
* ``EngineArgs._set_default_max_num_seqs_and_batched_tokens_args`` (``_set_default_args`` in
  0.11.x) then adjusts them: batched-DP MoE takes its own default, throughput mode doubles both,
  chunked prefill off raises the token budget to ``max_model_len``, and the defaults are capped
  by each other (``scheduler_limits``).
* ``CacheConfig.gpu_memory_utilization`` (``vllm/config/cache.py``) is 0.9, then 0.92 from 0.20.0
  (``UTILIZATION``); 0.34.0 sizes its extensible KV cache from measured memory instead, which
  the estimate does not model (it says so).

A release outside ``COVERED`` takes the nearest one read, and every result says which release
and rule it followed, so a capacity plan can print what it assumed.
"""

from __future__ import annotations

from dataclasses import dataclass

from packaging.version import Version

from stackdecide.facts.gpus import GIB
from stackdecide.facts.pins import release_for

COVERED = (Version("0.11.1"), Version("0.35"))
NEWEST_READ = "0.34.0"
# every minor release whose wheel was read (0.21.0 has none on PyPI)
RELEASES_READ = ("0.11.1", *(f"0.{minor}.0" for minor in range(12, 35) if minor != 21))
_ARG_UTILS = "vllm/engine/arg_utils.py"


# -- which vLLM ------------------------------------------------------------------------------------

@dataclass(frozen=True)
class VllmRelease:
    """The vLLM whose defaults apply, and why that one. ``parser_utilization``: the
    ``--gpu-memory-utilization`` default of the installed vLLM's own parser, when it was read."""

    version: Version
    said_by: str
    parser_utilization: float | None = None

    @property
    def rules_version(self) -> Version:
        """The release whose rules are applied: this one, or the nearest one read."""
        if self.version < COVERED[0]:
            return COVERED[0]
        return min(self.version, Version(NEWEST_READ))

    @property
    def label(self) -> str:
        if self.rules_version == self.version:
            return f"vLLM {self.version}"
        return f"vLLM {self.version} (as {self.rules_version}, the nearest release read)"


def vllm_release(pin: str | None = None, installed: str | None = None,
                 parser_utilization: float | None = None) -> VllmRelease:
    """The vLLM a candidate runs, by the one rule for pins (``facts.pins.release_for``); a pin
    that names no release read falls back to the newest read, and says so."""
    version, said_by = release_for(pin, installed, RELEASES_READ)
    if version is None:
        return VllmRelease(Version(NEWEST_READ), f"vLLM {NEWEST_READ}, the newest release read "
                           f"({said_by})", parser_utilization)
    return VllmRelease(version, said_by, parser_utilization)


# -- the scheduler's defaults ------------------------------------------------------------------------

@dataclass(frozen=True)
class BatchTier:
    """One branch of ``get_batch_defaults`` for the OpenAI server: the defaults of a GPU class."""

    since: str  # the first release with this branch
    min_gib: int  # the GPU's NVML total is at least this many GiB
    max_num_batched_tokens: int
    max_num_seqs: int
    gpus: str  # which GPUs take it, for a message
    not_a100: bool = False  # `"a100" not in device_name`
    not_gb10_since: str | None = None  # `not is_gb10` (SM 12.1, DGX Spark) from this release

    def admits(self, version: Version, memory_bytes: float, gpu_name: str,
               compute_capability: str | None) -> bool:
        if version < Version(self.since) or memory_bytes < self.min_gib * GIB:
            return False
        if self.not_a100 and "a100" in gpu_name.lower():
            return False
        return not (self.not_gb10_since and version >= Version(self.not_gb10_since)
                    and (compute_capability or "").strip() == "12.1")


# vLLM 0.11.1 .. 0.34.0 vllm/engine/arg_utils.py EngineArgs.get_batch_defaults, the
# OPENAI_API_SERVER entries, in the order vLLM checks them; the first that admits the GPU wins.
BATCH_TIERS = (
    # 0.28.0 on: `if device_memory >= 160 * GiB_bytes` ("for GPUs like B200/B300")
    BatchTier("0.28.0", 160, 16384, 1024, "GPUs of 160 GiB or more"),
    # 0.11.1 on: `elif device_memory >= 70 * GiB_bytes and "a100" not in device_name`, and
    # `and not is_gb10` from 0.33.0 ("For GPUs like H100 and H200")
    BatchTier("0.11.1", 70, 8192, 1024, "GPUs of 70 GiB or more other than an A100",
              not_a100=True, not_gb10_since="0.33.0"),
    # 0.11.1 on: `else` ("TODO(woosuk): Tune the default values for other hardware")
    BatchTier("0.11.1", 0, 2048, 256, "GPUs under 70 GiB, and A100s"),
)

# vLLM 0.11.1 .. 0.34.0 `if current_platform.is_cpu()`: 2048 and 128 per GPU-less worker
CPU_BATCHED_PER_WORKER = 2048
CPU_SEQS_PER_WORKER = 128
# vLLM 0.20.0 on vllm/config/scheduler.py SchedulerConfig.DEFAULT_MAX_NUM_BATCHED_TOKENS_FOR_BATCHED_DP
BATCHED_DP_MOE_TOKENS = 256
BATCHED_DP_ALL2ALL = ("deepep_low_latency", "nixl_ep")  # ParallelConfig.use_batched_dp_moe


@dataclass(frozen=True)
class BatchDefaults:
    """vLLM's scheduler defaults for one GPU, and the rule that gave them."""

    max_num_batched_tokens: int
    max_num_seqs: int
    rule: str  # "vLLM 0.32.0 default for a 79.65 GiB GPU (GPUs of 70 GiB or more ...)"


def batch_defaults(release: VllmRelease, device: str, memory_bytes: float | None,
                   gpu_name: str = "", compute_capability: str | None = None,
                   world_size: int = 1) -> BatchDefaults:
    """``get_batch_defaults`` for the OpenAI server: on a GPU by its NVML total and name (no
    memory known: vLLM's own fallback, 0 bytes), on the CPU engine per worker of the
    tensor x pipeline parallel world."""
    if device == "cpu":
        return BatchDefaults(CPU_BATCHED_PER_WORKER * world_size, CPU_SEQS_PER_WORKER * world_size,
                             f"{release.label} default on the CPU engine ({world_size} worker"
                             f"{'s' if world_size > 1 else ''}; {_ARG_UTILS} "
                             "EngineArgs.get_batch_defaults)")
    tier = batch_tier(release.rules_version, memory_bytes or 0.0, gpu_name, compute_capability)
    size = f"a GPU of {memory_bytes / GIB:.2f} GiB by NVML" if memory_bytes else \
        "a GPU of unknown memory"
    return BatchDefaults(tier.max_num_batched_tokens, tier.max_num_seqs,
                         f"{release.label} default for {size} ({tier.gpus}; {_ARG_UTILS} "
                         "EngineArgs.get_batch_defaults)")


def batch_tier(version: Version, memory_bytes: float, gpu_name: str = "",
               compute_capability: str | None = None) -> BatchTier:
    """The branch of ``get_batch_defaults`` that release ``version`` takes for this GPU."""
    return next(tier for tier in BATCH_TIERS
                if tier.admits(version, memory_bytes, gpu_name, compute_capability))


@dataclass(frozen=True)
class SchedulerLimits:
    """``max_num_batched_tokens`` and ``max_num_seqs`` as vLLM sets them, and how."""

    max_num_batched_tokens: int
    max_num_seqs: int
    batched_set: bool  # given by the engine config
    seqs_set: bool
    rule: str  # the default and what vLLM did with what was left out; "" when both were given


def scheduler_limits(release: VllmRelease, defaults: BatchDefaults, max_model_len: int | None,
                     max_num_batched_tokens: int | None = None, max_num_seqs: int | None = None,
                     *, chunked_prefill: bool = True, throughput_mode: bool = False,
                     batched_dp_moe: bool = False) -> SchedulerLimits:
    """What vLLM makes of the configured values (None: left out), following
    ``EngineArgs._set_default_max_num_seqs_and_batched_tokens_args`` (``vllm/engine/arg_utils.py``;
    ``_set_default_args`` in 0.11.x): a batched-DP MoE token default of 256 (0.20.0 on), both
    doubled in throughput mode (0.17.0 on), the token budget raised to ``max_model_len`` without
    chunked prefill and capped at ``max_num_seqs x max_model_len``, ``max_num_seqs`` capped at
    the token budget. ``max_model_len`` None (not known) skips the adjustments that need it."""
    version = release.rules_version
    batched, seqs = max_num_batched_tokens, max_num_seqs
    notes = [defaults.rule]
    if batched is None:
        if batched_dp_moe and version >= Version("0.20.0"):
            batched = BATCHED_DP_MOE_TOKENS
            notes.append(f"max_num_batched_tokens {batched} for batched data-parallel MoE "
                         "(SchedulerConfig.DEFAULT_MAX_NUM_BATCHED_TOKENS_FOR_BATCHED_DP)")
        else:
            batched = defaults.max_num_batched_tokens
    seqs = defaults.max_num_seqs if seqs is None else seqs
    both_set = max_num_batched_tokens is not None and max_num_seqs is not None
    if throughput_mode and version >= Version("0.17.0") and not both_set:
        batched *= 1 if max_num_batched_tokens is not None else 2
        seqs *= 1 if max_num_seqs is not None else 2
        notes.append("the defaults doubled for performance_mode throughput")
    if max_num_batched_tokens is None and max_model_len:
        if not chunked_prefill and max_model_len > batched:
            batched = max_model_len
            notes.append("max_num_batched_tokens raised to max_model_len (chunked prefill off)")
        if seqs * max_model_len < batched:
            batched = seqs * max_model_len
            notes.append("max_num_batched_tokens capped at max_num_seqs x max_model_len")
    if max_num_seqs is None and batched < seqs:
        seqs = batched
        notes.append("max_num_seqs capped at max_num_batched_tokens")
    return SchedulerLimits(batched, seqs, max_num_batched_tokens is not None,
                           max_num_seqs is not None, "" if both_set else "; ".join(notes))


# -- the memory budget --------------------------------------------------------------------------

@dataclass(frozen=True)
class UtilizationDefault:
    """vLLM's ``gpu_memory_utilization`` when the configuration leaves it out, between releases."""

    since: str
    value: float
    source: str


# vllm/config/cache.py CacheConfig.gpu_memory_utilization (a dataclass field up to 0.11.0, a
# pydantic Field from 0.11.1): 0.9 through 0.19.x, `Field(default=0.92, gt=0, le=1)` from
# 0.20.0; 0.34.0 defaults it to None, resolved by `resolved_gpu_memory_utilization` to 1.0 with
# the extensible KV cache (on by default on CUDA, sized from measured free memory) and to
# `DEFAULT_GPU_MEMORY_UTILIZATION = 0.92` without it.
UTILIZATION = (
    UtilizationDefault("0.11.1", 0.9, "vllm/config/cache.py CacheConfig.gpu_memory_utilization"),
    UtilizationDefault("0.20.0", 0.92, "vllm/config/cache.py CacheConfig.gpu_memory_utilization"),
    UtilizationDefault("0.34.0", 0.92, "vllm/config/cache.py "
                       "CacheConfig.DEFAULT_GPU_MEMORY_UTILIZATION; vLLM 0.34 sizes the extensible "
                       "KV cache (the default on CUDA) from measured free memory instead, which "
                       "this estimate does not model"),
)


@dataclass(frozen=True)
class Utilization:
    value: float
    said_by: str  # "set", "vLLM 0.32.0's own parser default", "vLLM 0.32.0 default (...)"


def memory_utilization(release: VllmRelease, configured: float | None = None) -> Utilization:
    """The ``gpu_memory_utilization`` vLLM runs with: the configured one, else the installed
    vLLM's parser default where it was read, else the release's default."""
    if configured is not None:
        return Utilization(configured, "set")
    if release.parser_utilization is not None:
        return Utilization(release.parser_utilization, f"vLLM {release.version}'s own parser default")
    default = [entry for entry in UTILIZATION if Version(entry.since) <= release.rules_version][-1]
    return Utilization(default.value, f"{release.label} default ({default.source})")
