"""Measurement uncertainty through the ranking: estimates per cell, P(best), the verdict."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

import stackdecide
from decode_pair import decode_launches, decode_pair
from stackdecide.certify import normal_p_greater
from stackdecide.evidence import EvidenceRecord, EvidenceSet, HardwareInfo
from stackdecide.evidence.records import replicates
from stackdecide.model.certainty import Certainty, CertaintySettings

H100 = "NVIDIA H100 80GB HBM3"
TWO = decode_pair("a", "b", H100)


def _evidence(values: dict[str, list[float]], *, per_launch: int = 1) -> EvidenceSet:
    return decode_launches(values, H100, per_launch=per_launch)


def _certainty(decision: stackdecide.Decision, evidence: EvidenceSet,
               settings: CertaintySettings | None = None) -> Certainty:
    sure = decision.score(evidence=evidence, certainty=settings).certainty
    assert sure is not None  # scored with evidence: the ranking carries its certainty
    return sure


def test_two_normal_cells_match_the_closed_form(tmp_path: Path) -> None:
    """With many launches the t errors of the means are nearly normal: P(a best) = Phi(d / s)."""
    decision = stackdecide.parse(TWO)
    rng = np.random.default_rng(7)
    a = list(200.0 * (1 + 0.03 * rng.standard_normal(40)))
    b = list(198.0 * (1 + 0.03 * rng.standard_normal(40)))
    evidence = _evidence({"a": a, "b": b})
    sure = _certainty(decision, evidence, CertaintySettings(samples=40_000, seed=1))
    cell_a, cell_b = sure.cells[("a", "decode")].estimate, sure.cells[("b", "decode")].estimate
    assert cell_a.n == 40 and cell_b.n == 40
    # the Monte Carlo draws move each measured value (the median that scoring uses) by its error
    median_a, median_b = float(np.median(a)), float(np.median(b))
    expected = normal_p_greater(median_a, cell_a.standard_error / cell_a.center * median_a,
                                median_b, cell_b.standard_error / cell_b.center * median_b)
    assert sure.p_best["a"] == pytest.approx(expected, abs=0.015)
    assert sure.p_best["a"] + sure.p_best["b"] == pytest.approx(1.0)
    assert sure.probabilities is not None
    assert sure.probabilities.pairwise[0, 1] == pytest.approx(expected, abs=0.015)


def test_one_launch_each_is_a_tie_however_large_the_point_lead() -> None:
    """Single runs 2% apart: the prior noise (3% per launch for decode) cannot tell them apart."""
    decision = stackdecide.parse(TWO)
    evidence = _evidence({"a": [204.0], "b": [200.0]})
    ranking = decision.score(evidence=evidence)
    assert ranking.winner == "a" and ranking.total("a") > ranking.total("b")
    sure = ranking.certainty
    assert sure is not None
    assert sure.verdict.kind == "tie"
    assert sure.verdict.text.startswith("statistical tie between a and b (P 0.")
    assert "smaller than the noise" in sure.verdict.text
    assert sure.cells[("a", "decode")].estimate.method == "prior"


def test_separated_replicated_candidates_are_certified() -> None:
    decision = stackdecide.parse(TWO)
    evidence = _evidence({"a": [250.0, 251.0, 249.0], "b": [200.0, 201.0, 199.0]})
    sure = _certainty(decision, evidence)
    assert sure.verdict.kind == "certified" and sure.verdict.winner == "a"
    assert sure.verdict.text.startswith("certified: a (P = 1.00)")
    assert sure.launches() == {"a": 3, "b": 3}


def test_a_sure_lead_on_one_launch_is_not_yet_certified() -> None:
    decision = stackdecide.parse(TWO)
    evidence = _evidence({"a": [300.0], "b": [150.0]})
    sure = _certainty(decision, evidence)
    assert sure.verdict.kind == "tie" and sure.p_best["a"] > 0.99
    assert sure.verdict.text == ("a leads (P = 1.00) on too few launches: a rests on 1 launch; a "
                                 "certificate needs 2 launches of the leader (launch "
                                 "--until-certain)")
    # the ranking's leader line says "not certified" once
    from stackdecide.report.text import render_text
    line = next(ln for ln in render_text(decision.score(evidence=evidence)).splitlines()
                if ln.startswith("leader:"))
    assert line.count("not certified") == 1


def test_records_of_one_launch_are_one_replicate() -> None:
    """Two benchmarks on one server are one replicate: the noise lives in restarts."""
    evidence = _evidence({"a": [200.0, 210.0]}, per_launch=3)
    # launches before records named them said "run <folder>" in their source
    assert replicates(list(evidence)) == (("a-0", 200.0), ("a-1", 210.0))
    ranking = stackdecide.parse(TWO).score(evidence=evidence)
    assert ranking.cells[0][0].replicates == (("a-0", 200.0), ("a-1", 210.0))
    assert ranking.cells[0][0].samples == 6


def test_judged_only_ranking_has_no_measurement_uncertainty(rtx4090_table_path: Path) -> None:
    decision = stackdecide.load(rtx4090_table_path)
    assert decision.score().certainty is None
    sure = _certainty(decision, EvidenceSet())
    assert sure.verdict.kind == "judged" and sure.probabilities is None
    assert sure.p_best["vllm-flashinfer-torch271"] == 1.0


def test_hopper_single_runs_are_not_presented_as_settled() -> None:
    """The committed H200 results: a 1.65-point lead from one launch each is a tie."""
    root = Path(__file__).resolve().parents[2]
    decision = stackdecide.load(root / "criteria" / "hopper.yaml")
    evidence = stackdecide.evidence.load_evidence(root / "docs/results/hopper-h200/evidence.db")
    sure = _certainty(decision, evidence)
    assert sure.verdict.kind == "tie"
    assert {name for name, _ in sure.verdict.tied} >= {"bf16-flash-attn", "fp8-flash-attn"}
    assert not math.isclose(sure.p_best["bf16-flash-attn"], 1.0)


def test_a_json_evidence_file_gives_the_same_uncertainty_as_a_store(tmp_path: Path) -> None:
    """Replicates travel with the cells, keyed by launch: records read from a JSON file (no store
    ids) are as noisy as the same records in a store, not noise-free."""
    from stackdecide.evidence import EvidenceRecord, EvidenceStore, HardwareInfo, load_evidence
    from stackdecide.evidence.records import dump_jsonl

    hardware = HardwareInfo(gpu=H100)
    records = [EvidenceRecord(candidate=candidate, metric="decode_tok_s", value=value,
                              hardware=hardware, launch=f"{candidate}-{launch}")
               for candidate, values in {"a": [206.0, 208.0, 205.0], "b": [200.0, 201.0]}.items()
               for launch, value in enumerate(values)]
    (tmp_path / "records.jsonl").write_text(dump_jsonl(records))
    with EvidenceStore(tmp_path / "evidence.db") as store:
        store.add(records)
    decision = stackdecide.parse(TWO)
    from_file = _certainty(decision, load_evidence(tmp_path / "records.jsonl"))
    from_store = _certainty(decision, load_evidence(tmp_path / "evidence.db"))
    assert set(from_file.cells) == {("a", "decode"), ("b", "decode")}
    assert from_file.cells == from_store.cells
    assert from_file.launches() == from_store.launches() == {"a": 3, "b": 2}
    assert from_file.p_best == from_store.p_best and 0.5 < from_file.p_best["a"] < 1.0
    assert from_file.verdict == from_store.verdict


def test_score_and_the_html_report_agree_on_p_best_and_the_verdict(tmp_path: Path) -> None:
    """The settings given once travel with the ranking: at confidence 0.8 both certify a (P 0.91),
    which at the default 0.95 would be a tie."""
    import html
    import json

    from click.testing import CliRunner

    from stackdecide.cli import main
    from stackdecide.evidence import EvidenceStore

    decision_file = tmp_path / "pair.yaml"
    decision_file.write_text(TWO)
    with EvidenceStore(tmp_path / "evidence.db") as store:
        store.add(list(_evidence({"a": [206.0, 208.0, 205.0], "b": [200.0, 201.0, 202.0]})))
    common = [str(decision_file), "--evidence", str(tmp_path / "evidence.db"), "--confidence", "0.8"]
    scored = CliRunner().invoke(main, ["score", *common, "--format", "json"])
    assert scored.exit_code == 0, scored.output
    sure = json.loads(scored.output)["certainty"]
    assert sure["confidence"] == 0.8 and sure["verdict"]["kind"] == "certified"
    page = tmp_path / "report.html"
    reported = CliRunner().invoke(main, ["report", *common, "--html", str(page),
                                         "--no-engine-command"])
    assert reported.exit_code == 0, reported.output
    text = page.read_text()
    assert html.escape(sure["verdict"]["text"]) in text
    assert f'<span class="b ok">{sure["verdict"]["kind"]}</span>' in text
    for candidate, p_best in sure["p_best"].items():
        assert f"<b>{candidate}</b></td><td>{p_best:.3f}</td>" in text.replace('<td class="num">', "<td>")
    assert sure["verdict"]["text"] in reported.output  # the line it prints names the same verdict


@pytest.mark.parametrize(("noise", "rel_sd"), [
    ("{decode_tok_s: 0.2}", 0.2),
    ("{decode: 0.1}", 0.1),  # the criterion's own
    ("{decode_tok_s: 0.2, decode: 0.1}", 0.1),  # the criterion's key wins over its metric's
])
def test_stated_noise_is_per_metric_or_per_criterion(noise: str, rel_sd: float) -> None:
    decision = stackdecide.parse(TWO + f"benchmark:\n  noise: {noise}\n")
    sure = _certainty(decision, _evidence({"a": [204.0], "b": [200.0]}))
    # one launch each: the interval is the stated noise alone, a normal of that relative SD
    found = sure.cells[("a", "decode")].estimate
    assert found.standard_error / found.center == pytest.approx(rel_sd, rel=0.05)


def test_a_noise_key_that_is_neither_metric_nor_criterion_is_refused() -> None:
    with pytest.raises(stackdecide.DecisionFileError) as caught:
        stackdecide.parse(TWO + "benchmark:\n  noise: {decodee: 0.1}\n")
    message = str(caught.value)
    assert "benchmark.noise.decodee" in message and "or a criterion id: decode" in message


def test_a_cold_start_up_does_not_hold_the_launch_count_down() -> None:
    """A cold start-up is measured once per configuration and machine (repeats start warm), so a
    candidate launched three times rests on three launches, not on its one cold start; with no
    other measured cell the cold start counts."""
    text = TWO.replace("weight: 1", "weight: 0.8").replace("""candidates:""", """  - id: startup
    weight: 0.2
    scale: [0, 10]
    measure: {metric: startup_s, value: linear, worst: 600, best: 60, scenario: {start: cold}}
