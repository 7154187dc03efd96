"""Rendering a ranking as a table, markdown, JSON or CSV. Pure: returns text, never prints."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Collection, Mapping, Sequence
from typing import TYPE_CHECKING, Any

from tabulate import tabulate

from stackdecide._text import csv_cell
from stackdecide.mcda.methods import METHODS
from stackdecide.model.ranking import ranking_to_dict
from stackdecide.model.space import elsewhere
from stackdecide.predict import DEFAULT_LEVEL
from stackdecide.report.predict import predicted_interval_text, predicted_value_text

if TYPE_CHECKING:
    from stackdecide.loop import Measurement
    from stackdecide.model.cells import Cell
    from stackdecide.model.certainty import CellEstimate
    from stackdecide.model.findings import Finding
    from stackdecide.model.ranking import Ranking
    from stackdecide.orchestrate import RunResult

# verdicts that leave the ranking's first place a leader, not a winner
NOT_CERTIFIED = ("tie", "undecided")


def _rank_text(ranking: Ranking, index: int) -> str:
    rank = int(ranking.ranks[index])
    return str(rank) if rank else "-"


def _candidate_flags(ranking: Ranking, index: int) -> list[Finding]:
    candidate_id = ranking.candidate_ids[index]
    return [f for f in ranking.findings if f.subject == candidate_id]


def _term_text(ranking: Ranking, i: int, j: int) -> str:
    """A criterion column's value, marked ``7.35*`` when measured and ``~7.35`` when predicted."""
    value = float(ranking.terms[i, j])
    cell = ranking.cells[i][j]
    text = f"{value:.2f}" if ranking.method == "wsm" else f"{value:.3f}"
    return ("~" if cell.predicted else "") + text + ("*" if cell.measured else "")


def predicted_cells(ranking: Ranking) -> int:
    """How many cells of ``ranking`` rest on a prediction (``Ranking.measured_cells`` counts the
    measured ones, never these)."""
    return sum(cell.predicted for row in ranking.cells for cell in row)


def judged_rest(ranking: Ranking) -> str:
    """", the rest judged" when some cells of ``ranking`` are neither measured nor predicted."""
    total = len(ranking.decision.candidates) * len(ranking.decision.criteria)
    return ", the rest judged" if ranking.measured_cells + predicted_cells(ranking) < total else ""


def predicted_title(cell: Cell) -> str:
    """A predicted cell in one phrase: ``predicted 233 tok/s (80%: 197 .. 275), no launch``."""
    return (f"predicted {predicted_value_text(cell).removeprefix('~')} "
            f"({DEFAULT_LEVEL:.0%}: {predicted_interval_text(cell)}), no launch")


SEVERITY_ORDER = {"error": 0, "warning": 1, "info": 2}


def worst_first(ranking: Ranking, index: int) -> list[Finding]:
    """A candidate's findings, worst first: errors, then warnings, then infos; among errors, those
    that say it cannot start before the others (a wrong published total leaves it feasible)."""
    refused = ranking.cannot_start.get(ranking.candidate_ids[index], ())
    flags = _candidate_flags(ranking, index)
    return sorted(flags, key=lambda f: (SEVERITY_ORDER[f.severity], f not in refused))


def _audit_text(ranking: Ranking, index: int) -> str:
    """The worst finding, with the count of the others: ``launch:kv-cache-too-small (+2)``."""
    flags = worst_first(ranking, index)
    if not flags:
        return "ok" if ranking.decision.candidates[index].reported_total is not None else ""
    first = flags[0]
    text = first.code
    if first.code == "reported-total-mismatch" and first.difference is not None:
        text = f"MISMATCH {first.difference:+.2f}"
    return text + (f" (+{len(flags) - 1})" if len(flags) > 1 else "")


def no_winner_text(ranking: Ranking) -> str:
    """Why there is no winner: how many candidates cannot start, how many break a constraint."""
    refused, broken = len(ranking.cannot_start), len(ranking.violations)
    why = [f"{refused} cannot start as written"] if refused else []
    if broken:
        why.append(f"{broken} break{'s' if broken == 1 else ''} a constraint")
    return (f"no candidate is feasible ({' and '.join(why)}); the totals are shown as scored, "
            "none is ranked")


