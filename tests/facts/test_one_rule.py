"""Each domain rule has one home, and every part that once had its own copy gives one answer.

Every test here pins a case where two copies of a rule used to disagree: version pins (launcher
vs evidence), GPU names (the roofline's table vs evidence matching), bytes per weight (memory vs
roofline), derived benchmark metrics (``stackdecide bench`` vs imported ``vllm bench serve``
files), and the small shared helpers (user files, JSON writes, "did you mean").
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from stackdecide._files import read_user_text, write_json_atomic
from stackdecide._text import did_you_mean
from stackdecide.bench.runner import BenchConfig, BenchResult, LevelResult
from stackdecide.bench.stats import RequestRecord
from stackdecide.errors import DecisionFileError, EvidenceError
from stackdecide.evidence.apply import gpu_matches, version_problems
from stackdecide.evidence.importers import RunContext, parse_evidence_text
from stackdecide.facts import memory, roofline
from stackdecide.facts.gpus import GPUS, find_gpu
from stackdecide.facts.pins import pin_matches
from stackdecide.facts.shapes import SHAPES
from stackdecide.launch import preflight
from stackdecide.model import derived
from stackdecide.model.schema import Stack
from stackdecide.model.stack import evidence_pins
from stackdecide.vllm.probe import RuntimeVersions

# -- version pins: facts.pins ------------------------------------------------------------------


def _launcher_warns(stack: Stack, torch: str) -> bool:
    runtime = RuntimeVersions(python="/venv/bin/python", torch=torch)
    return any(p.field == "stack.torch" for p in preflight.check_stack(stack, runtime))


def _evidence_mismatch(stack: Stack, torch: str) -> bool:
    return version_problems(evidence_pins(stack), {"torch": torch}) == {"torch": "mismatch"}


@pytest.mark.parametrize(("pin", "installed", "matches"), [
    ("2.7", "2.7.1", False),  # the case the copies disagreed on: pip's torch==2.7 refuses 2.7.1
    ("2.7", "2.7.0", True),
    ("2.7.*", "2.7.1", True),  # a prefix is written as one
    ("2.7.1", "2.7.1+cu128", True),  # a local build of the pinned version
    ("==2.7.1", "2.7.1", True),
    (">=2.6,<2.8", "2.7.1", True),
    ("~=2.6.0", "2.7.1", False),
])
def test_a_pin_gives_one_verdict_in_the_launcher_and_in_evidence(pin: str, installed: str,
                                                                 matches: bool) -> None:
    stack = Stack(torch=pin)
    assert pin_matches(pin, installed) is matches
    assert _launcher_warns(stack, installed) is not matches
    assert _evidence_mismatch(stack, installed) is not matches


def test_cuda_pins_follow_the_same_rule_in_the_launcher() -> None:
    runtime = RuntimeVersions(python="/venv/bin/python", torch="2.7.1+cu128", torch_cuda="12.8")
    assert preflight.check_stack(Stack(cuda=">=12.4"), runtime) == []  # once a string compare
    assert [p.field for p in preflight.check_stack(Stack(cuda="12.9"), runtime)] == ["stack.cuda"]
    assert version_problems({"cuda": ">=12.4"}, {"cuda": "12.8"}) == {}


def test_a_pin_that_is_not_pep440_is_unknown_everywhere() -> None:
    assert pin_matches("latest", "2.7.1") is None and pin_matches("2.7", "nightly") is None
    assert not _launcher_warns(Stack(torch="latest"), "2.7.1")
    assert version_problems({"torch": "latest"}, {"torch": "2.7.1"}) == {"torch": "unknown"}


# -- GPU names: facts.gpus ---------------------------------------------------------------------
LAPTOP_4090 = "NVIDIA GeForce RTX 4090 Laptop GPU"
DESKTOP_4090 = "NVIDIA GeForce RTX 4090"


@pytest.mark.parametrize("name", ["NVIDIA GeForce RTX 4090 Laptop GPU Max-Q", "RTX 4090 Max-Q",
                                  "RTX 4090 Mobile", "rtx 4090 laptop"])
def test_a_laptop_4090_gets_the_laptop_spec_and_is_not_the_desktop_card(name: str) -> None:
    spec = find_gpu(name)
    assert spec is not None and spec.name == LAPTOP_4090 and spec.memory_bandwidth_gb_s == 576
    assert not gpu_matches(name, DESKTOP_4090) and not gpu_matches(DESKTOP_4090, name)


def test_the_desktop_4090_is_not_a_laptop_either_way() -> None:
    spec = find_gpu(DESKTOP_4090)
    assert spec is not None and spec.name == DESKTOP_4090 and spec.memory_bandwidth_gb_s == 1008
    assert find_gpu("RTX 4090") == spec
    assert not gpu_matches(LAPTOP_4090, "RTX 4090") and gpu_matches(DESKTOP_4090, "RTX 4090")


def test_a_laptop_card_without_a_laptop_spec_is_unknown() -> None:
    for name in ("NVIDIA GeForce RTX 3080 Laptop GPU", "RTX 3080 Max-Q", "H100 Mobile"):
        assert find_gpu(name) is None, name


@pytest.mark.parametrize("card", ["RTX 4090", "RTX 3080", "H100"])
@pytest.mark.parametrize("variant", ["Laptop GPU", "Max-Q", "Mobile"])
def test_the_table_and_evidence_agree_on_what_a_variant_is(card: str, variant: str) -> None:
    """A variant name and the plain name are two GPUs to both: never one spec, never a match."""
    plain, other = find_gpu(f"NVIDIA {card}"), find_gpu(f"NVIDIA {card} {variant}")
    assert other is None or other != plain
    assert not gpu_matches(f"NVIDIA {card}", f"NVIDIA {card} {variant}")


def test_every_table_entry_finds_itself() -> None:
    assert all(find_gpu(spec.name) == spec for spec in GPUS)


# -- bytes per weight: facts.dtypes ------------------------------------------------------------
@pytest.mark.parametrize("weights", ["bf16", "fp8", "fp8-block"])
def test_memory_and_roofline_weigh_qwen3_4b_alike(weights: str) -> None:
    shape = SHAPES["qwen3-4b"]  # tied embeddings: memory holds exactly what a decode step reads
    held = memory.weight_bytes(shape, weights)
    read = roofline.weight_traffic(shape, weights)
    assert held == read.total
    linear = shape.linear_params
    assert read.scale_bytes == (linear / 128**2 * 4 if weights == "fp8-block" else 0.0)
    assert read.linear_bytes == linear * (2 if weights == "bf16" else 1)
    assert read.lm_head_bytes == shape.lm_head_params * 2  # stays BF16 in FP8 checkpoints


def test_an_untied_model_holds_its_embedding_table_but_does_not_read_it() -> None:
    shape = SHAPES["llama-3.1-8b"]
    for weights in ("bf16", "fp8", "fp8-block"):
        held = memory.weight_bytes(shape, weights)
        assert held - roofline.weight_traffic(shape, weights).total == shape.lm_head_params * 2


# -- derived metrics: model.derived ------------------------------------------------------------
def _requests(ttfts: list[float], prompt: int = 512, output: int = 1,
              chunks: int | None = None, gap_s: float = 0.001) -> list[RequestRecord]:
    chunks = output if chunks is None else chunks
    return [RequestRecord(index=i, prompt_len=prompt + i % 2, max_tokens=output, success=True,
                          ttft_s=ttft, latency_s=ttft + gap_s * (chunks - 1),
                          itl_s=[gap_s] * (chunks - 1), output_tokens=output, chunks=chunks,
                          usage_reported=True) for i, ttft in enumerate(ttfts)]


def _bench_rows(scenario: str, records: list[RequestRecord]) -> dict[str, float]:
    level = LevelResult(concurrency=1, input_len=512, output_len=records[0].max_tokens,
                        num_prompts=len(records), records=records, duration_s=1.5, complete=True)
    result = BenchResult(BenchConfig(url="http://127.0.0.1:1", scenario=scenario),
                         levels=[level])
    return {row.metric: row.value for row in result.metric_rows()}


def _vllm_file(records: list[RequestRecord], detailed: bool) -> dict[str, Any]:
    """What ``vllm bench serve --save-result [--save-detailed]`` writes for these requests: its
    summary numbers are our summary's, since both follow vLLM's calculate_metrics."""
    level = LevelResult(1, 512, records[0].max_tokens, len(records), records, 1.5, True)
    summary = level.summary()
    assert summary.ttft is not None
    result: dict[str, Any] = {
        "backend": "vllm", "max_concurrency": 1, "num_prompts": len(records),
        "completed": summary.completed, "failed": 0, "duration": 1.5,
        "total_input_tokens": summary.total_input_tokens,
        "total_output_tokens": summary.total_output_tokens,
        "request_throughput": summary.request_per_s, "output_throughput": summary.output_tok_s,
        "mean_ttft_ms": summary.ttft.mean, "median_ttft_ms": summary.ttft.median}
    for name in ("tpot", "itl"):
        dist = getattr(summary, name)
        if dist is not None:
            result.update({f"mean_{name}_ms": dist.mean, f"median_{name}_ms": dist.median})
    if detailed:
        result.update({"input_lens": [r.prompt_len for r in records],
                       "output_lens": [r.output_tokens for r in records],
                       "ttfts": [r.ttft_s for r in records], "itls": [r.itl_s for r in records],
                       "errors": ["" for _ in records]})
    return result


def _imported(result: dict[str, Any]) -> tuple[dict[str, float], tuple[str, ...]]:
    imported = parse_evidence_text(json.dumps(result), "run.json", RunContext(candidate="a"))
    return {r.metric: r.value for r in imported.records}, imported.notes


def test_bench_and_an_imported_file_of_the_same_requests_give_the_same_prefill_tok_s() -> None:
    # four requests (an even count), prompts of 512 and 513 tokens: the median of per-request
    # rates, where the importer once divided the mean prompt by the median TTFT
    records = _requests([0.20, 0.25, 0.40, 0.30])
    bench = _bench_rows("prefill", records)["prefill_tok_s"]
    imported, _ = _imported(_vllm_file(records, detailed=True))
    assert imported["prefill_tok_s"] == pytest.approx(bench, rel=1e-12)
    assert bench == derived.prefill_tok_s([r.prompt_len for r in records],
                                          [r.ttft_s for r in records])
    assert bench != pytest.approx((512.5 / 0.275), rel=1e-6)  # the old importer's figure


def test_a_summary_only_file_gives_the_same_prefill_tok_s_where_the_summary_can() -> None:
    # one prompt length and an odd count: the median request's rate is prompt / median TTFT
    records = [r for r in _requests([0.20, 0.25, 0.40, 0.30, 0.22]) if r.prompt_len == 512]
    assert len(records) == 3
    imported, _ = _imported(_vllm_file(records, detailed=False))
    assert imported["prefill_tok_s"] == pytest.approx(_bench_rows("prefill", records)
                                                      ["prefill_tok_s"], rel=1e-12)


@pytest.mark.parametrize("detailed", [True, False])
def test_a_bursty_stream_has_no_decode_tok_s_in_bench_or_import(detailed: bool) -> None:
    bursty = _requests([0.05] * 3, prompt=128, output=64, chunks=2)
    steady = _requests([0.05] * 3, prompt=128, output=64)
    assert "decode_tok_s" not in _bench_rows("decode", bursty)
    imported, notes = _imported(_vllm_file(bursty, detailed))
    assert "decode_tok_s" not in imported and any("bursty" in note for note in notes)
    expected = _bench_rows("decode", steady)["decode_tok_s"]
    assert _imported(_vllm_file(steady, detailed))[0]["decode_tok_s"] == pytest.approx(expected)


def test_a_stream_held_back_and_delivered_at_once_has_no_decode_tok_s_in_bench_or_import() -> None:
    # measured on 2 cores: one-token chunks, all read within microseconds of the first, which came
    # when the request was done (TTFT 210 ms); 1000 / TPOT would say ~300,000 tok/s
    held = _requests([0.21] * 3, prompt=32, output=256, gap_s=3e-6)
    assert derived.arrivals(held[0].chunks, held[0].itl_s) == 1
    assert "decode_tok_s" not in _bench_rows("decode", held)
    imported, notes = _imported(_vllm_file(held, detailed=True))
    assert "decode_tok_s" not in imported and any("per arrival is 256.0" in n for n in notes)
    # a stream whose chunks come 50 us apart or more is streamed, however fast
    assert derived.arrivals(256, [derived.ARRIVAL_GAP_S] * 255) == 256
    assert derived.arrivals(0, []) == 0


# -- user files, JSON writes, "did you mean": _files, _text ------------------------------------
def test_user_files_are_refused_alike_whoever_reads_them(tmp_path: Path) -> None:
    binary = tmp_path / "x.yaml"
    binary.write_bytes(b"a: 1\n\x00")
    for error, kind, content in ((DecisionFileError, "decision file", "YAML"),
                                 (EvidenceError, "evidence file", "JSON")):
        with pytest.raises(error, match=f"expected {content} text"):
            read_user_text(binary, kind=kind, content=content, limit=100, error=error)
        with pytest.raises(error, match=f"{kind}s are at most 2$"):
            read_user_text(binary, kind=kind, content=content, limit=2, error=error)
        with pytest.raises(error, match=f"is a directory, not an? {kind}"):
            read_user_text(tmp_path, kind=kind, content=content, limit=100, error=error)


def test_json_is_written_whole_and_leaves_no_temporary_file(tmp_path: Path) -> None:
    target = tmp_path / "state.json"
    write_json_atomic(target, {"a": 1})
    write_json_atomic(target, {"a": Path("/x")}, indent=2, default=str)
    assert json.loads(target.read_text()) == {"a": "/x"}
    assert [p.name for p in tmp_path.iterdir()] == ["state.json"]


def test_did_you_mean() -> None:
    assert did_you_mean("titel", ["title", "date"]) == "; did you mean 'title'?"
    assert did_you_mean("zzz", ["title", "date"]) == ""


def test_one_rule_reads_a_vllm_pin_for_every_versioned_table() -> None:
    """Flag history, backend rules and engine defaults pick a candidate's release alike."""
    from packaging.version import Version

    from stackdecide.facts import backends, vllm_defaults
    from stackdecide.facts.pins import release_for
    from stackdecide.vllm import flags

    known = ("0.20.0", "0.24.0", "0.26.0", "0.32.0")
    assert release_for("==0.26.0", "0.32.0", known) == (Version("0.26.0"), "stack.vllm ==0.26.0")
    assert release_for(">=0.20,<0.25", None, known)[0] == Version("0.24.0")
    assert release_for(">=0.20", "0.32.0", known)[0] == Version("0.32.0")  # admitted: installed
    assert release_for(None, "0.30.0", known)[0] == Version("0.30.0")
    assert release_for(None, None, known)[0] == Version("0.32.0")
    assert release_for("<0.1", None, known)[0] is None
    assert release_for("latest", None, known)[0] is None
    for pin in ("==0.26.0", ">=0.20,<0.25"):
        chosen = {str(backends.rules_version(pin, None).version),
                  str(vllm_defaults.vllm_release(pin, None).version), flags.release_for_pin(pin)[0]}
        assert len(chosen) == 1, (pin, chosen)
