"""``stackdecide evidence``: list, add, import and export through the command line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from click.testing import CliRunner

from stackdecide.cli import main
from stackdecide.evidence.store import EvidenceStore, default_evidence_path

from .test_importers import vllm_bench_serve_result

GPU = ["--gpu", "NVIDIA GeForce RTX 4090 Laptop GPU", "--vram-gb", "15.99", "--driver", "575.64"]


@pytest.fixture
def decision(tmp_path: Path, rtx4090_path: Path) -> Path:
    return Path(shutil.copy(rtx4090_path, tmp_path / "rtx4090.yaml"))


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def test_import_list_export_round_trip(decision: Path, tmp_path: Path) -> None:
    results = tmp_path / "bench.json"
    results.write_text(json.dumps(vllm_bench_serve_result()) + "\n"
                       + json.dumps(vllm_bench_serve_result(8)))
    code, out, err = run("evidence", "import", str(results), "--decision", str(decision),
                         "--candidate", "vllm-cuda-torch271", *GPU, "--software", "vllm=0.10.1.1",
                         "--scenario", "warm=true")
    assert code == 0, err
    assert f"{results}: vllm bench serve result, 27 records" in err
    store_path = default_evidence_path(decision)
    assert f"stored 27 records (ids 1..27) in {store_path}" in out
    with EvidenceStore(store_path) as store:
        decode = store.load(metric="decode_tok_s")
    assert [r.scenario["concurrency"] for r in decode] == [1, 8]
    assert all(r.scenario["warm"] is True and r.hardware and r.hardware.driver == "575.64"
               for r in decode)

    code, out, err = run("evidence", "list", "--decision", str(decision), "--metric",
                         "decode_tok_s")
    assert code == 0, err
    assert f"{store_path}: 2 records" in err
    lines = out.splitlines()
    assert lines[0].split()[:5] == ["id", "candidate", "metric", "value", "unit"]
    assert "135.135" in lines[2] and "concurrency=1" in lines[2]

    exported = tmp_path / "all.jsonl"
    code, _, err = run("evidence", "export", "--evidence", str(store_path), "--format", "jsonl",
                       "-o", str(exported))
    assert code == 0 and "wrote 27 records" in err
    other = tmp_path / "other.db"
    code, out, err = run("evidence", "import", str(exported), "--evidence", str(other))
    assert code == 0, err
    with EvidenceStore(other) as copy, EvidenceStore(store_path) as original:
        assert copy.load() == original.load()

    code, out, _ = run("evidence", "export", "--evidence", str(other), "--format", "csv",
                       "--candidate", "nobody")
    assert code == 0 and out.startswith("id,candidate,metric,value") and len(out.splitlines()) == 1


def test_add_checks_the_candidate_and_metric(decision: Path) -> None:
    code, _, err = run("evidence", "add", "--decision", str(decision), "--candidate",
                       "vllm-flashinfer-torch27", "--metric", "decode_tok_s", "--value", "120")
    assert code == 2
    assert err.startswith(f"error: no candidate 'vllm-flashinfer-torch27' in {decision}; did you "
                          "mean 'vllm-flashinfer-torch271'?")
    code, _, err = run("evidence", "add", "--decision", str(decision), "--candidate",
                       "vllm-flashinfer-torch271", "--metric", "decode_toks", "--value", "120")
    assert code == 2
    assert err.startswith("error: metric: unknown metric 'decode_toks'; did you mean "
                          "'decode_tok_s'? Known metrics: decode_tok_s, prefill_tok_s")
    assert not default_evidence_path(decision).exists()  # refused input creates no store

    code, out, err = run("evidence", "add", "--decision", str(decision), "--candidate",
                         "vllm-flashinfer-torch271", "--metric", "launch_ok", "--value", "0",
                         "--note", "flashinfer JIT failed: nvcc not found", *GPU,
                         "--scenario", "attempt=2")
    assert code == 0, err
    assert out.startswith("stored record 1 (launch_ok = 0 bool for vllm-flashinfer-torch271)")
    with EvidenceStore(default_evidence_path(decision)) as store:
        (record,) = store.load()
    assert record.note == "flashinfer JIT failed: nvcc not found"
    assert record.scenario == {"attempt": 2} and record.source == "stackdecide evidence add"


def test_bad_input_exits_2_with_the_place(decision: Path, tmp_path: Path) -> None:
    broken = tmp_path / "broken.jsonl"
    broken.write_text('{"candidate": "vllm-cuda-torch271", "metric": "vram_gb", "value": 14}\n'
                      '{"candidate": "vllm-cuda-torch271", "metric": "vram_gb", "value": 14,\n')
    code, _, err = run("evidence", "import", str(broken), "--decision", str(decision))
    assert code == 2 and err.startswith(f"error: {broken}:2: invalid JSON")
    code, _, err = run("evidence", "add", "--decision", str(decision), "--candidate",
                       "vllm-cuda-torch271", "--metric", "vram_gb", "--value", "14",
                       "--scenario", "concurrency")
    assert code == 2 and "--scenario 'concurrency' is not KEY=VALUE" in err
    code, _, err = run("evidence", "add", "--decision", str(decision), "--candidate",
                       "vllm-cuda-torch271", "--metric", "vram_gb", "--value", "14",
                       "--driver", "575")
    assert code == 2 and "name it with --gpu" in err
    code, _, err = run("evidence", "list", "--evidence", str(tmp_path / "none.db"))
    assert code == 2 and "no such evidence store" in err


def test_dry_run_stores_nothing(decision: Path, tmp_path: Path) -> None:
    results = tmp_path / "bench.json"
    results.write_text(json.dumps(vllm_bench_serve_result()))
    code, out, err = run("evidence", "import", str(results), "--decision", str(decision),
                         "--candidate", "vllm-cuda-torch271", "--dry-run")
    assert code == 0, err
    assert "dry run: 14 records checked, none stored" in out
    assert not default_evidence_path(decision).exists()


def test_list_shows_a_store_s_text_with_its_control_characters_escaped(decision: Path,
                                                                        tmp_path: Path) -> None:
    store = tmp_path / "evidence.db"
    code, _, _ = run("evidence", "add", "--decision", str(decision), "--evidence", str(store),
                     "--candidate", "vllm-flashinfer-torch271", "--metric", "decode_tok_s",
                     "--value", "120", "--source", "run\x1b[2J\nwinner: evil\u202e")
    assert code == 0
    code, out, _ = run("evidence", "list", "--evidence", str(store))
    assert code == 0
    assert "\x1b" not in out and "\u202e" not in out and "\nwinner: evil" not in out
    assert "run\\x1b[2J\\nwinner: evil\\u202e" in out
