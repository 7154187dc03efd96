"""The race never launches a candidate that cannot start as written, and says so when none can.

Launches are synthetic (``orchestrate.measure`` replaced), as in test_race.py; scoring, certainty
and the racing policy are the real ones.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from race_launches import fake_measure

import stackdecide
from stackdecide import orchestrate
from stackdecide.evidence import EvidenceRecord, EvidenceStore, HardwareInfo
from stackdecide.evidence.records import EvidenceSet
from stackdecide.model.certainty import CertaintySettings
from stackdecide.race import RaceLimits, race_state, until_certain

# "refused" leads on judged scores, but an FP8 KV cache with FLASH_ATTN cannot start on SM 8.9
# (vLLM 0.32 runs FlashAttention 2 there: vllm/v1/attention/backends/flash_attn.py)
DECISION = """\
schema: stackdecide/v1
decision:
  title: three stacks on an L40S
  hardware: {gpu: NVIDIA L40S, compute_capability: "8.9"}
  model: {id: meta-llama/Llama-3.1-8B-Instruct, shape: llama-3.1-8b}
criteria:
  - id: decode
    weight: 1
    measure: {metric: decode_tok_s, value: linear, worst: 0, best: 400}
candidates:
  - id: refused
    engine: {max_model_len: 8192, kv_cache_dtype: fp8, attention_backend: FLASH_ATTN}
    scores: {decode: 9}
  - id: a
    engine: {max_model_len: 8192, attention_backend: FLASH_ATTN}
    scores: {decode: 5}
  - id: b
    engine: {max_model_len: 8192, attention_backend: FLASHINFER}
    scores: {decode: 6}
"""

# the same candidates, each with an FP8 KV cache on FLASH_ATTN: none can start
NONE_CAN_START = DECISION.split("candidates:")[0] + """\
candidates:
  - id: refused
    engine: {max_model_len: 8192, kv_cache_dtype: fp8, attention_backend: FLASH_ATTN}
    scores: {decode: 9}
  - id: a
    engine: {max_model_len: 8192, kv_cache_dtype: fp8, attention_backend: FLASH_ATTN}
    scores: {decode: 5}
  - id: b
    engine: {max_model_len: 8192, kv_cache_dtype: fp8, attention_backend: FLASH_ATTN}
    scores: {decode: 6}
"""

@pytest.fixture
def store(tmp_path: Path):
    with EvidenceStore(tmp_path / "evidence.db") as opened:
        yield opened


def test_a_candidate_that_cannot_start_is_not_launchable() -> None:
    ranking = stackdecide.parse(DECISION).score(evidence=EvidenceSet(),
                                                certainty=CertaintySettings())
    state = race_state(ranking)
    refused = ranking.candidate_ids.index("refused")
    assert not state.could_win[refused] and state.p.p_best[refused] == 0
    assert ranking.winner == "b"


def test_the_race_never_launches_it(store: EvidenceStore, monkeypatch: pytest.MonkeyPatch) -> None:
    launched: list[str] = []
    monkeypatch.setattr(orchestrate, "measure",
                        fake_measure({"refused": 390, "a": 300, "b": 150}, 0.02,
                                     np.random.default_rng(0), launched, gpu="NVIDIA L40S"))
    result = until_certain(stackdecide.parse(DECISION), store, seed=1)
    assert "refused" not in launched
    assert result.stop.kind == "certified" and result.certified == "a"
    assert result.certainty.p_best["refused"] == 0


def test_with_no_feasible_candidate_the_race_stops_at_once(
        store: EvidenceStore, monkeypatch: pytest.MonkeyPatch) -> None:
    launched: list[str] = []
    monkeypatch.setattr(orchestrate, "measure", fake_measure({}, 0.02, np.random.default_rng(0), launched,
                                     gpu="NVIDIA L40S"))
    result = until_certain(stackdecide.parse(NONE_CAN_START), store,
                           limits=RaceLimits(max_launches=3))
    assert launched == []
    assert result.stop.kind == "settled"
    assert result.stop.reason.startswith("no candidate is feasible, so there is nothing to race")
    assert "refused: cannot start as written (launch:fp8-kv-unsupported-backend)" in \
        result.stop.reason


def test_the_verdict_of_no_feasible_candidate_names_no_leader() -> None:
    decision = stackdecide.parse(NONE_CAN_START)
    records = [EvidenceRecord(candidate=cid, metric="decode_tok_s", value=200.0,
                              hardware=HardwareInfo(gpu="NVIDIA L40S"), source=f"run 1-{cid}")
               for cid in decision.candidate_ids]
    ranking = decision.score(evidence=EvidenceSet.of(records))
    assert ranking.winner is None and ranking.certainty is not None
    verdict = ranking.certainty.verdict
    assert verdict.kind == "infeasible" and verdict.winner is None
    assert verdict.text == "no candidate is feasible: nothing to certify"
