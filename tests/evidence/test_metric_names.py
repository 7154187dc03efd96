"""Metric names are written once, in the metric catalogue (model/metrics.py): the decision file's
SLO fields, the capacity search's SLO keys, goodput objectives, the importers' maps, the
percentile keys and the benchmark's rows all come from it."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path
from typing import Any

from evidence.test_bench_import import requests
from stackdecide.bench import stats
from stackdecide.bench.capacity import SloLimits
from stackdecide.bench.results import BenchConfig, BenchResult, LevelResult
from stackdecide.evidence.importers import RunContext, parse_evidence_text
from stackdecide.model import metrics
from stackdecide.model.metrics import (
    GOODPUT_LATENCIES,
    LATENCIES,
    LATENCY_STATISTICS,
    METRICS,
    PERCENTILE_KEYS,
    SLO_METRICS,
    tool_latencies,
    tool_metrics,
)
from stackdecide.model.schema import Slo

LATENCY_PERCENTILES = [f"{key}_ms_{p}" for key in LATENCIES for p in PERCENTILE_KEYS]


def test_slo_fields_are_every_latency_at_every_percentile() -> None:
    assert list(SLO_METRICS) == LATENCY_PERCENTILES
    assert list(Slo.model_fields) == [*LATENCY_PERCENTILES, "min_goodput"]
    assert set(SLO_METRICS) <= set(METRICS)
    SloLimits(dict.fromkeys(SLO_METRICS, 1.0))  # the capacity search takes every one


def test_goodput_objectives_are_the_per_request_latencies() -> None:
    assert tuple(k for k, latency in LATENCIES.items() if latency.per_request) == GOODPUT_LATENCIES
    assert [f.removesuffix("_ms") for f in stats.Slo.__dataclass_fields__] == \
        list(GOODPUT_LATENCIES)
    every = stats.parse_slo([f"{key}:5" for key in GOODPUT_LATENCIES])
    assert every.limits_ms() == dict.fromkeys(GOODPUT_LATENCIES, 5.0)


def test_latency_metrics_are_every_latency_at_every_statistic() -> None:
    assert ("mean", *PERCENTILE_KEYS) == LATENCY_STATISTICS
    latency_metrics = {name for name, m in METRICS.items() if m.unit == "ms"}
    assert latency_metrics == {f"{k}_ms_{s}" for k in LATENCIES for s in LATENCY_STATISTICS}
    assert [metrics.percentile_key(metrics.percentile_of(p)) for p in PERCENTILE_KEYS] == \
        list(PERCENTILE_KEYS)


def vllm_result(value: float = 1.0) -> dict[str, Any]:
    """A vllm bench serve result with every key the catalogue names for vLLM."""
    result: dict[str, Any] = {"backend": "vllm", "completed": 4, "failed": 0, "num_prompts": 4,
                              "max_concurrency": 4, "date": "20250821-142233"}
    result |= dict.fromkeys(tool_metrics("vllm"), value)
    for key in tool_latencies("vllm"):
        result[f"mean_{key}_ms"] = value
        result |= {f"{p}_{key}_ms": value for p in PERCENTILE_KEYS}
    return result


def guidellm_report() -> dict[str, Any]:
    def summary(value: float) -> dict[str, Any]:
        return {"successful": {"mean": value,
                               "percentiles": dict.fromkeys(PERCENTILE_KEYS, value)}}
    names = {**tool_metrics("guidellm"), **tool_latencies("guidellm")}
    return {"benchmarks": [{"config": {"strategy": {"type_": "concurrent", "streams": 4}},
                            "metrics": {key: summary(1.0) for key in names}}]}


def aiperf_export() -> dict[str, Any]:
    export: dict[str, Any] = {"aiperf_version": "0.13",
                              "input_config": {"loadgen": {"concurrency": 4}}}
    export |= {key: {"unit": f"{METRICS[metric].unit.partition('/')[0]}/sec", "avg": 1.0}
               for key, (metric, _) in tool_metrics("aiperf").items()}
    export |= {key: {"unit": "ms", "avg": 1.0, **dict.fromkeys(PERCENTILE_KEYS, 1.0)}
               for key in tool_latencies("aiperf")}
    return export


def expected_metrics(tool: metrics.Tool) -> set[str]:
    rates = {metric for metric, _ in tool_metrics(tool).values()}
    return rates | {LATENCIES[key].metric(s) for key, _ in tool_latencies(tool).values()
                    for s in LATENCY_STATISTICS}


def read_metrics(document: dict[str, Any]) -> set[str]:
    result = parse_evidence_text(json.dumps(document), "f.json", RunContext(candidate="a"))
    return {record.metric for record in result.records}


def test_importers_read_every_name_the_catalogue_gives_their_tool() -> None:
    derived = {"decode_tok_s"}  # 1000 / median TPOT, from the same file
    assert read_metrics(vllm_result()) - derived == expected_metrics("vllm")
    assert read_metrics(guidellm_report()) == expected_metrics("guidellm")
    assert read_metrics(aiperf_export()) == expected_metrics("aiperf")


def test_bench_rows_are_the_summary_fields_the_catalogue_names() -> None:
    level = LevelResult(concurrency=2, input_len=16, output_len=8, num_prompts=6,
                        records=requests(6, 0.02), duration_s=0.5, complete=True)
    config = BenchConfig(url="http://127.0.0.1:1", scenario="throughput",
                         slo=stats.Slo(ttft_ms=100.0), percentiles=(50.0, 90.0, 95.0, 99.0))
    rows = BenchResult(config.resolved(), levels=[level]).metric_rows()
    assert {row.metric for row in rows} == expected_metrics("bench")
    assert all(row.unit == METRICS[row.metric].unit for row in rows)


# A copy of the catalogue with one more latency, one more rate and one more percentile, each named
# for the tools that report it: the copy is imported in place of the real one.
ADDITIONS = {
    'PERCENTILE_KEYS = ("p50", "p90", "p95", "p99")':
        'PERCENTILE_KEYS = ("p50", "p75", "p90", "p95", "p99")',
    '    Latency("e2el",':
        '    Latency("queue", "time queued", LATENCY, per_request=False, known_as=known_as(\n'
        '        vllm="queue", guidellm="queue_time_ms", aiperf="queue_time")),\n'
        '    Latency("e2el",',
    '        Metric("vram_gb",':
        '        Metric("prompt_tok_s", "tok/s", True, "prompt tokens per second", RATE,\n'
        '               known_as=known_as(vllm="input_throughput", guidellm="prompt_tps")),\n'
        '        Metric("vram_gb",',
}
CHECK = textwrap.dedent("""
    import importlib.abc, importlib.util, json, sys

    class CatalogueCopy(importlib.abc.MetaPathFinder):
        def find_spec(self, name, path, target=None):
            if name == "stackdecide.model.metrics":
                return importlib.util.spec_from_file_location(name, sys.argv[1])
            return None

    sys.meta_path.insert(0, CatalogueCopy())
    from stackdecide.bench.capacity import SloLimits
    from stackdecide.evidence.importers import RunContext, parse_evidence_text
    from stackdecide.model.schema import Slo

    def metrics(document):
        result = parse_evidence_text(json.dumps(document), "f.json", RunContext(candidate="a"))
        return sorted({(r.metric, r.unit) for r in result.records})

    vllm = {"backend": "vllm", "completed": 4, "request_throughput": 1.0,
            "input_throughput": 100.0, "mean_queue_ms": 3.0, "p75_queue_ms": 4.0,
            "p75_ttft_ms": 5.0}
    guidellm = {"benchmarks": [{"metrics": {
        "prompt_tps": {"successful": {"mean": 100.0}},
        "queue_time_ms": {"successful": {"mean": 3.0, "percentiles": {"p75": 4.0}}}}}]}
    aiperf = {"aiperf_version": "0.13", "time_to_first_token": {"unit": "ms", "p75": 5.0},
              "queue_time": {"unit": "s", "avg": 0.003}}
    print(json.dumps({
        "slo": [k for k in Slo.model_fields if "queue" in k or "p75" in k],
        "limit": SloLimits({"queue_ms_p75": 1.0}).percentiles(),
        "vllm": metrics(vllm), "guidellm": metrics(guidellm), "aiperf": metrics(aiperf)}))
