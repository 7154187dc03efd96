"""Certified decisions: how sure is the ranking, and which launch would make it surer.

* :mod:`~stackdecide.certify.uncertainty`: the true mean of one measured cell from replicates.
* :mod:`~stackdecide.certify.probability`: P(best), rank and pairwise probabilities from joint draws.
* :mod:`~stackdecide.certify.racing`: which candidate to launch next, and when to stop.
* :mod:`~stackdecide.certify.indifference`: P(within delta of the best), the certificate and the
  equivalence set within a tolerance, and the next launch towards it.

Pure maths on numpy arrays; nothing here launches a server or reads a decision file.
"""

from stackdecide.certify.indifference import (
    DEFAULT_TOLERANCE_POINTS,
    Certificate,
    WithinAction,
    WithinProbabilities,
    WithinRaceState,
    certificate,
    jointly_within,
    launch_gains,
    next_action_within,
    normal_p_within,
    percent_to_points,
    tolerance_total,
    within_probabilities,
)
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
    "DEFAULT_TOLERANCE_POINTS",
    "MEASURED_SPREAD",
    "PRIOR_REL_SD",
    "PRIOR_STRENGTH",
    "Action",
    "Certificate",
    "Estimate",
    "RaceState",
    "RankProbabilities",
    "WithinAction",
    "WithinProbabilities",
    "WithinRaceState",
    "certificate",
    "estimate",
    "jointly_within",
    "launch_gains",
    "next_action",
    "next_action_within",
    "normal_p_greater",
    "normal_p_within",
    "percent_to_points",
    "pooled_rel_sd",
    "prior_rel_sd_for",
    "prior_strength_for",
    "prior_strength_from_range",
    "rank_probabilities",
    "sample_normal_cells",
    "sample_t_cells",
    "tolerance_total",
    "within_probabilities",
]
