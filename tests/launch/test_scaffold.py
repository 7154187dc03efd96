"""Weightless model directories: config, generation config, tokenizer of the model's vocab size."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner
from tokenizers import Tokenizer

from stackdecide.cli import main
from stackdecide.errors import StackdecideError
from stackdecide.facts.shapes import SHAPES, shape_from_config
from stackdecide.launch.scaffold import (
    FP8_BLOCK_QUANTIZATION,
    SCAFFOLD_MARKER,
    scaffold_model,
)


@pytest.mark.parametrize("name", sorted(SHAPES))
def test_every_shape_scaffolds_with_its_vocabulary(name: str, tmp_path: Path) -> None:
    shape = SHAPES[name]
    result = scaffold_model(name, tmp_path / name)
    config = json.loads((result.path / "config.json").read_text())
    assert config["vocab_size"] == shape.vocab_size
    assert config["num_hidden_layers"] == shape.num_layers
    assert config["num_key_value_heads"] == shape.num_kv_heads
    assert config["architectures"] == [shape.architecture]
    assert ("quantization_config" in config) == (shape.quantization is not None)
    tokenizer = Tokenizer.from_file(str(result.path / "tokenizer.json"))
    assert tokenizer.get_vocab_size() == shape.vocab_size
    assert tokenizer.encode("t5 t6 t7").ids == [5, 6, 7]  # one word, one token
    read_back = shape_from_config(config, name)
    assert read_back is not None
    assert (read_back.params, read_back.kv_elements_per_token, read_back.quantization) == \
        (shape.params, shape.kv_elements_per_token, shape.quantization)
    generation = json.loads((result.path / "generation_config.json").read_text())
    assert generation["eos_token_id"]


def test_fp8_flag_adds_the_published_block_quantization(tmp_path: Path) -> None:
    result = scaffold_model("qwen3-4b", tmp_path / "q", fp8=True)
    config = json.loads((result.path / "config.json").read_text())
    assert config["quantization_config"] == {
        "quant_method": "fp8", "fmt": "e4m3", "activation_scheme": "dynamic",
        "weight_block_size": [128, 128]} == FP8_BLOCK_QUANTIZATION
    assert result.fp8


def test_transformers_reads_the_tokenizer(tmp_path: Path) -> None:
    transformers = pytest.importorskip("transformers")
    result = scaffold_model("tiny", tmp_path / "tiny")
    tokenizer = transformers.AutoTokenizer.from_pretrained(str(result.path))
    assert len(tokenizer) == SHAPES["tiny"].vocab_size
    assert tokenizer.decode(tokenizer.encode("t9 t10", add_special_tokens=False)) == "t9 t10"
    chat = tokenizer.apply_chat_template([{"role": "user", "content": "t9"}], tokenize=False,
                                         add_generation_prompt=True)
    assert chat.endswith("<|im_start|>assistant ")


def test_refuses_a_directory_holding_something_else(tmp_path: Path) -> None:
    (tmp_path / "notes.txt").write_text("mine")
    with pytest.raises(StackdecideError, match="not empty"):
        scaffold_model("tiny", tmp_path)
    again = scaffold_model("tiny", tmp_path / "s")
    assert (again.path / SCAFFOLD_MARKER).exists()
    scaffold_model("tiny", tmp_path / "s")  # rewriting a scaffold is fine
    with pytest.raises(StackdecideError, match="unknown model shape"):
        scaffold_model("gpt-5", tmp_path / "x")


def test_cli_scaffold(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["model", "scaffold", "qwen3-4b", str(tmp_path / "q"),
                                       "--fp8"])
    assert result.exit_code == 0, result.output
    assert "4.022 B params" in result.output and "fp8-block" in result.output
    assert (tmp_path / "q" / "tokenizer.json").exists()
    bad = CliRunner().invoke(main, ["model", "scaffold", "qwen9", str(tmp_path / "z")])
    assert bad.exit_code == 2
