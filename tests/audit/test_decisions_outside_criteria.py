"""Four decisions on models and GPUs that criteria/ does not cover (criteria/examples/), written as
a new user would, with each candidate's fate worked out from vLLM 0.32's own source: whether vLLM
starts it on that hardware and, if not, what stops it. `stackdecide score` and `stackdecide check`
must say the same of every candidate (JSON ``feasible``, ``infeasible_reasons``, the codes of
check's error findings), and the candidate judged best that cannot start must not win.

Paths are in the vLLM 0.32.0 package (``vllm/...``). Memory verdicts are kept clear of the
estimate's error: each candidate that fits leaves at least ~1 GiB beyond one request, and each
refusal misses by more than the estimate's slack. The one exception is noted where it stands
(Gemma-2 at 8k); there, every term the estimate leaves out (CUDA's total below NVML's, CUDA
graph memory profiled since vLLM 0.21) makes vLLM's margin worse, not better.
"""

from __future__ import annotations

import functools
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from stackdecide.cli import main

EXAMPLES = Path(__file__).parents[2] / "criteria" / "examples"
L40S = "l40s-llama-3.1-8b.yaml"
MIXTRAL = "a100x2-mixtral-8x7b.yaml"
LLAMA_70B = "h100x4-llama-3.1-70b.yaml"
L4 = "l4x2-mla-gemma-mistral.yaml"

# vLLM 0.32 vllm/platforms/cuda.py CudaPlatform.get_attn_backend_cls: a backend named that
# AttentionBackend.validate_configuration (vllm/v1/attention/backend.py) finds a reason against
# raises "Selected backend ... is not valid for this configuration. Reason: [...]".
BACKEND_REFUSED = "launch:attention-backend-unsupported"
FP8_KV_REFUSED = "launch:fp8-kv-unsupported-backend"
# vllm/v1/core/kv_cache_utils.py _check_enough_kv_cache_memory: "To serve at least one request
# with the model's max seq len (...), (... GiB KV cache is needed, which is larger than the
# available KV cache memory (... GiB)."
KV_TOO_SMALL = "launch:kv-cache-too-small"
# vllm/v1/worker/gpu_model_runner.py GPUModelRunner.load_model: torch.OutOfMemoryError, logged as
# "Failed to load model - not enough GPU memory"
WEIGHTS_TOO_BIG = "launch:weights-do-not-fit"


@dataclass(frozen=True)
class Verdict:
    """What vLLM 0.32 does with one candidate: starts it (no codes), or the findings that say why
    not, as stackdecide names them."""

    file: str
    candidate: str
    refused_by: tuple[str, ...] = ()


def case(file: str, candidate: str, *refused_by: str, xfail: str | None = None) -> Any:
    marks = [pytest.mark.xfail(strict=True, reason=xfail)] if xfail else []
    return pytest.param(Verdict(file, candidate, refused_by), id=f"{file}:{candidate}",
                        marks=marks)


