"""The report as GitHub-flavoured markdown, for a pull request or an issue. No charts, no matplotlib."""

from __future__ import annotations

import html
import math
import re
from typing import TYPE_CHECKING

import numpy as np
from tabulate import tabulate

from stackdecide.mcda.methods import METHODS
from stackdecide.predict import DEFAULT_LEVEL
from stackdecide.report.data import command_lines
from stackdecide.report.launch import redacted_report
from stackdecide.report.text import (
    NOT_CERTIFIED,
    about_candidates,
    before_after_rows,
    grouped_findings,
    judged_rest,
    no_winner_text,
    other_hardware_note,
    predicted_cells,
    predicted_interval_text,
    predicted_value_text,
    table_rows,
)
from stackdecide.robustness.report import _share

if TYPE_CHECKING:
    from stackdecide.model.problems import Problem
    from stackdecide.report.data import Report
    from stackdecide.robustness.flips import WeightFlip

SMAA_ROWS = 10  # candidates in the SMAA table; the HTML report and JSON have all
SMAA_RANKS = 5


def md(text: object) -> str:
    """User text safe inside markdown and its tables: one line, HTML and pipes escaped."""
    return html.escape(" ".join(str(text).split()), quote=False).replace("|", r"\|")


def code(text: object) -> str:
    """User text as an inline code span (shown literally, so nothing is escaped but backticks)."""
    return "`" + " ".join(str(text).split()).replace("`", "'") + "`"


def _table(headers: list[str], rows: list[list[str]]) -> str:
    return tabulate(rows, headers=headers, tablefmt="github", disable_numparse=True)


def _pct(value: float | None) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value * 100:.1f}%"


def _flip(flip: WeightFlip) -> str:
    if flip.threshold is None:
        return "no flip"
    return f"{_pct(flip.threshold)} ({(flip.change or 0) * 100:+.1f}) → {md(flip.new_winner)}"


def _problem(problem: Problem) -> str:
    where = f" `{md(problem.field)}`" if problem.field else ""
    return f"- **{problem.severity}**{where}: {md(problem.message)} [{md(problem.code)}]"


def _fence(text: str, lang: str = "") -> str:
    longest = max((len(run) for run in re.findall(r"`+", text)), default=0)
    fence = "`" * max(3, longest + 1)
    return f"{fence}{lang}\n{text.rstrip()}\n{fence}"


def _summary(report: Report) -> list[str]:
    decision, ranking = report.decision, report.ranking
    meta = decision.model.decision
    out = [f"## {md(decision.title)}"]
    if meta.source:
        out.append(f"source: {md(meta.source)}")
    out.append("")
    winner = ranking.winner
    cells = len(decision.candidates) * len(decision.criteria)
    sure = report.certainty
    if winner is None:
        out.append(f"**Winner: none**: {md(no_winner_text(ranking))}.")
    else:
        title = "Leader, not certified" if sure is not None and sure.verdict.kind in NOT_CERTIFIED \
            else "Winner"
        line = (f"**{title}: {md(decision.candidate(winner).label)}** (`{md(winner)}`), "
                f"{ranking.total(winner):.2f} of 100 by {METHODS[ranking.method].label}")
        if len(choosable := ranking.choosable) > 1:
            runner = choosable[1]
            line += f", {ranking.total(winner) - ranking.total(runner):.2f} points ahead of `{md(runner)}`"
        out.append(line + ".")
    predicted = predicted_cells(ranking)
    if winner is not None and sure is not None:
        doubt = "measurement noise and the predictions' intervals" if predicted else "measurement noise"
        out.append(f"Under {doubt}: {md(sure.verdict.text)}.")
    rest = f", {predicted} predicted{judged_rest(ranking)}" if predicted else ", the rest judged"
    sensitivity = report.sensitivity
    if sensitivity is not None:
        smaa, flips = sensitivity.smaa, sensitivity.flips
        first = float(smaa.first_rank[sensitivity.decision.candidate_index(flips.winner)])
        among = " among the feasible candidates" if sensitivity.left_out else ""
        out.append(f"`{md(flips.winner)}` wins under {_pct(first)} of {smaa.samples:,} sampled "
                   f"weightings (SMAA-2, seed {smaa.seed}{among}); {ranking.measured_cells} of "
                   f"{cells} cells measured{rest}.")
    else:
        out.append(f"{ranking.measured_cells} of {cells} cells measured{rest}.")
    out += ["", "### Ranking", "", "criterion columns: " + (
        "points of the weighted sum, adding up to the total" if ranking.method == "wsm"
        else f"the {ranking.method} terms") + "; `*` marks a measured score"
        + ("; `~` a predicted one (no launch measured it)" if predicted else ""), ""]
    headers, rows = table_rows(ranking)
    out.append(_table([md(h) for h in headers], [[md(c) for c in row] for row in rows]))
    if note := other_hardware_note(ranking):
        out.append(f"\n{md(note)}")
    for index in ranking.order:
        if ranking.ranks[index] == 0:
            candidate_id = ranking.candidate_ids[index]
            out.append(f"\ninfeasible: `{md(candidate_id)}`: "
                       f"{md(ranking.why_infeasible(candidate_id))}")
    return out


