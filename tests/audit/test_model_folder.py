"""A model folder with its own config.json gets the same memory verdict as a built-in shape."""

from __future__ import annotations

import json
from pathlib import Path

import stackdecide
from stackdecide.audit import engine_config

# Mistral-7B-Instruct-v0.3's published config.json, written out here as a user's model folder has it
MISTRAL_7B = {
    "architectures": ["MistralForCausalLM"], "hidden_size": 4096, "intermediate_size": 14336,
    "max_position_embeddings": 32768, "model_type": "mistral", "num_attention_heads": 32,
    "num_hidden_layers": 32, "num_key_value_heads": 8, "rms_norm_eps": 1e-05,
    "rope_theta": 1000000.0, "sliding_window": None, "tie_word_embeddings": False,
    "torch_dtype": "bfloat16", "vocab_size": 32768,
}

DECISION = """\
schema: stackdecide/v1
decision:
  title: Mistral 7B on {vram} GB
  hardware: {{gpu: NVIDIA L4, vram_gb: {vram}, compute_capability: "8.9"}}
  model: {model}
criteria:
  - {{id: speed, weight: 1}}
candidates:
  - id: bf16
    engine: {{model: {engine_model}, dtype: bfloat16, max_model_len: 8192}}
    scores: {{speed: 5}}
"""


def _codes(vram: int, model: str, engine_model: str) -> list[str]:
    decision = stackdecide.parse(DECISION.format(vram=vram, model=model, engine_model=engine_model))
    return sorted(p.code for p in engine_config.decision_problems(decision, "bf16")
                  if p.severity == "error")


def test_a_model_folder_and_the_built_in_shape_get_the_same_verdict(tmp_path: Path) -> None:
    folder = tmp_path / "Mistral-7B-Instruct-v0.3"
    folder.mkdir()
    (folder / "config.json").write_text(json.dumps(MISTRAL_7B))
    built_in = "{id: mistralai/Mistral-7B-Instruct-v0.3, shape: mistral-7b-v0.3}"
    from_folder = "{id: mistralai/Mistral-7B-Instruct-v0.3}"
    # 14.5 GB of BF16 weights: refused on an 8 GB card, accepted on 24 GB, whichever way it is known
    assert _codes(8, built_in, "mistralai/Mistral-7B-Instruct-v0.3") == ["weights-do-not-fit"]
    assert _codes(8, from_folder, str(folder)) == ["weights-do-not-fit"]
    assert _codes(24, built_in, "mistralai/Mistral-7B-Instruct-v0.3") == []
    assert _codes(24, from_folder, str(folder)) == []


def test_without_any_shape_the_check_says_it_was_skipped() -> None:
    decision = stackdecide.parse(DECISION.format(vram=8, model="{id: someone/unknown-model}",
                                                 engine_model="someone/unknown-model"))
    findings = [f for f in decision.score().findings if f.code == "launch:check-skipped"]
    assert findings and "give decision.model.config" in findings[0].message
