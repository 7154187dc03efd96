"""The decision report: one self-contained HTML page with charts, or markdown for a pull request.

>>> import stackdecide
>>> from stackdecide.html_report import build_report, render_html, render_markdown
>>> report = build_report(stackdecide.load("criteria/rtx4090.yaml"))
>>> page = render_html(report)        # needs matplotlib: pip install 'stackdecide[html]'
>>> text = render_markdown(report)    # no extra dependency
"""

from stackdecide.html_report.charts import MissingDependencyError
from stackdecide.html_report.data import (
    CeilingRow,
    RankChange,
    Report,
    Roofline,
    RooflineRow,
    WinnerConfig,
    build_report,
    command_lines,
    find_engine_spec,
    roofline_of,
)
from stackdecide.html_report.markdown import render_markdown
from stackdecide.html_report.page import render_html

__all__ = [
    "CeilingRow",
    "MissingDependencyError",
    "RankChange",
    "Report",
    "Roofline",
    "RooflineRow",
    "WinnerConfig",
    "build_report",
    "command_lines",
    "find_engine_spec",
    "render_html",
    "render_markdown",
    "roofline_of",
]
