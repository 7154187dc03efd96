"""How vLLM splits one model over several GPUs, as arithmetic: weights and KV cache per GPU, the
GPUs a layout needs, and a tensor-parallel decode ceiling (an engine config's layout is read by
``model.stack.layout_of``).

The split follows vLLM's model code (0.26 to 0.32):

* **Tensor parallel (TP)** shards every attention and MLP projection ``tp`` ways
  (column/row-parallel linears), and the embedding table and LM head by vocabulary rows
  (``VocabParallelEmbedding`` / ``ParallelLMHead``). Norms, biases kept in 16 bit and MoE routers
  are replicated on every TP rank.
* **KV cache**: each rank holds ``max(1, num_kv_heads // tp)`` KV heads
  (``ModelConfig.get_num_kv_heads``); when ``tp`` exceeds ``num_kv_heads`` the heads are
  replicated, so the per-GPU share stops shrinking. Multi-latent attention caches one latent per
  token that every rank holds in full.
* **Pipeline parallel (PP)** gives each stage ``layers / pp`` layers; the first stage holds the
  embedding table, the last the LM head (and, with tied embeddings, its own copy of the table).
  The largest stage is planned for.
* **Data parallel (DP)** runs ``dp`` replicas, each on ``tp x pp`` GPUs of its own: a dense
  model is whole on every replica. A mixture-of-experts model is not: its routed experts are
  split over all ``tp x dp`` ranks, expert parallel or not (vLLM 0.32
  ``vllm/model_executor/layers/fused_moe/config.py`` ``FusedMoEParallelConfig.make`` flattens TP
  across DP: "the tensors are sharded across" ``tp x dp`` devices), while attention, shared experts,
  embeddings and norms are whole on every replica.
* **Expert parallel (EP)**, with ``enable_expert_parallel``: each of the ``tp x dp`` ranks holds
  whole experts instead of a slice of every expert: the same bytes per GPU.
* **Linear-attention state** (Gated DeltaNet): split over TP like the heads it belongs to
  (``MambaStateShapeCalculator.gated_delta_net_state_shape`` divides the value heads and the
  convolution channels by the TP size).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from stackdecide.facts.dtypes import WeightBytes
from stackdecide.facts.shapes import ModelShape


@dataclass(frozen=True)
class ParallelLayout:
    """The parallel sizes of one engine configuration (vLLM's defaults: 1, 1, 1, no EP); an
    engine config's is ``model.stack.layout_of``."""

    tp: int = 1
    pp: int = 1
    dp: int = 1
    expert_parallel: bool = False

    @property
    def gpus_per_replica(self) -> int:
        """vLLM's world size: ``tp x pp``."""
        return self.tp * self.pp

    @property
    def gpus(self) -> int:
        """GPUs the whole configuration occupies: ``dp`` replicas of ``tp x pp``."""
        return self.tp * self.pp * self.dp

    @property
    def expert_shards(self) -> int:
        """The ranks that split a stage's routed experts: ``tp x dp`` (see the module doc)."""
        return self.tp * self.dp

    @property
    def label(self) -> str:
        parts = [f"TP {self.tp}"] + ([f"PP {self.pp}"] if self.pp > 1 else []) + (
            [f"DP {self.dp}"] if self.dp > 1 else []) + (["EP"] if self.expert_parallel else [])
        return " x ".join(parts)


@dataclass(frozen=True)
class GpuWeights:
    """The weights the fullest GPU of a layout holds, part by part."""

    sharded: float  # projections (and their scales) on this GPU
    vocab: float  # this GPU's rows of the embedding table and LM head
    replicated: float  # norms, routers and 16-bit leftovers every TP rank holds in full
    whole: float  # one replica's weights, for comparison

    @property
    def total(self) -> float:
        return self.sharded + self.vocab + self.replicated


def gpu_weight_bytes(weights: WeightBytes, shape: ModelShape, layout: ParallelLayout) -> GpuWeights:
    """Weights on the fullest GPU of ``layout``; ``weights`` are one replica's
    (``facts.dtypes.weight_bytes``). Projections split over ``tp x pp``, the routed experts among
    them over ``tp x dp x pp`` (see the module doc); attention a checkpoint keeps in 16 bit
    (``ModelShape.unquantized_attention``, counted with ``weights.norms``) is TP-sharded too."""
    # 16-bit attention sits in weights.norms beside the norms: split it out in proportion
    kept_share = shape.attention_params / (shape.attention_params + shape.norm_params) \
        if shape.unquantized_attention else 0.0
    kept = weights.norms * kept_share
    projections = weights.linear + weights.scales
    quantized = shape.linear_params - (shape.attention_params if shape.unquantized_attention else 0)
    experts = projections * shape.expert_params / quantized if quantized > 0 else 0.0
    sharded = (projections - experts + kept) / layout.gpus_per_replica \
        + experts / (layout.expert_shards * layout.pp)
    if layout.pp > 1:  # the first stage holds the table, the last the head (tied: a copy)
        vocab = max(weights.embedding or weights.lm_head, weights.lm_head) / layout.tp
    else:
        vocab = (weights.embedding + weights.lm_head) / layout.tp
    return GpuWeights(sharded, vocab, (weights.norms - kept) / layout.pp, weights.total)


def kv_heads_per_gpu(shape: ModelShape, tp: int) -> int:
    """KV heads one TP rank caches: split, but never below one (replicated past num_kv_heads)."""
    if shape.mla:
        return 1
    return max(1, shape.num_kv_heads // tp)


def kv_share(shape: ModelShape, layout: ParallelLayout) -> float:
    """The fraction of one replica's KV cache per token that its fullest GPU holds."""
    heads = 1.0 if shape.mla else kv_heads_per_gpu(shape, layout.tp) / shape.num_kv_heads
    return heads * math.ceil(shape.num_layers / layout.pp) / shape.num_layers


def state_share(shape: ModelShape, layout: ParallelLayout) -> float:
    """The fraction of one replica's linear-attention state per sequence that its fullest GPU
    holds: split by TP, layers by PP."""
    return math.ceil(shape.num_layers / layout.pp) / shape.num_layers / layout.tp


def kv_replicated(shape: ModelShape, tp: int) -> bool:
    """Whether TP ``tp`` replicates KV heads (more ranks than heads, or MLA's one latent)."""
    return shape.mla or tp > shape.num_kv_heads


def layout_problems(shape: ModelShape, layout: ParallelLayout) -> list[tuple[str, str]]:
    """(engine key, why) for each split vLLM refuses for this model."""
    found = []
    if shape.num_heads % layout.tp:
        found.append(("tensor_parallel_size", f"{shape.num_heads} attention heads are not "
                      f"divisible by tensor_parallel_size {layout.tp}"))
    if not shape.mla and layout.tp > 1:
        kv = shape.num_kv_heads
        if (kv >= layout.tp and kv % layout.tp) or (kv < layout.tp and layout.tp % kv):
            found.append(("tensor_parallel_size", f"{kv} KV heads and tensor_parallel_size "
                          f"{layout.tp}: one must divide the other"))
    if shape.linear_layers and layout.tp > 1:
        # vLLM 0.32 MambaStateShapeCalculator.gated_delta_net_state_shape: divide() asserts
        for key in ("linear_num_key_heads", "linear_num_value_heads"):
            heads = getattr(shape, key)
            if heads % layout.tp:
                found.append(("tensor_parallel_size", f"{key} {heads} is not divisible by "
                              f"tensor_parallel_size {layout.tp}"))
    if layout.pp > shape.num_layers:
        found.append(("pipeline_parallel_size", f"pipeline_parallel_size {layout.pp} exceeds "
                      f"the model's {shape.num_layers} layers"))
    if layout.expert_parallel and not shape.num_experts:
        found.append(("enable_expert_parallel", "expert parallel needs a mixture-of-experts "
                      "model; this one is dense"))
    return found


# -- tensor-parallel decode ceiling ------------------------------------------------------------

# One all-reduce per attention block and one per MLP block (row-parallel outputs): two per layer.
ALL_REDUCES_PER_LAYER = 2
# Latency of one small (batch-1 hidden state) all-reduce: NCCL / vLLM's custom all-reduce over
# NVLink on H100/H200 takes roughly 5-10 us for a few KB; PCIe several times that.
ALL_REDUCE_LATENCY_S = {"nvlink": 8e-6, "pcie": 25e-6}


@dataclass(frozen=True)
class TensorParallelDecode:
    """Single-stream decode ceiling of TP ``tp``: weights streamed from ``tp`` GPUs at once plus a
    fixed cost per all-reduce."""

    tp: int
    interconnect: str
    stream_s: float  # the fullest GPU reads its share of weights and KV cache
    all_reduce_s: float  # 2 x layers all-reduces of one hidden state, one after another
    tok_s: float
    single_gpu_tok_s: float

    @property
    def speedup(self) -> float:
        return self.tok_s / self.single_gpu_tok_s if self.single_gpu_tok_s else 0.0


def tensor_parallel_decode(bytes_per_gpu: float, single_gpu_bytes: float, bandwidth_bytes_s: float,
                           shape: ModelShape, tp: int, interconnect: str = "nvlink"
                           ) -> TensorParallelDecode:
    """Decode tokens/s of one stream on TP ``tp``: ``1 / (bytes per GPU / bandwidth of one GPU +
    2 x layers x all-reduce latency)``. Not ``tp`` x one GPU: replicated parts (norms, KV heads
    past ``num_kv_heads``) do not shrink, and the all-reduces sit on the critical path."""
    latency = ALL_REDUCE_LATENCY_S.get(interconnect, ALL_REDUCE_LATENCY_S["pcie"])
    stream_s = bytes_per_gpu / bandwidth_bytes_s
    reduce_s = ALL_REDUCES_PER_LAYER * shape.num_layers * latency if tp > 1 else 0.0
    single = bandwidth_bytes_s / single_gpu_bytes
    return TensorParallelDecode(tp, interconnect, stream_s, reduce_s, 1.0 / (stream_s + reduce_s),
                                single)