VERDICTS = [
    # (a) Llama-3.1-8B on one L40S (SM 8.9, 44.42 GiB as CUDA reports it; 2048/256 batch defaults).
    # BF16 weights 14.96 GiB: ~25 GiB left, a 32k request takes 4 GiB. FLASH_ATTN runs on SM 8.0
    # and up (vllm/v1/attention/backends/flash_attn.py FlashAttentionBackend
    # .supports_compute_capability), head size 128 is supported.
    case(L40S, "bf16-flash-attn"),
    # vllm/v1/attention/backends/flashinfer.py FlashInferBackend.supports_compute_capability: SM 8.0
    # to 12.1; head sizes 64, 128, 256, 512.
    case(L40S, "bf16-flashinfer"),
    # compressed-tensors FP8 W8A8 needs SM 8.9 (vllm/model_executor/layers/quantization/
    # compressed_tensors/schemes/compressed_tensors_w8a8_fp8.py get_min_capability: 89): an L40S
    # has it. The KV cache stays BF16, which FlashAttention 2 holds.
    case(L40S, "fp8-flash-attn"),
    # FlashInfer's supported_kv_cache_dtypes include fp8 on any GPU it runs on.
    case(L40S, "fp8-flashinfer-fp8kv"),
    # The judged winner. vllm/v1/attention/backends/fa_utils.py get_flash_attn_version picks FA2
    # on SM 8.9 (FA3 on SM 9.x only) and flash_attn_supports_kv_cache_dtype is then False:
    # FlashAttentionBackend.supports_kv_cache_dtype fails, validate_configuration gives
    # "kv_cache_dtype not supported", and get_attn_backend_cls raises.
    case(L40S, "fp8-flash-attn-fp8kv", FP8_KV_REFUSED),

    # (b) Mixtral-8x7B on two A100 80GB (SM 8.0, 79.32 GiB as CUDA reports it; 2048/256).
    # TP 2: 43.50 GiB a GPU, 32k tokens take 2 GiB a GPU of the ~28.6 GiB left.
    case(MIXTRAL, "tp2"),
    # vllm/model_executor/layers/fused_moe/config.py FusedMoEParallelConfig.make with DP 2 and no
    # expert parallel: flatten_tp_across_dp_and_pcp makes the experts' TP size dp x tp = 2, so
    # each GPU holds half of every expert and all of attention: 44.99 GiB, ~27 GiB left.
    case(MIXTRAL, "dp2"),
    # With enable_expert_parallel the same flattened group becomes EP 2: 4 whole experts a GPU,
    # the same bytes; all2all_backend defaults to allgather_reducescatter (vllm/config/
    # parallel.py ParallelConfig.all2all_backend), which needs no extra kernels.
    case(MIXTRAL, "dp2-ep"),
    # quant_method fp8 (Fp8Config.get_min_capability: 75). An A100 has no FP8 tensor cores:
    # Fp8LinearMethod falls back to Marlin weight-only FP8, and
    # vllm/model_executor/layers/fused_moe/oracle/fp8.py select_fp8_moe_backend finds
    # Fp8MoeBackend.MARLIN (experts/marlin_moe.py MarlinExpertsBase: SM 7.5 and up, per-tensor
    # FP8 weights). 22.74 GiB a GPU.
    case(MIXTRAL, "fp8-dp2"),

    # (c) Llama-3.1-70B on four H100 SXM (79.18 GiB as CUDA reports it; 8192/1024 defaults).
    # BF16 on one GPU: 131.42 GiB of weights on a 79.18 GiB GPU; loading them raises
    # torch.OutOfMemoryError, whatever max_model_len is.
    case(LLAMA_70B, "bf16-tp1", WEIGHTS_TOO_BIG),
    # TP 2: 65.71 GiB a GPU leaves ~4.4 GiB; 8k tokens take 1.25 GiB a GPU.
    case(LLAMA_70B, "bf16-tp2"),
    # TP 2 at 128k: one request takes 20 GiB a GPU (80 layers x 4 KV heads x 128 x 2 x 2 bytes x
    # 131072) against ~4.4 GiB: _check_enough_kv_cache_memory raises.
    case(LLAMA_70B, "bf16-tp2-128k", KV_TOO_SMALL),
    # TP 4: 32.86 GiB a GPU, ~37 GiB left, 128k tokens take 10 GiB a GPU.
    case(LLAMA_70B, "bf16-tp4"),
    # FP8 weights (embeddings and lm_head kept in BF16) 67.67 GiB on one GPU leave ~2.5 GiB (less
    # vLLM's CUDA graph estimate, well under 1 GiB); an FP8 KV cache of 8k tokens takes 1.25 GiB.
    # No backend named: vLLM picks FLASH_ATTN, FA3 on SM 9.0, which holds fp8
    # (fa_utils.flash_attn_supports_kv_cache_dtype).
    case(LLAMA_70B, "fp8-tp1"),

    # (d) Two L4s (SM 8.9, 22.49 GiB by NVML; 2048/256 defaults).
    # DeepSeek-V2-Lite is MLA (vllm/transformers_utils/model_arch_config_convertor.py
    # is_deepseek_mla): FlashAttentionBackend.is_mla() is False, so validate_configuration gives
    # "MLA not supported".
    case(L4, "dsv2-lite-flash-attn", BACKEND_REFUSED),
    # vllm/v1/attention/backends/mla/flashmla.py FlashMLABackend.supports_compute_capability:
    # capability.major in [9, 10]; SM 8.9 gives "compute capability not supported".
    case(L4, "dsv2-lite-flashmla", BACKEND_REFUSED),
    # vllm/v1/attention/backends/mla/triton_mla.py TritonMLABackend: any GPU, head size 576
    # (kv_lora_rank 512 + qk_rope_head_dim 64). TP 2: 14.63 GiB a GPU; the latent cache (31,104
    # bytes a token, whole on each rank) of 32k tokens takes 0.95 GiB of ~5.3 GiB.
    case(L4, "dsv2-lite-triton-mla"),
    # Gemma2Config ties the embeddings and alternates sliding and full layers (21 + 21): 17.21
    # GiB of weights. At 8k the sliding layers save nothing: vllm/v1/kv_cache_interface.py
    # SlidingWindowSpec.max_admission_blocks_per_request holds min(4096 - 1 + 2 x 2048 tokens in
    # flight, 8192) = 8191 tokens, so one request takes 2.62 GiB against at most ~2.5 GiB left
    # (NVML's total; CUDA's is a few hundred MiB less, and the CUDA graph estimate comes off too).
    case(L4, "gemma-2-9b-8k", KV_TOO_SMALL),
    # Mistral-7B-v0.1 has no layer_types, so vLLM sets its 4096 window on every layer
    # (vllm/engine/arg_utils.py EngineArgs.create_engine_config: CacheConfig.sliding_window): a
    # 32k request holds 8191 tokens a layer, 1.0 GiB, of ~6.5 GiB left.
    case(L4, "mistral-7b-32k"),
]


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture(autouse=True)
def _no_hub(monkeypatch: pytest.MonkeyPatch) -> None:
    """Every model here has a built-in shape; the hub must never be asked."""
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


