"""stackdecide: score, audit, launch and measure LLM serving stacks from a YAML decision file.

>>> import stackdecide
>>> decision = stackdecide.load("criteria/hopper.yaml")
>>> ranking = decision.score()          # weighted sum; also method="wpm" or "topsis"
>>> ranking.winner, ranking.totals_by_candidate, ranking.infeasible
>>> stackdecide.sensitivity(decision).flips.nearest
"""

from stackdecide._version import __version__
from stackdecide.decision import Decision, load, parse, sensitivity
from stackdecide.errors import DecisionFileError, EngineError, EvidenceError, StackdecideError
from stackdecide.model.cells import Cell
from stackdecide.model.findings import Finding
from stackdecide.model.ranking import Ranking
from stackdecide.robustness import Sensitivity

__all__ = [
    "Cell",
    "Decision",
    "DecisionFileError",
    "EngineError",
    "EvidenceError",
    "Finding",
    "Ranking",
    "Sensitivity",
    "StackdecideError",
    "__version__",
    "load",
    "parse",
    "sensitivity",
]
