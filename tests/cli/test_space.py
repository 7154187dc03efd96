"""`stackdecide space`: a space's expansion and static pruning, as text and JSON; `check`'s counts."""

from __future__ import annotations

import json
from pathlib import Path

from click.testing import CliRunner

from stackdecide.cli import main

ROOT = Path(__file__).parents[2]
HOPPER_SPACE = ROOT / "criteria" / "hopper-space.yaml"

# One of each fate on a 24 GiB L4: an exclusion, a KV-cache dtype FLASH_ATTN cannot hold, a
# context the KV cache cannot hold, a layout on more GPUs than the decision has (and, with its
# hardware.count, one on hardware the decision does not have).
FATES = """\
schema: stackdecide/v1
decision:
  title: every fate
  hardware: {gpu: NVIDIA L4, count: 1}
  model: {id: Qwen/Qwen3-4B-Instruct-2507, shape: qwen3-4b, weights: bf16}
criteria:
  - {id: speed, weight: 1, measure: {metric: decode_tok_s}}
space:
  base:
    engine: {model: Qwen/Qwen3-4B-Instruct-2507, attention_backend: FLASH_ATTN}
    scores: {speed: 5}
  axes:
    engine.kv_cache_dtype: [auto, fp8_e5m2]
    engine.max_model_len: [8192, 262144]
    engine.tensor_parallel_size: [1, 2, 4]
    hardware.count: {values: [4], when: {engine.tensor_parallel_size: 4}}
  exclude:
    - {engine.kv_cache_dtype: fp8_e5m2, engine.max_model_len: 262144}
"""


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def fates(tmp_path: Path) -> Path:
    path = tmp_path / "fates.yaml"
    path.write_text(FATES)
    return path


def test_the_hopper_space_is_counted_pruned_and_listed() -> None:
    code, out, _ = run("space", str(HOPPER_SPACE))
    assert code == 0
    assert out.splitlines()[0] == (
        f"{HOPPER_SPACE}: space: 72 combinations: 12 excluded by a rule, 12 cannot start, 0 do not "
        "fit, 48 remain (24 on hardware other than the decision's, ranked by prediction) "
        "(limit 500)")
    assert "  fp8-tp1-flash_attn-kv-fp8_e5m2-seqs64: excluded by exclude[0] " \
           "{engine.kv_cache_dtype: fp8_e5m2, engine.model: fp8}" in out
    assert "  bf16-tp1-flash_attn-kv-fp8_e5m2-seqs64: cannot start: kv_cache_dtype fp8_e5m2 with " \
           "attention backend FLASH_ATTN" in out
    remaining = out.split("remaining (48):")[1].splitlines()
    row = next(line for line in remaining if line.startswith("fp8-tp2-flashinfer-kv-fp8-seqs64 "))
    assert row.split()[1:9] == ["2", "fp8", "2", "FLASHINFER", "fp8", "64", "0", "==0.6.14"]
    assert row.endswith("other: 2 GPUs, not the decision's 1")


def test_the_json_gives_every_configuration_with_its_values_and_verdict() -> None:
    code, out, _ = run("space", str(HOPPER_SPACE), "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert data["counts"] == {"combinations": 72, "excluded": 12, "generated": 60,
                              "cannot_start": 12, "does_not_fit": 0, "remain": 48,
                              "remain_on_other_hardware": 24}
    assert [a["axis"] for a in data["axes"]] == [
        "hardware.count", "engine.model", "engine.tensor_parallel_size",
        "engine.attention_backend", "engine.kv_cache_dtype", "engine.max_num_seqs",
        "env.VLLM_USE_DEEP_GEMM", "stack.flashinfer"]
    assert data["axes"][0]["when"] == {"engine.tensor_parallel_size": [2]}
    by_id = {c["id"]: c for c in data["configurations"]}
    assert len(by_id) == 72
    fp8 = by_id["fp8-tp1-flashinfer-kv-fp8-seqs256"]
    assert fp8["status"] == "remains" and fp8["on_decision_hardware"] is True
    assert fp8["values"]["engine.model"] == "Qwen/Qwen3-4B-Instruct-2507-FP8"
    assert fp8["labels"]["engine.model"] == "fp8"
    assert fp8["values"]["env.VLLM_USE_DEEP_GEMM"] == "0"
    assert "hardware.count" not in fp8["values"]
    refused = by_id["bf16-tp2-flash_attn-kv-fp8_e5m2-seqs128"]
    assert refused["status"] == "cannot-start"
    assert [p["code"] for p in refused["problems"]] == ["fp8-kv-unsupported-backend"]
    assert (refused["hardware"]["gpu"], refused["hardware"]["count"]) == ("NVIDIA H200", 2)
    assert refused["other_hardware"] == "2 GPUs, not the decision's 1"
    excluded = by_id["fp8-tp2-flashinfer-kv-fp8_e5m2-seqs64"]
    assert excluded["status"] == "excluded" and excluded["rule"] == 0


