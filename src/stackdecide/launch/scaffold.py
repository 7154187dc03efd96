"""Model directories without weights, for ``--load-format dummy``.

A scaffold holds what vLLM reads before it allocates weights: ``config.json`` (the architecture and
sizes of a known shape), ``generation_config.json`` and a tokenizer whose vocabulary has exactly the
model's ``vocab_size`` entries. Random weights cost the same memory traffic and kernel time as real
ones, so start-up, memory use and speed match the real model; the text it writes is noise.

The tokenizer is a word-level one built locally with the ``tokenizers`` library (no hub access):
every whitespace-separated word is one token, which makes prompts of an exact token count easy to
write (``"t7 t8 t9"`` is three tokens).

Launches share one folder per scaffold (``shared_scaffold``), named by the digest of its files:
vLLM's compile cache is keyed by the model's path among the rest of its config, so the same path
for the same shape is what lets a repeated launch load its compiled graphs instead of compiling.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from stackdecide.errors import StackdecideError
from stackdecide.facts.shapes import SHAPES, ModelShape, get_shape, shape_from_path

# Block-wise FP8 as published in Qwen/Qwen3-4B-Instruct-2507-FP8's config.json.
FP8_BLOCK_QUANTIZATION: dict[str, Any] = {
    "quant_method": "fp8",
    "fmt": "e4m3",
    "activation_scheme": "dynamic",
    "weight_block_size": [128, 128],
}

SPECIAL_TOKENS = ("<|endoftext|>", "<|im_start|>", "<|im_end|>", "<unk>")
EOS_ID, IM_START_ID, IM_END_ID, UNK_ID = range(len(SPECIAL_TOKENS))

# ChatML, so /v1/chat/completions works as well as /v1/completions.
CHAT_TEMPLATE = (
    "{% for message in messages %}{{ '<|im_start|>' + message['role'] + ' ' + message['content']"
    " + '<|im_end|>' + ' ' }}{% endfor %}{% if add_generation_prompt %}"
    "{{ '<|im_start|>' + 'assistant' + ' ' }}{% endif %}"
)

SCAFFOLD_MARKER = "stackdecide-scaffold.json"
MISTRAL_TYPES = frozenset({"mistral", "mistral3", "voxtral", "ministral", "pixtral"})


@dataclass(frozen=True)
class Scaffold:
    """A written model directory and what it stands for."""

    path: Path
    shape: ModelShape
    fp8: bool
    files: tuple[str, ...]


def word_token(index: int) -> str:
    """The vocabulary entry of a plain (non-special) token id."""
    return f"t{index}"


def model_config(shape: ModelShape, fp8: bool = False) -> dict[str, Any]:
    """``config.json`` of a shape: its own published config (``facts.shapes``), with the token ids
    of the scaffold's tokenizer and, with ``fp8``, block-FP8 quantization."""
    config = {key: value for key, value in shape.config.items() if not key.startswith("_")}
    # the scaffold's tokenizer has its own special tokens: the published ids would not exist
    config.update(bos_token_id=EOS_ID, eos_token_id=EOS_ID)
    config.pop("pad_token_id", None)
    config.setdefault("torch_dtype", "bfloat16")
    # transformers >= 5 rewrites the pre-tokenizer of a local tokenizer whose config.json names no
    # version, or one before 5.0 with a Mistral model type (an old Mistral regex bug); the
    # scaffold's word-level tokenizer has no such bug. 4.51.0 is what scaffolds always wrote.
    config["transformers_version"] = "5.0.0" if config.get("model_type") in MISTRAL_TYPES \
        else "4.51.0"
    if fp8 and "quantization_config" not in config:
        config["quantization_config"] = dict(FP8_BLOCK_QUANTIZATION)
    return config


def generation_config() -> dict[str, Any]:
    return {"bos_token_id": EOS_ID, "eos_token_id": [IM_END_ID, EOS_ID],
            "pad_token_id": EOS_ID, "do_sample": False}


def build_tokenizer(vocab_size: int) -> Any:
    """A word-level ``tokenizers.Tokenizer`` with exactly ``vocab_size`` entries."""
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers

    if vocab_size <= len(SPECIAL_TOKENS):
        raise StackdecideError(f"vocab_size {vocab_size} leaves no room for ordinary tokens")
    vocab = {token: i for i, token in enumerate(SPECIAL_TOKENS)}
    vocab.update((word_token(i), i) for i in range(len(SPECIAL_TOKENS), vocab_size))
    tokenizer = Tokenizer(models.WordLevel(vocab=vocab, unk_token="<unk>"))
    tokenizer.pre_tokenizer = pre_tokenizers.WhitespaceSplit()
    tokenizer.decoder = decoders.WordPiece(prefix="##", cleanup=False)  # joins words with spaces
    tokenizer.add_special_tokens(list(SPECIAL_TOKENS))
    return tokenizer


def tokenizer_config(shape: ModelShape) -> dict[str, Any]:
    return {
        "tokenizer_class": "PreTrainedTokenizerFast",
        "model_max_length": shape.max_position_embeddings,
        "bos_token": SPECIAL_TOKENS[EOS_ID],
        "eos_token": SPECIAL_TOKENS[IM_END_ID],
        "pad_token": SPECIAL_TOKENS[EOS_ID],
        "unk_token": SPECIAL_TOKENS[UNK_ID],
        "chat_template": CHAT_TEMPLATE,
        "clean_up_tokenization_spaces": False,
    }