def _evidence(report: Report) -> list[str]:
    """Before/after, the measured cells with their launches and intervals, the roofline shares."""
    decision, ranking = report.decision, report.ranking
    out: list[str] = []
    if report.judged is not None:
        winner, judged_winner = ranking.winner, report.judged.winner
        out += ["", "### Before and after the evidence", ""]
        out.append(f"The evidence keeps `{md(winner)}` as the winner." if judged_winner == winner
                   else f"The evidence changes the winner from `{md(judged_winner)}` to "
                        f"`{md(winner)}`.")
        headers, rows = before_after_rows(report.judged, ranking)
        after = "measured and predicted scores" if predicted_cells(ranking) else "measured scores"
        out += ["", f"before: judged scores only (#rank); after: {after} in their place", "",
                _table([md(h) for h in headers], [[md(c) for c in row] for row in rows])]
    sure = report.certainty
    measured_rows = []
    for i in ranking.order:
        for j, criterion in enumerate(decision.criteria):
            cell = ranking.cells[i][j]
            if not cell.measured:
                continue
            found = sure.cells.get((decision.candidate_ids[i], criterion.id)) if sure else None
            measured_rows.append([
                md(decision.candidate_ids[i]), md(criterion.id), md(cell.metric or ""),
                f"{cell.raw:.4g} {md(cell.unit or '')}" if cell.raw is not None else "–",
                str(found.estimate.n) if found else str(cell.samples),
                f"{found.estimate.low:.4g} – {found.estimate.high:.4g}" if found else "–",
                f"{'–' if cell.judged is None else f'{cell.judged:g}'} → {cell.score:.2f}",
                md(", ".join(cell.flags)) or "–",
                ", ".join(str(r) for r in cell.record_ids) or "–"])
    if measured_rows:
        interval = f"{sure.confidence:.0%} interval" if sure else "interval"
        out += ["", "### Measured cells", "",
                _table(["candidate", "criterion", "metric", "median", "launches", interval,
                        "judged → score", "flags", "record ids"], measured_rows)]
    predicted_rows = [
        [md(decision.candidate_ids[i]), md(criterion.id), md(cell.metric or ""),
         md(predicted_value_text(cell)), predicted_interval_text(cell),
         f"{'–' if cell.judged is None else f'{cell.judged:g}'} → {cell.score:.2f}"]
        for i in ranking.order for j, criterion in enumerate(decision.criteria)
        if (cell := ranking.cells[i][j]).predicted]
    if predicted_rows:
        out += ["", "### Predicted cells", "", "No launch measured these: each is predicted before "
                "launching (`stackdecide predict` shows how), marked `~`.", "",
                _table(["candidate", "criterion", "metric", "predicted",
                        f"{DEFAULT_LEVEL:.0%} interval of the mean", "judged → score"],
                       predicted_rows)]
    if sure is not None and sure.probabilities is not None:
        p = sure.probabilities
        within = sure.within
        zone = [f"P(within {sure.settings.tolerance:g})"] if within else []
        out += ["", "### Certainty", "", md(sure.verdict.text), "",
                _table(["candidate", "P(best)", "launches", *zone], [
                    [md(ranking.candidate_ids[i]), f"{p.p_best[i]:.3f}",
                     str(sure.launches()[ranking.candidate_ids[i]]),
                     *([f"{within.probabilities.p_within[i]:.3f}"] if within else [])]
                    for i in ranking.order])]
    roofline = report.roofline.measurements
    if roofline:
        out += ["", "### Measurements against the roofline", "",
                _table(["candidate", "metric", "median", "ceiling", "of ceiling", "ceiling basis"], [
                    [md(r.candidate), md(r.metric), f"{r.measured:.4g} {md(r.unit)}",
                     "–" if r.ceiling is None else f"{r.ceiling:,.1f}",
                     "–" if r.percent is None else f"{r.percent:.0f}%", md(r.basis)]
                    for r in roofline])]
    return out