OTHER_HARDWARE = "^"  # marks a space's configuration for hardware the decision does not have


def other_hardware_note(ranking: Ranking) -> str | None:
    """What ``OTHER_HARDWARE`` marks in ``table_rows``, when any row has it."""
    away = elsewhere(ranking.decision.model)
    if not away:
        return None
    why = "; ".join(sorted(set(away.values())))
    return (f"{OTHER_HARDWARE} {len(away)} configurations for hardware other than the decision's "
            f"({why}): ranked by prediction only, never the winner here")


def table_rows(ranking: Ranking) -> tuple[list[str], list[list[Any]]]:
    decision = ranking.decision
    headers = ["rank", "candidate", "total"]
    headers += [f"{c.label}\n{w * 100:.0f}%" for c, w in zip(decision.criteria, decision.weights,
                                                              strict=True)]
    headers += ["reported", "audit"]
    rows = []
    away = elsewhere(decision.model)
    for index in ranking.order:
        candidate = decision.candidates[index]
        label = f"{candidate.label} {OTHER_HARDWARE}" if candidate.id in away else candidate.label
        row: list[Any] = [_rank_text(ranking, index), label, f"{ranking.totals[index]:.2f}"]
        row += [_term_text(ranking, index, j) for j in range(len(decision.criteria))]
        reported = candidate.reported_total
        row += ["" if reported is None else f"{reported:g}", _audit_text(ranking, index)]
        rows.append(row)
    return headers, rows


def _shows_stack(ranking: Ranking) -> bool:
    """Whether any measured cell names the stack behind it (then every row gets the column)."""
    return any(cell.stack for cells in ranking.cells for cell in cells)


def _measured_rows(ranking: Ranking) -> list[list[Any]]:
    rows = []
    decision = ranking.decision
    stack = _shows_stack(ranking)
    certainty = ranking.certainty
    for i, candidate in enumerate(decision.candidates):
        for j, criterion in enumerate(decision.criteria):
            cell = ranking.cells[i][j]
            if not cell.measured:
                continue
            found = certainty.cells.get((candidate.id, criterion.id)) if certainty else None
            row = [candidate.id, criterion.id, cell.metric, _raw_text(cell)]
            if certainty is not None:
                row += [found.estimate.n if found else cell.samples, _interval_text(found)]
            else:
                row.append(cell.samples)
            rows.append([*row, f"{cell.judged:g} -> {cell.score:.2f}", ", ".join(cell.flags),
                         *(["; ".join(cell.stack)] if stack else [])])
    return rows


def _predicted_rows(ranking: Ranking) -> list[list[Any]]:
    decision = ranking.decision
    return [[candidate.id, criterion.id, cell.metric, predicted_value_text(cell),
             predicted_interval_text(cell),
             f"{'' if cell.judged is None else f'{cell.judged:g}'} -> {cell.score:.2f}"]
            for i, candidate in enumerate(decision.candidates)
            for j, criterion in enumerate(decision.criteria)
            if (cell := ranking.cells[i][j]).predicted]


def _interval_text(found: CellEstimate | None) -> str:
    if found is None:
        return ""
    est = found.estimate
    basis = "prior noise" if est.method == "prior" else f"t, {est.dof:.3g} dof"
    return f"{est.low:.4g} .. {est.high:.4g} (±{est.rel_sd:.1%}/launch, {basis})"