def resolve_shape(shape_name: str, fp8: bool = False) -> tuple[ModelShape, bool]:
    """The shape a scaffold is written for (a built-in name, or the path of a config.json or a
    model folder) and whether it is block-FP8."""
    shape = shape_from_path(shape_name) if shape_name not in SHAPES and \
        Path(shape_name).exists() else get_shape(shape_name)
    fp8 = fp8 or shape.quantization == "fp8-block"
    if fp8 and shape.quantization not in (None, "fp8-block"):
        raise StackdecideError(f"{shape.name} is a {shape.quantization} checkpoint; --fp8 would "
                               "describe another one")
    return shape, fp8


def scaffold_files(shape: ModelShape, fp8: bool) -> dict[str, str]:
    """Every file of a scaffold: name -> text. The same shape gives the same text every time."""
    documents = {
        "config.json": model_config(shape, fp8),
        "generation_config.json": generation_config(),
        "tokenizer_config.json": tokenizer_config(shape),
        "special_tokens_map.json": {"bos_token": SPECIAL_TOKENS[EOS_ID],
                                    "eos_token": SPECIAL_TOKENS[IM_END_ID],
                                    "pad_token": SPECIAL_TOKENS[EOS_ID],
                                    "unk_token": SPECIAL_TOKENS[UNK_ID]},
        SCAFFOLD_MARKER: {"shape": shape.name, "fp8": fp8, "params": shape.params,
                          "note": "config and tokenizer only; serve with --load-format dummy"},
    }
    files = {name: json.dumps(document, indent=2) + "\n" for name, document in documents.items()}
    files["tokenizer.json"] = build_tokenizer(shape.vocab_size).to_str(pretty=True)
    return files


def scaffold_digest(files: dict[str, str]) -> str:
    """SHA-256 of a scaffold's file names and contents."""
    digest = hashlib.sha256()
    for name in sorted(files):
        digest.update(f"{name}\0{files[name]}\0".encode())
    return digest.hexdigest()


def scaffold_model(shape_name: str, directory: str | Path, fp8: bool = False) -> Scaffold:
    """Write a weightless model directory for a built-in shape, or the shape of a config.json
    (a path: a file or a model folder); returns what was written.

    ``fp8`` adds Qwen3-4B-Instruct-2507-FP8's block-wise FP8 ``quantization_config`` (shapes whose
    checkpoint is FP8, such as ``qwen3-4b-fp8``, get it anyway). An existing scaffold in the
    directory is overwritten; a directory holding anything else is refused.
    """
    shape, fp8 = resolve_shape(shape_name, fp8)
    path = Path(directory)
    if path.exists() and not path.is_dir():
        raise StackdecideError(f"{path}: exists and is not a directory")
    if path.is_dir() and any(path.iterdir()) and not (path / SCAFFOLD_MARKER).exists():
        raise StackdecideError(f"{path}: directory is not empty and holds no scaffold; "
                               "choose an empty or new directory")
    path.mkdir(parents=True, exist_ok=True)
    files = scaffold_files(shape, fp8)
    for name, text in files.items():
        (path / name).write_text(text)
    return Scaffold(path, shape, fp8, tuple(files))


# -- one folder per scaffold, shared by every launch -------------------------------------------

WRITING_PREFIX = ".writing-"
SCAFFOLD_PLACEHOLDER = "<scaffold folder>"  # --model in a plan, until the launch finds the folder


def default_models_dir() -> Path:
    """``$XDG_CACHE_HOME/stackdecide/models`` (``~/.cache/...``): beside vLLM's compile cache
    (``$XDG_CACHE_HOME/vllm`` unless ``VLLM_CACHE_ROOT`` says otherwise), whose key holds the
    model's path."""
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "stackdecide" / "models"


def shared_scaffold(shape_name: str, fp8: bool = False, models_dir: Path | None = None) -> Scaffold:
    """The scaffold of a shape in its one folder under ``models_dir``, written if missing.

    vLLM keys its torch.compile cache by a hash of its config, and the model's path is part of it:
    a scaffold written anew for each launch makes every start compile again. The folder is named
    by the digest of what it holds, so a launch of the same shape finds the same path, and a
    folder is never rewritten. It is written under a temporary name and renamed into place, so a
    launch beside it never sees half a model; when two write it at once, the first rename wins
    and the other's copy is removed.
    """
    shape, fp8 = resolve_shape(shape_name, fp8)
    files = scaffold_files(shape, fp8)
    root = models_dir or default_models_dir()
    name = re.sub(r"[^A-Za-z0-9._-]+", "-", shape.name).strip("-.")
    path = root / f"{name}{'-fp8' if fp8 and shape.quantization is None else ''}-" \
        f"{scaffold_digest(files)[:16]}"
    if not path.is_dir():
        _write_atomically(path, files)
    return Scaffold(path, shape, fp8, tuple(files))


def _write_atomically(path: Path, files: dict[str, str]) -> None:
    """Write ``files`` into a new folder ``path``: all of them or, to a reader, none."""
    path.parent.mkdir(parents=True, exist_ok=True)
    writing = Path(tempfile.mkdtemp(prefix=f"{WRITING_PREFIX}{path.name}-", dir=path.parent))
    try:
        for file_name, text in files.items():
            (writing / file_name).write_text(text)
        try:
            writing.rename(path)
        except OSError:
            if not path.is_dir():  # not a lost race: a real error
                raise
    finally:
        shutil.rmtree(writing, ignore_errors=True)
