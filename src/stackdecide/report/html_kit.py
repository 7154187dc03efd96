"""Small pieces of the HTML report: escaping, numbers, tables, sections, figures.

Every piece of text that comes from a decision file or evidence goes through ``esc`` (html.escape).
"""

from __future__ import annotations

import html
import math
from collections.abc import Iterable, Sequence
from typing import Any


def esc(value: Any) -> str:
    return html.escape(str(value), quote=True)


def num(value: float | None, digits: int = 2) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "–"
    return f"{value:.{digits}f}"


def g(value: float | None) -> str:
    return "–" if value is None else f"{value:.4g}"


def pct(value: float | None, digits: int = 1) -> str:
    return "–" if value is None or not math.isfinite(value) else f"{value * 100:.{digits}f}%"


def table(headers: Sequence[str], rows: Iterable[Sequence[str]], cls: str = "",
           raw_headers: bool = False) -> str:
    """A table; cells are HTML already (callers escape), headers are escaped unless ``raw``."""
    head = "".join(f"<th>{h if raw_headers else esc(h)}</th>" for h in headers)
    body = "".join("<tr>" + "".join(f"<td>{c}</td>" for c in row) + "</tr>" for row in rows)
    return (f'<div class="scroll"><table class="{cls}"><thead><tr>{head}</tr></thead>'
            f"<tbody>{body}</tbody></table></div>")


def section(anchor: str, title: str, body: str, lead: str = "") -> str:
    intro = f'<p class="lead">{lead}</p>' if lead else ""
    return f'<section id="{anchor}"><h2>{esc(title)}</h2>{intro}{body}</section>'


def figure(name: str, svg: str, caption: str) -> str:
    return (f'<figure class="chart" data-chart="{name}">{svg}<figcaption>{caption}</figcaption>'
            "</figure>")
