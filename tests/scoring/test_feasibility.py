"""Feasibility is part of the ranking: a candidate whose configuration cannot start as written
(an error of the static launch checks) is infeasible in every view, never the winner, never a flip
target, never launched by ``launch --winner``.

The decision: Llama-3.1-8B on an L40S (SM 8.9). The FP8 checkpoint with FLASH_ATTN and an FP8 KV
cache cannot start there: vLLM 0.32 runs FlashAttention 2 on SM 8.9, which has no FP8 KV cache
(vllm/v1/attention/backends/flash_attn.py FlashAttentionBackend.supports_kv_cache_dtype, through
flash_attn_supports_fp8: FA3 on SM 9.x only). Its judged scores are the highest all the same.
"""

from __future__ import annotations

import csv
import dataclasses
import io
import json
from pathlib import Path

import pytest
from click.testing import CliRunner

import stackdecide
from stackdecide.cli import main
from stackdecide.decision import Decision
from stackdecide.model.findings import Finding
from stackdecide.model.ranking import NoFeasibleCandidate
from stackdecide.report import build_report, render_html
from stackdecide.report.markdown import render_markdown
from stackdecide.report.text import render, table_rows, worst_first
from stackdecide.robustness import analyze

REFUSED = "fp8-flash-attn-fp8kv"
FEASIBLE = "bf16-flash-attn"

L40S = """\
schema: stackdecide/v1
decision:
  title: Llama-3.1-8B-Instruct on one L40S
  hardware: {gpu: NVIDIA L40S, compute_capability: "8.9"}
  model: {id: meta-llama/Llama-3.1-8B-Instruct, shape: llama-3.1-8b, weights: bf16}
criteria:
  - {id: speed, weight: 0.5}
  - {id: quality, weight: 0.3}
  - {id: stability, weight: 0.2}
candidates:
  - id: fp8-flash-attn-fp8kv
    name: FP8 checkpoint, FLASH_ATTN, FP8 KV cache
    model: {id: RedHatAI/Meta-Llama-3.1-8B-Instruct-FP8, shape: llama-3.1-8b, weights: fp8}
    engine:
      model: RedHatAI/Meta-Llama-3.1-8B-Instruct-FP8
      max_model_len: 8192
      kv_cache_dtype: fp8
      attention_backend: FLASH_ATTN
    scores: {speed: 9.5, quality: 9, stability: 9}
  - id: bf16-flash-attn
    name: BF16, FLASH_ATTN
    engine:
      model: meta-llama/Llama-3.1-8B-Instruct
      max_model_len: 8192
      attention_backend: FLASH_ATTN
    scores: {speed: 6, quality: 8, stability: 8}
    reported_total: 99
  - id: bf16-flashinfer
    name: BF16, FLASHINFER
    engine:
      model: meta-llama/Llama-3.1-8B-Instruct
      max_model_len: 8192
      attention_backend: FLASHINFER
    env: {LD_PRELOAD: /opt/custom/libcuda-hook.so}
    scores: {speed: 5, quality: 8, stability: 7}
"""


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


@pytest.fixture
def l40s(tmp_path: Path) -> Path:
    path = tmp_path / "l40s.yaml"
    path.write_text(L40S)
    return path


@pytest.fixture
def decision(l40s: Path) -> Decision:
    return stackdecide.load(l40s)


def test_a_candidate_that_cannot_start_is_infeasible_and_ranked_last(decision: Decision) -> None:
    ranking = decision.score()
    refused = decision.candidate_index(REFUSED)
    assert float(ranking.scores[refused]) == ranking.scores.max()  # the best judged scores
    assert ranking.winner == FEASIBLE
    assert ranking.ranks[refused] == 0
    assert [ranking.candidate_ids[i] for i in ranking.order] == [FEASIBLE, "bf16-flashinfer",
                                                                  REFUSED]
    assert [f.code for f in ranking.cannot_start[REFUSED]] == ["launch:fp8-kv-unsupported-backend"]
    (reason,) = ranking.infeasible[REFUSED]
    assert reason.startswith("cannot start as written: kv_cache_dtype fp8 with attention backend "
                             "FLASH_ATTN")
    assert reason.endswith("[launch:fp8-kv-unsupported-backend]")
    # the finding is also in the audit, once
    assert sum(f.code == "launch:fp8-kv-unsupported-backend" for f in ranking.findings) == 1


