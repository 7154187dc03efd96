"""What check says of a model's memory, as vLLM 0.32 sizes it: sliding windows, hybrid layers,
MoE weights split over data-parallel ranks, and weights that leave nothing for the KV cache.

Decisions on models and GPUs criteria/ does not cover, built from the published config.json
files of the built-in shapes (src/stackdecide/data/shapes/) and tests/data/configs/. Memory is
given in each decision (vram_gb) and gpu_memory_utilization, max_num_batched_tokens and
max_num_seqs in each engine config, so the verdicts do not move with the GPU table or vLLM's
defaults.
"""

from __future__ import annotations

import sys
from pathlib import Path

import pytest

import stackdecide
from stackdecide.audit.capacity import candidate_capacity
from stackdecide.audit.engine_config import decision_problems
from stackdecide.facts import memory
from stackdecide.facts.memory import GIB
from stackdecide.facts.shapes import SHAPES

CONFIGS = Path(__file__).resolve().parents[1] / "data" / "configs"


def _decision(gpu: str, vram: float, count: int, model: str, candidates: str):
    return stackdecide.parse(f"""\
schema: stackdecide/v1
decision:
  title: memory
  hardware: {{gpu: {gpu}, vram_gb: {vram}, count: {count}}}
  model: {model}
criteria:
  - {{id: speed, weight: 1}}
candidates:
{candidates}""")


def _candidate(name: str, engine: str) -> str:
    return (f"  - id: {name}\n    engine: {{gpu_memory_utilization: 0.9, "
            f"max_num_batched_tokens: 2048, max_num_seqs: 256, {engine}}}\n"
            f"    scores: {{speed: 1}}\n")


def _problems(decision, candidate: str) -> dict[str, str]:
    """Code -> message of a candidate's static problems, but the max_num_seqs note."""
    return {p.code: p.message for p in decision_problems(decision, candidate)
            if p.code != "max-num-seqs-above-capacity"}


def test_mistral_at_32k_on_an_l4_keeps_the_window_on_every_layer() -> None:
    """vllm/v1/kv_cache_interface.py SlidingWindowSpec: a request holds min(window - 1 +
    in-flight tokens, max_model_len) per sliding layer, so 32k needs 1.00 GiB, not 4.00 GiB; the
    check and the capacity estimate agree (vllm/v1/core/kv_cache_utils.py
    check_enough_kv_cache_memory and get_max_concurrency_for_kv_cache_config use the same
    max_memory_usage_bytes)."""
    decision = _decision("NVIDIA L4", 22.5, 1, "{id: mistralai/Mistral-7B-v0.1}",
                         _candidate("long", "max_model_len: 32768")
                         + _candidate("tight", "max_model_len: 32768, "
                                      "kv_cache_memory_bytes: 1000000000"))
    assert _problems(decision, "long") == {}
    fit = candidate_capacity(decision, "long")
    assert fit.bytes_per_sequence == (4095 + 2 * 2048) * 131072  # 1.00 GiB
    assert fit.concurrency is not None and fit.concurrency > 1
    # 0.93 GiB set aside for the KV cache: less than one request, and the check says how much fits
    tight = _problems(decision, "tight")["kv-cache-too-small"]
    assert "needs 1.00 GiB of KV cache for one sequence" in tight
    assert "its 32 sliding-window layers hold at most 8,191 tokens" in tight
    assert tight.endswith(f"about {int(1e9 // 131072)} tokens fit")
    assert candidate_capacity(decision, "tight").concurrency < 1


def test_gemma_2_on_an_l4_is_sized_with_gemma2config_defaults() -> None:
    """google/gemma-2-9b's config.json leaves out tie_word_embeddings and layer_types: the
    check says which defaults it took (transformers' Gemma2Config: tied, 21 sliding + 21 full)
    and counts 17.21 GiB of weights, not 18.9 GiB of untied ones."""
    decision = _decision("NVIDIA L4", 22.5, 1, "{id: google/gemma-2-9b}",
                         _candidate("bf16", "max_model_len: 4096"))
    problems = _problems(decision, "bf16")
    assert problems == {"config-defaults": (
        "gemma-2-9b: config.json leaves out tie_word_embeddings True, layer_types 21 "
        "sliding_attention + 21 full_attention: Gemma2Config's defaults (stackdecide's table of "
        "transformers' defaults)")}
    fit = candidate_capacity(decision, "bf16")
    assert fit.weights_bytes == pytest.approx(memory.weight_bytes(SHAPES["gemma-2-9b"]))
    assert round(fit.weights_bytes / GIB, 2) == 17.21
    assert fit.defaults.startswith("config.json leaves out tie_word_embeddings True")
    codes = [f.code for f in decision.score().findings]
    assert codes.count("launch:config-defaults") == 1  # once, for the decision's model


def test_qwen3_next_counts_kv_on_its_12_attention_layers_and_a_state_on_the_36_others() -> None:
    """vllm/v1/kv_cache_interface.py: FullAttentionSpec for the 12 attention layers, MambaSpec
    (a fixed state per request) for the 36 Gated DeltaNet layers; both split over TP 4
    (2 KV heads: each rank keeps one, vLLM ModelConfig.get_num_kv_heads)."""
    decision = _decision("NVIDIA H100", 79.65, 4, "{id: Qwen/Qwen3-Next-80B-A3B-Instruct}",
                         _candidate("tp4", "tensor_parallel_size: 4, max_model_len: 65536"))
    assert _problems(decision, "tp4") == {}
    fit = candidate_capacity(decision, "tp4")
    assert fit.kv_bytes_per_token == 24576 / 2  # one of 2 KV heads per rank; not 98,304 / 2
    state = memory.state_bytes_per_sequence(SHAPES["qwen3-next-80b-a3b"]) / 4
    assert fit.bytes_per_sequence == pytest.approx(65536 * 24576 / 2 + state)