def certainty_lines(ranking: Ranking, tablefmt: str = "simple") -> list[str]:
    """P(best) of each candidate under measurement noise, and the verdict."""
    certainty = ranking.certainty
    if certainty is None:
        return []
    probabilities = certainty.probabilities
    if probabilities is None:
        return [f"certainty: {certainty.verdict.text}"]
    launches = certainty.launches()
    within = certainty.within
    rows = []
    for index in ranking.order:
        cid = ranking.candidate_ids[index]
        ranks = " ".join(f"{share:.2f}" for share in probabilities.rank_matrix[index])
        rows.append([cid, f"{probabilities.p_best[index]:.3f}", ranks, launches[cid],
                     *([f"{within.probabilities.p_within[index]:.3f}"] if within else [])])
    weights = "weights sampled from the weight region (SMAA) and " if certainty.weights_sampled \
        else ""
    predicted = ", predicted values within their intervals" if predicted_cells(ranking) else ""
    zone = [f"P(within {certainty.settings.tolerance:g})"] if within else []
    return [f"certainty ({weights}measurement noise{predicted}; {certainty.samples:,} Monte Carlo "
            f"draws, seed {certainty.seed}, standard error at most "
            f"{probabilities.mc_standard_error:.3f}):",
            tabulate(rows, headers=["candidate", "P(best)", "P(rank 1..m)", "launches", *zone],
                     tablefmt=tablefmt, disable_numparse=True),
            f"verdict: {certainty.verdict.text}"]


def _raw_text(cell: Cell) -> str:
    if cell.raw is None:
        return ""
    text = f"{cell.raw:.4g}" + (f" {cell.unit}" if cell.unit else "")
    if cell.spread:
        text += f" (spread {cell.spread:.3g})"
    return text


def render_text(ranking: Ranking, tablefmt: str = "simple") -> str:
    """Table (``simple``) or markdown (``github``) view with its explanations.

    With the ranking's certainty (scored with evidence) the measured cells show their launches and
    interval, the winner line says whether the lead is certified, and P(best) follows. Predicted
    cells (``~``) are listed with their intervals.
    """
    decision = ranking.decision
    certainty = ranking.certainty
    markdown = tablefmt == "github"
    headers, rows = table_rows(ranking)
    if markdown:
        headers = [h.replace("\n", " ") for h in headers]
    lines = [f"## {decision.title}" if markdown else decision.title]
    if decision.model.decision.source:
        lines.append(f"source: {decision.model.decision.source}")
    lines.append(f"method: {METHODS[ranking.method].label}; criterion columns: "
                 f"{METHODS[ranking.method].terms_label}; total on 0-100")
    lines.append("")
    lines.append(tabulate(rows, headers=headers, tablefmt=tablefmt, disable_numparse=True))
    if note := other_hardware_note(ranking):
        lines.append(note)
    lines.append("")
    winner = ranking.winner
    if certainty is not None and certainty.verdict.winner is not None:
        # the line names the candidate its verdict is about
        winner = certainty.verdict.winner
    if winner is None:
        lines.append(f"winner: none: {no_winner_text(ranking)}")
    elif certainty is not None and certainty.verdict.kind == "tie":
        lines.append(f"leader: {decision.candidate(winner).label} ({ranking.total(winner):.2f}), "
                     f"not certified: {certainty.verdict.text}")
    elif certainty is not None and certainty.verdict.kind == "undecided":
        lines.append(f"leader: {decision.candidate(winner).label} ({ranking.total(winner):.2f}), "
                     f"{certainty.verdict.text}")
    else:
        tied = ranking.tied_winners
        lines.append(f"winner: {decision.candidate(winner).label} ({ranking.total(winner):.2f})"
                     + (f", tied with {', '.join(t for t in tied if t != winner)}"
                        if len(tied) > 1 and winner in tied else ""))
    measured, predicted = _measured_rows(ranking), _predicted_rows(ranking)
    cells = len(decision.candidates) * len(decision.criteria)
    if measured:
        headers = ["candidate", "criterion", "metric", "measured", "n"]
        if certainty is not None:
            headers[-1] = "launches"
            headers.append(f"{certainty.confidence:.0%} interval")
        lines += ["", f"measured cells (* above; {len(measured)} of {cells}):",
                  tabulate(measured, headers=[*headers, "judged -> score", "flags",
                                              *(["stack"] if _shows_stack(ranking) else [])],
                           tablefmt=tablefmt, disable_numparse=True)]
    if predicted:
        lines += ["", f"predicted cells (~ above; {len(predicted)} of {cells}, no launch measured "
                      "them):",
                  tabulate(predicted, headers=["candidate", "criterion", "metric", "predicted",
                                               f"{DEFAULT_LEVEL:.0%} interval of the mean",
                                               "judged -> score"],
                           tablefmt=tablefmt, disable_numparse=True)]
    if certainty is not None and (measured or predicted):
        lines += ["", *certainty_lines(ranking, tablefmt)]
    if not measured and not predicted:
        lines += ["all cells judged (no measurements used)"]
    for index in ranking.order:
        if ranking.ranks[index] == 0:
            candidate_id = ranking.candidate_ids[index]
            lines.append(f"infeasible: {candidate_id}: {ranking.why_infeasible(candidate_id)}")
    if ranking.findings:
        lines += ["", "audit:"]
        lines += [f"  {line}" for line in finding_lines(ranking.findings)]
    else:
        lines += ["", "audit: no findings"]
    for note in ranking.notes:
        lines.append(f"note: {note}")
    return "\n".join(lines) + "\n"


