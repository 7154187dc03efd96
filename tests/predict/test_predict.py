"""Prediction before launching: ceilings, configurations, calibration from evidence, judged scores,
and the whole path on synthetic launches with a known efficiency."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import stackdecide
from stackdecide.cli import main
from stackdecide.evidence import EvidenceRecord, EvidenceSet, EvidenceStore, HardwareInfo, load_evidence
from stackdecide.facts.roofline import decode_ceiling, hardware_from
from stackdecide.predict import (
    Calibration,
    Load,
    calibration,
    configuration,
    criterion_load,
    judged_value,
    merge,
    metric_ceiling,
    predict,
)
from stackdecide.predict.configuration import pinned_version
from stackdecide.predict.observations import with_load

ROOT = Path(__file__).resolve().parents[2]
HOPPER = ROOT / "criteria" / "hopper.yaml"
MULTI = ROOT / "criteria" / "hopper-multi.yaml"
RESULTS = ROOT / "docs" / "results"
LOADS = {"decode": Load(1, 128, 256), "prefill": Load(1, 4096, 1), "throughput": Load(1, 512, 256)}
DECODE, PREFILL, THROUGHPUT = Load(1, 128, 256), Load(1, 4096, 1), Load(64, 512, 256)


@pytest.fixture(scope="module")
def hopper() -> stackdecide.Decision:
    return stackdecide.load(HOPPER)


@pytest.fixture(scope="module")
def multi() -> stackdecide.Decision:
    return stackdecide.load(MULTI)


# -- ceilings ------------------------------------------------------------------------------------

def test_one_stream_decodes_at_the_facts_roofline(hopper: stackdecide.Decision) -> None:
    setup = configuration(hopper, "bf16-flash-attn").setup
    assert setup is not None
    facts = decode_ceiling(setup.shape, hardware_from("NVIDIA H200", 4800), "bf16", "auto",
                           128 + 128)
    assert metric_ceiling("decode_tok_s", setup, DECODE).value == pytest.approx(facts.tok_s)
    # one stream's output rate is bound by the same reads, plus a prefill of 128 tokens
    output = metric_ceiling("output_tok_s", setup, DECODE)
    assert output is not None and output.value == pytest.approx(facts.tok_s, rel=0.02)


def test_data_parallel_serves_one_stream_on_one_replica(multi: stackdecide.Decision) -> None:
    one, two = (configuration(multi, c).setup for c in ("tp1", "dp2"))
    assert one is not None and two is not None
    single = [metric_ceiling("output_tok_s", s, DECODE) for s in (one, two)]
    assert single[0].value == pytest.approx(single[1].value)  # type: ignore[union-attr]
    batched = [metric_ceiling("output_tok_s", s, THROUGHPUT) for s in (one, two)]
    assert batched[1].replicas == 2 and batched[1].streams == 32  # type: ignore[union-attr]
    assert batched[1].value > batched[0].value  # type: ignore[union-attr]


def test_streams_stop_at_max_num_seqs(hopper: stackdecide.Decision) -> None:
    setup = configuration(hopper, "bf16-flash-attn").setup
    assert setup is not None
    ceiling = metric_ceiling("output_tok_s", setup, Load(1024, 512, 256))
    assert ceiling is not None
    assert (ceiling.streams, ceiling.limited_by) == (256, "max_num_seqs")
    assert metric_ceiling("startup_s", setup, DECODE) is None


def test_no_committed_launch_passed_its_ceiling() -> None:
    """The ceilings are upper limits: every committed Hopper launch reached less."""
    data = merge(calibration(stackdecide.load(decision), stackdecide.evidence.load_evidence(store))
                 for decision, store in ((HOPPER, RESULTS / "hopper-h200-certified/evidence.db"),
                                         (MULTI, RESULTS / "hopper-h200-x2-multi-gpu/run3/multi.db")))
    rates = [o for o in data.observations if o.metric != "startup_s"]
    assert rates and all(o.value < o.reference for o in rates)


# -- configurations and calibration --------------------------------------------------------------

def test_a_configuration_is_named_on_each_axis(hopper: stackdecide.Decision) -> None:
    levels = configuration(hopper, "fp8-flashinfer-fp8kv").levels
    assert {k: v for k, v in levels.items() if k != "config"} == {
        "gpu": "NVIDIA H200 SXM", "model": "Qwen3ForCausalLM 4.0B", "weights": "fp8",
        "kv_cache_dtype": "fp8", "attention_backend": "FLASHINFER", "layout": "TP 1",
        "vllm": "0.26.0"}
    # the same engine config on another GPU or vLLM is another configuration
    elsewhere = configuration(hopper, "fp8-flashinfer-fp8kv", "NVIDIA H100 80GB HBM3").levels
    assert elsewhere["gpu"] == "NVIDIA H100 SXM" and elsewhere["config"] != levels["config"]


@pytest.mark.parametrize(("pin", "version"), [("==0.26.0", "0.26.0"), ("0.26.0", "0.26.0"),
                                              (">=0.25", ">=0.25"), ("0.26.*", "0.26.*"),
                                              (None, None)])
def test_pinned_version(pin: str | None, version: str | None) -> None:
    assert pinned_version(pin) == version


def test_calibration_keeps_what_says_its_configuration(hopper: stackdecide.Decision) -> None:
    base = dict(candidate="bf16-flash-attn", metric="decode_tok_s", value=280.0,
                hardware=HardwareInfo(gpu="NVIDIA H200"),
                scenario={"concurrency": 1, "input_len": 128, "output_len": 256},
                config_sha256=hopper.candidate("bf16-flash-attn").config_sha256, launch="run-1")
    records = [
        EvidenceRecord(**base),
        EvidenceRecord(**{**base, "value": 290.0, "launch": "run-1"}),  # same launch: one value
        EvidenceRecord(**{**base, "candidate": "someone-else"}),
        EvidenceRecord(**{**base, "config_sha256": "0" * 64, "launch": "run-2"}),
        EvidenceRecord(**{**base, "hardware": None, "launch": "run-3"}),
        EvidenceRecord(**{**base, "scenario": {"concurrency": 1}, "launch": "run-4"}),
        EvidenceRecord(**{**base, "metric": "ttft_ms_p50", "launch": "run-5"}),
    ]
    found = calibration(hopper, EvidenceSet.of(records))
    assert len(found.observations) == 1
    assert found.observations[0].value == 285.0  # the launch's median
    assert len(found.notes) == 4  # another candidate, an earlier config, no GPU, no lengths
    # the same launch read from two stores counts once
    assert len(merge([found, found]).observations) == 1


def test_loads_come_from_the_criterion_then_the_benchmark(hopper: stackdecide.Decision) -> None:
    criteria = {c.id: c for c in hopper.criteria}
    assert criterion_load(hopper, criteria["decode_speed"], LOADS) == DECODE
    assert criterion_load(hopper, criteria["prefill_speed"], LOADS) == PREFILL
    assert criterion_load(hopper, criteria["throughput"], LOADS) == THROUGHPUT
    assert criterion_load(hopper, criteria["startup"], LOADS) is None
    bare = stackdecide.parse(HOPPER.read_text().split("\n# What `launch --bench`")[0])
    throughput = next(c for c in bare.criteria if c.id == "throughput")
    assert criterion_load(bare, throughput, LOADS) == Load(64, 512, 256)


# -- judged scores -------------------------------------------------------------------------------

def test_judged_scores_read_back_into_the_metric(hopper: stackdecide.Decision) -> None:
    criteria = {c.id: c for c in hopper.criteria}
    assert judged_value(criteria["decode_speed"], 8.0) == ("relative", pytest.approx(0.8))
    assert judged_value(criteria["decode_speed"], 0.0) is None
    # linear, worst 600 s, best 60 s: 6.0 is 60% of the way
    assert judged_value(criteria["startup"], 6.0) == ("absolute", pytest.approx(276.0))
    assert judged_value(criteria["startup"], 10.0) is None  # "at least as good as best"
    assert judged_value(criteria["launch_success"], 9.0) is None  # pass_fail says no value


def test_judged_scores_move_only_configurations_the_evidence_does_not_pin(
        hopper: stackdecide.Decision) -> None:
    def decode(prediction: object) -> dict[str, float]:
        return {p.candidate: p.value for p in prediction.predictions  # type: ignore[attr-defined]
                if p.criterion == "decode_speed"}

    nothing = Calibration(())
    judged, plain = decode(predict(hopper, nothing, LOADS)), decode(
        predict(hopper, nothing, LOADS, judged=False))
    # physics alone: FP8 reads 1.8x fewer bytes; judged 9.5 against 6.5 says 1.46x; both count
    ratio = judged["fp8-flashinfer-fp8kv"] / judged["bf16-flash-attn"]
    assert 9.5 / 6.5 < ratio < plain["fp8-flashinfer-fp8kv"] / plain["bf16-flash-attn"]
    # four launches of each configuration outweigh any judged score
    evidence = calibration(hopper, EvidenceSet.of(
        synthetic_launches(hopper, 4, np.random.default_rng(2))))
    measured, unjudged = decode(predict(hopper, evidence, LOADS)), decode(
        predict(hopper, evidence, LOADS, judged=False))
    assert all(measured[c] == pytest.approx(unjudged[c], rel=0.02) for c in measured)


# -- the whole path on synthetic launches --------------------------------------------------------

TRUE_EFFICIENCY = {"bf16-flash-attn": 0.47, "bf16-flashinfer": 0.42, "fp8-flash-attn": 0.27,
                   "fp8-flashinfer-fp8kv": 0.22}
NOISE = 0.03


def synthetic_launches(decision: stackdecide.Decision, launches: int, rng: np.random.Generator,
                       start: int = 0) -> list[EvidenceRecord]:
    """Decode of each candidate at its true efficiency of the roofline, with 3% launch noise."""
    records = []
    for candidate, efficiency in TRUE_EFFICIENCY.items():
        config = configuration(decision, candidate)
        assert config.setup is not None
        ceiling = metric_ceiling("decode_tok_s", config.setup, DECODE)
        assert ceiling is not None
        for n in range(start, start + launches):
            value = ceiling.value * efficiency * math.exp(NOISE * rng.standard_normal())
            records.append(EvidenceRecord(
                candidate=candidate, metric="decode_tok_s", value=value,
                hardware=HardwareInfo(gpu="NVIDIA H200"), software={"vllm": "0.26.0"},
                scenario={"concurrency": 1, "input_len": 128, "output_len": 256},
                config_sha256=decision.candidate(candidate).config_sha256,
                launch=f"{candidate}-{n}"))
    return records


def test_the_efficiency_converges_to_the_truth(hopper: stackdecide.Decision) -> None:
    rng = np.random.default_rng(3)
    errors, widths = [], []
    for launches in (1, 4, 16):
        evidence = EvidenceSet.of(synthetic_launches(hopper, launches, rng))
        prediction = predict(hopper, calibration(hopper, evidence), LOADS, judged=False)
        cells = [prediction.get(c, "decode_speed") for c in TRUE_EFFICIENCY]
        errors.append(max(abs(math.log(p.efficiency / TRUE_EFFICIENCY[p.candidate]))
                          for p in cells if p and p.efficiency))
        widths.append(max(math.log(p.efficiency_high / p.efficiency_low)
                          for p in cells if p and p.efficiency_high and p.efficiency_low))
    assert errors[-1] < 0.02
    assert widths[0] > widths[1] > widths[2]


def test_intervals_hold_new_launches_at_their_level(hopper: stackdecide.Decision) -> None:
    """Calibrated by two launches of each candidate, the 80% intervals hold about 80% of new
    launches (noise 3%, as the decode prior says)."""
    rng = np.random.default_rng(11)
    inside = total = 0
    for trial in range(40):
        evidence = EvidenceSet.of(synthetic_launches(hopper, 2, rng, start=10 * trial))
        prediction = predict(hopper, calibration(hopper, evidence), LOADS, judged=False)
        for record in synthetic_launches(hopper, 4, rng, start=10 * trial + 5):
            cell = prediction.get(record.candidate, "decode_speed")
            assert cell is not None
            inside += cell.low <= record.value <= cell.high
            total += 1
    assert abs(inside / total - 0.8) < 3 * math.sqrt(0.8 * 0.2 / total)


def test_without_evidence_a_rate_is_the_prior_share_of_its_ceiling(
        hopper: stackdecide.Decision) -> None:
    prediction = predict(hopper, Calibration(()), LOADS, judged=False)
    for cell in prediction.predictions:
        assert cell.source == "predicted" and cell.low < cell.value <= cell.high
        assert cell.calibrated_by == 0 and all(n == 0 for _, _, n in cell.basis)
        if cell.ceiling is not None:
            assert cell.high <= cell.ceiling.value
            assert 0.3 < cell.efficiency < 0.5  # type: ignore[operator]
    assert not prediction.unpredicted


def test_levels_of_a_load(hopper: stackdecide.Decision) -> None:
    levels = with_load(configuration(hopper, "bf16-flash-attn").levels, THROUGHPUT)
    assert levels["load"] == "64 streams, 512/256 tokens"
    assert levels["config_load"].endswith("@ 64 streams, 512/256 tokens")


# -- the command ---------------------------------------------------------------------------------

def test_predict_command_marks_every_value_predicted(tmp_path: Path) -> None:
    decision = stackdecide.load(HOPPER)
    store_path = tmp_path / "evidence.db"
    with EvidenceStore(store_path) as store:
        store.add(synthetic_launches(decision, 2, np.random.default_rng(5)))
    runner = CliRunner()
    text = runner.invoke(main, ["predict", str(HOPPER), "--evidence", str(store_path)])
    assert text.exit_code == 0, text.output
    assert text.output.startswith("PREDICTED, not measured")
    assert "~" in text.output and "this configuration: 2 launch values" in text.output
    raw = runner.invoke(main, ["predict", str(HOPPER), "--evidence", str(store_path),
                               "--format", "json", "--no-judged"])
    data = json.loads(raw.output)
    cells = data["predictions"]
    assert len(cells) == 16 and {c["source"] for c in cells} == {"predicted"}
    decode = next(c for c in cells if c["candidate"] == "bf16-flash-attn"
                  and c["criterion"] == "decode_speed")
    assert decode["ceiling"]["value"] > decode["high"] > decode["value"] > decode["low"]
    assert next(b for b in decode["basis"] if b["axis"] == "config")["launch_values"] == 2
    assert data["calibration"]["decode_tok_s"]["launch_values"] == 8
    assert data["starts"] == []  # hand-written candidates keep their judged launch success


def test_predict_command_shows_the_chance_a_never_launched_configuration_starts() -> None:
    """The H200 race's store: 6 of the space's configurations launched, all started. The other
    42 that can start as written start with P = (1 + 6) / (2 + 6) (the base's 0.5 prior with the
    weight of two launches), shown beside the predicted rates; the 12 the static checks refuse
    are left out."""
    race = RESULTS / "h200-space" / "first-race"
    runner = CliRunner()
    args = ["predict", str(ROOT / "criteria" / "hopper-space.yaml"), "--evidence",
            str(race / "space.db")]
    text = runner.invoke(main, args)
    assert text.exit_code == 0, text.output
    line = next(line for line in text.output.splitlines() if "P(start)" in line)
    assert line.startswith("launch_success: ~0.875 P(start) (80% interval ")
    assert "for 42 configurations no launch tried" in line
    # the chance's interval is scoring's 80% one, whatever level the rates are predicted at
    wider = runner.invoke(main, [*args, "--level", "0.9"]).output
    assert line in wider.splitlines()
    data = json.loads(runner.invoke(main, [*args, "--format", "json"]).output)
    starts = data["starts"]
    assert len(starts) == 42 and {s["criterion"] for s in starts} == {"launch_success"}
    assert [s["probability"] for s in starts] == pytest.approx([7 / 8] * 42)
    assert all(s["low"] < 7 / 8 < s["high"] <= 1.0 for s in starts)
    launched = {"bf16-tp1-flash_attn-kv-auto-seqs64", "fp8-tp1-flashinfer-kv-fp8-seqs256"}
    assert not launched & {s["candidate"] for s in starts}
    assert not any("fp8_e5m2" in s["candidate"] for s in starts)  # refused as written


def test_max_num_seqs_below_the_streams_is_predicted_out_of_reach() -> None:
    """criteria/hopper-knobs.yaml before any launch, calibrated by criteria/hopper.yaml's H200
    launches: max_num_seqs 16 and 32 hold back the 64 streams of the throughput criterion, so
    their throughput ceiling is the batch they allow; from 64 up the setting binds at no load,
    and those configurations are predicted alike. Decode and prefill (one stream) are the same
    at every max_num_seqs."""
    decision = stackdecide.load(ROOT / "criteria" / "hopper-knobs.yaml")
    found = merge([calibration(decision, EvidenceSet.of([])), calibration(
        stackdecide.load(HOPPER), load_evidence(RESULTS / "hopper-h200" / "evidence.db"))])
    prediction = predict(decision, found, LOADS)
    for family in ("bf16-kv-auto", "bf16-kv-fp8", "fp8-kv-auto", "fp8-kv-fp8"):
        throughput = {n: prediction.get(f"{family}-seqs{n}", "throughput")
                      for n in (16, 32, 64, 128, 256, 512)}
        assert {round(cell.value, 6) for n, cell in throughput.items() if n >= 64} == \
            {round(throughput[64].value, 6)}
        # a batch of 16 or 32 where the load asks for 64: fewer tokens a decode step, which still
        # reads all the weights (less KV cache, so more than a quarter or a half of the ceiling)
        for n, share in ((16, 0.5), (32, 0.75)):
            assert throughput[n].ceiling.limited_by == "max_num_seqs"
            assert throughput[n].ceiling.streams == n
            assert throughput[n].ceiling.value < share * throughput[64].ceiling.value
        assert throughput[32].high < throughput[64].value
        for criterion in ("decode_speed", "prefill_speed"):
            values = {round(prediction.get(f"{family}-seqs{n}", criterion).value, 6)
                      for n in (16, 32, 64, 512)}
            assert len(values) == 1
