"""Sensitivity results as a table, markdown or JSON. Pure: returns text, never prints."""

from __future__ import annotations

import json
import math
from typing import TYPE_CHECKING, Any

import numpy as np
from tabulate import tabulate

from stackdecide.mcda.methods import METHODS, to_points
from stackdecide.robustness.flips import BISECT_WIDTH

if TYPE_CHECKING:
    from stackdecide.robustness.analysis import Sensitivity
    from stackdecide.robustness.flips import WeightFlip

JSON_VERSION = 1
MAX_RANK_COLUMNS = 6  # wider rank tables go to JSON only
REFERENCE = ("Lahdelma & Salminen (2001), SMAA-2: Stochastic multicriteria acceptability analysis "
             "for group decision making, Operations Research 49(3) 444-454")


def _number(value: float | None, digits: int = 6) -> float | None:
    if value is None or not math.isfinite(value):
        return None
    return round(float(value), digits)


def _flip_dict(flip: WeightFlip) -> dict[str, Any]:
    return {"flips": flip.flips, "threshold": _number(flip.threshold, 9), "change": _number(flip.change, 9),
            "relative_change": _number(flip.relative_change, 9), "new_winner": flip.new_winner}


def _flip_search(result: Sensitivity) -> dict[str, Any]:
    """How the thresholds were found: solved (weighted sum) or scanned and bisected."""
    grid = result.flips.grid
    if grid is None:
        return {"kind": "exact"}
    return {"kind": "numeric", "grid_steps": grid, "bracket_width": BISECT_WIDTH}


def sensitivity_to_dict(result: Sensitivity) -> dict[str, Any]:
    """Stable JSON view; ``version`` changes only when a key changes meaning or goes away."""
    decision, flips, smaa = result.decision, result.flips, result.smaa
    stderr = smaa.acceptability_stderr
    candidates = []
    for i, candidate in enumerate(decision.candidates):
        central = smaa.central_weights[i]
        candidates.append({
            "id": candidate.id,
            "name": candidate.label,
            "total": _number(float(to_points(flips.totals[i]))),
            "rank_acceptability": [_number(b) for b in smaa.acceptability[i]],
            "rank_acceptability_stderr": [_number(s) for s in stderr[i]],
            "central_weights": None if np.isnan(central[0]) else {
                cid: _number(w) for cid, w in zip(smaa.criterion_ids, central, strict=True)},
            "confidence_factor": _number(smaa.confidence[i]),
        })
    trade = result.tradeoff
    return {
        "version": JSON_VERSION,
        "kind": "sensitivity",
        "decision": {"title": decision.title, "file": decision.source_file},
        "method": result.method,
        "method_label": result.method_label,
        "flip_search": _flip_search(result),
        "weights": {cid: _number(w, 9) for cid, w in zip(flips.criterion_ids, flips.weights,
                                                         strict=True)},
        "winner": flips.winner,
        "left_out": [{"id": cid, "reason": why} for cid, why in result.left_out.items()],
        "flip_distances": [
            {"criterion": c.criterion, "weight": _number(c.weight, 9),
             "increase": _flip_dict(c.increase), "decrease": _flip_dict(c.decrease)}
            for c in flips.criteria],
        "tradeoff": None if trade is None else {
            "winner": trade.winner, "runner_up": trade.runner_up, "margin": _number(trade.margin),
            "terms_unit": METHODS[trade.method].terms_unit,
            "criteria": [
                {"criterion": cid, "winner_points": _number(trade.winner_points[j]),
                 "runner_up_points": _number(trade.runner_up_points[j]),
                 "difference": _number(trade.differences[j]),
                 "runner_up_change_to_tie": _number(trade.runner_up_change[j])}
                for j, cid in enumerate(trade.criterion_ids)]},
        "smaa": {
            "reference": REFERENCE,
            "samples": smaa.samples,
            "seed": smaa.seed,
            "acceptance_rate": _number(smaa.acceptance_rate),
            "score_uncertainty": smaa.score_uncertainty,
            "weight_bounds": {cid: [_number(lo, 9), _number(hi, 9)]
                              for cid, lo, hi in zip(smaa.criterion_ids, smaa.region.lows,
                                                     smaa.region.highs, strict=True)
                              if lo > 0 or hi < 1},
            "importance_order": [smaa.criterion_ids[k] for k in smaa.region.order],
            "candidates": candidates,
        },
    }


def render_json(result: Sensitivity) -> str:
    return json.dumps(sensitivity_to_dict(result), indent=2, allow_nan=False) + "\n"


def _pct(value: float) -> str:
    return f"{value * 100:.1f}%"