def test_each_fate_has_its_reason(tmp_path: Path) -> None:
    code, out, _ = run("space", str(fates(tmp_path)), "--format", "json")
    assert code == 0
    data = json.loads(out)
    status = {c["id"]: (c["status"], [p["code"] for p in c["problems"] if p["severity"] == "error"])
              for c in data["configurations"]}
    assert status["tp1-kv-auto-len8192"] == ("remains", [])
    assert status["tp1-kv-auto-len262144"] == ("does-not-fit", ["kv-cache-too-small"])
    assert status["tp2-kv-auto-len8192"] == ("does-not-fit", ["not-enough-gpus"])
    assert status["tp1-kv-fp8_e5m2-len8192"] == ("cannot-start", ["fp8-kv-unsupported-backend"])
    assert status["tp2-kv-fp8_e5m2-len8192"][0] == "cannot-start"  # whatever else it breaks
    assert status["tp1-kv-fp8_e5m2-len262144"] == ("excluded", [])
    on_four = next(c for c in data["configurations"] if c["id"] == "tp4-kv-auto-len8192")
    assert on_four["status"] == "remains"
    assert on_four["other_hardware"] == "4 GPUs, not the decision's 1"
    assert data["counts"] == {"combinations": 12, "excluded": 3, "generated": 9,
                              "cannot_start": 3, "does_not_fit": 3, "remain": 3,
                              "remain_on_other_hardware": 2}


def test_check_reports_the_expansion_counts(tmp_path: Path) -> None:
    path = fates(tmp_path)
    code, out, _ = run("check", str(path), "--no-engine-keys", "--no-stacks")
    assert code == 0  # configurations that cannot start or do not fit are pruned, not mistakes
    assert out.splitlines()[1] == (
        "space: 12 combinations: 3 excluded by a rule, 3 cannot start, 3 do not fit, 3 remain "
        f"(2 on hardware other than the decision's, ranked by prediction); `stackdecide space "
        f"{path}` lists them")
    code, out, _ = run("check", str(path), "--no-engine-keys", "--no-stacks", "--format", "json")
    assert json.loads(out)["space"]["generated"] == 9


def test_a_decision_without_a_space_is_refused_clearly(rtx4090_path: Path) -> None:
    code, _, err = run("space", str(rtx4090_path))
    assert code == 2
    assert err == f"error: {rtx4090_path} has no space; add a space: block (docs/space.md)\n"


def test_a_space_above_its_limit_is_an_error_at_its_line(tmp_path: Path) -> None:
    path = tmp_path / "big.yaml"
    path.write_text(FATES.replace("  exclude:", "  limit: 8\n  exclude:"))
    code, _, err = run("space", str(path))
    assert code == 2
    assert err.startswith(f"error: {path}:17:10 space.limit: the space holds 9 configurations, "
                          "more than its limit of 8")


def test_the_cpu_space_is_scored() -> None:
    """Predicted by default (tests/cli/test_score_predict.py); on its judged scores a tie."""
    code, out, _ = run("score", str(ROOT / "criteria" / "cpu-space.yaml"), "--no-predict")
    assert code == 0
    assert "winner: bf16-prefix-cache-batch32-seqs4 (75.00), tied with" in out


def _check_json(path: Path) -> tuple[int, list[dict]]:
    code, out, _ = run("check", str(path), "--no-engine-keys", "--no-stacks", "--format", "json")
    return code, json.loads(out)["findings"]


