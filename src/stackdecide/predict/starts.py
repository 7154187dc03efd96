"""Whether a configuration of a space no launch has tried will start: a probability, not a score.

A 1/0 criterion such as ``launch_ok`` has no roofline. Before this, a never-launched
configuration kept its judged score (the middle of the scale when the base gives none) as if it
were known: 7.5 of 15 points against 15 for every configuration that did start, so with a
tolerance of 5 points no never-launched configuration could ever come within reach of a launched
leader, and a race's certificate rested on that gap rather than on the speeds (an H100 race's
leader went from P = 0.79 to 0.955 by it, docs/results/h100-space).

Here the chance that a configuration starts is a Beta posterior (the rule of succession, Laplace):
the prior's mean is the judged score's place on the scale (the base's judgement of the space, 0.5
without one), with the weight of two launches, and every launch of the space's configurations on
this hardware updates it. The configurations that passed the static checks are taken as
exchangeable: a launch that fails counts against all of them alike (a failure that belongs to
one setting, a backend say, is not pinned on that setting). The ranking draws each
configuration's start as a coin of that probability (``scoring.certainty``), each on its own:
whether one starts does not depend on the draw of another.
"""

from __future__ import annotations

from dataclasses import dataclass

from scipy import stats

PRIOR_LAUNCHES = 2.0  # the prior's weight: two launches' worth (Laplace's rule with a 0.5 prior)


@dataclass(frozen=True)
class StartChance:
    """The chance that a never-launched configuration starts, with the counts behind it."""

    probability: float  # the posterior mean
    low: float  # the posterior's central interval at ``level``
    high: float
    prior: float  # the judged prior mean
    starts: int  # launches of the space's configurations that started
    launches: int  # and all of them


def start_chance(prior: float, starts: int, launches: int, level: float) -> StartChance:
    """The posterior chance of a start after ``starts`` of ``launches`` (module doc)."""
    if not 0.0 <= prior <= 1.0 or not 0 <= starts <= launches:
        raise ValueError(f"no chance of a start from prior {prior}, {starts} of {launches}")
    # a judged 0 or 1 is a statement, not certainty: keep the Beta proper
    prior = min(max(prior, 0.01), 0.99)
    alpha = prior * PRIOR_LAUNCHES + starts
    beta = (1.0 - prior) * PRIOR_LAUNCHES + launches - starts
    tail = (1.0 - level) / 2.0
    low, high = stats.beta.ppf([tail, 1.0 - tail], alpha, beta)
    return StartChance(alpha / (alpha + beta), float(low), float(high), prior, starts, launches)