def _share(count: int, total: int) -> str:
    """A sampled share; exact 0 and 100% stay distinguishable from rounded ones."""
    if count == 0 or count == total:
        return "0" if count == 0 else "100%"
    share = count / total
    return "<0.1%" if share < 0.0005 else ">99.9%" if share > 0.9995 else _pct(share)


def _move_text(flip: WeightFlip) -> str:
    if flip.threshold is None:
        return "no flip"
    return f"{_pct(flip.threshold)} ({(flip.change or 0.0) * 100:+.1f})"


def _flip_rows(result: Sensitivity) -> list[list[str]]:
    decision = result.decision
    rows = []
    for criterion, flips in zip(decision.criteria, result.flips.criteria, strict=True):
        rows.append([criterion.label, _pct(flips.weight),
                     _move_text(flips.increase), flips.increase.new_winner or "-",
                     _move_text(flips.decrease), flips.decrease.new_winner or "-"])
    return rows


def _flip_sentence(result: Sensitivity, flip: WeightFlip) -> str:
    verb = "raise" if flip.direction == "increase" else "lower"
    assert flip.threshold is not None and flip.change is not None
    return (f"smallest single-weight change that changes the winner: {verb} {flip.criterion} from "
            f"{_pct(flip.weight)} to {_pct(flip.threshold)} ({flip.change * 100:+.1f} percentage "
            f"points, {flip.threshold / flip.weight:.2f}x the weight); {flip.new_winner} then wins")


def _tradeoff_rows(result: Sensitivity) -> list[list[str]]:
    trade = result.tradeoff
    assert trade is not None
    decision = result.decision
    # points of 100 read well with 2 decimals; factors and weighted scores live on 0..1
    digits = 2 if trade.method == "wsm" else 4
    rows = []
    for j, criterion in enumerate(decision.criteria):
        change = trade.runner_up_change[j]
        runner = decision.matrix[decision.candidate_index(trade.runner_up), j]
        need = ("beyond the scale" if change is None
                else f"{change:+.2f} ({runner:g} -> {runner + change:.2f})")
        rows.append([criterion.label, f"{trade.winner_points[j]:.{digits}f}",
                     f"{trade.runner_up_points[j]:.{digits}f}",
                     f"{trade.differences[j]:+.{digits}f}", need])
    if trade.method == "wsm":
        rows.append(["total", f"{trade.winner_points.sum():.2f}",
                     f"{trade.runner_up_points.sum():.2f}", f"{trade.margin:+.2f}", ""])
    else:  # the terms do not add up to the total: show the method's totals, x 100
        totals = to_points(result.flips.totals)
        rows.append(["total (x 100)", f"{totals[decision.candidate_index(trade.winner)]:.2f}",
                     f"{totals[decision.candidate_index(trade.runner_up)]:.2f}",
                     f"{trade.margin:+.2f}", ""])
    return rows


def _tradeoff_text(result: Sensitivity) -> str:
    """The line that says what the trade-off table's numbers are."""
    tail = "last column: change of the runner-up's score on that criterion alone that ties it"
    if result.method == "wsm":
        return "points each criterion contributes (weight x normalised score x 100); " + tail
    method = METHODS[result.method]
    return f"{method.terms_label} per criterion (they do not add up to the margin); {tail}"


def _flip_text(result: Sensitivity) -> list[str]:
    """The lines under the flip table's heading: what moves, and how the thresholds were found."""
    lines = ["one weight moves, the others keep their proportions (they still add up to 100%); "
             "'no flip': no weight in (0%, 100%) in that direction changes the winner"]
    grid = result.flips.grid
    if grid is not None:
        lines.append(f"{result.method_label}: totals are not linear in the weights, so each "
                     f"threshold is found by scanning {grid:,} steps towards 0% or 100%, then "
                     f"bisecting to {BISECT_WIDTH:g}; a change of winner that reverses within one "
                     "step is not seen")
    return lines


def _smaa_rows(result: Sensitivity) -> tuple[list[str], list[list[str]]]:
    smaa, decision = result.smaa, result.decision
    shown = min(smaa.rank_counts.shape[1], MAX_RANK_COLUMNS)
    headers = ["candidate", *[f"rank {r + 1}" for r in range(shown)], "confidence"]
    order = np.lexsort((np.arange(len(decision.candidates)), -smaa.first_rank))
    rows = []
    for i in order:
        confidence = smaa.confidence[i]
        rows.append([decision.candidate_ids[i],
                     *[_share(int(c), smaa.samples) for c in smaa.rank_counts[i, :shown]],
                     "-" if np.isnan(confidence) else f"{confidence:.2f}"])
    return headers, rows


