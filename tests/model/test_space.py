"""A space in the decision file: its expansion to candidates, their ids, and every error located."""

from __future__ import annotations

import textwrap

import pytest

import stackdecide
from stackdecide.errors import DecisionFileError
from stackdecide.model.schema import Hardware
from stackdecide.model.space import (
    candidate_hardware,
    configuration_hardware,
    configuration_of,
    expand,
    hardware_absence,
)

HEAD = """\
schema: stackdecide/v1
decision:
  title: a space
  hardware: {gpu: NVIDIA H200, count: 1}
  model: {id: Qwen/Qwen3-4B-Instruct-2507, shape: qwen3-4b, weights: bf16}
criteria:
  - {id: speed, weight: 60%}
  - {id: cost, weight: 40%, direction: cost, scale: [0, 4]}
"""


def decision_text(space: str, head: str = HEAD) -> str:
    return head + "space:\n" + textwrap.indent(textwrap.dedent(space), "  ")


def load(space: str, head: str = HEAD) -> stackdecide.Decision:
    return stackdecide.parse(decision_text(space, head), "d.yaml")


def error(space: str, head: str = HEAD) -> str:
    with pytest.raises(DecisionFileError) as info:
        load(space, head)
    return str(info.value)


GRID = """\
base:
  stack: {vllm: "==0.26.0"}
  engine: {max_model_len: 8192, tensor-parallel-size: 1}
axes:
  engine.kv_cache_dtype: [auto, fp8]
  engine.tensor_parallel_size: [1, 2]
  stack.vllm: ["==0.25.1", "==0.26.0"]
"""


def test_every_combination_is_a_candidate_with_an_id_from_its_values() -> None:
    decision = load(GRID)
    assert len(decision.candidates) == 8
    assert decision.candidate_ids[:3] == ("tp1-kv-auto-vllm0.25.1", "tp1-kv-auto-vllm0.26.0",
                                          "tp1-kv-fp8-vllm0.25.1")
    candidate = decision.candidate("tp2-kv-fp8-vllm0.25.1")
    # the axis's spelling replaces the base's spelling of the same option
    assert candidate.engine == {"max_model_len": 8192, "tensor_parallel_size": 2,
                                "kv_cache_dtype": "fp8"}
    assert candidate.stack.vllm == "==0.25.1"
    config = configuration_of(decision.model, candidate.id)
    assert config is not None
    assert {s.axis: s.value for s in config.settings} == {
        "engine.tensor_parallel_size": 2, "engine.kv_cache_dtype": "fp8", "stack.vllm": "==0.25.1"}
    assert configuration_of(decision.model, "no-such") is None


def test_ids_and_order_do_not_depend_on_the_order_of_the_axes() -> None:
    reordered = GRID.replace(
        '  engine.kv_cache_dtype: [auto, fp8]\n  engine.tensor_parallel_size: [1, 2]\n'
        '  stack.vllm: ["==0.25.1", "==0.26.0"]\n',
        '  stack.vllm: ["==0.25.1", "==0.26.0"]\n  engine.tensor_parallel_size: [1, 2]\n'
        '  engine.kv_cache_dtype: [auto, fp8]\n')
    assert reordered != GRID
    first, second = load(GRID), load(reordered)
    assert first.candidate_ids == second.candidate_ids
    assert [c.engine for c in first.candidates] == [c.engine for c in second.candidates]
    assert load(GRID).candidate_ids == first.candidate_ids  # the same across loads


def test_an_exclusion_keeps_its_combinations_out() -> None:
    decision = load(GRID + "exclude:\n  - {engine.kv_cache_dtype: fp8, stack.vllm: [\"==0.25.1\"]}\n")
    assert len(decision.candidates) == 6
    assert not any(c.endswith("kv-fp8-vllm0.25.1") for c in decision.candidate_ids)
    expansion = expand(decision.model.space)
    assert expansion.combinations == 8
    assert [c.id for c in expansion.excluded] == ["tp1-kv-fp8-vllm0.25.1", "tp2-kv-fp8-vllm0.25.1"]
    assert {c.excluded_by for c in expansion.excluded} == {0}


