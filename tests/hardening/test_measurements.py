"""Finding 2: every measurement is checked against its metric's physical domain on the way in.

Negative latencies and throughputs, zero concurrency and counts that contradict each other used to
be stored (and a negative TTFT then won its criterion, lower being better); NaN and Infinity in a
``vllm bench serve`` file were dropped. Now each is refused with the file, the field and the value,
whichever way the record arrives: ``evidence add``, an import, or a record built by the benchmark.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import pytest

from stackdecide.errors import EvidenceError
from stackdecide.evidence.importers import RunContext, parse_evidence_text
from stackdecide.evidence.records import EvidenceRecord
from stackdecide.model.metrics import METRICS, SCENARIO_DOMAINS

from .conftest import refused, vllm_result

DOCS = Path(__file__).resolve().parents[2] / "docs" / "evidence.md"


@pytest.mark.parametrize(("metric", "value"), [
    ("ttft_ms_p50", "-5"), ("ttft_ms_p99", "0"), ("e2el_ms_mean", "-0.001"),
    ("tpot_ms_p50", "-1"), ("itl_ms_p90", "-1"), ("output_tok_s", "-3"), ("decode_tok_s", "-1"),
    ("request_per_s", "-0.5"), ("vram_gb", "-2"), ("startup_s", "0"), ("ttft_ms_p50", "1e13"),
])
def test_evidence_add_refuses_a_value_outside_the_metric_domain(tmp_path: Path, metric: str,
                                                                value: str) -> None:
    store = tmp_path / "e.db"
    message = refused(["evidence", "add", "--evidence", str(store), "--candidate", "a",
                       "--metric", metric, "--value", value], "value", metric,
                      f"{float(value):g}", "allowed are")
    assert METRICS[metric].domain.bound in message
    assert not store.exists()  # refused before the store was opened


def test_zero_gaps_between_tokens_are_real_measurements() -> None:
    """Tokens that arrive in one streamed chunk have no gap: TPOT and ITL may be 0, TTFT not."""
    assert EvidenceRecord(candidate="a", metric="itl_ms_p50", value=0.0).value == 0.0
    assert EvidenceRecord(candidate="a", metric="tpot_ms_mean", value=0.0).value == 0.0
    with pytest.raises(EvidenceError, match="a latency cannot be zero or negative"):
        EvidenceRecord(candidate="a", metric="ttft_ms_p50", value=0.0)


def test_records_built_in_code_are_checked_too() -> None:
    """The benchmark and the launch loop build ``EvidenceRecord`` objects: the same check holds."""
    with pytest.raises(EvidenceError, match=r"^value: -1 ms is not a possible ttft_ms_mean"):
        EvidenceRecord(candidate="a", metric="ttft_ms_mean", value=-1.0)
    with pytest.raises(EvidenceError, match="'concurrency' is 0"):
        EvidenceRecord(candidate="a", metric="decode_tok_s", value=1.0,
                       scenario={"concurrency": 0})


@pytest.mark.parametrize(("scenario", "expected"), [
    ("concurrency=0", "'concurrency' is 0"), ("concurrency=-4", "'concurrency' is -4"),
    ("concurrency=2.5", "'concurrency' is 2.5"), ("concurrency=many", "must be a whole number"),
    ("num_prompts=0", "'num_prompts' is 0"), ("input_len=0", "'input_len' is 0"),
    ("request_rate=0", "'request_rate' is 0"), ("request_rate=-1", "'request_rate' is -1"),
    ("concurrency=99999999999999999999", "beyond"),
])
def test_scenario_parameters_are_checked(tmp_path: Path, scenario: str, expected: str) -> None:
    refused(["evidence", "add", "--evidence", str(tmp_path / "e.db"), "--candidate", "a",
             "--metric", "decode_tok_s", "--value", "10", "--scenario", scenario],
            "scenario", expected)


def test_text_numbers_and_unlimited_rates_stay_valid() -> None:
    record = EvidenceRecord(candidate="a", metric="decode_tok_s", value=1.0,
                            scenario={"concurrency": "4", "request_rate": "inf", "tag": "x"})
    assert record.scenario["concurrency"] == "4"


def _vllm(**changes: Any) -> str:
    return json.dumps(vllm_result(**changes))


@pytest.mark.parametrize(("changes", "field", "expected"), [
    ({"median_ttft_ms": -5.0}, "median_ttft_ms", "-5 ms is not a possible ttft_ms_p50"),
    ({"output_throughput": -3.0}, "output_throughput", "-3 tok/s is not a possible output_tok_s"),
    ({"request_throughput": -1}, "request_throughput", "not a possible request_per_s"),
    ({"p99_itl_ms": -0.5}, "p99_itl_ms", "not a possible itl_ms_p99"),
    ({"max_concurrency": 0}, "max_concurrency", "allows no request at all"),
    ({"completed": 50}, "completed", "completed (50) + failed (0) is more than num_prompts (20)"),
    ({"failed": 15}, "completed", "completed (20) + failed (15) is more than num_prompts (20)"),
    ({"duration": 0.0}, "duration", "a run that completed requests took time"),
    ({"total_input_tokens": -1}, "total_input_tokens", "expected a whole number"),
    ({"median_ttft_ms": float("nan")}, "median_ttft_ms", "nan is not a finite number"),
    ({"output_throughput": float("inf")}, "output_throughput", "inf is not a finite number"),
    ({"request_rate": 4.0, "burstiness": float("nan")}, "burstiness", "nan is not a finite"),
])
def test_vllm_results_outside_the_domain_are_refused_naming_file_line_and_key(
        changes: dict[str, Any], field: str, expected: str) -> None:
    with pytest.raises(EvidenceError) as info:
        parse_evidence_text(_vllm(**changes), "run.json", RunContext(candidate="a"))
    assert str(info.value).startswith(f"run.json:1 {field}: "), str(info.value)
    assert expected in str(info.value)


def test_nan_in_our_own_export_is_refused_not_dropped() -> None:
    for literal in ("NaN", "Infinity", "-Infinity"):
        text = f'{{"candidate": "a", "metric": "ttft_ms_p50", "value": {literal}}}'
        with pytest.raises(EvidenceError, match=r"^ours.json:1 value: .*finite number"):
            parse_evidence_text(text, "ours.json")
    text = '{"candidate": "a", "metric": "ttft_ms_p50", "value": -5}'
    with pytest.raises(EvidenceError, match=r"^ours.json:1 value: -5 ms is not a possible"):
        parse_evidence_text(text, "ours.json")


def test_a_negative_ttft_can_no_longer_win(tmp_path: Path) -> None:
    """The original report: a negative TTFT imported for one candidate won its criterion."""
    export = tmp_path / "ttft.jsonl"
    export.write_text('{"candidate": "a", "metric": "ttft_ms_p50", "value": -40}\n'
                      '{"candidate": "b", "metric": "ttft_ms_p50", "value": 35}\n')
    refused(["evidence", "import", str(export), "--evidence", str(tmp_path / "e.db")],
            "ttft.jsonl:1 value", "-40 ms")
    assert not (tmp_path / "e.db").exists()  # refused before the store was even opened


def test_every_metric_has_a_domain_and_the_docs_state_it() -> None:
    """The domains live in the metric catalogue; the docs' metric table must say the same."""
    table: dict[str, str] = {}
    for line in DOCS.read_text().splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[0].startswith("`"):
            table[cells[0].strip("`")] = cells[3]
    assert table, "no metric table with a domain column in docs/evidence.md"
    for name, metric in METRICS.items():
        written = table.get(name) or table.get(re.sub(r"_(mean|p\d+)$", "_{mean,p50,p90,p95,p99}",
                                                      name))
        assert written == metric.domain.bound, (name, written, metric.domain.bound)
    assert set(SCENARIO_DOMAINS) <= set(re.findall(r"`(\w+)`", DOCS.read_text()))
