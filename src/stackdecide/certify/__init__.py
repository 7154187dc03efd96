"""Certified decisions: how sure is the ranking, and which launch would make it surer.

* :mod:`~stackdecide.certify.uncertainty`: the true mean of one measured cell from replicates.
* :mod:`~stackdecide.certify.probability`: P(best), rank and pairwise probabilities from joint draws.
* :mod:`~stackdecide.certify.racing`: which candidate to launch next, and when to stop.

Pure maths on numpy arrays; nothing here launches a server or reads a decision file.
"""

from stackdecide.certify.probability import (
    RankProbabilities,
    normal_p_greater,
    rank_probabilities,
    sample_normal_cells,
    sample_t_cells,
)
from stackdecide.certify.racing import Action, RaceState, next_action
from stackdecide.certify.uncertainty import (
    DEFAULT_PRIOR_REL_SD,
    DEFAULT_PRIOR_STRENGTH,
    MEASURED_SPREAD,
    PRIOR_REL_SD,
    PRIOR_STRENGTH,
    Estimate,
    estimate,
    pooled_rel_sd,
    prior_rel_sd_for,
    prior_strength_for,
    prior_strength_from_range,
)

__all__ = [
    "DEFAULT_PRIOR_REL_SD",
    "DEFAULT_PRIOR_STRENGTH",
    "MEASURED_SPREAD",
    "PRIOR_REL_SD",
    "PRIOR_STRENGTH",
    "Action",
    "Estimate",
    "RaceState",
    "RankProbabilities",
    "estimate",
    "next_action",
    "normal_p_greater",
    "pooled_rel_sd",
    "prior_rel_sd_for",
    "prior_strength_for",
    "prior_strength_from_range",
    "rank_probabilities",
    "sample_normal_cells",
    "sample_t_cells",
]