def render_json(ranking: Ranking) -> str:
    data = ranking_to_dict(ranking)
    if ranking.certainty is not None:
        data["certainty"] = ranking.certainty.to_dict()
    return json.dumps(data, indent=2, allow_nan=False) + "\n"


def render_csv(ranking: Ranking) -> str:
    """The ranking as CSV; text a spreadsheet would run as a formula gets a leading ``'``."""
    decision = ranking.decision
    buffer = io.StringIO()
    writer = csv.writer(buffer, lineterminator="\n")
    writer.writerow(["rank", "id", "name", "total", *[f"{c.id}" for c in decision.criteria],
                     *[f"{c.id}_source" for c in decision.criteria], "reported_total", "audit",
                     "feasible", "infeasible_reasons"])
    infeasible = ranking.infeasible
    for index in ranking.order:
        candidate = decision.candidates[index]
        writer.writerow(map(csv_cell, [
            int(ranking.ranks[index]) or "", candidate.id, candidate.label,
            f"{ranking.totals[index]:.6f}",
            *[f"{ranking.terms[index, j]:.6f}" for j in range(len(decision.criteria))],
            *[ranking.cells[index][j].source for j in range(len(decision.criteria))],
            "" if candidate.reported_total is None else candidate.reported_total,
            _audit_text(ranking, index),
            "false" if candidate.id in infeasible else "true",
            "; ".join(infeasible.get(candidate.id, ())),
        ]))
    return buffer.getvalue()


def render(ranking: Ranking, fmt: str = "table") -> str:
    if fmt == "json":
        return render_json(ranking)
    if fmt == "csv":
        return render_csv(ranking)
    return render_text(ranking, "github" if fmt == "markdown" else "simple")


def grouped_findings(findings: Sequence[Finding]) -> list[tuple[Finding, tuple[str, ...]]]:
    """The findings with the same severity, place and message made one, with every subject it
    is about: a check makes one finding per candidate, so that reports can mark each."""
    subjects: dict[tuple[str, str | None, str], tuple[Finding, list[str]]] = {}
    for f in findings:
        subjects.setdefault((f.severity, f.where, f.message), (f, []))[1].append(f.subject)
    return [(first, tuple(about)) for first, about in subjects.values()]


def about_candidates(subjects: Sequence[str], candidates: Collection[str] = ()) -> str:
    """Whom a finding is about: every subject of a grouped finding; a single one only when it is
    one of ``candidates`` (a finding about the decision names none)."""
    if len(subjects) > 1:
        return f" (candidates {', '.join(subjects)})"
    return f" (candidate {subjects[0]})" if subjects and subjects[0] in candidates else ""


def finding_lines(findings: Sequence[Finding]) -> list[str]:
    """One line per finding; the same finding about several candidates is one line naming them."""
    return [f"{f.severity}: {f.where + ': ' if f.where else ''}{f.message}{about_candidates(about)}"
            for f, about in grouped_findings(findings)]


def render_findings(findings: list[Finding] | tuple[Finding, ...]) -> str:
    if not findings:
        return "no findings\n"
    return "".join(f"{line}\n" for line in finding_lines(findings))


