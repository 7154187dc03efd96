"""Weightless model directories: config, generation config, tokenizer of the model's vocab size."""

from __future__ import annotations

import json
import threading
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
    default_models_dir,
    resolve_shape,
    scaffold_files,
    scaffold_model,
    shared_scaffold,
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


# -- the folder launches share -----------------------------------------------------------------

def _files(folder: Path) -> dict[str, tuple[int, int, bytes]]:
    """Each file's inode, modification time and bytes: what a rewrite would change."""
    return {f.name: (f.stat().st_ino, f.stat().st_mtime_ns, f.read_bytes())
            for f in sorted(folder.iterdir())}


def test_the_same_shape_gets_the_same_folder_written_once(tmp_path: Path) -> None:
    first = shared_scaffold("tiny", models_dir=tmp_path)
    before = _files(first.path)
    again = shared_scaffold("tiny", models_dir=tmp_path)
    assert again.path == first.path and first.path.parent == tmp_path
    assert first.path.name.startswith("tiny-")
    assert _files(again.path) == before  # not rewritten: same inodes, times and bytes
    assert [p.name for p in tmp_path.iterdir()] == [first.path.name]
    written = scaffold_model("tiny", tmp_path / "copy")  # what `model scaffold` writes
    assert {name: data for name, (_, _, data) in before.items()} == \
        {f.name: f.read_bytes() for f in written.path.iterdir()}


def test_another_shape_or_fp8_gets_another_folder(tmp_path: Path) -> None:
    paths = {shared_scaffold("qwen3-4b", models_dir=tmp_path).path,
             shared_scaffold("qwen3-4b", fp8=True, models_dir=tmp_path).path,
             shared_scaffold("qwen3-4b-fp8", models_dir=tmp_path).path,
             shared_scaffold("tiny", models_dir=tmp_path).path}
    assert len(paths) == 4
    fp8 = shared_scaffold("qwen3-4b", fp8=True, models_dir=tmp_path)
    assert fp8.path.name.startswith("qwen3-4b-fp8-") and fp8.fp8
    config = json.loads((fp8.path / "config.json").read_text())
    assert config["quantization_config"] == FP8_BLOCK_QUANTIZATION


def test_a_config_json_shape_gets_a_folder_name_without_its_path(tmp_path: Path) -> None:
    source = scaffold_model("tiny", tmp_path / "my model")
    shared = shared_scaffold(str(source.path / "config.json"), models_dir=tmp_path / "models")
    assert shared.path.parent == tmp_path / "models" and "/" not in shared.path.name
    assert (shared.path / "tokenizer.json").exists()


def test_writers_at_the_same_time_leave_one_complete_folder(tmp_path: Path,
                                                            monkeypatch: pytest.MonkeyPatch) -> None:
    """Six launches find no folder and each writes its copy; they rename at the same moment. One
    copy becomes the folder, the others are dropped, and every launch gets the same path."""
    writers = 6
    at_rename = threading.Barrier(writers, timeout=60)
    rename = Path.rename
    lost: list[Path] = []

    def rename_together(self: Path, target: Path) -> Path:
        at_rename.wait()  # every writer has passed the check and written its copy
        try:
            return rename(self, target)
        except OSError:
            lost.append(self)
            raise

    monkeypatch.setattr(Path, "rename", rename_together)
    found: list[Path] = []
    threads = [threading.Thread(target=lambda: found.append(
        shared_scaffold("qwen3-4b", models_dir=tmp_path).path)) for _ in range(writers)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(found) == writers and len(set(found)) == 1 and len(lost) == writers - 1
    assert [p.name for p in tmp_path.iterdir()] == [found[0].name]  # no copy left behind
    assert {f.name: f.read_text() for f in found[0].iterdir()} == \
        scaffold_files(*resolve_shape("qwen3-4b"))


def test_scaffolds_live_beside_vllms_cache(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path))
    assert default_models_dir() == tmp_path / "stackdecide" / "models"
    monkeypatch.delenv("XDG_CACHE_HOME")
    assert default_models_dir() == Path.home() / ".cache" / "stackdecide" / "models"
