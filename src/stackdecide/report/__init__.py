"""Views of a decision: tables (``report.text``), and the report: one self-contained HTML page with
charts, or markdown for a pull request.

>>> import stackdecide
>>> from stackdecide.report import build_report, render_html, render_markdown
>>> report = build_report(stackdecide.load("criteria/rtx4090.yaml"))
>>> page = render_html(report)        # needs matplotlib: pip install 'stackdecide[html]'
>>> text = render_markdown(report)    # no extra dependency
"""

from stackdecide.report.charts import MissingDependencyError
from stackdecide.report.data import (
    CeilingRow,
    RankChange,
    Report,
    Roofline,
    RooflineRow,
    ScoringInputs,
    WinnerConfig,
    build_report,
    command_lines,
    roofline_of,
    scoring_inputs,
)
from stackdecide.report.markdown import render_markdown
from stackdecide.report.page import render_html
from stackdecide.vllm.args import find_engine_spec

__all__ = [
    "CeilingRow",
    "MissingDependencyError",
    "RankChange",
    "Report",
    "Roofline",
    "RooflineRow",
    "ScoringInputs",
    "WinnerConfig",
    "build_report",
    "command_lines",
    "find_engine_spec",
    "render_html",
    "render_markdown",
    "roofline_of",
    "scoring_inputs",
]