@functools.cache
def scored(file: str) -> dict[str, Any]:
    code, out, err = run("score", str(EXAMPLES / file), "--format", "json")
    assert code == 0, err
    return json.loads(out)


@functools.cache
def checked(file: str) -> tuple[int, dict[str, Any]]:
    code, out, err = run("check", str(EXAMPLES / file), "--no-stacks", "--format", "json")
    assert code in (0, 1), err
    return code, json.loads(out)


def _codes(reasons: list[str]) -> tuple[str, ...]:
    """The ``[code]`` each infeasible reason ends with."""
    return tuple(sorted(reason.rsplit("[", 1)[1].rstrip("]") for reason in reasons))


@pytest.mark.parametrize("verdict", VERDICTS)
def test_score_says_what_vllm_does(verdict: Verdict) -> None:
    candidate = next(c for c in scored(verdict.file)["candidates"] if c["id"] == verdict.candidate)
    assert candidate["feasible"] == (not verdict.refused_by)
    assert _codes(candidate["infeasible_reasons"]) == tuple(sorted(verdict.refused_by))
    assert (candidate["rank"] is None) == bool(verdict.refused_by)


@pytest.mark.parametrize("verdict", VERDICTS)
def test_check_says_what_vllm_does(verdict: Verdict) -> None:
    _, data = checked(verdict.file)
    errors = tuple(sorted(f["code"] for f in data["findings"]
                          if f["subject"] == verdict.candidate and f["severity"] == "error"))
    assert errors == tuple(sorted(verdict.refused_by))
    warned = [f for f in data["findings"]
              if f["subject"] == verdict.candidate and f["severity"] == "warning"]
    assert not warned


