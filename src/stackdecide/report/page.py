"""The report as one self-contained HTML page: inline CSS, charts as inline SVG, no scripts.

Every piece of text that comes from a decision file or evidence goes through ``esc`` (html.escape).
The page skeleton is a ``string.Template``; sections are small functions returning HTML fragments.
"""

from __future__ import annotations

from string import Template
from typing import TYPE_CHECKING

from stackdecide._version import __version__
from stackdecide.model.problems import errors
from stackdecide.report import charts
from stackdecide.report.capacity import capacity_section
from stackdecide.report.html_kit import esc, pct
from stackdecide.report.launch import redacted_report
from stackdecide.report.sections import (
    audit_section,
    before_after_section,
    certainty_section,
    config_section,
    ranking_section,
    robustness_section,
    roofline_section,
    scores_section,
)
from stackdecide.report.text import NOT_CERTIFIED, judged_rest, no_winner_text, predicted_cells

if TYPE_CHECKING:
    from stackdecide.report.data import Report

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
        cards.append(("winner", "none", no_winner_text(ranking)))
    else:
        tied = [t for t in ranking.tied_winners if t != winner]
        detail = f"{ranking.total(winner):.2f} of 100 ({ranking.method})"
        if tied:
            detail += f"; tied with {', '.join(tied)}"
        sure = report.certainty
        title = "winner"
        if sure is not None and sure.verdict.kind in NOT_CERTIFIED:
            title, detail = "leader, not certified", f"{detail}; {sure.verdict.text}"
        elif sure is not None and sure.verdict.kind == "certified":
            title, detail = "certified winner", f"{detail}; {sure.verdict.text}"
        cards.append((title, decision.candidate(winner).label, detail))
        order = [int(i) for i in ranking.order if ranking.ranks[i] > 0]
        if len(order) > 1:
            runner = decision.candidates[order[1]]
            margin = ranking.total(winner) - ranking.total(runner.id)
            cards.append(("lead", f"{margin:.2f} points", f"over {runner.label}"))
    sensitivity = report.sensitivity
    if sensitivity is not None:
        smaa, analysed = sensitivity.smaa, sensitivity.decision
        index = analysed.candidate_index(sensitivity.winner)
        left_out = len(sensitivity.left_out)
        cards.append(("wins under sampled weights", pct(float(smaa.first_rank[index])),
                      f"{analysed.candidate(sensitivity.winner).label}; SMAA-2, "
                      f"{smaa.samples:,} samples"
                      + (f"; {left_out} infeasible left out" if left_out else "")))
    total_cells = len(decision.candidates) * len(decision.criteria)
    predicted = predicted_cells(ranking)
    if predicted:
        rest = f"{predicted} predicted (no launch){judged_rest(ranking)}"
    else:
        rest = "the rest are judged scores" if ranking.measured_cells else "every score is a judgement"
    cards.append(("measured cells", f"{ranking.measured_cells} of {total_cells}", rest))
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
    body = "".join(f'<div class="card{" wide" if index == 0 else ""}"><div class="k">{esc(k)}'
                   f'</div><div class="v">{esc(v)}</div><div class="d">{esc(d)}</div></div>'
                   for index, (k, v, d) in enumerate(cards))
    return f'<div class="cards">{body}</div>'


# -- ranking ----------------------------------------------------------------------------------------
CSS = """
:root { --ink:#1f2933; --muted:#6b7785; --line:#d9dee4; --bg:#f6f7f9; --accent:#0f766e;
        --measured:#e3f4f1; --predicted:#f3effa; --predict-ink:#6941c6; --err:#b42318;
        --warn:#b54708; --info:#175cd3; }
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
.p { display:inline-block; background:var(--predict-ink); color:#fff; font-size:10px; font-weight:700;
     border-radius:3px; padding:0 4px; line-height:15px; cursor:help; }
.predicted { background:var(--predicted); border-left:3px dashed var(--predict-ink); padding:2px 6px; }
.predicted-chip { background:var(--predicted); border-left:3px dashed var(--predict-ink); padding:0 4px; }
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
    """The report as one HTML page, secrets as ``***``. Needs matplotlib (``pip install
    'stackdecide[html]'``)."""
    charts.require_matplotlib()
    report = redacted_report(report)
    colors = charts.criterion_colors(len(report.decision.criteria))
    sections = [("ranking", "Ranking", ranking_section(report, colors)),
                ("scores", "Scores", scores_section(report, colors))]
    if report.has_evidence:
        sections.append(("before-after", "Before/after evidence", before_after_section(report)))
    if report.certainty is not None:  # with evidence, or with predicted cells
        sections.append(("certainty", "Certainty", certainty_section(report)))
    capacity = capacity_section(list(report.evidence)) if report.evidence is not None else None
    if capacity is not None:
        sections.append(("capacity", "Capacity", capacity))
    sections += [("roofline", "Roofline", roofline_section(report)),
                 ("audit", "Audit", audit_section(report)),
                 ("robustness", "Robustness", robustness_section(report, colors)),
                 ("engine", "Winner's config", config_section(report))]
    nav = "".join(f'<a href="#{anchor}">{esc(name)}</a>' for anchor, name, _ in sections)
    return PAGE.substitute(
        version=esc(__version__), title=esc(report.decision.title), css=CSS,
        header=_header(report), nav=nav, cards=_cards(report),
        sections="\n".join(body for _, _, body in sections),
        method=esc(report.ranking.method),
        seed=esc(report.sensitivity.smaa.seed if report.sensitivity else "–"))