def test_a_wrong_published_total_and_warnings_leave_a_candidate_feasible(
        decision: Decision) -> None:
    ranking = decision.score()
    codes = {f.subject: f.code for f in ranking.findings if f.severity != "info"}
    assert codes[FEASIBLE] == "reported-total-mismatch"  # an error about the report
    assert codes["bf16-flashinfer"] == "launch:env-changes-loaded-code"  # a warning
    assert set(ranking.infeasible) == {REFUSED}


def test_json_says_which_candidate_cannot_start(l40s: Path) -> None:
    code, out, _ = run("score", str(l40s), "--format", "json")
    assert code == 0
    data = json.loads(out)
    assert data["winner"] == FEASIBLE
    by_id = {c["id"]: c for c in data["candidates"]}
    assert by_id[REFUSED]["feasible"] is False and by_id[REFUSED]["rank"] is None
    assert any("[launch:fp8-kv-unsupported-backend]" in reason
               for reason in by_id[REFUSED]["infeasible_reasons"])
    assert by_id[FEASIBLE]["feasible"] is True and by_id[FEASIBLE]["infeasible_reasons"] == []


def test_the_table_markdown_and_csv_show_it_infeasible(decision: Decision) -> None:
    ranking = decision.score()
    text = render(ranking)
    assert "winner: BF16, FLASH_ATTN" in text
    assert (f"infeasible: {REFUSED}: cannot start as written "
            "(launch:fp8-kv-unsupported-backend)") in text
    row = next(line for line in text.splitlines() if "FP8 checkpoint" in line)
    assert row.startswith("-") and "launch:fp8-kv-unsupported-backend" in row
    assert f"infeasible: {REFUSED}" in render(ranking, "markdown")
    rows = {r["id"]: r for r in csv.DictReader(io.StringIO(render(ranking, "csv")))}
    assert rows[REFUSED]["feasible"] == "false" and rows[REFUSED]["rank"] == ""
    assert "[launch:fp8-kv-unsupported-backend]" in rows[REFUSED]["infeasible_reasons"]
    assert rows[FEASIBLE]["feasible"] == "true" and rows[FEASIBLE]["rank"] == "1"


def test_the_data_frame_says_which_candidates_are_feasible(decision: Decision) -> None:
    pytest.importorskip("pandas")
    frame = decision.score().to_frame()
    assert not frame.loc[REFUSED, "feasible"] and frame.loc[FEASIBLE, "feasible"]
    assert list(frame.index) == [FEASIBLE, "bf16-flashinfer", REFUSED]


def test_sensitivity_never_flips_to_a_candidate_that_cannot_start(decision: Decision) -> None:
    result = decision.sensitivity(samples=2_000)
    assert result.winner == FEASIBLE
    assert REFUSED in result.left_out and "launch:fp8-kv-unsupported-backend" in \
        result.left_out[REFUSED]
    targets = {flip.new_winner for c in result.flips.criteria for flip in (c.increase, c.decrease)}
    assert REFUSED not in targets
    assert REFUSED not in result.smaa.candidate_ids
    assert result.tradeoff is not None and result.tradeoff.runner_up == "bf16-flashinfer"
    assert float(result.smaa.acceptability[:, 0].sum()) == pytest.approx(1.0)
    # without leaving it out, raising the speed weight would hand first place to it
    everyone = analyze(decision, samples=2_000)
    assert everyone.winner == REFUSED


def test_sensitivity_says_which_candidates_were_left_out(l40s: Path) -> None:
    code, out, _ = run("sensitivity", str(l40s), "--samples", "1000")
    assert code == 0
    assert "left out: 1 infeasible candidate" in out
    assert f"  {REFUSED}: cannot start as written (launch:fp8-kv-unsupported-backend)" in out
    assert REFUSED not in out.split("left out", 1)[1].split("\n", 3)[3]
    code, out, _ = run("sensitivity", str(l40s), "--samples", "1000", "--format", "json")
    data = json.loads(out)
    assert data["winner"] == FEASIBLE
    assert [item["id"] for item in data["left_out"]] == [REFUSED]
    assert {c["id"] for c in data["smaa"]["candidates"]} == {FEASIBLE, "bf16-flashinfer"}
    assert all(d[key]["new_winner"] != REFUSED for d in data["flip_distances"]
               for key in ("increase", "decrease"))