def test_a_condition_applies_an_axis_only_under_the_values_it_names() -> None:
    decision = load("""\
        axes:
          engine.attention_backend: [FLASH_ATTN, FLASHINFER]
          engine.kv_cache_dtype:
            values: [auto, fp8]
            when: {engine.attention_backend: FLASHINFER}
          stack.flashinfer: {values: ["==0.6.14"], when: {engine.kv_cache_dtype: fp8}}
        """)
    assert decision.candidate_ids == ("flash_attn", "flashinfer-kv-auto", "flashinfer-kv-fp8")
    assert "kv_cache_dtype" not in decision.candidate("flash_attn").engine
    # one value: no part of the id; chained: applies only where its condition's axis applies
    assert [c.stack.flashinfer for c in decision.candidates] == [None, None, "==0.6.14"]


def test_named_values_booleans_null_and_axis_names_make_short_ids() -> None:
    decision = load("""\
        base: {engine: {attention_backend: FLASHINFER}, env: {VLLM_X: "1"}}
        axes:
          engine.model: {values: {bf16: Qwen/Qwen3-4B-Instruct-2507, fp8: Qwen/Qwen3-4B-Instruct-2507-FP8}}
          engine.enable_prefix_caching: [true, false]
          engine.attention_backend: [null, TRITON_ATTN]
          env.VLLM_X: ["2", null]
          engine.max_num_batched_tokens: {values: [2048, 8192], name: tok}
        prefix: q
        """)
    ids = decision.candidate_ids
    assert len(ids) == 32
    assert ids[0] == "q-bf16-default-prefix-cache-tok2048-x2"
    assert "q-fp8-triton_attn-no-prefix-cache-tok8192-x-default" in ids
    unset = decision.candidate("q-fp8-default-no-prefix-cache-tok8192-x-default")
    assert "attention_backend" not in unset.engine and unset.env == {}
    assert unset.engine["model"] == "Qwen/Qwen3-4B-Instruct-2507-FP8"


def test_the_base_scores_every_configuration_or_none_score_the_middle_with_a_note() -> None:
    scored = load(GRID.replace("base:\n", "base:\n  scores: {speed: 7, cost: 1}\n"))
    assert {tuple(c.scores.values()) for c in scored.candidates} == {(7.0, 1.0)}
    assert not any("space" in note for note in scored.notes)
    unscored = load(GRID)
    assert {tuple(c.scores.values()) for c in unscored.candidates} == {(5.0, 2.0)}
    assert any("8 configurations all score the middle of each criterion's scale" in note
               for note in unscored.notes)
    ranking = unscored.score()
    # no judgement tells them apart; TP 2 needs two GPUs, where the decision has one
    assert ranking.tied_winners == unscored.candidate_ids[:4]


def test_candidates_written_by_hand_stand_before_the_space() -> None:
    head = HEAD + "candidates:\n  - {id: mine, scores: {speed: 9, cost: 1}}\n"
    decision = load(GRID, head)
    assert decision.candidate_ids[0] == "mine" and len(decision.candidates) == 9
    assert decision.score().winner == "mine"


def test_hardware_axes_give_each_configuration_its_hardware_and_mark_other_hardware() -> None:
    decision = load("""\
        axes:
          hardware.gpu: [H200, NVIDIA H100]
          engine.tensor_parallel_size: [1, 2]
          hardware.count: {values: [2], when: {engine.tensor_parallel_size: 2}}
        """)
    assert decision.candidate_ids == ("h200-tp1", "h200-tp2", "h100-tp1", "h100-tp2")
    decision_hardware = decision.model.decision.hardware
    same = configuration_of(decision.model, "h200-tp1")
    assert configuration_hardware(same, decision_hardware) == decision_hardware
    assert hardware_absence(same, decision_hardware) is None
    two = configuration_of(decision.model, "h200-tp2")
    assert candidate_hardware(decision.model, "h200-tp2") == Hardware(gpu="NVIDIA H200", count=2)
    assert hardware_absence(two, decision_hardware) == "2 GPUs, not the decision's 1"
    other = candidate_hardware(decision.model, "h100-tp1")
    assert other == Hardware(gpu="NVIDIA H100", count=1)  # nothing else of the H200's block
    assert "NVIDIA H100, not the decision's NVIDIA H200" in hardware_absence(
        configuration_of(decision.model, "h100-tp1"), decision_hardware)


