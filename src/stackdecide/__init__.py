"""stackdecide: score, audit, launch and measure LLM serving stacks from a YAML decision file.

>>> import stackdecide
>>> decision = stackdecide.load("criteria/rtx4090.yaml")
>>> ranking = decision.score()          # weighted sum; also method="wpm" or "topsis"
>>> ranking.winner
"""

from stackdecide._version import __version__
from stackdecide.audit import Finding
from stackdecide.cells import Cell
from stackdecide.decision import Decision
from stackdecide.errors import DecisionFileError, EngineError, EvidenceError, StackdecideError
from stackdecide.loader import load, parse
from stackdecide.result import Ranking

__all__ = [
    "Cell",
    "Decision",
    "DecisionFileError",
    "EngineError",
    "EvidenceError",
    "Finding",
    "Ranking",
    "StackdecideError",
    "__version__",
    "load",
    "parse",
]