def test_launch_winner_picks_the_best_feasible_candidate(l40s: Path) -> None:
    code, out, err = run("launch", str(l40s), "--winner", "--dry-run", "--use-current-env")
    assert f"candidate: {FEASIBLE} (the winner by weighted sum; passed over as infeasible: " \
           f"{REFUSED}: cannot start as written (launch:fp8-kv-unsupported-backend))" in err
    assert code == 0, err
    assert "vllm serve meta-llama/Llama-3.1-8B-Instruct --max-model-len 8192" in out
    assert "RedHatAI" not in out and "kv-cache-dtype" not in out


def test_no_feasible_candidate_means_no_winner_anywhere(rtx4090_path: Path) -> None:
    """The seed report's three candidates all cannot start as written."""
    decision = stackdecide.load(rtx4090_path)
    ranking = decision.score()
    assert ranking.winner is None and not ranking.ranks.any()
    assert set(ranking.cannot_start) == set(decision.candidate_ids)
    assert [ranking.candidate_ids[i] for i in ranking.order] == [
        "vllm-flashinfer-torch271", "vllm-flashinfer-torch262", "vllm-cuda-torch271"]  # by total
    text = render(ranking)
    assert "winner: none: no candidate is feasible (3 cannot start as written)" in text
    assert "reported total 89.25 does not follow" in text  # the published totals, still audited
    with pytest.raises(NoFeasibleCandidate, match="cannot start as written"):
        decision.sensitivity(samples=100)
    code, _, err = run("launch", str(rtx4090_path), "--winner", "--dry-run")
    assert code == 1
    assert "no candidate is feasible, so there is no winner to launch" in err
    assert "vllm-cuda-torch271: cannot start as written (launch:fp8-e5m2-with-fp8-checkpoint, " \
           "launch:fp8-kv-unsupported-backend, launch:kv-cache-too-small)" in err
    code, _, err = run("sensitivity", str(rtx4090_path), "--samples", "100")
    assert code == 1 and "no candidate is feasible" in err


def test_the_report_analyses_the_feasible_candidates_only(decision: Decision,
                                                           rtx4090_path: Path) -> None:
    report = build_report(decision, samples=500)
    assert report.sensitivity is not None and REFUSED in report.sensitivity.left_out
    text = render_markdown(report)
    assert f"infeasible: `{REFUSED}`: cannot start as written" in text
    assert f"- `{REFUSED}`: cannot start as written" in text.split("### Robustness", 1)[1]
    pytest.importorskip("matplotlib")
    page = render_html(report)
    robustness = page.split('id="robustness"', 1)[1].split("</section>", 1)[0]
    assert f"<li><b>{REFUSED}</b>: cannot start as written" in robustness
    smaa = robustness.split("<th>rank 1</th>", 1)[1]
    assert REFUSED not in smaa and FEASIBLE in smaa
    assert "1 infeasible left out" in page
    none = build_report(stackdecide.load(rtx4090_path), samples=100)
    assert none.sensitivity is None and none.winner_config is None
    text = render_markdown(none)
    assert "**Winner: none**: no candidate is feasible (3 cannot start as written)" in text
    assert "Not analysed: no candidate is feasible" in text


def test_the_audit_column_shows_the_worst_finding_first_with_a_count(decision: Decision) -> None:
    """Errors before warnings before infos; among errors, one that says the candidate cannot
    start before a wrong published total."""
    ranking = decision.score()
    refused = decision.candidate_index(REFUSED)
    extra = (Finding("reported-total-mismatch", "error", REFUSED, "off", None, 90.0, 89.0),
             Finding("some-warning", "warning", REFUSED, "w"),
             Finding("some-info", "info", REFUSED, "i"))
    ranking = dataclasses.replace(ranking, findings=(*extra, *ranking.findings))
    assert [f.code for f in worst_first(ranking, refused)] == [
        "launch:fp8-kv-unsupported-backend", "reported-total-mismatch", "some-warning",
        "some-info"]
    _, rows = table_rows(ranking)
    row = next(r for r in rows if r[1] == "FP8 checkpoint, FLASH_ATTN, FP8 KV cache")
    assert row[-1] == "launch:fp8-kv-unsupported-backend (+3)"
    feasible = next(r for r in rows if r[1] == "BF16, FLASH_ATTN")
    assert feasible[-1] == "MISMATCH +29.00"  # its only finding: no count
    warned = next(r for r in rows if r[1] == "BF16, FLASHINFER")
    assert warned[-1] == "launch:env-changes-loaded-code"