@pytest.mark.parametrize("file", [L40S, MIXTRAL, LLAMA_70B, L4])
def test_check_and_score_refuse_the_same_candidates(file: str) -> None:
    code, data = checked(file)
    refused_by_check = {f["subject"] for f in data["findings"] if f["severity"] == "error"}
    refused_by_score = {c["id"] for c in scored(file)["candidates"] if not c["feasible"]}
    assert refused_by_check == refused_by_score
    assert code == (1 if refused_by_score else 0)
    assert [f for f in data["findings"] if f["severity"] == "warning"] == []


def test_the_judged_best_cannot_start_and_a_feasible_candidate_wins() -> None:
    """The FP8 checkpoint on FLASH_ATTN with an FP8 KV cache has the highest judged total, and
    vLLM cannot start it on an L40S: the winner is the best candidate that can start."""
    data = scored(L40S)
    best_judged = max(data["candidates"], key=lambda c: c["total"])
    assert best_judged["id"] == "fp8-flash-attn-fp8kv" and not best_judged["feasible"]
    first = data["candidates"][0]
    assert first["id"] == "fp8-flashinfer-fp8kv" and first["rank"] == 1 and first["feasible"]
    assert data["winner"] == "fp8-flashinfer-fp8kv"


def test_launch_winner_dry_run_renders_the_feasible_winner_without_vllm(tmp_path: Path) -> None:
    """A planning laptop with no vLLM still gets the portable `vllm serve` line, of the winner
    that can start; the only problem launch finds is that vLLM is not installed here."""
    code, out, err = run("launch", str(EXAMPLES / L40S), "--winner", "--dry-run",
                         "--python", str(tmp_path / "no-python"))
    assert "candidate: fp8-flashinfer-fp8kv (the winner by weighted sum; passed over as " \
           "infeasible: fp8-flash-attn-fp8kv: cannot start as written " \
           "(launch:fp8-kv-unsupported-backend))" in err
    assert "vllm serve RedHatAI/Meta-Llama-3.1-8B-Instruct-FP8 --attention-backend FLASHINFER " \
           "--kv-cache-dtype fp8 --max-model-len 32768" in out
    errors = [line for line in (out + err).splitlines() if line.startswith("error:")]
    assert len(errors) == 1 and errors[0].endswith("[vllm-unavailable]")
    assert code == 1  # refused only because this machine has no vLLM to start


def test_moe_weights_per_gpu_follow_vllms_sharding() -> None:
    """Hand arithmetic of Mixtral-8x7B (hidden 4096, 32 layers, 8 experts of 14336, 32000
    tokens, untied): attention, router and norms 41,984,000 a layer, embeddings 2 x 131,072,000,
    experts 1,409,286,144 a layer. DP 2 halves the experts only (FusedMoEParallelConfig.make);
    TP 2 halves everything but the norms."""
    _, data = checked(MIXTRAL)
    weights = {c["candidate"]: c["weights_bytes"] for c in data["capacity"]}
    whole = 32 * 41_984_000 + 2 * 131_072_000 + 4096
    experts = 32 * 1_409_286_144
    assert weights["dp2"] == weights["dp2-ep"] == 2 * (whole + experts // 2) == 48_308_428_800
    assert weights["tp2"] < weights["dp2"]
    assert weights["fp8-dp2"] < 0.55 * weights["dp2"]


def test_sliding_windows_hold_the_window_and_the_steps_in_flight() -> None:
    """vLLM 0.32 SlidingWindowSpec: min(window - 1 + 2 batches of 2048 tokens, max_model_len)
    tokens a layer (block rounding left out). Mistral-7B-v0.1: 32 sliding layers of 4,096 bytes
    a token; Gemma-2-9B: 21 full layers of 8,192 tokens and 21 sliding ones, 8,192 bytes a token
    a layer."""
    _, data = checked(L4)
    per_sequence = {c["candidate"]: c["bytes_per_sequence"] for c in data["capacity"]}
    assert per_sequence["mistral-7b-32k"] == (4096 - 1 + 2 * 2048) * 32 * 4096
    assert per_sequence["gemma-2-9b-8k"] == (21 * 8192 + 21 * (4096 - 1 + 2 * 2048)) * 8192
