"""How robust the winner is: flip distances of each weight, and SMAA-2 rank acceptability.

>>> from stackdecide.robustness import analyze
>>> result = analyze(stackdecide.load("criteria/rtx4090.yaml"), samples=10_000, seed=0)
>>> result.flips.of("installation_stability").increase.threshold
>>> result.smaa.acceptability          # b_i^r, candidates x ranks
"""

from stackdecide.mcda.weights import WeightRegion, uniform_simplex, weight_region
from stackdecide.robustness.analysis import Sensitivity, analyze
from stackdecide.robustness.flips import (
    CriterionFlips,
    FlipDistances,
    Tradeoff,
    WeightFlip,
    flip_distances,
    flip_points,
    tradeoff,
)
from stackdecide.robustness.smaa import SmaaResult, run_smaa, smaa

__all__ = [
    "CriterionFlips",
    "FlipDistances",
    "Sensitivity",
    "SmaaResult",
    "Tradeoff",
    "WeightFlip",
    "WeightRegion",
    "analyze",
    "flip_distances",
    "flip_points",
    "run_smaa",
    "smaa",
    "tradeoff",
    "uniform_simplex",
    "weight_region",
]