def test_findings_about_a_configuration_point_at_the_axis_that_set_the_key() -> None:
    decision = load("""\
        axes:
          engine.attention_backend: [FLASH_ATTN]
          engine.kv_cache_dtype: [auto, fp8_e5m2]
        """)
    ranking = decision.score()
    refused = [f for f in ranking.findings if f.code == "launch:fp8-kv-unsupported-backend"]
    assert [f.subject for f in refused] == ["kv-fp8_e5m2"]
    assert refused[0].where == "d.yaml:12:28 space.axes.engine.kv_cache_dtype"


# -- errors, each at its place in the file -------------------------------------------------------

@pytest.mark.parametrize(("space", "expected"), [
    ("axes:\n  engine.compilation_config.level: [0, 3]\n",
     "d.yaml:11:5 space.axes.engine.compilation_config.level: 'engine.compilation_config.level': "
     "an axis sets a whole engine key"),
    ("axes:\n  engin.kv_cache_dtype: [auto]\n",
     "d.yaml:11:5 space.axes.engin.kv_cache_dtype: unknown axis 'engin.kv_cache_dtype'; did you "
     "mean 'engine'?"),
    ("axes:\n  hardware.vram_gb: [80]\n",
     "hardware axes are hardware.gpu and hardware.count"),
    ("axes:\n  stack.extras: [[a]]\n", "stack axes are stack.FIELD"),
    ("axes:\n  env.1X: ['1']\n", "'1X' is not an environment variable name"),
    ("axes:\n  engine.kv_cache_dtype: []\n",
     "d.yaml:11:28 space.axes.engine.kv_cache_dtype: axis engine.kv_cache_dtype has no values"),
    ("axes:\n  engine.kv_cache_dtype: fp8\n",
     "d.yaml:11:28 space.axes.engine.kv_cache_dtype: 'fp8': an axis is a list of values"),
    ("axes:\n  engine.kv_cache_dtype: {value: [fp8]}\n",
     "space.axes.engine.kv_cache_dtype"),
    ("axes:\n  engine.kv_cache_dtype: [auto, fp8, auto]\n",
     "'auto' is already the value auto of axis engine.kv_cache_dtype"),
    ("axes:\n  engine.max_model_len: [1024]\n  engine.max-model-len: [2048]\n",
     "d.yaml:12:5 space.axes.engine.max-model-len: axis engine.max-model-len sets the same thing as "
     "axis engine.max_model_len"),
    ("axes:\n  env.VLLM_X: [0, 1]\n", "0: environment values are text; quote it ('0')"),
    ("axes:\n  engine.compilation_config: [{level: 0}, {level: 3}]\n",
     "has no short name for an id; name the values of engine.compilation_config"),
    ("axes:\n  engine.kv_cache_dtype: [auto]\nexclude:\n  - {engine.kv_cache: auto}\n",
     "d.yaml:13:8 space.exclude[0].engine.kv_cache: no axis 'engine.kv_cache'; did you mean "
     "'engine.kv_cache_dtype'?"),
    ("axes:\n  engine.kv_cache_dtype: [auto]\nexclude:\n  - {engine.kv_cache_dtype: fp9}\n",
     "d.yaml:13:31 space.exclude[0].engine.kv_cache_dtype: axis engine.kv_cache_dtype has no value "
     "'fp9'; its values: 'auto'"),
    ("axes:\n  engine.kv_cache_dtype: [auto]\nexclude:\n  - {}\n",
     "space.exclude[0]: an empty rule would exclude every configuration"),
    ("axes:\n  engine.a: {values: [1, 2], when: {engine.b: 1}}\n"
     "  engine.b: {values: [1, 2], when: {engine.a: 1}}\n",
     "name each other in a circle"),
    ("axes:\n  engine.a: {values: [1, 2], when: {engine.c: 1}}\n",
     "d.yaml:11:39 space.axes.engine.a.when.engine.c: no axis 'engine.c'"),
    ("axes:\n  engine.attention_backend: [FLASHINFER, flashinfer]\n",
     "d.yaml:11:5 space.axes.engine.attention_backend: values 'FLASHINFER' and 'flashinfer' of axis "
     "engine.attention_backend have the same short name 'flashinfer'"),
    ("axes:\n  engine.model: [" + ", ".join(f"org/a-very-long-model-name-number-{i}" for i in range(2))
     + "]\n  engine.served_model_name: [a-very-long-served-model-name-one, "
       "a-very-long-served-model-name-two]\n",
     "characters, more than 80"),
    ("axes:\n  engine.max_num_seqs: [1, 2, 3, 4, 5, 6, 7, 8]\n  engine.block_size: [8, 16]\n"
     "limit: 12\n",
     "d.yaml:13:10 space.limit: the space holds 16 configurations, more than its limit of 12"),
    ("axes:\n  engine.max_num_seqs: [1, 2]\nlimit: 20000\n", "space.limit: 20000: Input should be"),
    ("base: {scores: {speed: 5}}\naxes:\n  engine.max_num_seqs: [1, 2]\n",
     "d.yaml:10:18 space.base.scores: the base scores speed but not cost: score every criterion, "
     "or none"),
    ("base: {scores: {sped: 5, cost: 1}}\naxes:\n  engine.max_num_seqs: [1, 2]\n",
     "d.yaml:10:19 space.base.scores.sped: no criterion 'sped'; did you mean 'speed'?"),
    ("base: {scores: {speed: 11, cost: 1}}\naxes:\n  engine.max_num_seqs: [1, 2]\n",
     "space.base.scores.speed: 11 is outside the scale 0..10"),
    ("base: {engine: {model: \"a\\0b\"}}\naxes:\n  engine.max_num_seqs: [1, 2]\n",
     "space.base.engine.model: a NUL character cannot be passed to vLLM"),
])
def test_a_wrong_space_is_an_error_at_its_line(space: str, expected: str) -> None:
    assert expected in error(space)


