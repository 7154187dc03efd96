"""Every view marks predicted cells apart from measured and judged ones: ``~`` in the tables, a
P with its value and interval in the HTML report, their own rows beside the measured cells."""

from __future__ import annotations

import re
from pathlib import Path

import pytest

import stackdecide
from stackdecide.evidence import EvidenceRecord, EvidenceSet, HardwareInfo
from stackdecide.model.certainty import CertaintySettings
from stackdecide.model.ranking import Ranking
from stackdecide.report import build_report, render_html, render_markdown, scoring_inputs
from stackdecide.report.text import render_before_after, render_text, table_rows

ROOT = Path(__file__).parents[2]
SPACE = ROOT / "criteria" / "cpu-space.yaml"
LAUNCHED = "bf16-prefix-cache-batch32-seqs4"
# a criterion column's value: ``~7.35`` predicted, ``7.35*`` measured, ``7.35`` judged
PREDICTED_TERM = re.compile(r"^~\d+\.\d\d$")
MEASURED_TERM = re.compile(r"^\d+\.\d\d\*$")
JUDGED_TERM = re.compile(r"^\d+\.\d\d$")
TOOLTIP = re.compile(r'<span class="p" title="predicted [\d.,]+ tok/s \(80%: [\d.,]+ \.\. [\d.,]+\), '
                     r'no launch">P</span>')


def two_launches() -> EvidenceSet:
    """Two launches of one configuration of the CPU space, every criterion measured."""
    cpu = HardwareInfo(gpu="cpu")
    records = []
    for launch, speed in (("run 001", 40.0), ("run 002", 42.0)):
        records += [EvidenceRecord(candidate=LAUNCHED, metric="launch_ok", value=1.0, hardware=cpu,
                                   source=launch, launch=launch),
                    EvidenceRecord(candidate=LAUNCHED, metric="startup_s", value=25.0, hardware=cpu,
                                   source=launch, launch=launch)]
        records += [EvidenceRecord(candidate=LAUNCHED, metric="output_tok_s", hardware=cpu,
                                   source=launch, launch=launch, value=speed * streams,
                                   scenario={"concurrency": streams, "input_len": prompt,
                                             "output_len": 64, "scenario": scenario})
                    for streams, prompt, scenario in ((1, 32, "decode"), (4, 64, "throughput"))]
    return EvidenceSet.of(records)


@pytest.fixture(scope="module")
def space_ranking() -> Ranking:
    decision = stackdecide.load(SPACE)
    inputs = scoring_inputs(decision, two_launches(), CertaintySettings(samples=500), tolerance="3")
    return decision.score(evidence=inputs.evidence, certainty=inputs.certainty,
                          prediction=inputs.prediction)


def test_the_table_marks_predicted_cells_with_a_tilde_and_no_other(space_ranking: Ranking) -> None:
    decision = space_ranking.decision
    _, rows = table_rows(space_ranking)
    criteria = len(decision.criteria)
    by_candidate = {decision.candidate(row[1]).id: row[3:3 + criteria] for row in rows}
    for i, candidate_id in enumerate(decision.candidate_ids):
        for j, term in enumerate(by_candidate[candidate_id]):
            cell = space_ranking.cells[i][j]
            pattern = {"predicted": PREDICTED_TERM, "measured": MEASURED_TERM,
                       "judged": JUDGED_TERM}[cell.source]
            assert pattern.match(term), (candidate_id, decision.criteria[j].id, cell.source, term)
    # the launched configuration is measured everywhere; another is predicted everywhere,
    # launch_ok included (its chance of starting)
    assert all(MEASURED_TERM.match(term) for term in by_candidate[LAUNCHED])
    other = by_candidate["fp32-no-prefix-cache-batch1024-seqs64"]
    assert [PREDICTED_TERM.match(t) is not None for t in other] == [True, True, True, True]


def test_the_text_lists_predicted_cells_apart_and_counts_them_apart(space_ranking: Ranking) -> None:
    text = render_text(space_ranking)
    cells = len(space_ranking.decision.candidates) * len(space_ranking.decision.criteria)
    assert f"measured cells (* above; 4 of {cells}):" in text
    assert f"predicted cells (~ above; 76 of {cells}, no launch measured them):" in text
    predicted = text.split("predicted cells (~ above")[1].split("\n\n")[0]
    assert LAUNCHED not in predicted
    assert re.search(r"fp32-no-prefix-cache-batch1024-seqs64 +decode_speed +output_tok_s +~[\d.]+ tok/s"
                     r" +[\d.]+ \.\. [\d.]+ +7 -> \d+\.\d\d", predicted)
    assert "predicted values within their intervals" in text
    assert "P(within 3)" in text
    assert "all cells judged" not in text


