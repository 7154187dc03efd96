"""Shared builders for evidence tests."""

from __future__ import annotations

from typing import Any

import pytest

from stackdecide.evidence.records import EvidenceRecord, HardwareInfo

RTX4090_LAPTOP = "NVIDIA GeForce RTX 4090 Laptop GPU"
# Versions inside every rtx4090.yaml candidate's pins (vllm >=0.10.1, torch ==2.7.1, cuda 12.8,
# transformers ==4.55.0); torch 2.6.2 pins are broken by design in tests that need a mismatch.
MATCHING_SOFTWARE = {"vllm": "0.10.1.1", "torch": "2.7.1+cu128", "cuda": "12.8",
                     "transformers": "4.55.0"}


def make_record(candidate: str = "a", metric: str = "decode_tok_s", value: float = 100.0,
                **fields: Any) -> EvidenceRecord:
    fields.setdefault("hardware", HardwareInfo(gpu=RTX4090_LAPTOP, vram_gb=16,
                                               compute_capability="8.9", driver="575.64"))
    fields.setdefault("software", dict(MATCHING_SOFTWARE))
    return EvidenceRecord(candidate=candidate, metric=metric, value=value, **fields)


@pytest.fixture
def record_factory() -> Any:
    return make_record