def test_unsized_layers_say_the_memory_check_could_not_run(monkeypatch: pytest.MonkeyPatch) -> None:
    """Jamba-v0.1's Mamba layers: vLLM sizes them with a MambaSpec of Mamba's own state, which
    stackdecide does not compute; the check says so rather than counting 32 attention layers."""
    monkeypatch.setitem(sys.modules, "transformers", None)  # read the config's own keys
    decision = _decision("NVIDIA H100", 79.65, 2, f"{{id: ai21labs/Jamba-v0.1, "
                         f"config: {CONFIGS / 'jamba-v0.1.json'}}}",
                         _candidate("tp2", "tensor_parallel_size: 2, max_model_len: 8192"))
    problems = decision_problems(decision, "tp2")
    [unsized] = [p for p in problems if p.code == "kv-cache-unsized"]
    assert unsized.severity == "warning"
    assert unsized.message.startswith("could not check the KV cache: ai21labs/Jamba-v0.1")
    assert "layers of kind mamba" in unsized.message
    assert not any(p.code == "kv-cache-too-small" for p in problems)
    assert candidate_capacity(decision, "tp2").skipped == "layers of kind mamba cannot be sized"


def test_mixtral_with_data_parallel_splits_its_experts() -> None:
    """vllm/model_executor/layers/fused_moe/config.py FusedMoEParallelConfig.make: with DP 2 the
    experts are sharded over tp x dp = 2 ranks (flatten_tp_across_dp_and_pcp), expert parallel or
    not: ~45 GiB per A100-80GB in BF16, ~23 GiB in FP8, attention and embeddings whole on each."""
    decision = _decision("NVIDIA A100 80GB", 79.25, 2, "{id: mistralai/Mixtral-8x7B-v0.1}",
                         _candidate("dp2", "data_parallel_size: 2, max_model_len: 32768")
                         + _candidate("dp2-ep", "data_parallel_size: 2, max_model_len: 32768, "
                                      "enable_expert_parallel: true")
                         + _candidate("dp2-fp8", "data_parallel_size: 2, max_model_len: 32768, "
                                      "quantization: fp8")
                         + _candidate("tp2", "tensor_parallel_size: 2, max_model_len: 32768"))
    assert all(_problems(decision, c) == {} for c in ("dp2", "dp2-ep", "dp2-fp8", "tp2"))
    weights = {c: candidate_capacity(decision, c).weights_bytes / GIB
               for c in ("dp2", "dp2-ep", "dp2-fp8", "tp2")}
    assert round(weights["dp2"], 2) == 44.99 and weights["dp2-ep"] == weights["dp2"]
    assert round(weights["dp2-fp8"], 2) == 22.74  # half, not the whole model on each GPU
    assert weights["tp2"] < weights["dp2"]  # TP also splits attention and the embeddings


def test_weights_that_do_not_fit_say_so_and_what_would() -> None:
    """vllm/v1/core/kv_cache_utils.py _check_enough_kv_cache_memory: "No available memory for
    the cache blocks" when the weights leave nothing: no max_model_len fixes that, so the finding
    is not "KV tokens that fit: 0" but the weights against the usable memory, with the tensor
    parallel size and the FP8 weights that would leave room."""
    llama = _decision("NVIDIA H100", 79.65, 2, "{id: meta-llama/Llama-3.1-70B-Instruct}",
                      _candidate("tp1", "max_model_len: 16384")
                      + _candidate("tp2", "tensor_parallel_size: 2, max_model_len: 8192"))
    refused = _problems(llama, "tp1")
    assert list(refused) == ["weights-do-not-fit"]
    assert refused["weights-do-not-fit"].startswith(
        "the weights take 131.42 GiB per GPU (TP 1, llama-3.1-70b (bf16)) of 70.63 GiB usable")
    assert "loading them runs out of GPU memory" in refused["weights-do-not-fit"]
    assert refused["weights-do-not-fit"].endswith(
        "tensor_parallel_size 2 (2 GPUs) would leave 4.92 GiB per GPU for the KV cache; FP8 "
        "weights (an FP8 checkpoint, or quantization: fp8) would leave 2.97 GiB for the KV cache, "
        "about 9,720 tokens: max_model_len 16384 would not fit")
    assert _problems(llama, "tp2") == {}
    row = candidate_capacity(llama, "tp1")
    assert (row.tokens, row.concurrency, row.kv_budget_bytes) == (None, None, None)
    assert row.skipped == ("the weights (131.42 GiB per GPU) do not fit the 70.63 GiB usable: no "
                           "memory is left for the KV cache")
    # Mistral-7B (14.5 GB) on a 15 GiB T4: below the card, above what is usable
    mistral = _decision("Tesla T4", 15, 1, "{id: mistralai/Mistral-7B-v0.1}",
                        _candidate("bf16", "max_model_len: 4096"))
    assert "vLLM stops with \"No available memory for the cache blocks\"" in \
        _problems(mistral, "bf16")["weights-do-not-fit"]
    # DeepSeek-V2-Lite in BF16 (31.4 GB) on an L4
    lite = _decision("NVIDIA L4", 22.5, 1, "{id: deepseek-ai/DeepSeek-V2-Lite}",
                     _candidate("bf16", "max_model_len: 8192"))
    message = _problems(lite, "bf16")["weights-do-not-fit"]
    assert message.endswith("tensor_parallel_size 2 (2 GPUs; the hardware has 1) would leave "
                            "4.86 GiB per GPU for the KV cache; FP8 weights (an FP8 checkpoint, or "
                            "quantization: fp8) would leave 4.47 GiB for the KV cache")