""")


def test_a_metric_added_to_the_catalogue_appears_everywhere(tmp_path: Path) -> None:
    source = Path(metrics.__file__).read_text(encoding="utf-8")
    for anchor, replacement in ADDITIONS.items():
        assert source.count(anchor) == 1, anchor
        source = source.replace(anchor, replacement)
    copy = tmp_path / "metrics_copy.py"
    copy.write_text(source, encoding="utf-8")
    run = subprocess.run([sys.executable, "-c", CHECK, str(copy)], capture_output=True,
                         text=True, check=False)
    assert run.returncode == 0, run.stderr
    found = json.loads(run.stdout)
    assert found["slo"] == [
        "ttft_ms_p75", "tpot_ms_p75", "itl_ms_p75", "queue_ms_p50", "queue_ms_p75",
        "queue_ms_p90", "queue_ms_p95", "queue_ms_p99", "e2el_ms_p75"]
    assert found["limit"] == [75.0]
    assert found["vllm"] == [["prompt_tok_s", "tok/s"], ["queue_ms_mean", "ms"],
                             ["queue_ms_p75", "ms"], ["request_per_s", "req/s"],
                             ["ttft_ms_p75", "ms"]]
    assert found["guidellm"] == [["prompt_tok_s", "tok/s"], ["queue_ms_mean", "ms"],
                                 ["queue_ms_p75", "ms"]]
    assert found["aiperf"] == [["queue_ms_mean", "ms"], ["ttft_ms_p75", "ms"]]