def test_a_space_too_large_to_combine_is_refused_before_it_is_built() -> None:
    axes = "".join(f"  engine.k{i}: [1, 2, 3, 4, 5, 6, 7, 8, 9, 10]\n" for i in range(6))
    assert "the axes combine to more than 100,000 configurations" in error("axes:\n" + axes)


def test_a_hardware_axis_needs_the_decisions_hardware() -> None:
    head = HEAD.replace("  hardware: {gpu: NVIDIA H200, count: 1}\n", "")
    assert "space.axes.hardware.gpu: a hardware axis needs decision.hardware" in \
        error("axes:\n  hardware.gpu: [H100, H200]\n", head)


def test_a_candidate_with_a_configurations_id_is_an_error_at_the_candidate() -> None:
    head = HEAD + "candidates:\n  - {id: tp2, scores: {speed: 9, cost: 1}}\n"
    assert error("axes:\n  engine.tensor_parallel_size: [1, 2]\n", head).startswith(
        "d.yaml:10:10 candidates[0].id: duplicate id 'tp2': the space generates a configuration")


def test_a_file_without_candidates_or_space_still_needs_candidates() -> None:
    with pytest.raises(DecisionFileError, match="candidates: required field is missing"):
        stackdecide.parse(HEAD, "d.yaml")


@pytest.mark.parametrize("name", ["hopper-space.yaml", "hopper-knobs.yaml", "cpu-space.yaml"])
def test_the_example_spaces_load_and_score(name: str) -> None:
    decision = stackdecide.load(f"criteria/{name}")
    expansion = expand(decision.model.space)
    assert len(decision.candidates) == len(expansion.configurations) >= 12
    assert expansion.combinations >= 24
    assert decision.score().scores.shape == (len(decision.candidates),)
