"""The report as one self-contained HTML page: inline CSS, charts as inline SVG, no scripts.

Every piece of text that comes from a decision file or evidence goes through ``esc`` (html.escape).
The page skeleton is a ``string.Template``; sections are small functions returning HTML fragments.
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from string import Template
from typing import TYPE_CHECKING, Any

import numpy as np

from stackdecide._version import __version__
from stackdecide.mcda.methods import METHODS
from stackdecide.model.problems import errors
from stackdecide.report import charts
from stackdecide.report.data import command_lines
from stackdecide.robustness.report import REFERENCE, _share

if TYPE_CHECKING:
    from stackdecide.audit.checks import Finding
    from stackdecide.evidence.records import EvidenceRecord
    from stackdecide.model.cells import Cell
    from stackdecide.model.problems import Problem
    from stackdecide.report.data import Report
    from stackdecide.robustness.flips import WeightFlip

SMAA_TABLE_RANKS = 6


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def _num(value: float | None, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:.{digits}f}"


def _g(value: float | None) -> str:
    return "–" if value is None else f"{value:.4g}"


def _pct(value: float | None, digits: int = 1) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value * 100:.{digits}f}%"


def _table(headers: Sequence[str], rows: Iterable[Sequence[str]], cls: str = "",
           raw_headers: bool = False) -> str:
    """A table; cells are HTML already (callers escape), headers are escaped unless ``raw``."""
    head = "".join(f"<th>{h if raw_headers else esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return (f'<div class="scroll"><table class="{cls}"><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table></div>")


def _section(anchor: str, title: str, body: str, lead: str = "") -> str:
    intro = f'<p class="lead">{lead}</p>' if lead else ""
    return f'<section id="{anchor}"><h2>{esc(title)}</h2>{intro}{body}</section>'


def _figure(name: str, svg: str, caption: str) -> str:
    return (f'<figure class="chart" data-chart="{name}">{svg}<figcaption>{caption}</figcaption>'
            "</figure>")


# -- header -----------------------------------------------------------------------------------------
def _header(report: Report) -> str:
    meta = report.decision.model.decision
    facts = []
    if meta.hardware:
        hw = meta.hardware
        count = f"{hw.count} x " if hw.count > 1 else ""
        extra = ", ".join(x for x in (f"{hw.vram_gb:g} GB" if hw.vram_gb else "",
                                       f"SM {hw.compute_capability}" if hw.compute_capability
                                       else "") if x)
        facts.append(("hardware", f"{count}{hw.gpu}" + (f" ({extra})" if extra else "")))
    if meta.model:
        facts.append(("model", meta.model.id + (f" · {meta.model.weights}" if meta.model.weights
                                                 else "")))
    targets = meta.targets
    shown = [f"{name} {value}" for name, value in (("decode tok/s", targets.decode_tok_s),
                                                    ("prefill tok/s", targets.prefill_tok_s),
                                                    ("VRAM GB", targets.vram_gb)) if value]
    if targets.context_tokens:
        shown.append(f"context {targets.context_tokens:,} tokens")
    if shown:
        facts.append(("targets", ", ".join(shown)))
    if meta.date:
        facts.append(("date", meta.date))
    if report.decision.source_file:
        facts.append(("file", report.decision.source_file))
    rows = "".join(f"<dt>{esc(k)}</dt><dd>{esc(v)}</dd>" for k, v in facts)
    source = f'<p class="source">{esc(meta.source)}</p>' if meta.source else ""
    return f"<header><h1>{esc(report.decision.title)}</h1>{source}<dl class=\"facts\">{rows}</dl></header>"


def _cards(report: Report) -> str:
    ranking, decision = report.ranking, report.decision
    winner = ranking.winner
    cards = []
    if winner is None:
        cards.append(("winner", "none", "every candidate breaks a constraint"))
    else:
        tied = [t for t in ranking.tied_winners if t != winner]
        detail = f"{ranking.total(winner):.2f} of 100 ({ranking.method})"
        if tied:
            detail += f"; tied with {', '.join(tied)}"
        cards.append(("winner", decision.candidate(winner).label, detail))
        order = [int(i) for i in ranking.order if ranking.ranks[i] > 0]
        if len(order) > 1:
            runner = decision.candidates[order[1]]
            margin = ranking.total(winner) - ranking.total(runner.id)
            cards.append(("lead", f"{margin:.2f} points", f"over {runner.label}"))
    smaa = report.sensitivity.smaa
    index = decision.candidate_index(report.sensitivity.winner)
    cards.append(("wins under sampled weights", _pct(float(smaa.first_rank[index])),
                  f"{decision.candidate(report.sensitivity.winner).label}; SMAA-2, "
                  f"{smaa.samples:,} samples"
                  + ("; constraints not applied" if ranking.infeasible else "")))
    total_cells = len(decision.candidates) * len(decision.criteria)
    cards.append(("measured cells", f"{ranking.measured_cells} of {total_cells}",
                  "the rest are judged scores" if ranking.measured_cells else
                  "every score is a judgement"))
    counts = {s: sum(f.severity == s for f in ranking.findings) for s in ("error", "warning", "info")}
    cards.append(("audit", f"{counts['error']} errors, {counts['warning']} warnings",
                  f"{counts['info']} notes" if counts["info"] else "see the audit section"))
    config = report.winner_config
    if config is not None and config.engine:
        problems = [*config.checks, *(config.command.problems if config.command else ())]
        found = len(errors(problems))
        if found:
            cards.append(("winner's engine config", f"refused: {found} error{'s' * (found > 1)}",
                          "stackdecide launch would not start it; see the last section"))
        elif config.command is not None:
            cards.append(("winner's engine config", "renders cleanly",
                          f"for vLLM {config.command.vllm_version}"))
    body = "".join(f'<div class="card{" wide" if k == "winner" else ""}"><div class="k">{esc(k)}'
                   f'</div><div class="v">{esc(v)}</div><div class="d">{esc(d)}</div></div>'
                   for k, v, d in cards)
    return f'<div class="cards">{body}</div>'


# -- ranking ----------------------------------------------------------------------------------------
def _swatch(color: str) -> str:
    return f'<span class="sw" style="background:{esc(color)}"></span>'


def _audit_badges(report: Report, candidate_id: str) -> str:
    found = [f for f in report.ranking.findings if f.subject == candidate_id]
    if not found:
        reported = report.decision.candidate(candidate_id).reported_total
        return '<span class="b ok">ok</span>' if reported is not None else ""
    parts = []
    for f in found:
        text = f"{f.code} {f.difference:+.2f}" if f.difference is not None else f.code
        parts.append(f'<span class="b {esc(f.severity)}">{esc(text)}</span>')
    return " ".join(parts)


def _ranking_section(report: Report, colors: list[str]) -> str:
    decision, ranking = report.decision, report.ranking
    points = report.contributions
    headers = ["rank", "candidate", "total"]
    headers += [f"{_swatch(colors[j])}{esc(c.label)}<br><small>{decision.weights[j] * 100:.1f}%</small>"
                for j, c in enumerate(decision.criteria)]
    headers += ["reported", "audit"]
    rows = []
    for i in ranking.order:
        candidate = decision.candidates[i]
        rank = int(ranking.ranks[i])
        infeasible = ranking.infeasible.get(candidate.id)
        name = f"<b>{esc(candidate.label)}</b>" + (
            f"<br><small>{esc(candidate.id)}</small>" if candidate.name else "")
        if infeasible:
            name += f'<br><span class="b error">infeasible: {esc("; ".join(infeasible))}</span>'
        row = [str(rank) if rank else "–", name, f"<b>{ranking.totals[i]:.2f}</b>"]
        for j in range(len(decision.criteria)):
            mark = ' <span class="m" title="measured">M</span>' if ranking.cells[i][j].measured else ""
            row.append(f"{points[i, j]:.2f}{mark}")
        reported = candidate.reported_total
        row += ["" if reported is None else f"{reported:g}", _audit_badges(report, candidate.id)]
        rows.append(row)
    chart = _figure("contributions", charts.contributions_chart(report, colors),
                    "Each bar is a candidate's weighted sum split by criterion; hatched parts rest on "
                    "measurements." + (f" Diamonds mark the {esc(ranking.method.upper())} total the "
                                       "ranking uses." if ranking.method != "wsm" else ""))
    lead = (f"Method: {esc(METHODS[ranking.method].label)}. Criterion columns: points of the "
            f"weighted sum (weight x score normalised on the criterion's scale x 100), which add up "
            f"to the total" if ranking.method == "wsm" else
            f"Method: {esc(METHODS[ranking.method].label)} ({esc(METHODS[ranking.method].terms_label)}). "
            "Criterion columns and bars: points of the weighted sum, shown to explain the scores; "
            "the total column is the method's own")
    return _section("ranking", "Ranking",
                    chart + _table(headers, rows, "num ranking", raw_headers=True),
                    lead + ". <span class=\"m\">M</span> marks a measured score.")


# -- scores -----------------------------------------------------------------------------------------
def _cell_html(cell: Cell) -> str:
    if not cell.measured:
        return f'<span class="judged">{cell.score:g}</span>'
    raw = "" if cell.raw is None else f"{_g(cell.raw)} {esc(cell.unit or '')}"
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
            spread = "–" if cell.spread is None else _g(cell.spread)
            ids = ", ".join(str(r) for r in cell.record_ids) or "–"
            flags = " ".join(f'<span class="b warning">{esc(f)}</span>' for f in cell.flags) or "–"
            rows.append([esc(candidate.id), esc(criterion.label), esc(cell.metric or ""),
                         f"{_g(cell.raw)} {esc(cell.unit or '')}", str(cell.samples), spread, how,
                         f"{'–' if cell.judged is None else f'{cell.judged:g}'} → {cell.score:.2f}",
                         flags, esc(ids)])
    return rows


def _record_rows(records: Sequence[EvidenceRecord]) -> list[list[str]]:
    rows = []
    for r in records:
        hw = r.hardware
        gpu = "–" if hw is None else (f"{hw.count} x " if hw.count > 1 else "") + hw.gpu
        software = ", ".join(f"{k} {v}" for k, v in sorted(r.software.items())) or "–"
        scenario = ", ".join(f"{k}={v}" for k, v in sorted(r.scenario.items())) or "–"
        spread = "" if r.spread is None else f" (spread {_g(r.spread)})"
        rows.append([esc(r.id), esc(r.candidate), esc(r.metric),
                     f"{_g(r.value)} {esc(r.unit)}{esc(spread)}", esc(r.repeats), esc(scenario),
                     esc(gpu), esc(software), esc(r.timestamp.strftime("%Y-%m-%d %H:%M UTC")),
                     esc(r.source or "–"), esc(r.note or "")])
    return rows


def _scores_section(report: Report, colors: list[str]) -> str:
    decision, ranking = report.decision, report.ranking
    headers = ["candidate"] + [f"{_swatch(colors[j])}{esc(c.label)}<br><small>scale "
                               f"{esc(c.scale)}{' (cost)' if c.direction == 'cost' else ''}</small>"
                               for j, c in enumerate(decision.criteria)]
    rows = []
    for i in ranking.order:
        candidate = decision.candidates[i]
        rows.append([esc(candidate.id)] + [_cell_html(ranking.cells[i][j])
                                            for j in range(len(decision.criteria))])
    body = _table(headers, rows, "matrix", raw_headers=True)
    measured = _provenance_rows(report)
    if measured:
        body += ("<h3>Measured cells and their provenance</h3>"
                 "<p>Each measured score is the criterion's value function applied to the median of "
                 "the matching evidence records; the judged score it replaced is kept beside it.</p>"
                 + _table(["candidate", "criterion", "metric", "median", "records", "spread",
                           "value function", "judged → score", "flags", "record ids"], measured))
        records = report.records_used()
        if records:
            body += ("<h3>Evidence records used</h3>"
                     + _table(["id", "candidate", "metric", "value", "repeats", "scenario", "GPU",
                               "software", "measured", "source", "note"], _record_rows(records),
                              "records"))
    elif report.evidence is not None:
        body += "<p>No evidence record matched a measured criterion; every score is judged.</p>"
    lead = ('Scores on each criterion\'s own scale. <span class="judged">Judged</span> cells are the '
            'numbers written in the decision file; <span class="measured-chip">measured</span> '
            "cells come from evidence and show the raw median, the judged score they replaced and "
            "any flag that weakens them.")
    return _section("scores", "Judged and measured scores", body, lead)


# -- before / after ---------------------------------------------------------------------------------
def _before_after_section(report: Report) -> str:
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
    chart = _figure("before-after", charts.before_after_chart(report, changes),
                    "Grey: judged scores only. Green: measured scores in place of judged ones.")
    table = _table(["candidate", "judged rank", "judged total", "rank", "total", "change",
                    "moved"], rows, "num")
    return _section("before-after", "Before and after the evidence", chart + table, verdict)


# -- roofline ---------------------------------------------------------------------------------------
def _roofline_section(report: Report) -> str:
    roofline = report.roofline
    parts = []
    if roofline.skipped:
        parts.append(f"<p>No ceilings for this decision: {esc(roofline.skipped)}.</p>")
    if roofline.ceilings:
        rows = [[esc(c.kv_cache_dtype), esc(", ".join(c.candidates)), f"{c.decode_tok_s:,.1f}",
                 f"{c.decode_4k_tok_s:,.1f}",
                 "–" if c.prefill_tok_s is None else f"{c.prefill_tok_s:,.0f} "
                 f"<small>(at {c.prefill_prompt_tokens:,} tokens)</small>"]
                for c in roofline.ceilings]
        parts.append(f"<p>Ceilings of {esc(roofline.hardware)} for {esc(roofline.shape)} with "
                     f"{esc(roofline.weights)} weights: no stack can exceed them; well-tuned stacks "
                     "reach roughly 50-85% of the decode ceiling.</p>")
        parts.append(_table(["KV-cache dtype", "candidates", "decode tok/s, 1 stream",
                             "decode tok/s at 4,096 tokens", "prefill tok/s, best"], rows, "num"))
    measured = roofline.measurements
    if measured:
        with_ceiling = [r for r in measured if r.ceiling is not None]
        if with_ceiling:
            parts.append(_figure("roofline", charts.roofline_chart(report, measured),
                                 "Measured decode and prefill speed as a share of the ceiling of "
                                 "the GPU each measurement ran on."))
        rows = []
        for r in measured:
            scenario = ", ".join(f"{k}={v}" for k, v in sorted(r.scenario.items())) or "–"
            rows.append([esc(r.candidate), esc(r.metric), f"{_g(r.measured)} {esc(r.unit)}",
                         str(r.records), esc(scenario), esc(r.gpu or "–"),
                         "–" if r.ceiling is None else f"{r.ceiling:,.1f}",
                         "–" if r.percent is None else f"<b>{r.percent:.0f}%</b>",
                         {True: "yes", False: "no", None: "–"}[r.in_score], esc(r.basis)])
        parts.append(_table(["candidate", "metric", "median", "records", "scenario", "GPU",
                             "ceiling", "of ceiling", "in a score", "how the ceiling was computed"],
                            rows, "num"))
    elif report.evidence is not None:
        parts.append("<p>No decode or prefill measurements of these candidates in the evidence.</p>")
    lead = ("Upper limits from the GPU's peak numbers: decode is bound by reading every weight "
            "(and the KV cache) once per token, prefill by tensor throughput.")
    return _section("roofline", "Measurements against the roofline", "".join(parts), lead)


# -- audit ------------------------------------------------------------------------------------------
def _finding_html(f: Finding) -> str:
    numbers = ""
    if f.reported is not None and f.computed is not None:
        numbers = f'<div class="nums">reported {f.reported:g} · computed {f.computed:g}</div>'
    where = f'<div class="where">{esc(f.where)}</div>' if f.where else ""
    return (f'<li class="finding {esc(f.severity)}"><span class="b {esc(f.severity)}">'
            f"{esc(f.severity)}</span> <code>{esc(f.code)}</code> <b>{esc(f.subject)}</b>{where}"
            f"<div>{esc(f.message)}</div>{numbers}</li>")


def _audit_section(report: Report) -> str:
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
    return _section("audit", "Audit", body, "What the decision file claims, checked against what "
                    "follows from it. Errors and warnings make <code>stackdecide check</code> exit 1.")


# -- robustness -------------------------------------------------------------------------------------
def _flip_text(flip: WeightFlip) -> str:
    if flip.threshold is None:
        return '<span class="muted">no flip</span>'
    return (f"{_pct(flip.threshold)} <small>({(flip.change or 0) * 100:+.1f})</small> → "
            f"{esc(flip.new_winner)}")


def _robustness_section(report: Report, colors: list[str]) -> str:
    sensitivity, decision = report.sensitivity, report.decision
    flips, smaa = sensitivity.flips, sensitivity.smaa
    nearest = flips.nearest
    if nearest is not None and nearest.threshold is not None:
        verb = "raising" if nearest.direction == "increase" else "lowering"
        summary = (f"The smallest single change that moves first place: {verb} "
                   f"<b>{esc(nearest.criterion)}</b> from {_pct(nearest.weight)} to "
                   f"{_pct(nearest.threshold)}; <b>{esc(nearest.new_winner)}</b> then wins.")
    else:
        summary = "No change of any single weight moves first place."
    flip_rows = [[esc(decision.criteria[j].label), _pct(c.weight), _flip_text(c.decrease),
                  _flip_text(c.increase)] for j, c in enumerate(flips.criteria)]
    parts = [f"<p>{summary}</p>"]
    if len(decision.criteria) > 1 and len(decision.candidates) > 1:
        parts.append(_figure("flips", charts.flip_chart(report, colors),
                             "One weight moves, the others keep their proportions (they still add "
                             "up to 100%). Red ticks: where another candidate takes first place."))
    parts.append(_table(["criterion", "weight", "lower to", "raise to"], flip_rows, "num"))
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
        parts.append(_table(["criterion", esc(trade.winner), esc(trade.runner_up), "difference",
                             "runner-up score change that ties"], trade_rows, "num"))
    parts.append("<h3>SMAA-2 rank acceptability</h3>")
    scores = ("scores drawn within their stated uncertainty" if smaa.score_uncertainty
              else "scores fixed")
    parts.append(f"<p>{smaa.samples:,} weight vectors drawn uniformly from the admissible weights "
                 f"(seed {smaa.seed}), {scores}. A candidate's rank-1 share is how much of the "
                 "space of weightings makes it the winner.</p>")
    parts.append(_figure("smaa", charts.acceptability_chart(report),
                         "Share of sampled weightings that give each candidate each rank."))
    shown = min(smaa.rank_counts.shape[1], SMAA_TABLE_RANKS)
    order = np.lexsort((np.arange(len(decision.candidates)), -smaa.first_rank))
    rows = []
    for i in order:
        confidence = smaa.confidence[i]
        rows.append([esc(decision.candidate_ids[i]),
                     *[_share(int(c), smaa.samples) for c in smaa.rank_counts[i, :shown]],
                     "–" if np.isnan(confidence) else f"{confidence:.2f}"])
    parts.append(_table(["candidate", *[f"rank {r + 1}" for r in range(shown)], "confidence"],
                        rows, "num"))
    parts.append(f'<p class="muted">Monte Carlo standard error of each share at most '
                 f"{float(smaa.acceptability_stderr.max()) * 100:.2f} points. Reference: "
                 f"{esc(REFERENCE)}.</p>")
    return _section("robustness", "How robust is the winner?", "".join(parts),
                    f"Computed on the {esc(report.sensitivity_basis)}.")


# -- winner config ----------------------------------------------------------------------------------
def _problems(problems: Sequence[Problem]) -> str:
    if not problems:
        return ""
    items = "".join(f'<li><span class="b {esc(p.severity)}">{esc(p.severity)}</span> '
                    f"<code>{esc(p.field or '')}</code> {esc(p.message)} "
                    f'<small class="muted">[{esc(p.code)}]</small></li>' for p in problems)
    return f'<ul class="problems">{items}</ul>'


def _config_section(report: Report) -> str:
    config = report.winner_config
    if config is None:
        return _section("engine", "Winner's engine configuration",
                        "<p>No winner: every candidate breaks a constraint.</p>")
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
        parts.append("<h3>Stack pins</h3>" + _table(["package", "pin"], pins))
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
    return _section("engine", "Winner's engine configuration", "".join(parts))


# -- page -------------------------------------------------------------------------------------------
CSS = """
:root { --ink:#1f2933; --muted:#6b7785; --line:#d9dee4; --bg:#f6f7f9; --accent:#0f766e;
        --measured:#e3f4f1; --err:#b42318; --warn:#b54708; --info:#175cd3; }
* { box-sizing: border-box; }
body { margin:0; font:14px/1.45 system-ui,-apple-system,"Segoe UI",Roboto,"DejaVu Sans",Arial,sans-serif;
       color:var(--ink); background:var(--bg); }
main { max-width:1220px; margin:0 auto; padding:24px 28px 48px; }
header h1 { font-size:24px; margin:0 0 4px; }
.source { color:var(--muted); margin:0 0 10px; }
.facts { display:grid; grid-template-columns:max-content 1fr; gap:2px 14px; margin:0; font-size:13px; }
.facts dt { color:var(--muted); } .facts dd { margin:0; }
nav { margin:16px 0; font-size:13px; } nav a { margin-right:14px; color:var(--accent); }
.cards { display:grid; grid-template-columns:repeat(auto-fit,minmax(150px,1fr)); gap:12px; margin:18px 0; }
.card { background:#fff; border:1px solid var(--line); border-radius:8px; padding:12px 14px; }
.card .k { color:var(--muted); font-size:12px; text-transform:uppercase; letter-spacing:.04em; }
.card .v { font-size:18px; font-weight:600; margin:2px 0; overflow-wrap:break-word; }
.card.wide { grid-column:span 2; }
.card .d { color:var(--muted); font-size:12.5px; }
section { background:#fff; border:1px solid var(--line); border-radius:8px; padding:18px 22px;
          margin:18px 0; }
section h2 { margin:0 0 6px; font-size:19px; } section h3 { font-size:15px; margin:18px 0 6px; }
.lead { color:var(--muted); margin-top:0; }
.chart { margin:8px 0 14px; } .chart svg { width:100%; height:auto; display:block; }
figcaption { color:var(--muted); font-size:12.5px; }
.scroll { overflow:auto; max-height:560px; border:1px solid var(--line); border-radius:6px; }
table { border-collapse:collapse; width:100%; font-size:13px; }
th, td { padding:6px 9px; border-bottom:1px solid var(--line); text-align:left; vertical-align:top; }
th { background:#eef1f4; position:sticky; top:0; z-index:1; font-weight:600; }
table.num td { font-variant-numeric:tabular-nums; }
table.ranking td:nth-child(2) { min-width:15em; } table.ranking th { min-width:6em; }
table.matrix th { min-width:7em; } table.records td { min-width:6em; }
table.matrix td:first-child, table.matrix th:first-child { position:sticky; left:0; background:#fff; }
table.matrix th:first-child { background:#eef1f4; z-index:2; }
tbody tr:nth-child(even) td { background:#fafbfc; }
.sw { display:inline-block; width:10px; height:10px; border-radius:2px; margin-right:5px;
      vertical-align:baseline; }
.m { display:inline-block; background:var(--accent); color:#fff; font-size:10px; font-weight:700;
     border-radius:3px; padding:0 4px; line-height:15px; }
.measured { background:var(--measured); border-left:3px solid var(--accent); padding:2px 6px; }
.measured-chip { background:var(--measured); border-left:3px solid var(--accent); padding:0 4px; }
.judged { color:var(--ink); } .muted { color:var(--muted); }
.b { display:inline-block; font-size:11px; border-radius:10px; padding:0 7px; border:1px solid;
     white-space:nowrap; }
.b.error { color:var(--err); border-color:var(--err); background:#fef3f2; }
.b.warning { color:var(--warn); border-color:var(--warn); background:#fffaeb; }
.b.info { color:var(--info); border-color:var(--info); background:#eff8ff; }
.b.ok { color:var(--accent); border-color:var(--accent); background:var(--measured); }
.findings { list-style:none; padding:0; margin:0; }
.finding { border-left:4px solid var(--line); padding:6px 10px; margin:8px 0; background:#fcfcfd; }
.finding.error { border-color:var(--err); } .finding.warning { border-color:var(--warn); }
.finding.info { border-color:var(--info); }
.finding .where, .finding .nums { color:var(--muted); font-size:12.5px; font-family:ui-monospace,monospace; }
.problems { padding-left:18px; } .problems li { margin:3px 0; }
details summary { cursor:pointer; color:var(--accent); margin:10px 0 4px; }
.up { color:var(--accent); font-weight:600; } .down { color:var(--err); font-weight:600; }
pre { background:#f3f5f7; border:1px solid var(--line); border-radius:6px; padding:10px 12px;
      overflow:auto; font:12.5px/1.4 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace; }
code { font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace; font-size:12.5px; }
footer { color:var(--muted); font-size:12px; margin-top:24px; }
@media print { body { background:#fff; } section { break-inside:avoid; } .scroll { max-height:none; } }
"""

PAGE = Template("""<!DOCTYPE html>
<html lang="en">
<head>
<meta charset="utf-8">
<meta name="viewport" content="width=device-width, initial-scale=1">
<meta name="generator" content="stackdecide $version">
<title>$title</title>
<style>$css</style>
</head>
<body>
<main>
$header
<nav>$nav</nav>
$cards
$sections
<footer>stackdecide $version · method $method · sensitivity seed $seed · one self-contained file:
no scripts, no network.</footer>
</main>
</body>
</html>
""")


def render_html(report: Report) -> str:
    """The report as one HTML page. Needs matplotlib (``pip install 'stackdecide[html]'``)."""
    charts.require_matplotlib()
    colors = charts.criterion_colors(len(report.decision.criteria))
    sections = [("ranking", "Ranking", _ranking_section(report, colors)),
                ("scores", "Scores", _scores_section(report, colors))]
    if report.has_evidence:
        sections.append(("before-after", "Before/after evidence", _before_after_section(report)))
    sections += [("roofline", "Roofline", _roofline_section(report)),
                 ("audit", "Audit", _audit_section(report)),
                 ("robustness", "Robustness", _robustness_section(report, colors)),
                 ("engine", "Winner's config", _config_section(report))]
    nav = "".join(f'<a href="#{anchor}">{esc(name)}</a>' for anchor, name, _ in sections)
    return PAGE.substitute(
        version=esc(__version__), title=esc(report.decision.title), css=CSS,
        header=_header(report), nav=nav, cards=_cards(report),
        sections="\n".join(body for _, _, body in sections),
        method=esc(report.ranking.method), seed=esc(report.sensitivity.smaa.seed))