def before_after_rows(before: Ranking, after: Ranking) -> tuple[list[str], list[list[Any]]]:
    """Side-by-side ranks and totals of the same decision scored twice, best-after first; the
    cells of each candidate measured after (and predicted, where any is)."""
    decision = after.decision
    headers = ["rank", "candidate", "before", "after", "change", "measured cells"]
    predicted = predicted_cells(after) > 0
    if predicted:
        headers.append("predicted cells")
    rows = []
    for index in after.order:
        candidate = decision.candidates[index]
        measured = sum(cell.measured for cell in after.cells[index])
        infeasible = candidate.id in after.infeasible
        rows.append([
            _rank_text(after, index), candidate.label,
            f"{before.totals[index]:.2f} (#{_rank_text(before, index)})",
            f"{after.totals[index]:.2f}" + (" infeasible" if infeasible else ""),
            f"{after.totals[index] - before.totals[index]:+.2f}",
            f"{measured}/{len(decision.criteria)}",
            *([f"{sum(cell.predicted for cell in after.cells[index])}/{len(decision.criteria)}"]
              if predicted else []),
        ])
    return headers, rows


def render_before_after(before: Ranking, after: Ranking, tablefmt: str = "simple") -> str:
    headers, rows = before_after_rows(before, after)
    lines = [tabulate(rows, headers=headers, tablefmt=tablefmt, disable_numparse=True), ""]
    if before.winner == after.winner:
        lines.append(f"first place unchanged: {after.winner}")
    else:
        lines.append(f"first place changed: {before.winner} -> {after.winner}")
    return "\n".join(lines) + "\n"


_SUMMARY_METRICS = ("decode_tok_s", "prefill_tok_s", "output_tok_s")


def render_measurements(measurements: Sequence[Measurement], tablefmt: str = "simple") -> str:
    """One line per launch: did it start, how long it took, the headline numbers it measured."""
    rows = []
    for item in measurements:
        outcome = item.outcome
        headline = []
        for metric in _SUMMARY_METRICS:
            values = [r for r in item.records if r.metric == metric]
            headline += [f"{metric} {r.value:.4g}"
                         + (f" @{r.scenario['concurrency']}" if metric == "output_tok_s" else "")
                         for r in values]
        status = "ok" if outcome.ok else f"failed: {outcome.failure}"
        rows.append([item.candidate_id, status,
                     "" if outcome.startup_s is None else f"{outcome.startup_s:.1f}",
                     "; ".join(headline) or (outcome.reason or "")[:100],
                     len(item.records), outcome.run_dir])
        if item.error:
            rows.append(["", "benchmark stopped", "", item.error[:100], "", ""])
    return tabulate(rows, headers=["candidate", "launch", "startup s", "measured", "records",
                                   "run folder"], tablefmt=tablefmt, disable_numparse=True) + "\n"


def render_race_end(result: RunResult) -> str:
    """How the race ended, in one paragraph: certified, a tie, or stopped on its budget."""
    launches = len(result.measurements)
    spent = (f"{launches} launch{'es' if launches != 1 else ''} in {result.elapsed_s / 60:.1f} min "
             f"(race seed {result.seed})")
    stop = result.stop
    if stop.kind == "certified":
        return f"certified: {stop.reason.removeprefix('certified: ')}; {spent}"
    if stop.kind == "budget":
        return (f"stopped on the budget, not on a certificate: {stop.reason}\n"
                f"verdict so far: {result.certainty.verdict.text}; {spent}")
    return f"{stop.reason}; {spent}"


def render_search_end(result: RunResult, never_launched: Mapping[str, str]) -> str:
    """How a race over a space ended: the configurations never launched and why, then the
    certificate (or why there is none) and what it cost."""
    lines = []
    if never_launched:
        lines.append(f"never launched ({len(never_launched)}): predicted unable to come within "
                     "the tolerance of the best")
        lines += [f"  {cid}: {why}" for cid, why in never_launched.items()]
    launched = sorted({m.candidate_id for m in result.measurements})
    lines.append(f"launched {len(launched)} configuration{'s' if len(launched) != 1 else ''} of "
                 f"{len(result.after.candidate_ids)}: {', '.join(launched) or 'none'}")
    lines.append(render_race_end(result))
    return "\n".join(lines)
