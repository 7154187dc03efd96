"""How vLLM splits a model over GPUs: weights and KV cache per GPU, refused splits, TP decode."""

from __future__ import annotations

import pytest

from stackdecide.facts import memory, parallel
from stackdecide.facts.parallel import ParallelLayout
from stackdecide.facts.shapes import SHAPES

QWEN3_4B = SHAPES["qwen3-4b"]  # 32 heads, 8 KV heads, 36 layers, tied embeddings
GIB = 2**30


def test_weights_per_gpu_split_projections_and_vocab_but_not_norms() -> None:
    parts = memory.weight_parts(QWEN3_4B, "bf16")
    one = parallel.gpu_weight_bytes(parts, QWEN3_4B, ParallelLayout())
    assert one.total == pytest.approx(parts.total)
    tp2 = parallel.gpu_weight_bytes(parts, QWEN3_4B, ParallelLayout(tp=2))
    assert tp2 == parallel.GpuWeights(sharded=parts.linear / 2, vocab=parts.lm_head / 2,
                                      replicated=parts.norms, whole=parts.total)
    # pipeline stages: layers split, the tied table held by the first and the last stage
    pp2 = parallel.gpu_weight_bytes(parts, QWEN3_4B, ParallelLayout(pp=2))
    assert pp2.vocab == parts.lm_head and pp2.sharded == parts.linear / 2
    # data parallel: every replica is whole
    dp2 = parallel.gpu_weight_bytes(parts, QWEN3_4B, ParallelLayout(dp=2))
    assert dp2.total == pytest.approx(parts.total)


def test_data_parallel_splits_the_experts_with_or_without_expert_parallel() -> None:
    """vLLM 0.32 vllm/model_executor/layers/fused_moe/config.py FusedMoEParallelConfig.make:
    flatten_tp_across_dp_and_pcp shards the experts over tp x dp ranks; EP only changes how."""
    moe = SHAPES["qwen3-30b-a3b"]
    parts = memory.weight_parts(moe, "bf16")
    plain = parallel.gpu_weight_bytes(parts, moe, ParallelLayout(tp=1, dp=2))
    spread = parallel.gpu_weight_bytes(parts, moe, ParallelLayout(tp=1, dp=2,
                                                                  expert_parallel=True))
    experts = moe.expert_params * 2  # bf16
    assert plain == spread
    assert plain.sharded == pytest.approx(parts.linear - experts / 2)
    assert plain.vocab == parts.embedding + parts.lm_head  # the rest is whole on each replica


def test_kv_heads_split_until_replicated() -> None:
    assert [parallel.kv_heads_per_gpu(QWEN3_4B, tp) for tp in (1, 2, 4, 8, 16)] == [8, 4, 2, 1, 1]
    assert [parallel.kv_share(QWEN3_4B, ParallelLayout(tp=tp)) for tp in (1, 2, 8, 16)] == [
        1.0, 0.5, 0.125, 0.125]
    assert parallel.kv_replicated(QWEN3_4B, 16) and not parallel.kv_replicated(QWEN3_4B, 8)
    assert parallel.kv_share(QWEN3_4B, ParallelLayout(pp=4)) == 9 / 36
    assert parallel.kv_share(QWEN3_4B, ParallelLayout(dp=2)) == 1.0


def test_splits_vllm_refuses() -> None:
    assert parallel.layout_problems(QWEN3_4B, ParallelLayout(tp=2)) == []
    assert parallel.layout_problems(QWEN3_4B, ParallelLayout(tp=3)) == [
        ("tensor_parallel_size", "32 attention heads are not divisible by tensor_parallel_size 3"),
        ("tensor_parallel_size", "8 KV heads and tensor_parallel_size 3: one must divide the "
         "other")]
    assert parallel.layout_problems(QWEN3_4B, ParallelLayout(pp=40, expert_parallel=True)) == [
        ("pipeline_parallel_size", "pipeline_parallel_size 40 exceeds the model's 36 layers"),
        ("enable_expert_parallel", "expert parallel needs a mixture-of-experts model; this one "
         "is dense")]


def test_tensor_parallel_decode_is_not_n_times_one_gpu() -> None:
    one = 8e9  # bytes one GPU reads per token
    tp2 = parallel.tensor_parallel_decode(one / 2, one, 4800e9, QWEN3_4B, 2, "nvlink")
    assert tp2.all_reduce_s == pytest.approx(2 * 36 * 8e-6)
    assert tp2.tok_s == pytest.approx(1 / (one / 2 / 4800e9 + 2 * 36 * 8e-6))
    assert tp2.single_gpu_tok_s == pytest.approx(600.0)
    assert 1.0 < tp2.speedup < 2.0
    pcie = parallel.tensor_parallel_decode(one / 2, one, 4800e9, QWEN3_4B, 2, "pcie")
    assert pcie.tok_s < tp2.tok_s