def test_before_after_counts_measured_cells_only_and_predicted_ones_beside(
        space_ranking: Ranking) -> None:
    judged = space_ranking.decision.score()
    text = render_before_after(judged, space_ranking)
    header = text.splitlines()[0]
    assert "measured cells" in header and "predicted cells" in header
    launched = next(line for line in text.splitlines() if LAUNCHED in line)
    assert launched.split()[-2:] == ["4/4", "0/4"]
    other = next(line for line in text.splitlines() if "fp32-no-prefix-cache-batch1024-seqs64" in line)
    assert other.split()[-2:] == ["0/4", "4/4"]
    plain = render_before_after(judged, judged)
    assert "predicted cells" not in plain


def test_the_html_report_marks_predicted_cells_p_with_their_interval(tmp_path: Path) -> None:
    decision = stackdecide.load(SPACE)
    inputs = scoring_inputs(decision, two_launches(), CertaintySettings(samples=500), tolerance="3")
    report = build_report(decision, inputs.evidence, certainty=inputs.certainty,
                          prediction=inputs.prediction, samples=200)
    page = render_html(report)
    ranking = page.split('<section id="ranking">')[1].split("</section>")[0]
    rows = re.findall(r"<tr>(.*?)</tr>", ranking.split("<tbody>")[1])
    launched = next(row for row in rows if f"<b>{LAUNCHED}</b>" in row)
    assert launched.count('<span class="m" title="measured">M</span>') == 4
    assert 'class="p"' not in launched
    other = next(row for row in rows if "<b>fp32-no-prefix-cache-batch1024-seqs64</b>" in row)
    assert len(TOOLTIP.findall(other)) == 2  # decode and throughput: tok/s
    # and start-up, in s, and the chance of starting
    assert other.count('<span class="p" title="predicted ') == 4
    assert 'title="predicted 0.975 P(start) (80%: 0.926 .. 1), no launch"' in other
    assert 'class="m"' not in other
    assert "marks a predicted one" in ranking
    scores = page.split('<section id="scores">')[1].split("</section>")[0]
    assert '<div class="predicted">' in scores and "<h3>Predicted cells</h3>" in scores
    assert "Judged, measured and predicted scores" in scores
    certainty = page.split('<section id="certainty">')[1].split("</section>")[0]
    assert "undecided" in certainty and "P(within 3)" in certainty
    # every cell is measured or predicted: no "rest" is judged
    assert "76 predicted (no launch)<" in page or "76 predicted (no launch) " in page
    assert "the rest judged" not in page


def test_markdown_report_lists_predicted_cells_and_counts_them_apart() -> None:
    decision = stackdecide.load(SPACE)
    inputs = scoring_inputs(decision, two_launches(), CertaintySettings(samples=500), tolerance="3")
    text = render_markdown(build_report(decision, inputs.evidence, certainty=inputs.certainty,
                                        prediction=inputs.prediction, samples=200))
    assert "4 of 80 cells measured, 76 predicted." in text
    assert "`*` marks a measured score; `~` a predicted one" in text
    assert "### Measured cells" in text and "### Predicted cells" in text
    predicted = text.split("### Predicted cells")[1].split("###")[0]
    assert LAUNCHED not in predicted and "~" in predicted
    assert "after: measured and predicted scores in their place" in text
    assert "**Leader, not certified:" in text


def test_views_without_predictions_carry_no_predicted_mark(rtx4090_path: Path) -> None:
    decision = stackdecide.load(rtx4090_path)
    inputs = scoring_inputs(decision, None, CertaintySettings())
    assert inputs.prediction is None  # a list of candidates is not predicted unless asked
    ranking = decision.score()
    _, rows = table_rows(ranking)
    assert not any(str(term).startswith("~") for row in rows for term in row)
    text = render_text(ranking)
    assert "predicted" not in text and "all cells judged (no measurements used)" in text
    markdown = render_markdown(build_report(decision, samples=200))
    assert "~" not in markdown.split("### Ranking")[1].split("###")[0]
    assert "predicted" not in markdown


def test_scoring_inputs_predict_a_space_and_read_the_tolerance() -> None:
    space = stackdecide.load(SPACE)
    listed = stackdecide.load(ROOT / "criteria" / "hopper.yaml")
    settings = CertaintySettings(samples=500)
    found = scoring_inputs(space, None, settings)
    assert found.prediction is not None and found.evidence is None
    assert found.certainty == settings  # no tolerance asked: the best itself
    assert scoring_inputs(space, None, settings, predicted=False).prediction is None
    assert scoring_inputs(listed, None, settings).prediction is None
    assert scoring_inputs(listed, None, settings, predicted=True).prediction is not None
    within = scoring_inputs(listed, None, settings, tolerance="2.5")
    assert within.certainty.tolerance == 2.5
    assert within.evidence == EvidenceSet()  # so that the ranking carries its certainty
    assert listed.score(evidence=within.evidence, certainty=within.certainty).certainty is not None
