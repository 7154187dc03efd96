"""`stackdecide report`: the HTML page (checked in headless Chromium), its data, and markdown."""

from __future__ import annotations

import os
import re
import shutil
import subprocess
import sys
import xml.etree.ElementTree as ET
from pathlib import Path

import numpy as np
import pytest
from click.testing import CliRunner

import stackdecide
from stackdecide.cli import main
from stackdecide.evidence import EvidenceRecord, EvidenceStore, HardwareInfo, load_evidence
from stackdecide.facts.roofline import decode_ceiling, hardware_from, prefill_ceiling
from stackdecide.facts.shapes import SHAPES
from stackdecide.report import (
    MissingDependencyError,
    build_report,
    command_lines,
    render_html,
    render_markdown,
)
from stackdecide.report.charts import TOP_N
from stackdecide.vllm.args import VllmArgSpec

LAPTOP = "NVIDIA GeForce RTX 4090 Laptop GPU"
SOFTWARE = {"vllm": "0.10.1.1", "torch": "2.7.1+cu128", "cuda": "12.8", "transformers": "4.55.0"}
SCENARIO = {"input_len": 512, "output_len": 256, "concurrency": 1}
TAB10_BLUE = (31, 119, 180)  # first criterion's colour in the contributions chart


def run(*args: str) -> tuple[int, str, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.stdout, result.stderr


def charts_in(page: str) -> dict[str, str]:
    """name -> SVG text of every chart figure on the page."""
    found = re.findall(r'<figure class="chart" data-chart="([^"]+)">(<svg.*?</svg>)', page, re.S)
    return dict(found)


def table_after(page: str, marker: str) -> str:
    start = page.index(marker)
    return page[start: page.index("</table>", start)]


def large_decision_text(candidates: int = 100, criteria: int = 20, seed: int = 1) -> str:
    rng = np.random.default_rng(seed)
    lines = ["schema: stackdecide/v1", "decision:", "  title: 100 stacks x 20 criteria",
             "  normalize_weights: true", "criteria:"]
    for j in range(criteria):
        lines.append(f"  - {{id: c{j:02d}, name: Criterion {j} with a fairly long name, "
                     f"weight: {int(rng.integers(1, 20))}}}")
    lines.append("candidates:")
    for i in range(candidates):
        scores = ", ".join(f"c{j:02d}: {rng.uniform(0, 10):.2f}" for j in range(criteria))
        lines += [f"  - id: cand-{i:03d}", f"    name: stack {i:03d} vllm 0.{i % 30} torch 2.{i % 9}",
                  f"    scores: {{{scores}}}"]
    return "\n".join(lines) + "\n"


@pytest.fixture
def evidence_db(tmp_path: Path) -> Path:
    """Measurements of the rtx4090.yaml candidates: decode, prefill and launch on the decision's
    GPU, one decode run on an H100 (other hardware), and a failed launch."""
    laptop = HardwareInfo(gpu=LAPTOP, vram_gb=16, compute_capability="8.9", driver="575.64")
    old_torch = dict(SOFTWARE, torch="2.6.0")
    records = [
        *[EvidenceRecord(candidate="vllm-cuda-torch271", metric="decode_tok_s", value=v,
                         hardware=laptop, software=SOFTWARE, scenario=SCENARIO, source="run-1")
          for v in (101.0, 104.0, 99.5)],
        EvidenceRecord(candidate="vllm-cuda-torch271", metric="launch_ok", value=1, hardware=laptop,
                       software=SOFTWARE, source="run-1"),
        *[EvidenceRecord(candidate="vllm-flashinfer-torch271", metric="decode_tok_s", value=v,
                         hardware=laptop, software=SOFTWARE, scenario=SCENARIO, source="run-2")
          for v in (88.0, 90.5)],
        EvidenceRecord(candidate="vllm-flashinfer-torch271", metric="prefill_tok_s", value=9000.0,
                       hardware=laptop, software=SOFTWARE, scenario=SCENARIO, source="run-2"),
        EvidenceRecord(candidate="vllm-flashinfer-torch271", metric="launch_ok", value=1,
                       hardware=laptop, software=SOFTWARE, source="run-2"),
        EvidenceRecord(candidate="vllm-flashinfer-torch262", metric="launch_ok", value=0,
                       hardware=laptop, software=old_torch, source="run-3",
                       note="no flashinfer wheel for torch 2.6"),
        EvidenceRecord(candidate="vllm-cuda-torch271", metric="decode_tok_s", value=180.0,
                       hardware=HardwareInfo(gpu="NVIDIA H100 80GB HBM3"), software=SOFTWARE,
                       scenario=SCENARIO, source="run-h100"),
    ]
    path = tmp_path / "evidence.db"
    with EvidenceStore(path) as store:
        store.add(records)
    return path


# -- the page in a real browser -------------------------------------------------------------------
def chromium() -> str:
    found = next((shutil.which(n) for n in ("chromium", "chromium-browser", "google-chrome")
                  if shutil.which(n)), None)
    if found is None:
        message = "no headless Chromium: install it with scripts/install-chromium.sh"
        if os.environ.get("CI"):  # `make test` installs it: a missing browser is a failure there
            pytest.fail(message)
        pytest.skip(message)
    return found


def chromium_run(page: Path, profile: Path, *args: str) -> subprocess.CompletedProcess[str]:
    command = [chromium(), "--headless", "--no-sandbox", "--disable-gpu", "--disable-quic",
               "--no-first-run", "--disable-background-networking", "--disable-component-update",
               "--disable-sync", f"--user-data-dir={profile}", "--enable-logging=stderr", "--v=0",
               *args, page.resolve().as_uri()]
    return subprocess.run(command, capture_output=True, text=True, timeout=120, check=False)


def console_messages(stderr: str) -> list[str]:
    """Messages the page wrote to the browser console (script errors, failed loads)."""
    return [line for line in stderr.splitlines() if ":CONSOLE" in line]


@pytest.mark.browser
def test_rtx4090_report_loads_in_chromium_with_its_charts(tmp_path: Path,
                                                         rtx4090_table_path: Path) -> None:
    out = tmp_path / "report.html"
    code, stdout, _ = run("report", str(rtx4090_table_path), "--html", str(out))
    assert code == 0, stdout
    assert f"wrote {out}" in stdout and "winner: vllm-flashinfer-torch271" in stdout

    dom = chromium_run(out, tmp_path / "profile-dom", "--dump-dom")
    assert dom.returncode == 0, dom.stderr[-2000:]
    assert console_messages(dom.stderr) == []
    html_dom = dom.stdout
    # the browser parsed the page: charts are SVG elements in the DOM, the key facts are text
    assert len(re.findall(r"<svg\b", html_dom)) == 3
    for chart in ("contributions", "flips", "smaa"):
        assert f'data-chart="{chart}"><svg' in html_dom
    for text in ("vLLM stack for Qwen3-4B-Instruct-2507-FP8", "89.75", "reported-total-mismatch",
                 "target-above-roofline", "SMAA-2 rank acceptability", "FLASHINFER", "45.8%",
                 "max-num-seqs-above-capacity"):
        assert text in html_dom, text

    shot = tmp_path / "report.png"
    result = chromium_run(out, tmp_path / "profile-shot", f"--screenshot={shot}",
                          "--window-size=1280,2400")
    assert result.returncode == 0, result.stderr[-2000:]
    assert console_messages(result.stderr) == []
    from PIL import Image

    with Image.open(shot) as image:
        assert image.size == (1280, 2400)
        pixels = np.asarray(image.convert("RGB")).reshape(-1, 3).astype(int)
    # drawn, not blank: many colours, and the first criterion's bars of the chart are visible
    assert len(np.unique(pixels, axis=0)) > 500
    blue = np.all(np.abs(pixels - TAB10_BLUE) <= 6, axis=1).sum()
    assert blue > 5000, f"{blue} pixels of the chart's first colour"


# -- content --------------------------------------------------------------------------------------
def test_html_is_self_contained_and_every_chart_is_valid_svg(rtx4090_table_path: Path) -> None:
    page = render_html(build_report(stackdecide.load(rtx4090_table_path)))
    assert page.startswith("<!DOCTYPE html>")
    lowered = page.lower()
    for fetch in ("<script", "<link", "<img", "<iframe", "@import", " src="):
        assert fetch not in lowered, fetch
    assert re.findall(r"url\((?!#)", page) == []  # only in-document references (#clip, #hatch)
    found = charts_in(page)
    assert set(found) == {"contributions", "flips", "smaa"}
    ids: list[str] = []
    for svg in found.values():
        root = ET.fromstring(svg)
        assert root.tag.endswith("svg") and root.get("viewBox")
        ids += [e.get("id") for e in root.iter() if e.get("id")]
    assert len(ids) == len(set(ids)), "charts share element ids"
    # the three candidates and four criteria are in the contributions chart, as text
    contributions = found["contributions"]
    for label in ("vllm[flashinfer] + PyTorch 2.7.1", "FP8 Performance (35%)",
                  "Installation Stability (20%)", "89.75", "85.00", "72.50"):
        assert label in contributions, label


def test_ranking_table_shows_contributions_and_audit(rtx4090_path: Path) -> None:
    report = build_report(stackdecide.load(rtx4090_path))
    page = render_html(report)
    table = table_after(page, '<table class="num ranking">')
    rows = re.findall(r"<tr>(.*?)</tr>", table, re.S)[1:]
    assert len(rows) == 3
    first = rows[0]
    assert "vllm-flashinfer-torch271" in first and "<b>89.75</b>" in first
    for points in ("33.25", "22.50", "16.00", "18.00"):
        assert f"<td>{points}</td>" in first
    assert "reported-total-mismatch -0.50" in first
    # the report's configuration cannot start on its own 16 GB card: flagged for every candidate,
    # which is infeasible, the finding that says so first
    assert first.index("launch:fp8-e5m2-with-fp8-checkpoint") < first.index("reported-total")
    assert ("infeasible: cannot start as written (launch:fp8-e5m2-with-fp8-checkpoint, "
            "launch:kv-cache-too-small)") in first
    assert '<span class="b error">launch:kv-cache-too-small</span>' in rows[2]
    assert all("<td>–</td>" in row for row in rows)  # no rank
    assert "M</span>" not in table  # nothing measured
    assert "0 of 12" in page and "9 errors, 4 warnings" in page  # 3: trust_remote_code, each
    assert "no candidate is feasible (3 cannot start as written)" in page
    assert "Not analysed: no candidate is feasible" in page
    assert set(charts_in(page)) == {"contributions"}


def test_sensitivity_numbers_match_the_sensitivity_command(rtx4090_table_path: Path) -> None:
    report = build_report(stackdecide.load(rtx4090_table_path), samples=2000, seed=3)
    flips = report.sensitivity.flips
    assert flips.of("installation_stability").increase.threshold == pytest.approx(27 / 59)
    page = render_html(report)
    _, out, _ = run("sensitivity", str(rtx4090_table_path), "--samples", "2000", "--seed", "3",
                       "--format", "json")
    import json

    expected = {c["id"]: c["rank_acceptability"][0]
                for c in json.loads(out)["smaa"]["candidates"]}
    smaa = table_after(page, "<th>rank 1</th>")
    for candidate, share in expected.items():
        assert 0 < share < 1
        assert f"<td>{candidate}</td><td>{share * 100:.1f}%</td>" in smaa, candidate
    assert "raising <b>installation_stability</b> from 20.0% to 45.8%" in page


def test_evidence_adds_before_after_provenance_and_roofline(rtx4090_table_path: Path,
                                                            evidence_db: Path) -> None:
    decision = stackdecide.load(rtx4090_table_path)
    report = build_report(decision, load_evidence(evidence_db))
    changes = {c.candidate: c for c in report.rank_changes()}
    assert changes["vllm-cuda-torch271"].judged_rank == 3
    assert changes["vllm-cuda-torch271"].rank == 2 and changes["vllm-cuda-torch271"].moved == 1
    assert changes["vllm-flashinfer-torch262"].rank == 3  # its launch failed
    assert report.judged is not None and report.judged.totals[1] == pytest.approx(89.75)

    page = render_html(report)
    assert set(charts_in(page)) == {"contributions", "before-after", "roofline", "flips", "smaa"}
    assert "The evidence keeps <b>vllm-flashinfer-torch271</b> as the winner." in page
    assert table_after(page, '<table class="num ranking">').count('title="measured"') == 7
    # a measured cell shows raw median, judged score and flags; provenance lists record ids
    provenance = table_after(page, "Measured cells and their provenance")
    assert re.search(r"<td>vllm-cuda-torch271</td><td>FP8 Performance</td><td>decode_tok_s</td>"
                     r"<td>101 tok/s</td><td>3</td><td>4.5</td>", provenance)
    assert "<td>1, 2, 3</td>" in provenance
    assert "version-mismatch" in provenance  # torch 2.6.0 outside '==2.6.2'
    records = table_after(page, "Evidence records used")
    assert "run-h100" not in records  # other hardware is not used without --any-hardware
    assert "no flashinfer wheel for torch 2.6" in records

    # roofline shares: the measured median over the ceiling of the GPU it ran on
    shape = SHAPES["qwen3-4b"]
    laptop = hardware_from(LAPTOP, 576)
    assert laptop is not None
    context = 640  # mean context of the run: input_len + (output_len - 1) / 2 = 639.5
    ceiling = decode_ceiling(shape, laptop, "fp8-block", "fp8_e5m2", context).tok_s
    rows = {(r.candidate, r.metric, r.gpu): r for r in report.roofline.measurements}
    cuda = rows[("vllm-cuda-torch271", "decode_tok_s", LAPTOP)]
    assert cuda.measured == 101.0 and cuda.ceiling == pytest.approx(ceiling)
    assert cuda.percent == pytest.approx(10100 / ceiling) and cuda.in_score is True
    h100 = rows[("vllm-cuda-torch271", "decode_tok_s", "NVIDIA H100 80GB HBM3")]
    assert h100.in_score is False and h100.ceiling is not None and h100.ceiling > 3 * ceiling
    prefill = rows[("vllm-flashinfer-torch271", "prefill_tok_s", LAPTOP)]
    expected = prefill_ceiling(shape, laptop, "fp8-block", "fp8_e5m2", 512)
    assert expected is not None and prefill.ceiling == pytest.approx(expected.tok_s)
    assert f"<b>{cuda.percent:.0f}%</b>" in page

    markdown = render_markdown(report)
    assert "### Before and after the evidence" in markdown
    assert re.search(r"\| 2 +\| vllm\[cuda\] \+ PyTorch 2\.7\.1 +\| 72\.50 \(#3\) +\| 90\.00 +\| "
                     r"\+17\.50 +\| 3/4 ", markdown)
    assert f"{cuda.percent:.0f}%" in markdown


def test_any_hardware_and_infeasible_candidates(rtx4090_table_path: Path, evidence_db: Path,
                                                tmp_path: Path) -> None:
    with EvidenceStore(evidence_db) as store:
        store.add([EvidenceRecord(candidate="vllm-flashinfer-torch271", metric="vram_gb",
                                  value=17.5, hardware=HardwareInfo(gpu=LAPTOP),
                                  software=SOFTWARE)])
    out = tmp_path / "r.html"
    code, stdout, _ = run("report", str(rtx4090_table_path), "--evidence", str(evidence_db),
                          "--any-hardware", "--no-engine-command", "--html", str(out))
    assert code == 0, stdout
    page = out.read_text()
    assert "infeasible: vram_gb = 17.5 breaks &#x27;vram_gb &lt;= 16&#x27;" in page
    assert "1 infeasible left out" in page  # of SMAA-2
    left_out = page.split("Left out, being infeasible", 1)[1].split("</ul>", 1)[0]
    assert "<b>vllm-flashinfer-torch271</b>: vram_gb = 17.5 breaks" in left_out
    assert "vllm[flashinfer] + PyTorch 2.7.1 (infeasible)" in charts_in(page)["contributions"]
    assert "run-h100" in table_after(page, "Evidence records used")
    assert "other-hardware" in page
    assert "winner: vllm-cuda-torch271" in stdout


def test_user_text_is_escaped_everywhere(tmp_path: Path) -> None:
    text = """\
schema: stackdecide/v1
decision:
  title: "<b>Title</b> & co"
criteria:
  - {id: speed, name: "speed <i>x</i> | $y$", weight: 0.6}
  - {id: cost, name: cost, weight: 0.4, direction: cost}
candidates:
  - id: a
    name: "<script>alert(1)</script> $5 | pipe"
    scores: {speed: 7, cost: 3}
    engine: {model: "<img src=x onerror=alert(1)>", max_num_seqs: 8}
  - id: b
    scores: {speed: 9, cost: 8}
"""
    path = tmp_path / "d.yaml"
    path.write_text(text)
    report = build_report(stackdecide.load(path))
    assert report.ranking.winner == "a"
    page = render_html(report)
    assert "<script" not in page and "<img" not in page and "<b>Title</b>" not in page
    assert "&lt;script&gt;alert(1)&lt;/script&gt;" in page
    assert "&lt;img src=x onerror=alert(1)&gt;" in page
    assert "&lt;b&gt;Title&lt;/b&gt; &amp; co" in page
    # matplotlib did not read '$...$' as math: the label is text in the SVG, escaped by matplotlib
    contributions = charts_in(page)["contributions"]
    ET.fromstring(contributions)
    assert "$5 | pipe" in contributions and "&lt;script&gt;" in contributions
    assert "$y$" in contributions

    markdown = render_markdown(report)
    assert "<script>" not in markdown and "&lt;script&gt;" in markdown
    ranking_row = next(line for line in markdown.splitlines() if line.startswith("| 1 "))
    assert r"$5 \| pipe" in ranking_row  # a pipe in a name does not split the table row


def test_topsis_report_marks_the_method_total(rtx4090_table_path: Path) -> None:
    report = build_report(stackdecide.load(rtx4090_table_path), method="topsis")
    page = render_html(report)
    assert "TOPSIS total" in charts_in(page)["contributions"]
    winner = report.ranking.winner
    assert winner is not None
    assert f"<b>{report.ranking.total(winner):.2f}</b>" in page
    # robustness is analysed under the ranking's own method, so the report and `sensitivity
    # --method topsis` agree
    assert "TOPSIS (scale ends as ideal and anti-ideal) of the judged scores" in page
    assert report.sensitivity.method == "topsis"


def small_vllm_spec() -> VllmArgSpec:
    """The argument definitions of a (made-up) vLLM 0.99.0, in the form vLLM's parser dumps them."""
    actions = [
        {"dest": "model", "options": ["--model"], "kind": "store", "type": "str"},
        {"dest": "max_num_seqs", "options": ["--max-num-seqs"], "kind": "store", "type": "int"},
        {"dest": "enable_prefix_caching", "kind": "boolean_optional", "nargs": 0,
         "options": ["--enable-prefix-caching", "--no-enable-prefix-caching"]},
        {"dest": "host", "options": ["--host"], "kind": "store", "type": "str"},
        {"dest": "port", "options": ["--port"], "kind": "store", "type": "int"},
    ]
    return VllmArgSpec.from_dump({"vllm_version": "0.99.0", "actions": actions,
                                  "server_module": "vllm.entrypoints.openai.api_server"},
                                 "/opt/serve/bin/python")


def test_winner_engine_config_renders_to_the_exact_command(tmp_path: Path) -> None:
    path = tmp_path / "d.yaml"
    path.write_text("""\
schema: stackdecide/v1
decision: {title: Engine command}
criteria: [{id: speed, weight: 1}]
candidates:
  - id: a
    env: {VLLM_USE_V1: "1"}
    engine: {model: "org/model name", max_num_seqs: 8, enable_prefix_caching: true,
             use_v2_block_manager: true}
    scores: {speed: 9}
  - id: b
    scores: {speed: 3}
""")
    report = build_report(stackdecide.load(path), engine_spec=small_vllm_spec())
    config = report.winner_config
    assert config is not None and config.command is not None
    assert config.command.argv == (
        "/opt/serve/bin/python", "-m", "vllm.entrypoints.openai.api_server",
        "--model", "org/model name", "--max-num-seqs", "8", "--enable-prefix-caching",
        "--host", "127.0.0.1", "--port", "8000")
    assert command_lines(config.command) == (
        "VLLM_USE_V1=1 \\\n  /opt/serve/bin/python -m vllm.entrypoints.openai.api_server \\\n"
        "  --model 'org/model name' \\\n  --max-num-seqs 8 \\\n  --enable-prefix-caching \\\n"
        "  --host 127.0.0.1 \\\n  --port 8000")
    page = render_html(report)
    assert "rendered for vLLM 0.99.0 (/opt/serve/bin/python)" in page
    assert "--model &#x27;org/model name&#x27; \\" in page
    assert "removed-key" in page and "use_v2_block_manager" in page  # dropped, with the reason
    assert "renders cleanly" in page and "would refuse" not in page
    markdown = render_markdown(report)
    assert "```sh\nVLLM_USE_V1=1 \\\n  /opt/serve/bin/python -m" in markdown
    # without a vLLM the configuration is shown as written, and the page says why
    plain = render_html(build_report(stackdecide.load(path), engine_note="no vLLM here"))
    assert "not rendered for a vLLM (no vLLM here)" in plain
    assert "use_v2_block_manager: true" in plain


# -- large inputs ---------------------------------------------------------------------------------
def test_100_candidates_by_20_criteria_stay_readable(tmp_path: Path) -> None:
    path = tmp_path / "large.yaml"
    path.write_text(large_decision_text())
    decision = stackdecide.load(path)
    report = build_report(decision, samples=2000)
    page = render_html(report)
    assert len(page.encode()) < 1_500_000
    found = charts_in(page)
    assert set(found) == {"contributions", "flips", "smaa"}
    for svg in found.values():
        ET.fromstring(svg)
    # charts show the top candidates, and say so; the table below lists all of them
    contributions = found["contributions"]
    assert f"top {TOP_N} of 100 candidates; the table lists all" in contributions
    shown = re.findall(r"\b(\d+)\. stack \d{3}", contributions)
    assert [int(n) for n in shown] == list(range(1, TOP_N + 1))
    assert "top 15 of 100 candidates" in found["smaa"]
    assert "top 20 of 20" not in found["flips"]  # all 20 criteria fit
    ranking_table = table_after(page, '<table class="num ranking">')
    assert ranking_table.count("<tr>") == 101
    assert all(f"cand-{i:03d}" in ranking_table for i in range(100))
    matrix = table_after(page, '<table class="matrix">')
    assert matrix.count("<tr>") == 101 and matrix.count('class="judged"') == 2000
    # every criterion has a legend entry in the chart
    assert contributions.count("Criterion ") >= 20

    markdown = render_markdown(report)
    ranking_lines = [line for line in markdown.split("### Ranking")[1].split("###")[0].splitlines()
                     if line.startswith("| ") and not line.startswith("| rank")]
    assert len(ranking_lines) == 100
    assert "(90 more candidates in the HTML report)" in markdown


# -- markdown and the command line ----------------------------------------------------------------
def test_markdown_report_of_rtx4090(rtx4090_path: Path, tmp_path: Path) -> None:
    """The seed report as published: none of its configurations can start, so no winner, no
    robustness and no winner's configuration; its totals are audited all the same."""
    code, out, _ = run("report", str(rtx4090_path), "--format", "markdown", "--no-engine-command")
    assert code == 0
    assert out.startswith("## vLLM stack for Qwen3-4B-Instruct-2507-FP8")
    assert ("**Winner: none**: no candidate is feasible (3 cannot start as written); the totals "
            "are shown as scored, none is ranked.") in out
    first = next(line for line in out.splitlines() if line.startswith("| - "))
    assert "89.75" in first and "33.25" in first
    assert "launch:fp8-e5m2-with-fp8-checkpoint (+3)" in first  # one of them: trust_remote_code
    assert ("infeasible: `vllm-cuda-torch271`: cannot start as written (launch:fp8-e5m2-with-fp8-"
            "checkpoint, launch:fp8-kv-unsupported-backend, launch:kv-cache-too-small)") in out
    assert "- **error** `reported-total-mismatch`" in out
    assert "- **warning** `target-above-roofline`" in out
    # a finding about a candidate names it, as the text view does
    e5m2 = [line for line in out.splitlines() if "`launch:fp8-e5m2-with-fp8-checkpoint`" in line]
    assert sorted(line.rpartition(" (candidate ")[2] for line in e5m2) == [
        "vllm-cuda-torch271)", "vllm-flashinfer-torch262)", "vllm-flashinfer-torch271)"]
    assert "Not analysed: no candidate is feasible" in out
    assert "### Engine configuration" not in out
    assert "<svg" not in out
    target = tmp_path / "report.md"
    code, stdout, _ = run("report", str(rtx4090_path), "--format", "markdown", "--output",
                          str(target), "--no-engine-command")
    assert code == 0 and target.read_text() == out
    assert f"wrote {target}" in stdout and "winner: none (no candidate is feasible)" in stdout


def test_markdown_report_with_a_winner(rtx4090_table_path: Path) -> None:
    code, out, _ = run("report", str(rtx4090_table_path), "--format", "markdown",
                       "--no-engine-command")
    assert code == 0
    assert ("**Winner: vllm[flashinfer] + PyTorch 2.7.1** (`vllm-flashinfer-torch271`), 89.75 of "
            "100 by weighted sum, 4.75 points ahead of `vllm-flashinfer-torch262`.") in out
    first = next(line for line in out.splitlines() if line.startswith("| 1 "))
    assert "89.75" in first and "33.25" in first and "MISMATCH -0.50" in first
    assert ("raise `installation_stability` from 20.0% to 45.8%; `vllm-flashinfer-torch262` "
            "then wins") in out
    assert "not rendered for a vLLM (--no-engine-command)" in out
    assert "```yaml\nmodel: Qwen/Qwen3-4B-Instruct-2507-FP8\n" in out
    assert "use_v2_block_manager: true" in out
    assert "stack: `vllm >=0.10.1`" in out


def test_command_line_errors(rtx4090_path: Path, tmp_path: Path) -> None:
    code, _, err = run("report", str(rtx4090_path))
    assert code == 2 and "--html report.html" in err
    code, _, err = run("report", str(rtx4090_path), "--html", str(tmp_path / "a.html"),
                       "--format", "markdown")
    assert code == 2 and "--html writes HTML" in err
    code, _, err = run("report", str(tmp_path / "missing.yaml"), "--html", str(tmp_path / "a.html"))
    assert code == 2 and "missing.yaml" in err and "Traceback" not in err
    code, _, err = run("report", str(rtx4090_path), "--evidence", str(tmp_path / "none.db"),
                       "--format", "markdown")
    assert code == 2 and "no such evidence store" in err
    code, _, err = run("report", str(rtx4090_path), "--html", str(tmp_path / "no" / "dir.html"))
    assert code == 2 and "cannot write" in err


def test_missing_matplotlib_names_the_extra(rtx4090_path: Path, tmp_path: Path,
                                            monkeypatch: pytest.MonkeyPatch) -> None:
    for name in [m for m in sys.modules if m == "matplotlib" or m.startswith("matplotlib.")]:
        monkeypatch.delitem(sys.modules, name)
    monkeypatch.setitem(sys.modules, "matplotlib", None)  # import matplotlib -> ImportError
    report = build_report(stackdecide.load(rtx4090_path))
    with pytest.raises(MissingDependencyError, match=r"pip install 'stackdecide\[html\]'"):
        render_html(report)
    assert "### Ranking" in render_markdown(report)  # markdown needs no matplotlib
    code, _, err = run("report", str(rtx4090_path), "--no-engine-command", "--html",
                       str(tmp_path / "r.html"))
    assert code == 1 and "pip install 'stackdecide[html]'" in err
    assert not (tmp_path / "r.html").exists()


def test_same_inputs_give_the_same_page(rtx4090_path: Path) -> None:
    decision = stackdecide.load(rtx4090_path)
    first = render_html(build_report(decision, samples=1000))
    second = render_html(build_report(decision, samples=1000))
    assert first == second  # no clock, no random ids: a report can be diffed and committed
