"""The report's charts, drawn by matplotlib (Agg) and returned as inline SVG text.

Every chart shows at most ``TOP_N`` bars so that a decision with a hundred candidates stays
readable; the tables below the charts list everything. Legends sit outside the axes. Text stays
text in the SVG (``svg.fonttype: none``): smaller files, and the labels can be searched and copied.
"""

from __future__ import annotations

import io
import re
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from typing import TYPE_CHECKING, Any

import numpy as np

from stackdecide.errors import StackdecideError

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from stackdecide.report.data import RankChange, Report, RooflineRow

TOP_N = 15  # bars per chart
MAX_CRITERIA_SHOWN = 20  # flip chart rows
LABEL_CHARS = 38
WIDTH_IN = 10.0
INK = "#1f2933"
MUTED = "#6b7785"
GRID = "#d9dee4"
ACCENT = "#0f766e"
# how a bar part shows where its score came from (judged parts are plain), and the legend's word
SOURCE_HATCHES = {"measured": ("///", "hatched"), "predicted": ("..", "dotted")}
_FONTS = ["DejaVu Sans", "Helvetica", "Arial", "Liberation Sans", "sans-serif"]


class MissingDependencyError(StackdecideError):
    """An optional package the requested output needs is not installed."""

    exit_code = 1


def require_matplotlib() -> Any:
    """Import matplotlib with the Agg backend, or say how to install it."""
    try:
        import matplotlib
    except ImportError:
        raise MissingDependencyError(
            "the HTML report draws its charts with matplotlib, which is not installed; "
            "run: pip install 'stackdecide[html]' (or use --format markdown)") from None
    matplotlib.use("Agg")
    return matplotlib


def criterion_colors(count: int) -> list[str]:
    """One colour per criterion, the same in every chart and in the table headers."""
    matplotlib = require_matplotlib()
    from matplotlib.colors import to_hex

    if count <= 10:
        cmap = matplotlib.colormaps["tab10"]
        return [to_hex(cmap(i)) for i in range(count)]
    if count <= 20:
        cmap = matplotlib.colormaps["tab20"]
        return [to_hex(cmap(i)) for i in range(count)]
    cmap = matplotlib.colormaps["turbo"]
    return [to_hex(cmap(x)) for x in np.linspace(0.05, 0.95, count)]


def plain(text: str, limit: int = LABEL_CHARS) -> str:
    """User text for a matplotlib label: shortened, and '$' escaped so it is never read as math."""
    text = " ".join(str(text).split())
    if len(text) > limit:
        text = text[: limit - 1] + "…"
    return text.replace("$", r"\$")


@contextmanager
def _figure(name: str, height: float) -> Iterator[Figure]:
    """A figure under the report's style; ``name`` salts the SVG ids so that several charts can
    share one page without clashing ids."""
    matplotlib = require_matplotlib()
    import matplotlib.pyplot as plt

    style = {
        "svg.fonttype": "none", "svg.hashsalt": f"stackdecide-{name}",
        "font.family": "sans-serif", "font.sans-serif": _FONTS, "font.size": 9.5,
        "axes.edgecolor": GRID, "axes.labelcolor": INK, "axes.titlesize": 11,
        "text.color": INK, "xtick.color": MUTED, "ytick.color": INK,
        "axes.spines.top": False, "axes.spines.right": False,
    }
    with matplotlib.rc_context(style):
        figure = plt.figure(figsize=(WIDTH_IN, height), layout="constrained")
        try:
            yield figure
        finally:
            plt.close(figure)


def _svg(figure: Figure, name: str) -> str:
    """The figure as SVG for inlining: no XML prolog, sized by CSS, and every element id prefixed
    with ``name`` (matplotlib numbers ``figure_1``, ``axes_1``... afresh in each chart, and ids
    must be unique in one page)."""
    buffer = io.StringIO()
    figure.savefig(buffer, format="svg", metadata={"Date": None, "Creator": None})
    text = buffer.getvalue()
    text = text[text.index("<svg"):]
    text = re.sub(r'<svg ([^>]*?)width="[^"]*" height="[^"]*"', r"<svg \1", text, count=1)
    text = re.sub(r'\bid="([^"]+)"', rf'id="{name}-\1"', text)
    text = re.sub(r"url\(#([^)]+)\)", rf"url(#{name}-\1)", text)
    return re.sub(r'href="#([^"]+)"', rf'href="#{name}-\1"', text)


