"""The sections of the HTML report: ranking, scores, before/after, roofline, audit, robustness,
certainty and the winner's config. Each returns an HTML fragment; text is escaped with ``esc``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np

from stackdecide.mcda.methods import METHODS
from stackdecide.predict import DEFAULT_LEVEL
from stackdecide.report import charts
from stackdecide.report.data import command_lines
from stackdecide.report.html_kit import esc, figure, g, pct, section, table
from stackdecide.report.text import (
    no_winner_text,
    predicted_cells,
    predicted_interval_text,
    predicted_title,
    predicted_value_text,
    worst_first,
)
from stackdecide.robustness.report import REFERENCE, _share

if TYPE_CHECKING:
    from stackdecide.evidence.records import EvidenceRecord
    from stackdecide.model.cells import Cell
    from stackdecide.model.findings import Finding
    from stackdecide.model.problems import Problem
    from stackdecide.report.data import Report
    from stackdecide.robustness.flips import WeightFlip

SMAA_TABLE_RANKS = 6


def swatch(color: str) -> str:
    return f'<span class="sw" style="background:{esc(color)}"></span>'


def source_mark(cell: Cell) -> str:
    """The mark of a measured (M) or predicted (P, its value and interval in the tooltip) cell;
    none for a judged one."""
    if cell.measured:
        return '<span class="m" title="measured">M</span>'
    if cell.predicted:
        return f'<span class="p" title="{esc(predicted_title(cell))}">P</span>'
    return ""


def audit_badges(report: Report, candidate_id: str) -> str:
    """A badge per finding about the candidate, the worst first."""
    found = worst_first(report.ranking, report.decision.candidate_index(candidate_id))
    if not found:
        reported = report.decision.candidate(candidate_id).reported_total
        return '<span class="b ok">ok</span>' if reported is not None else ""
    parts = []
    for f in found:
        text = f"{f.code} {f.difference:+.2f}" if f.difference is not None else f.code
        parts.append(f'<span class="b {esc(f.severity)}">{esc(text)}</span>')
    return " ".join(parts)


def ranking_section(report: Report, colors: list[str]) -> str:
    decision, ranking = report.decision, report.ranking
    points = report.contributions
    headers = ["rank", "candidate", "total"]
    headers += [f"{swatch(colors[j])}{esc(c.label)}<br><small>{decision.weights[j] * 100:.1f}%</small>"
                for j, c in enumerate(decision.criteria)]
    headers += ["reported", "audit"]
    rows = []
    for i in ranking.order:
        candidate = decision.candidates[i]
        rank = int(ranking.ranks[i])
        name = f"<b>{esc(candidate.label)}</b>" + (
            f"<br><small>{esc(candidate.id)}</small>" if candidate.name else "")
        if not rank:
            name += (f'<br><span class="b error">infeasible: '
                     f'{esc(ranking.why_infeasible(candidate.id))}</span>')
        row = [str(rank) if rank else "–", name, f"<b>{ranking.totals[i]:.2f}</b>"]
        for j in range(len(decision.criteria)):
            mark = source_mark(ranking.cells[i][j])
            row.append(f"{points[i, j]:.2f}{' ' + mark if mark else ''}")
        reported = candidate.reported_total
        row += ["" if reported is None else f"{reported:g}", audit_badges(report, candidate.id)]
        rows.append(row)
    predicted = predicted_cells(ranking) > 0
    chart = figure("contributions", charts.contributions_chart(report, colors),
                    "Each bar is a candidate's weighted sum split by criterion; hatched parts rest on "
                    "measurements." + (" Dotted parts rest on predictions." if predicted else "")
                    + (f" Diamonds mark the {esc(ranking.method.upper())} total the "
                       "ranking uses." if ranking.method != "wsm" else ""))
    lead = (f"Method: {esc(METHODS[ranking.method].label)}. Criterion columns: points of the "
            f"weighted sum (weight x score normalised on the criterion's scale x 100), which add up "
            f"to the total" if ranking.method == "wsm" else
            f"Method: {esc(METHODS[ranking.method].label)} ({esc(METHODS[ranking.method].terms_label)}). "
            "Criterion columns and bars: points of the weighted sum, shown to explain the scores; "
            "the total column is the method's own")
    legend = ". <span class=\"m\">M</span> marks a measured score." + (
        ' <span class="p">P</span> marks a predicted one (no launch measured it; its value and '
        "interval on hover)." if predicted else "")
    return section("ranking", "Ranking",
                    chart + table(headers, rows, "num ranking", raw_headers=True), lead + legend)


# -- scores -----------------------------------------------------------------------------------------
def _cell_html(cell: Cell) -> str:
    if cell.predicted:
        judged = "" if cell.judged is None else f" · judged {cell.judged:g}"
        return (f'<div class="predicted"><b>{cell.score:.2f}</b> {source_mark(cell)}<br><small>'
                f"{esc(predicted_value_text(cell))} ({DEFAULT_LEVEL:.0%}: "
                f"{esc(predicted_interval_text(cell))}){esc(judged)}</small></div>")
    if not cell.measured:
        return f'<span class="judged">{cell.score:g}</span>'
    raw = "" if cell.raw is None else f"{g(cell.raw)} {esc(cell.unit or '')}"
    flags = "".join(f' <span class="b warning">{esc(f)}</span>' for f in cell.flags)
    judged = "" if cell.judged is None else f"judged {cell.judged:g}"
    return (f'<div class="measured"><b>{cell.score:.2f}</b> <span class="m">M</span>{flags}'
            f"<br><small>{raw} · {esc(judged)}</small></div>")


def _provenance_rows(report: Report) -> list[list[str]]:
    decision, ranking = report.decision, report.ranking
    rows = []
    for i in ranking.order:
        candidate = decision.candidates[i]
        for j, criterion in enumerate(decision.criteria):
            cell = ranking.cells[i][j]
            if not cell.measured:
                continue
            measure = criterion.measure
            how = esc(measure.value) if measure else ""
            spread = "–" if cell.spread is None else g(cell.spread)
            ids = ", ".join(str(r) for r in cell.record_ids) or "–"
            flags = " ".join(f'<span class="b warning">{esc(f)}</span>' for f in cell.flags) or "–"
            rows.append([esc(candidate.id), esc(criterion.label), esc(cell.metric or ""),
                         f"{g(cell.raw)} {esc(cell.unit or '')}", str(cell.samples), spread, how,
                         f"{'–' if cell.judged is None else f'{cell.judged:g}'} → {cell.score:.2f}",
                         flags, esc(ids)])
    return rows


def _predicted_rows(report: Report) -> list[list[str]]:
    decision, ranking = report.decision, report.ranking
    return [[esc(decision.candidate_ids[i]), esc(criterion.label), esc(cell.metric or ""),
             esc(predicted_value_text(cell)), esc(predicted_interval_text(cell)),
             f"{'–' if cell.judged is None else f'{cell.judged:g}'} → {cell.score:.2f}"]
            for i in ranking.order for j, criterion in enumerate(decision.criteria)
            if (cell := ranking.cells[i][j]).predicted]


def _record_rows(records: Sequence[EvidenceRecord]) -> list[list[str]]:
    rows = []
    for r in records:
        hw = r.hardware
        gpu = "–" if hw is None else (f"{hw.count} x " if hw.count > 1 else "") + hw.gpu
        software = ", ".join(f"{k} {v}" for k, v in sorted(r.software.items())) or "–"
        scenario = ", ".join(f"{k}={v}" for k, v in sorted(r.scenario.items())) or "–"
        spread = "" if r.spread is None else f" (spread {g(r.spread)})"
        rows.append([esc(r.id), esc(r.candidate), esc(r.metric),
                     f"{g(r.value)} {esc(r.unit)}{esc(spread)}", esc(r.repeats), esc(scenario),
                     esc(gpu), esc(software), esc(r.timestamp.strftime("%Y-%m-%d %H:%M UTC")),
                     esc(r.source or "–"), esc(r.note or "")])
    return rows


def scores_section(report: Report, colors: list[str]) -> str:
    decision, ranking = report.decision, report.ranking
    headers = ["candidate"] + [f"{swatch(colors[j])}{esc(c.label)}<br><small>scale "
                               f"{esc(c.scale)}{' (cost)' if c.direction == 'cost' else ''}</small>"
                               for j, c in enumerate(decision.criteria)]
    rows = []
    for i in ranking.order:
        candidate = decision.candidates[i]
        rows.append([esc(candidate.id)] + [_cell_html(ranking.cells[i][j])
                                            for j in range(len(decision.criteria))])
    body = table(headers, rows, "matrix", raw_headers=True)
    measured = _provenance_rows(report)
    if measured:
        body += ("<h3>Measured cells and their provenance</h3>"
                 "<p>Each measured score is the criterion's value function applied to the median of "
                 "the matching evidence records; the judged score it replaced is kept beside it.</p>"
                 + table(["candidate", "criterion", "metric", "median", "records", "spread",
                           "value function", "judged → score", "flags", "record ids"], measured))
        records = report.records_used()
        if records:
            body += ("<h3>Evidence records used</h3>"
                     + table(["id", "candidate", "metric", "value", "repeats", "scenario", "GPU",
                               "software", "measured", "source", "note"], _record_rows(records),
                              "records"))
    elif report.evidence is not None:
        body += "<p>No evidence record matched a measured criterion; every score is judged.</p>"
    predicted = _predicted_rows(report)
    if predicted:
        body += ("<h3>Predicted cells</h3>"
                 "<p>No launch measured these: each is the criterion's value function applied to "
                 "the predicted value (<code>stackdecide predict</code> shows how it was predicted), "
                 f"with the {DEFAULT_LEVEL:.0%} interval of the mean; the judged score it replaced is "
                 "kept beside it.</p>"
                 + table(["candidate", "criterion", "metric", "predicted",
                          f"{DEFAULT_LEVEL:.0%} interval of the mean", "judged → score"], predicted))
    lead = ('Scores on each criterion\'s own scale. <span class="judged">Judged</span> cells are the '
            'numbers written in the decision file; <span class="measured-chip">measured</span> '
            "cells come from evidence and show the raw median, the judged score they replaced and "
            "any flag that weakens them.")
    if predicted:
        lead += (' <span class="predicted-chip">Predicted</span> cells are configurations no '
                 "launch measured, ranked on their predicted value and interval.")
    title = "Judged, measured and predicted scores" if predicted else "Judged and measured scores"
    return section("scores", title, body, lead)


# -- before / after ---------------------------------------------------------------------------------
def before_after_section(report: Report) -> str:
    changes = report.rank_changes()
    rows = []
    for change in changes:
        moved = change.moved
        arrow = "" if not moved else (f'<span class="up">▲ {moved}</span>' if moved > 0
                                      else f'<span class="down">▼ {-moved}</span>')
        rows.append([esc(change.candidate),
                     "–" if change.judged_rank is None else str(change.judged_rank),
                     f"{change.judged_total:.2f}",
                     "–" if change.rank is None else str(change.rank), f"{change.total:.2f}",
                     f"{change.total - change.judged_total:+.2f}", arrow])
    judged_winner = report.judged.winner if report.judged else None
    winner = report.ranking.winner
    if judged_winner == winner:
        verdict = f"The evidence keeps <b>{esc(winner)}</b> as the winner."
    else:
        verdict = (f"The evidence changes the winner from <b>{esc(judged_winner)}</b> to "
                   f"<b>{esc(winner)}</b>.")
    chart = figure("before-after", charts.before_after_chart(report, changes),
                    "Grey: judged scores only. Green: measured scores in place of judged ones.")
    changes_table = table(["candidate", "judged rank", "judged total", "rank", "total", "change",
                           "moved"], rows, "num")
    return section("before-after", "Before and after the evidence", chart + changes_table, verdict)


# -- certainty --------------------------------------------------------------------------------------
def certainty_section(report: Report) -> str:
    """P(best) and rank probabilities under measurement noise, each measured cell's interval, and
    the verdict: a certified winner or a statistical tie."""
    sure = report.certainty
    if sure is None or sure.probabilities is None:
        return section("certainty", "Certainty", "<p>No measured cell: nothing to be unsure of "
                       "beyond the judged scores.</p>")
    ranking, probabilities, within = report.ranking, sure.probabilities, sure.within
    launches = sure.launches()
    rows = []
    for index in ranking.order:
        cid = ranking.candidate_ids[index]
        rows.append([f"<b>{esc(cid)}</b>", f"{probabilities.p_best[index]:.3f}",
                     " ".join(f"{share:.2f}" for share in probabilities.rank_matrix[index]),
                     str(launches[cid]),
                     *([f"{within.probabilities.p_within[index]:.3f}"] if within else [])])
    cells = []
    for cell in sure.cells.values():
        est = cell.estimate
        cells.append([esc(cell.candidate), esc(cell.criterion), esc(cell.metric),
                      f"{est.center:.4g}", str(est.n), f"{est.low:.4g} – {est.high:.4g}",
                      f"{est.rel_sd:.1%}", esc("prior" if est.method == "prior"
                                               else f"t, {est.dof:.3g} dof")])
    kind = "ok" if sure.verdict.kind == "certified" else "warning"
    zone = [f"P(within {sure.settings.tolerance:g})"] if within else []
    body = (f'<p><span class="b {kind}">{esc(sure.verdict.kind)}</span> {esc(sure.verdict.text)}</p>'
            + table(["candidate", "P(best)", "P(rank 1..m)", "launches", *zone], rows, "num"))
    if cells:
        body += table(["candidate", "criterion", "metric", "mean", "launches",
                       f"{sure.confidence:.0%} interval", "noise per launch", "basis"], cells, "num")
    predicted = " Each predicted value is drawn from its interval." if predicted_cells(ranking) else ""
    tolerance = sure.settings.tolerance
    rule = (f"a candidate is certified within {tolerance:g} point{'s' * (tolerance != 1)} of the "
            f"best when its P(within) reaches {sure.confidence:.2f} and it rests on at least two "
            "launches" if within else
            f"a winner is certified when its P(best) reaches {sure.confidence:.2f} and it and every "
            "contender rest on at least two launches")
    lead = (f"Each measured value moves by its own error ({sure.samples:,} Monte Carlo draws, seed "
            f"{sure.seed}); {rule}.{predicted} See docs/metrics.md.")
    return section("certainty", "Certainty", body, lead)


# -- roofline ---------------------------------------------------------------------------------------
def roofline_section(report: Report) -> str:
    roofline = report.roofline
    parts = []
    if roofline.skipped:
        parts.append(f"<p>No ceilings for this decision: {esc(roofline.skipped)}.</p>")
    if roofline.ceilings:
        rows = [[esc(f"{c.shape} ({c.weights})"), esc(c.kv_cache_dtype), esc(", ".join(c.candidates)),
                 f"{c.decode_tok_s:,.1f}",
                 f"{c.decode_4k_tok_s:,.1f}",
                 "–" if c.prefill_tok_s is None else f"{c.prefill_tok_s:,.0f} "
                 f"<small>(at {c.prefill_prompt_tokens:,} tokens)</small>"]
                for c in roofline.ceilings]
        parts.append(f"<p>Ceilings of {esc(roofline.hardware)} for each candidate's model "
                     "(shape and weights): no stack can exceed them; well-tuned stacks "
                     "reach roughly 50-85% of the decode ceiling.</p>")
        parts.append(table(["model (weights)", "KV-cache dtype", "candidates", "decode tok/s, 1 stream",
                             "decode tok/s at 4,096 tokens", "prefill tok/s, best"], rows, "num"))
    measured = roofline.measurements
    if measured:
        with_ceiling = [r for r in measured if r.ceiling is not None]
        if with_ceiling:
            parts.append(figure("roofline", charts.roofline_chart(report, measured),
                                 "Measured decode and prefill speed as a share of the ceiling of "
                                 "the GPU each measurement ran on."))
        rows = []
        for r in measured:
            scenario = ", ".join(f"{k}={v}" for k, v in sorted(r.scenario.items())) or "–"
            rows.append([esc(r.candidate), esc(r.metric), f"{g(r.measured)} {esc(r.unit)}",
                         str(r.records), esc(scenario), esc(r.gpu or "–"),
                         "–" if r.ceiling is None else f"{r.ceiling:,.1f}",
                         "–" if r.percent is None else f"<b>{r.percent:.0f}%</b>",
                         {True: "yes", False: "no", None: "–"}[r.in_score], esc(r.basis)])
        parts.append(table(["candidate", "metric", "median", "records", "scenario", "GPU",
                             "ceiling", "of ceiling", "in a score", "how the ceiling was computed"],
                            rows, "num"))
    elif report.evidence is not None:
        parts.append("<p>No decode or prefill measurements of these candidates in the evidence.</p>")
    lead = ("Upper limits from the GPU's peak numbers: decode is bound by reading every weight "
            "(and the KV cache) once per token, prefill by tensor throughput.")
    return section("roofline", "Measurements against the roofline", "".join(parts), lead)


# -- audit ------------------------------------------------------------------------------------------
def _finding_html(f: Finding) -> str:
    numbers = ""
    if f.reported is not None and f.computed is not None:
        numbers = f'<div class="nums">reported {f.reported:g} · computed {f.computed:g}</div>'
    where = f'<div class="where">{esc(f.where)}</div>' if f.where else ""
    return (f'<li class="finding {esc(f.severity)}"><span class="b {esc(f.severity)}">'
            f"{esc(f.severity)}</span> <code>{esc(f.code)}</code> <b>{esc(f.subject)}</b>{where}"
            f"<div>{esc(f.message)}</div>{numbers}</li>")


def audit_section(report: Report) -> str:
    findings = report.ranking.findings
    if not findings:
        body = "<p>No findings: reported totals (if any) follow from the weights and scores.</p>"
    else:
        order = {"error": 0, "warning": 1, "info": 2}
        items = sorted(findings, key=lambda f: order[f.severity])
        body = '<ul class="findings">' + "".join(_finding_html(f) for f in items) + "</ul>"
    notes = report.ranking.notes
    if notes:
        body += "<h3>Notes</h3><ul>" + "".join(f"<li>{esc(n)}</li>" for n in notes) + "</ul>"
    return section("audit", "Audit", body, "What the decision file claims, checked against what "
                    "follows from it. Errors and warnings make <code>stackdecide check</code> exit 1.")


# -- robustness -------------------------------------------------------------------------------------
def _flip_text(flip: WeightFlip) -> str:
    if flip.threshold is None:
        return '<span class="muted">no flip</span>'
    return (f"{pct(flip.threshold)} <small>({(flip.change or 0) * 100:+.1f})</small> → "
            f"{esc(flip.new_winner)}")


def robustness_section(report: Report, colors: list[str]) -> str:
    """Flip distances, the trade-off and SMAA-2 of the feasible candidates (those analysed)."""
    sensitivity = report.sensitivity
    if sensitivity is None:
        return section("robustness", "How robust is the winner?",
                       "<p>Not analysed: no candidate is feasible, and flip distances, the "
                       "trade-off and SMAA-2 are about feasible candidates.</p>")
    decision, flips, smaa = sensitivity.decision, sensitivity.flips, sensitivity.smaa
    nearest = flips.nearest
    if nearest is not None and nearest.threshold is not None:
        verb = "raising" if nearest.direction == "increase" else "lowering"
        summary = (f"The smallest single change that moves first place: {verb} "
                   f"<b>{esc(nearest.criterion)}</b> from {pct(nearest.weight)} to "
                   f"{pct(nearest.threshold)}; <b>{esc(nearest.new_winner)}</b> then wins.")
    else:
        summary = "No change of any single weight moves first place."
    flip_rows = [[esc(decision.criteria[j].label), pct(c.weight), _flip_text(c.decrease),
                  _flip_text(c.increase)] for j, c in enumerate(flips.criteria)]
    parts = [f"<p>{summary}</p>"]
    if sensitivity.left_out:
        items = "".join(f"<li><b>{esc(cid)}</b>: {esc(why)}</li>"
                        for cid, why in sensitivity.left_out.items())
        parts.append(f"<p>Left out, being infeasible (never the winner, so no flip target and "
                     f"no share of first places):</p><ul>{items}</ul>")
    if len(decision.criteria) > 1 and len(decision.candidates) > 1:
        parts.append(figure("flips", charts.flip_chart(report, colors),
                             "One weight moves, the others keep their proportions (they still add "
                             "up to 100%). Red ticks: where another candidate takes first place."))
    parts.append(table(["criterion", "weight", "lower to", "raise to"], flip_rows, "num"))
    trade = sensitivity.tradeoff
    if trade is not None:
        trade_rows = []
        for j, c in enumerate(decision.criteria):
            change = trade.runner_up_change[j]
            trade_rows.append([esc(c.label), f"{trade.winner_points[j]:.2f}",
                               f"{trade.runner_up_points[j]:.2f}", f"{trade.differences[j]:+.2f}",
                               "beyond the scale" if change is None else f"{change:+.2f}"])
        trade_rows.append(["<b>total</b>", f"<b>{trade.winner_points.sum():.2f}</b>",
                           f"<b>{trade.runner_up_points.sum():.2f}</b>",
                           f"<b>{trade.margin:+.2f}</b>", ""])
        parts.append(f"<h3>Winner {esc(trade.winner)} vs runner-up {esc(trade.runner_up)}</h3>")
        parts.append(table(["criterion", esc(trade.winner), esc(trade.runner_up), "difference",
                             "runner-up score change that ties"], trade_rows, "num"))
    parts.append("<h3>SMAA-2 rank acceptability</h3>")
    scores = ("scores drawn within their stated uncertainty" if smaa.score_uncertainty
              else "scores fixed")
    parts.append(f"<p>{smaa.samples:,} weight vectors drawn uniformly from the admissible weights "
                 f"(seed {smaa.seed}), {scores}. A candidate's rank-1 share is how much of the "
                 "space of weightings makes it the winner.</p>")
    parts.append(figure("smaa", charts.acceptability_chart(report),
                         "Share of sampled weightings that give each candidate each rank."))
    shown = min(smaa.rank_counts.shape[1], SMAA_TABLE_RANKS)
    order = np.lexsort((np.arange(len(decision.candidates)), -smaa.first_rank))
    rows = []
    for i in order:
        confidence = smaa.confidence[i]
        rows.append([esc(decision.candidate_ids[i]),
                     *[_share(int(c), smaa.samples) for c in smaa.rank_counts[i, :shown]],
                     "–" if np.isnan(confidence) else f"{confidence:.2f}"])
    parts.append(table(["candidate", *[f"rank {r + 1}" for r in range(shown)], "confidence"],
                        rows, "num"))
    parts.append(f'<p class="muted">Monte Carlo standard error of each share at most '
                 f"{float(smaa.acceptability_stderr.max()) * 100:.2f} points. Reference: "
                 f"{esc(REFERENCE)}.</p>")
    return section("robustness", "How robust is the winner?", "".join(parts),
                    f"Computed on the {esc(report.sensitivity_basis)}.")


# -- winner config ----------------------------------------------------------------------------------
def _problems(problems: Sequence[Problem]) -> str:
    if not problems:
        return ""
    items = "".join(f'<li><span class="b {esc(p.severity)}">{esc(p.severity)}</span> '
                    f"<code>{esc(p.field or '')}</code> {esc(p.message)} "
                    f'<small class="muted">[{esc(p.code)}]</small></li>' for p in problems)
    return f'<ul class="problems">{items}</ul>'


def config_section(report: Report) -> str:
    config = report.winner_config
    if config is None:
        return section("engine", "Winner's engine configuration",
                        f"<p>No winner: {esc(no_winner_text(report.ranking))}.</p>")
    verdict = (' <span class="b error">stackdecide launch would refuse it</span>'
               if config.refused else "")
    parts = [f"<p><b>{esc(config.label)}</b> <small>({esc(config.candidate)})</small>{verdict}</p>"]
    command = config.command
    if command is not None:
        parts.append(f"<h3>Command</h3><p>{esc(config.command_note)}. "
                     "<code>stackdecide launch FILE --winner --dry-run</code> adds the checks "
                     "that need this machine (free GPU memory, port, installed versions against "
                     f"the pins).</p><pre>{esc(command_lines(command))}</pre>")
        parts.append(_problems(command.problems))
    if config.checks:
        parts.append(f"<h3>Checks on the decision's hardware</h3><p>The launch checks that need "
                     f"only the decision file, for {esc(config.checks_basis)}.</p>"
                     + _problems(config.checks))
    if config.stack:
        pins = [[esc(k), esc(", ".join(v) if isinstance(v, list) else v)]
                for k, v in config.stack.items()]
        parts.append("<h3>Stack pins</h3>" + table(["package", "pin"], pins))
    if config.env and command is None:
        env = "\n".join(f"{k}={v}" for k, v in config.env.items())
        parts.append(f"<h3>Environment</h3><pre>{esc(env)}</pre>")
    if not config.engine_yaml:
        parts.append("<p>The decision file gives no engine arguments for the winner.</p>")
    elif command is not None:
        parts.append("<details><summary>Engine arguments as written in the decision file"
                     f"</summary><pre>{esc(config.engine_yaml)}</pre></details>")
    else:
        why = f" ({esc(config.command_note)})" if config.command_note else ""
        parts.append("<h3>Engine arguments</h3>"
                     f"<p>As written in the decision file: not rendered for a vLLM{why}, so fields "
                     "that a given vLLM refuses or renamed are shown unchanged.</p>"
                     f"<pre>{esc(config.engine_yaml)}</pre>")
    return section("engine", "Winner's engine configuration", "".join(parts))


# -- page -------------------------------------------------------------------------------------------
