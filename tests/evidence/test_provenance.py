"""Imports that are what they claim: the same file twice is not counted twice, and results of
another model than the candidate's are called out."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from stackdecide.evidence.store import EvidenceStore, default_evidence_path

from .test_cli import GPU, run
from .test_importers import vllm_bench_serve_result


@pytest.fixture
def decision(tmp_path: Path, rtx4090_path: Path) -> Path:
    return Path(shutil.copy(rtx4090_path, tmp_path / "rtx4090.yaml"))


def _import(decision: Path, *files: Path) -> tuple[int, str, str]:
    return run("evidence", "import", *map(str, files), "--decision", str(decision),
               "--candidate", "vllm-cuda-torch271", *GPU, "--software", "vllm=0.10.1.1")


def test_the_same_file_twice_is_recognised_by_its_content(decision: Path, tmp_path: Path) -> None:
    first = tmp_path / "bench.json"
    first.write_text(json.dumps(vllm_bench_serve_result()))
    code, out, err = _import(decision, first)
    assert code == 0, err
    assert "stored 14 records (ids 1..14)" in out
    renamed = tmp_path / "copy-of-bench.json"
    shutil.copy(first, renamed)
    code, out, err = _import(decision, renamed)
    assert code == 0, err
    assert (f"{renamed}: skipped, the same content (sha256:") in err
    assert "was imported before as records 1..14; importing it again would count its " \
           "measurements twice" in err
    assert "stored 0 records" in out
    with EvidenceStore(default_evidence_path(decision)) as store:
        records = store.load()
    assert len(records) == 14 and all(r.source and " sha256:" in r.source for r in records)
    other = tmp_path / "bench-8.json"
    other.write_text(json.dumps(vllm_bench_serve_result(8)))
    code, out, err = _import(decision, other, other)  # once new, once in the same batch again
    assert "stored 13 records (ids 15..27)" in out and f"{other}: skipped" in err


def test_an_export_imported_back_into_its_store_is_not_counted_twice(decision: Path,
                                                                     tmp_path: Path) -> None:
    results = tmp_path / "bench.json"
    results.write_text(json.dumps(vllm_bench_serve_result()))
    assert _import(decision, results)[0] == 0
    store = default_evidence_path(decision)
    exported = tmp_path / "all.json"
    assert run("evidence", "export", "--evidence", str(store), "-o", str(exported))[0] == 0
    code, out, err = run("evidence", "import", str(exported), "--evidence", str(store))
    assert code == 0 and "stored 0 records" in out and "skipped" in err


def test_results_of_another_model_are_called_out(decision: Path, tmp_path: Path) -> None:
    ours = tmp_path / "ours.json"  # rtx4090.yaml serves Qwen/Qwen3-4B-Instruct-2507-FP8
    ours.write_text(json.dumps(vllm_bench_serve_result()))
    code, _, err = _import(decision, ours)
    assert code == 0 and "warning" not in err
    theirs = tmp_path / "theirs.json"
    theirs.write_text(json.dumps(vllm_bench_serve_result(model_id="meta-llama/Llama-3.1-8B")))
    code, _, err = _import(decision, theirs)
    assert code == 0, err
    warnings = [line for line in err.splitlines() if line.startswith("warning:")]
    assert warnings == [
        f"warning: {theirs}: the server ran model 'meta-llama/Llama-3.1-8B', but candidate "
        "'vllm-cuda-torch271' serves qwen/qwen3-4b-instruct-2507-fp8: these measurements are "
        "of another model"]