def _central_rows(result: Sensitivity) -> tuple[list[str], list[list[str]]]:
    smaa, decision = result.smaa, result.decision
    headers = ["candidate", *[c.id for c in decision.criteria]]
    rows = [["(file weights)", *[_pct(w) for w in decision.weights]]]
    for i, cid in enumerate(decision.candidate_ids):
        central = smaa.central_weights[i]
        rows.append([cid, *(["never first"] + [""] * (len(central) - 1)
                            if np.isnan(central[0]) else [_pct(w) for w in central])])
    return headers, rows


def _sampling_text(result: Sensitivity) -> str:
    smaa = result.smaa
    region = smaa.region
    where = "uniform on the weight simplex"
    limits = []
    if np.any(region.lows > 0) or np.any(region.highs < 1):
        limits.append("weight_bounds")
    if len(region.order) > 1:
        limits.append("importance_order")
    if limits:
        where += (f" within {' and '.join(limits)} (acceptance {smaa.acceptance_rate:.1%} of "
                  "uniform draws)")
    scores = ("judged scores drawn uniformly within their stated uncertainty"
              if smaa.score_uncertainty else "judged scores fixed (no uncertainty stated)")
    return f"{smaa.samples:,} weight vectors {where}, seed {smaa.seed}; {scores}"


def _left_out_lines(result: Sensitivity, markdown: bool) -> list[str]:
    """The infeasible candidates that take no part, with why."""
    if not result.left_out:
        return []
    count = len(result.left_out)
    lines = ["", f"left out: {count} infeasible candidate{'s' if count != 1 else ''} (flip "
             "distances, the trade-off and SMAA-2 are about feasible candidates; none of these "
             "can win)"]
    if markdown:  # a list needs a blank line before it
        lines.append("")
    bullet = "- " if markdown else "  "
    return lines + [f"{bullet}{cid}: {why}" for cid, why in result.left_out.items()]


def render_text(result: Sensitivity, tablefmt: str = "simple") -> str:
    """Table (``simple``) or markdown (``github``) view with a line explaining each number."""
    markdown = tablefmt == "github"
    decision, flips, smaa = result.decision, result.flips, result.smaa

    def heading(text: str) -> str:
        return f"### {text}" if markdown else text

    def table(headers: list[str], rows: list[list[str]]) -> str:
        return tabulate(rows, headers=headers, tablefmt=tablefmt, disable_numparse=True)

    lines = [f"## {decision.title}" if markdown else decision.title,
             f"method: {result.method_label} of the {result.basis}; winner {flips.winner} "
             f"({to_points(flips.totals[decision.candidate_index(flips.winner)]):.2f})"
             + ("" if result.tradeoff is None else
                f", runner-up {result.tradeoff.runner_up} by {result.tradeoff.margin:.2f} points")]
    lines += _left_out_lines(result, markdown)
    lines += ["", heading("Weight needed to change the winner"), *_flip_text(result), "",
              table(["criterion", "weight", "raise to", "then wins", "lower to", "then wins"],
                    _flip_rows(result)), ""]
    nearest = flips.nearest
    lines.append(_flip_sentence(result, nearest) if nearest else
                 "no change of any single weight changes the winner")
    if result.tradeoff is not None:
        trade = result.tradeoff
        lines += ["", heading(f"Winner {trade.winner} vs runner-up {trade.runner_up}"),
                  _tradeoff_text(result), "",
                  table(["criterion", trade.winner, trade.runner_up, "difference",
                         "runner-up needs"], _tradeoff_rows(result))]
    headers, rows = _smaa_rows(result)
    lines += ["", heading("SMAA-2 rank acceptability"), _sampling_text(result),
              "rank r: share of samples in which the candidate takes rank r (b_i^r); "
              "confidence: share of score outcomes it wins at its own central weights"
              + ("" if smaa.score_uncertainty else " (1 or 0 with fixed scores)"), "",
              table(headers, rows)]
    if smaa.rank_counts.shape[1] > MAX_RANK_COLUMNS:
        lines.append(f"(ranks above {MAX_RANK_COLUMNS}: --format json)")
    stderr = float(smaa.acceptability_stderr.max())
    lines.append(f"Monte Carlo standard error of each share: at most {stderr * 100:.2f} points")
    headers, rows = _central_rows(result)
    lines += ["", heading("Central weights"),
              "mean of the sampled weights under which the candidate wins", "",
              table(headers, rows), "", f"reference: {REFERENCE}"]
    return "\n".join(lines) + "\n"


def render(result: Sensitivity, fmt: str = "table") -> str:
    if fmt == "json":
        return render_json(result)
    return render_text(result, "github" if fmt == "markdown" else "simple")