def test_check_reports_pruned_configurations_as_infos(tmp_path: Path) -> None:
    """The space prunes what cannot start or does not fit: `check` says so in infos, and the
    tie of the configurations that share the base's scores is an info too; `score` still ranks
    the pruned ones infeasible with their errors."""
    code, findings = _check_json(fates(tmp_path))
    assert code == 0
    assert not [f for f in findings if f["severity"] != "info"]
    pruned = {(f["subject"], f["code"]) for f in findings
              if f["message"].startswith("pruned from the space: ")}
    assert ("tp1-kv-fp8_e5m2-len8192", "launch:fp8-kv-unsupported-backend") in pruned
    assert ("tp1-kv-auto-len262144", "launch:kv-cache-too-small") in pruned
    assert ("tp2-kv-auto-len8192", "launch:not-enough-gpus") in pruned
    tie = next(f for f in findings if f["code"] == "tied-winner")
    assert tie["message"] == ("3 configurations of the space tie for first place on the base's "
                              "judged scores (tp1-kv-auto-len8192 is shown first); measurements "
                              "or predictions tell them apart")
    code, out, _ = run("score", str(fates(tmp_path)), "--format", "json")
    refused = {c["id"]: c["infeasible_reasons"] for c in json.loads(out)["candidates"]
               if not c["feasible"]}
    assert len(refused) == 6 and "[launch:kv-cache-too-small]" in refused["tp1-kv-auto-len262144"][0]


def test_a_hand_written_candidate_keeps_its_errors_and_its_tie_warning(tmp_path: Path) -> None:
    path = tmp_path / "mixed.yaml"
    path.write_text(FATES + """\
candidates:
  - id: by-hand
    engine: {model: Qwen/Qwen3-4B-Instruct-2507, attention_backend: FLASH_ATTN,
             kv_cache_dtype: fp8_e5m2, max_model_len: 8192}
    scores: {speed: 5}
  - id: by-hand-too
    engine: {model: Qwen/Qwen3-4B-Instruct-2507, max_model_len: 8192}
    scores: {speed: 5}
""")
    code, findings = _check_json(path)
    assert code == 1
    severity = {(f["subject"], f["code"]): f["severity"] for f in findings}
    assert severity[("by-hand", "launch:fp8-kv-unsupported-backend")] == "error"
    assert severity[("tp1-kv-fp8_e5m2-len8192", "launch:fp8-kv-unsupported-backend")] == "info"
    assert severity[("decision", "tied-winner")] == "warning"  # a hand-written one ties too


def test_a_space_with_nothing_left_keeps_its_errors(tmp_path: Path) -> None:
    """When every configuration is pruned, the space as written is the mistake."""
    path = tmp_path / "nothing-left.yaml"
    path.write_text(FATES.split("space:")[0] + """\
space:
  base:
    engine: {model: Qwen/Qwen3-4B-Instruct-2507, attention_backend: FLASH_ATTN,
             kv_cache_dtype: fp8_e5m2, max_model_len: 8192}
    scores: {speed: 5}
  axes:
    engine.max_num_seqs: [64, 128]
""")
    code, findings = _check_json(path)
    assert code == 1
    assert {f["severity"] for f in findings
            if f["code"] == "launch:fp8-kv-unsupported-backend"} == {"error"}
    assert not [f for f in findings if f["message"].startswith("pruned from the space")]


def test_check_of_the_shipped_spaces_passes() -> None:
    """criteria/hopper-space.yaml prunes 12 configurations with an fp8_e5m2 KV cache (FLASH_ATTN
    has none; FLASHINFER's dies on Hopper in vLLM 0.26); criteria/cpu-space.yaml prunes none.
    Neither file has a mistake to fix."""
    for name, pruned in (("hopper-space.yaml", 12), ("cpu-space.yaml", 0)):
        code, findings = _check_json(ROOT / "criteria" / name)
        assert code == 0, [f for f in findings if f["severity"] != "info"]
        assert len({f["subject"] for f in findings
                    if f["message"].startswith("pruned from the space: ")}) == pruned