def _row_major(items: list[Any], columns: int) -> list[Any]:
    """Legend entries reordered so that a legend (which fills column by column) reads row by row."""
    rows = -(-len(items) // columns)
    grid = [items[r * columns:(r + 1) * columns] for r in range(rows)]
    return [row[c] for c in range(columns) for row in grid if c < len(row)]


def _quantity(value: float) -> str:
    return f"{value:,.0f}" if abs(value) >= 1000 else f"{value:.4g}"


def _height(bars: int, legend_rows: int = 0) -> float:
    return 0.9 + 0.36 * max(bars, 2) + 0.24 * legend_rows


def _bar_labels(report: Report, indices: Sequence[int]) -> list[str]:
    decision, ranking = report.decision, report.ranking
    labels = []
    for i in indices:
        rank = int(ranking.ranks[i])
        label = plain(decision.candidates[i].label)
        labels.append(f"{rank}. {label}" if rank else f"{label} (infeasible)")
    return labels


def _finish_barh(ax: Axes, labels: list[str]) -> None:
    ax.set_yticks(range(len(labels)), labels)
    ax.invert_yaxis()
    ax.tick_params(axis="y", length=0)
    ax.grid(axis="x", color=GRID, linewidth=0.6)
    ax.set_axisbelow(True)


def _shown_note(ax: Axes, shown: int, total: int, what: str) -> None:
    if shown < total:
        ax.set_title(f"top {shown} of {total} {what}; the table lists all", loc="right",
                     fontsize=8.5, color=MUTED)


def contributions_chart(report: Report, colors: list[str]) -> str:
    """Stacked bars: each criterion's weighted-sum points per candidate; measured parts hatched,
    predicted parts dotted."""
    decision, ranking = report.decision, report.ranking
    indices = [int(i) for i in ranking.order[:TOP_N]]
    points = report.contributions
    m = len(decision.criteria)
    columns = min(4, m)
    label_chars = 40 if m <= columns else 24  # four legend columns must fit the figure's width
    legend_rows = -(-m // columns) + 1
    with _figure("contributions", _height(len(indices), legend_rows)) as figure:
        ax = figure.add_subplot()
        left = np.zeros(len(indices))
        for j, criterion in enumerate(decision.criteria):
            widths = points[indices, j]
            sources = [ranking.cells[i][j].source for i in indices]
            faded = [decision.candidate_ids[i] in ranking.infeasible for i in indices]
            bars = ax.barh(range(len(indices)), widths, left=left, color=colors[j],
                           edgecolor="white", linewidth=0.8,
                           label=f"{plain(criterion.label, label_chars)} "
                                 f"({decision.weights[j] * 100:.0f}%)")
            for bar, source, is_faded in zip(bars, sources, faded, strict=True):
                if source in SOURCE_HATCHES:
                    bar.set_hatch(SOURCE_HATCHES[source][0])
                if is_faded:
                    bar.set_alpha(0.35)
            left += widths
        for row in range(len(indices)):
            ax.text(left[row] + 0.8, row, f"{left[row]:.2f}", va="center", fontsize=9, color=INK)
        if ranking.method != "wsm":
            totals = ranking.totals[indices]
            ax.scatter(totals, range(len(indices)), marker="D", s=28, color=INK, zorder=3,
                       label=f"{ranking.method.upper()} total")
        handles, labels = ax.get_legend_handles_labels()
        shown = {cell.source for row in ranking.cells for cell in row} & SOURCE_HATCHES.keys()
        if shown:
            from matplotlib.patches import Patch

            for source in sorted(shown, key=list(SOURCE_HATCHES).index):
                hatch, word = SOURCE_HATCHES[source]
                handles.append(Patch(facecolor="white", edgecolor=MUTED, hatch=hatch))
                labels.append(f"{source} score ({word})")
        ax.set_xlim(0, 108)
        ax.set_xlabel("points of 100: weight x normalised score (bars add up to the weighted sum)")
        _finish_barh(ax, _bar_labels(report, indices))
        _shown_note(ax, len(indices), len(decision.candidates), "candidates")
        handles, labels = _row_major(handles, columns), _row_major(labels, columns)
        figure.legend(handles, labels, loc="outside lower center", ncols=columns, frameon=False,
                      fontsize=8.5)
        return _svg(figure, "contributions")


def acceptability_chart(report: Report) -> str:
    """SMAA-2 rank acceptability: the share of sampled weights giving each candidate each rank."""
    matplotlib = require_matplotlib()
    assert report.sensitivity is not None, "drawn only when the feasible candidates were analysed"
    smaa, decision = report.sensitivity.smaa, report.sensitivity.decision
    shares = smaa.acceptability
    n = len(decision.candidates)
    ranks_shown = min(n, 5)
    order = [int(i) for i in np.lexsort((np.arange(n), -smaa.first_rank))[:TOP_N]]
    columns = [shares[:, r] for r in range(ranks_shown)]
    names = [f"rank {r + 1}" for r in range(ranks_shown)]
    if shares.shape[1] > ranks_shown:
        columns.append(shares[:, ranks_shown:].sum(axis=1))
        names.append(f"rank {ranks_shown + 1}+")
    cmap = matplotlib.colormaps["YlGnBu_r"]
    palette = [cmap(x) for x in np.linspace(0.1, 0.85, len(columns))]
    with _figure("smaa", _height(len(order), 1)) as figure:
        ax = figure.add_subplot()
        left = np.zeros(len(order))
        for column, name, color in zip(columns, names, palette, strict=True):
            widths = column[order] * 100.0
            ax.barh(range(len(order)), widths, left=left, color=color, edgecolor="white",
                    linewidth=0.8, label=name)
            for row, width in enumerate(widths):
                if width >= 7:
                    dark = sum(color[:3]) < 1.4
                    ax.text(left[row] + width / 2, row, f"{width:.0f}%", ha="center", va="center",
                            fontsize=8, color="white" if dark else INK)
            left += widths
        ax.set_xlim(0, 100)
        ax.set_xlabel(f"share of {smaa.samples:,} sampled weight vectors (%)")
        labels = [plain(decision.candidates[i].label) for i in order]
        _finish_barh(ax, labels)
        _shown_note(ax, len(order), n, "candidates")
        figure.legend(loc="outside lower center", ncols=len(columns), frameon=False, fontsize=8.5)
        return _svg(figure, "smaa")


def flip_chart(report: Report, colors: list[str]) -> str:
    """Per criterion: the weight range that keeps the winner, the current weight, the flip points."""
    assert report.sensitivity is not None, "drawn only when the feasible candidates were analysed"
    flips, decision = report.sensitivity.flips, report.sensitivity.decision
    rows = sorted(range(len(flips.criteria)), key=lambda j: -flips.weights[j])[:MAX_CRITERIA_SHOWN]
    winner = plain(decision.candidate(flips.winner).label, 48)
    with _figure("flips", _height(len(rows), 1)) as figure:
        ax = figure.add_subplot()
        flip_labelled = False
        for row, j in enumerate(rows):
            item = flips.criteria[j]
            low = item.decrease.threshold if item.decrease.threshold is not None else 0.0
            high = item.increase.threshold if item.increase.threshold is not None else 1.0
            ax.plot([0, 100], [row, row], color=GRID, linewidth=6, solid_capstyle="butt", zorder=1)
            ax.plot([low * 100, high * 100], [row, row], color="#99d5c9", linewidth=6,
                    solid_capstyle="butt", zorder=2,
                    label=f"weights that keep {winner} the winner" if row == 0 else None)
            ax.scatter([item.weight * 100], [row], s=36, color=colors[j], edgecolor=INK,
                       linewidth=0.6, zorder=4, label="weight in the file" if row == 0 else None)
            for threshold in (item.decrease.threshold, item.increase.threshold):
                if threshold is not None:
                    ax.plot([threshold * 100] * 2, [row - 0.32, row + 0.32], color="#b42318",
                            linewidth=1.6, zorder=3,
                            label=None if flip_labelled else "weight at which the winner changes")
                    flip_labelled = True
                    ax.text(threshold * 100, row - 0.38, f"{threshold * 100:.1f}%", ha="center",
                            va="bottom", fontsize=7.5, color="#b42318")
        ax.set_xlim(-1, 101)
        ax.set_xlabel("weight of the criterion (%), the others keeping their proportions")
        labels = [plain(decision.criteria[j].label, 32) for j in rows]
        _finish_barh(ax, labels)
        _shown_note(ax, len(rows), len(flips.criteria), "criteria (heaviest)")
        figure.legend(loc="outside lower center", ncols=3, frameon=False, fontsize=8.5)
        return _svg(figure, "flips")


def before_after_chart(report: Report, changes: Sequence[RankChange]) -> str:
    """Totals judged-only and with evidence, for the candidates ranked highest with evidence."""
    decision = report.decision
    shown = list(changes[:TOP_N])
    with _figure("before-after", _height(len(shown) * 1.4, 1)) as figure:
        ax = figure.add_subplot()
        y = np.arange(len(shown))
        judged = [c.judged_total for c in shown]
        after = [c.total for c in shown]
        ax.barh(y - 0.2, judged, height=0.38, color="#c3cad3", label="judged scores only")
        ax.barh(y + 0.2, after, height=0.38, color=ACCENT, label="with evidence")
        for row, change in enumerate(shown):
            moved = change.moved
            note = "" if not moved else (f"  up {moved}" if moved > 0 else f"  down {-moved}")
            ax.text(change.total + 0.8, row + 0.2, f"{change.total:.2f}{note}", va="center",
                    fontsize=8.5)
            ax.text(change.judged_total + 0.8, row - 0.2, f"{change.judged_total:.2f}",
                    va="center", fontsize=8, color=MUTED)
        ax.set_xlim(0, 112)
        ax.set_xlabel(f"total ({report.ranking.method}, 0-100)")
        labels = []
        for change in shown:
            label = plain(decision.candidate(change.candidate).label)
            labels.append(f"{label} (infeasible)" if change.rank is None
                          else f"{change.rank}. {label}")
        _finish_barh(ax, labels)
        _shown_note(ax, len(shown), len(changes), "candidates")
        figure.legend(loc="outside lower center", ncols=2, frameon=False, fontsize=8.5)
        return _svg(figure, "before-after")


def roofline_chart(report: Report, rows: Sequence[RooflineRow]) -> str:
    """Each measurement as a percentage of its ceiling, with 100% marked."""
    shown = [r for r in rows if r.ceiling is not None][: TOP_N]
    with _figure("roofline", _height(len(shown), 0)) as figure:
        ax = figure.add_subplot()
        percents = [r.percent or 0.0 for r in shown]
        ax.barh(range(len(shown)), percents, color=[ACCENT if p <= 100 else "#b42318"
                                                    for p in percents], height=0.6)
        ax.axvline(100, color=INK, linewidth=1, linestyle="--")
        for row, item in enumerate(shown):
            ax.text((item.percent or 0.0) + 1, row,
                    f"{item.percent:.0f}%  ({_quantity(item.measured)} of "
                    f"{_quantity(item.ceiling or 0.0)} {item.unit})", va="center", fontsize=8.5,
                    bbox={"facecolor": "white", "edgecolor": "none", "pad": 1.0}, zorder=4)
        top = max([*percents, 100.0])
        ax.set_xlim(0, top * 1.45)
        ax.set_xlabel("measured / roofline ceiling (%); above 100% means the measurement or the "
                      "hardware figures are wrong")
        labels = [f"{plain(r.candidate, 30)} · {r.metric}" for r in shown]
        if len(set(labels)) < len(labels):  # the same candidate measured on several GPUs
            labels = [f"{label} · {plain(r.gpu or '?', 22)}" for label, r in zip(labels, shown,
                                                                                strict=True)]
        _finish_barh(ax, labels)
        total = sum(r.ceiling is not None for r in rows)
        _shown_note(ax, len(shown), total, "measurements")
        return _svg(figure, "roofline")