candidates:""").replace("scores: {decode: 5}", "scores: {decode: 5, startup: 5}")
    decision = stackdecide.parse(text)
    hardware = HardwareInfo(gpu=H100)
    records = [EvidenceRecord(candidate=cid, metric="decode_tok_s", value=value,
                              hardware=hardware, source=f"run {cid}-{n}", launch=f"{cid}-{n}")
               for cid, values in (("a", [250.0, 251.0, 249.0]), ("b", [200.0, 201.0, 199.0]))
               for n, value in enumerate(values)]
    records += [EvidenceRecord(candidate=cid, metric="startup_s", value=value, hardware=hardware,
                               source=f"run {cid}-{n}", launch=f"{cid}-{n}",
                               scenario={"start": "cold" if n == 0 else "warm"})
                for cid in ("a", "b") for n, value in enumerate([200.0, 90.0, 91.0])]
    sure = _certainty(decision, EvidenceSet(records))
    assert len(sure.cells[("a", "startup")].launches) == 1
    assert sure.launches() == {"a": 3, "b": 3}
    assert sure.verdict.kind == "certified" and sure.verdict.winner == "a"
    cold_only = [r for r in records if r.metric == "startup_s"]
    assert _certainty(decision, EvidenceSet(cold_only)).launches() == {"a": 1, "b": 1}