def _audit(report: Report) -> list[str]:
    findings = report.ranking.findings
    out = ["", "### Audit", ""]
    if not findings:
        return [*out, "no findings"]
    ids = set(report.decision.candidate_ids)
    lines = []
    for f, about in grouped_findings(findings):
        named = about_candidates(about, ids).strip()
        lines.append(f"- **{f.severity}** `{md(f.code)}`" + (f" ({md(f.where)})" if f.where else "")
                     + f": {md(f.message)}" + (f" {md(named)}" if named else ""))
    return out + lines


def _robustness(report: Report) -> list[str]:
    sensitivity = report.sensitivity
    out = ["", "### Robustness", ""]
    if sensitivity is None:
        return [*out, "Not analysed: no candidate is feasible, and flip distances, the trade-off "
                "and SMAA-2 are about feasible candidates."]
    decision, smaa, flips = sensitivity.decision, sensitivity.smaa, sensitivity.flips
    out += [f"on the {md(report.sensitivity_basis)}", ""]
    if sensitivity.left_out:
        out += ["left out (infeasible, so never the winner):", "",
                *[f"- `{md(cid)}`: {md(why)}" for cid, why in sensitivity.left_out.items()], ""]
    nearest = flips.nearest
    if nearest is not None and nearest.threshold is not None:
        verb = "raise" if nearest.direction == "increase" else "lower"
        out.append(f"Smallest single-weight change that moves first place: {verb} "
                   f"`{md(nearest.criterion)}` from {_pct(nearest.weight)} to "
                   f"{_pct(nearest.threshold)}; `{md(nearest.new_winner)}` then wins.")
    else:
        out.append("No change of any single weight moves first place.")
    out += ["", _table(["criterion", "weight", "lower to", "raise to"], [
        [md(decision.criteria[j].label), _pct(c.weight), _flip(c.decrease), _flip(c.increase)]
        for j, c in enumerate(flips.criteria)])]
    shown = min(smaa.rank_counts.shape[1], SMAA_RANKS)
    order = np.lexsort((np.arange(len(decision.candidates)), -smaa.first_rank))
    smaa_rows = [[md(decision.candidate_ids[i]),
                  *[_share(int(c), smaa.samples) for c in smaa.rank_counts[i, :shown]]]
                 for i in order[:SMAA_ROWS]]
    out += ["", "SMAA-2 rank acceptability (share of sampled weightings giving each rank):", "",
            _table(["candidate", *[f"rank {r + 1}" for r in range(shown)]], smaa_rows)]
    if len(order) > SMAA_ROWS:
        out.append(f"\n({len(order) - SMAA_ROWS} more candidates in the HTML report)")
    return out


def _engine_config(report: Report) -> list[str]:
    config = report.winner_config
    if config is None:
        return []
    out = ["", f"### Engine configuration of `{md(config.candidate)}`", ""]
    if config.stack:
        pins = [f"{k} {', '.join(v) if isinstance(v, list) else v}"
                for k, v in config.stack.items()]
        out.append("stack: " + ", ".join(code(p) for p in pins))
    if config.refused:
        out += ["", "**`stackdecide launch` would refuse this configuration** (errors below)."]
    command = config.command
    if command is not None:
        out += ["", f"{md(config.command_note)}:", "", _fence(command_lines(command), "sh")]
        if command.problems:
            out += ["", *[_problem(p) for p in command.problems]]
    elif config.engine_yaml:
        if config.env:
            out += ["", _fence("\n".join(f"{k}={v}" for k, v in config.env.items()), "sh")]
        why = f" ({md(config.command_note)})" if config.command_note else ""
        out += ["", f"engine arguments as written in the decision file, not rendered for a "
                    f"vLLM{why}:", "", _fence(config.engine_yaml, "yaml")]
    if config.checks:
        out += ["", f"checks on the decision's hardware ({md(config.checks_basis)}):", ""]
        out += [_problem(p) for p in config.checks]
    return out


def render_markdown(report: Report) -> str:
    """Summary, ranking, evidence before/after, measured cells and certainty, roofline, audit,
    robustness and the winner's engine configuration, secrets as ``***``."""
    report = redacted_report(report)
    out = [*_summary(report), *_evidence(report), *_audit(report), *_robustness(report),
           *_engine_config(report)]
    notes = report.ranking.notes
    if notes:
        out += ["", f"<details><summary>Notes ({len(notes)})</summary>", ""]
        out += [f"- {md(note)}" for note in notes]
        out += ["", "</details>"]
    return "\n".join(out) + "\n"
