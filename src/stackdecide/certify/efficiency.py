"""Efficiency pooled over configurations that share axes: a Bayesian hierarchical model on logs.

Model
-----
Each observation ``i`` is one launch's value of one metric, read as ``y_i = log(value / reference)``
(the reference is the metric's roofline ceiling, so ``y`` is the log of the efficiency). It is a
sum of effects, one per *term* (the GPU, the model, the weight format, the attention backend, the
configuration as a whole, ...), each effect belonging to the observation's *level* of that term:

    y_i = b + sum_k u[k, level_k(i)] + e_i
    b ~ N(prior_mean, prior_sd^2)              the metric's level on the evidence it was derived from
    u[k, l] ~ N(0, (scale * width_k)^2)        how far one level of term k moves it
    e_i ~ N(0, noise^2)                        launch to launch (restart noise and what no term says)

Given ``(noise, scale)`` everything is Gaussian, so the posterior of ``(b, u)`` and the predictive
of a new launch are closed-form (Bayesian linear regression; the marginal likelihood by the
matrix determinant lemma, in parameter space). ``noise`` has a scaled-inverse-chi^2 prior
(centred on ``EfficiencyPrior.noise``, worth ``noise_dof`` degrees of freedom) and ``scale`` a
log-uniform prior on ``SCALE_RANGE``: the stated widths may be off by a factor of two either
way, and the evidence says by how much. Both are integrated on a grid, so the predictive is a
mixture of normals (Student-t-like tails while evidence is scarce); its quantiles are the
interval.

Pooling follows from the sums: a configuration never launched shares the effects of its levels
with every configuration that has them, the levels no evidence has seen add their prior
variance, and every launch shrinks the variance of the effects it touches. Several
configurations are predicted jointly (``EfficiencyFit.joint``): those that share a level share its
uncertainty, so a statement that is not a launch, about one configuration or about how two
compare (a judged score), conditions them all (``JointMeans.condition``: the Gaussian update of
each grid point, which also reweights the points by how likely each made the statement).
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import optimize, special

SCALE_RANGE = (0.5, 2.0)  # the widths' shared multiplier, log-uniform
SCALE_POINTS = 9
NOISE_RANGE = (0.003, 1.5)  # launch-to-launch SD in log units, a log grid
NOISE_POINTS = 36


@dataclass(frozen=True)
class Term:
    """One way configurations differ, and the prior SD of one level's effect (log units)."""

    name: str
    width: float


@dataclass(frozen=True)
class EfficiencyPrior:
    """What is believed before any evidence of one metric: its level, the terms, the noise."""

    mean: float  # log units
    sd: float
    terms: tuple[Term, ...]
    noise: float  # centre of the launch-to-launch SD (log units)
    noise_dof: float  # how much that centre is worth, in degrees of freedom


@dataclass(frozen=True)
class Predictive:
    """The prediction of one new launch (and of the configuration's mean), in log units."""

    median: float  # of one launch
    low: float
    high: float
    mean_median: float  # of the configuration's mean (no launch noise)
    mean_low: float
    mean_high: float
    level: float  # the probability between low and high
    seen: dict[str, int]  # term -> observations at the target's level (0: prior only)
    noise: float  # posterior mean of the launch-to-launch SD
    scale: float  # posterior mean of the widths' multiplier


@dataclass(frozen=True)
class EfficiencyFit:
    """The posterior on a grid of (noise, scale): each point's weight, mean and covariance (the
    points that carry all but a millionth of the posterior)."""

    prior: EfficiencyPrior
    columns: tuple[tuple[str, str], ...]  # (term, level) of each effect column after the intercept
    counts: dict[tuple[str, str], int]  # observations per (term, level)
    n: int
    weights: np.ndarray  # (G,) posterior weight of each grid point
    noise: np.ndarray  # (G,)
    scale: np.ndarray  # (G,)
    means: np.ndarray  # (G, p) posterior mean of (b, u)
    covariances: np.ndarray  # (G, p, p)

    def joint(self, targets: Sequence[Mapping[str, str | None]]) -> JointMeans:
        """The means of configurations with levels ``targets`` (term -> level; None: the term
        does not apply), jointly: configurations that share a level share its uncertainty. A
        level no observation has is drawn from its prior, once for every target that has it."""
        index = _column_index(self.columns)
        rows, unseen = zip(*(_design_row(levels, self.prior.terms, index) for levels in targets),
                           strict=True) if targets else ((), ())
        design = np.array(rows).reshape(len(targets), len(index) + 1)
        shared = np.zeros((len(targets), len(targets)))  # prior variance of shared unseen levels
        for k, (levels_k, unseen_k) in enumerate(zip(targets, unseen, strict=True)):
            for m, levels_m in enumerate(targets):
                shared[k, m] = sum(term.width**2 for term in unseen_k
                                   if levels_m.get(term.name) == levels_k.get(term.name))
        seen = tuple({term.name: 0 if term in unseen_k else self.counts[(term.name, levels[term.name])]
                      for term in self.prior.terms if levels.get(term.name) is not None}
                     for levels, unseen_k in zip(targets, unseen, strict=True))
        return JointMeans(
            weights=self.weights, noise=self.noise, scale=self.scale,
            means=self.means @ design.T,
            covariances=np.einsum("ki,gij,lj->gkl", design, self.covariances, design)
            + shared[None] * self.scale[:, None, None] ** 2,
            seen=seen)

    def predict(self, levels: Mapping[str, str | None], level: float = 0.8) -> Predictive:
        """One new launch of a configuration with ``levels``, with the ``level`` central
        interval."""
        return self.joint([levels]).predictive(0, level)


@dataclass(frozen=True)
class JointMeans:
    """The means of several configurations (log units), jointly, on every grid point of the fit:
    what to condition on statements that are not launches, and what each prediction is read
    from."""

    weights: np.ndarray  # (G,)
    noise: np.ndarray  # (G,) launch-to-launch SD
    scale: np.ndarray  # (G,)
    means: np.ndarray  # (G, K)
    covariances: np.ndarray  # (G, K, K)
    seen: tuple[dict[str, int], ...]  # per target: term -> observations at its level

    def condition(self, rows: np.ndarray, values: np.ndarray, noise: np.ndarray) -> JointMeans:
        """Given the statements ``rows @ means = values + error``, ``error ~ N(0, noise)`` (for
        instance judged scores: one about a configuration, or one about how two compare), the
        Gaussian update of every grid point, reweighted by how likely it made the statements."""
        rows, values = np.atleast_2d(rows), np.atleast_1d(values)
        predicted = self.means @ rows.T  # (G, m)
        between = np.einsum("ik,gkl,jl->gij", rows, self.covariances, rows) + noise[None]
        gain = np.einsum("gkl,il->gki", self.covariances, rows) @ np.linalg.inv(between)
        residual = values[None] - predicted
        means = self.means + np.einsum("gki,gi->gk", gain, residual)
        covariances = self.covariances - gain @ np.einsum("ik,gkl->gil", rows, self.covariances)
        _, log_det = np.linalg.slogdet(between)
        log_like = -0.5 * (log_det + np.einsum("gi,gij,gj->g", residual, np.linalg.inv(between),
                                                residual))
        log_w = np.log(np.maximum(self.weights, 1e-300)) + log_like
        weights = np.exp(log_w - log_w.max())
        return JointMeans(weights / weights.sum(), self.noise, self.scale, means, covariances,
                          self.seen)

    def predictive(self, k: int, level: float = 0.8) -> Predictive:
        """Target ``k``: one new launch of it, and its mean, each with the ``level`` central
        interval."""
        means = self.means[:, k]
        variances = np.maximum(self.covariances[:, k, k], 0.0)
        launch_sd = np.sqrt(variances + self.noise**2)
        mean_sd = np.sqrt(np.maximum(variances, 1e-12))
        tail = (1.0 - level) / 2.0
        weights = self.weights
        return Predictive(
            median=mixture_quantile(weights, means, launch_sd, 0.5),
            low=mixture_quantile(weights, means, launch_sd, tail),
            high=mixture_quantile(weights, means, launch_sd, 1.0 - tail),
            mean_median=mixture_quantile(weights, means, mean_sd, 0.5),
            mean_low=mixture_quantile(weights, means, mean_sd, tail),
            mean_high=mixture_quantile(weights, means, mean_sd, 1.0 - tail),
            level=level, seen=self.seen[k], noise=float(weights @ self.noise),
            scale=float(weights @ self.scale))


def _column_index(columns: Sequence[tuple[str, str]]) -> dict[tuple[str, str], int]:
    """Design column of each (term, level): after the intercept's."""
    return {column: j + 1 for j, column in enumerate(columns)}


def _design_row(levels: Mapping[str, str | None], terms: Sequence[Term],
                index: Mapping[tuple[str, str], int]) -> tuple[np.ndarray, list[Term]]:
    """The design row of one configuration, and its terms whose level has no column."""
    row = np.zeros(len(index) + 1)
    row[0] = 1.0
    unseen = []
    for term in terms:
        value = levels.get(term.name)
        if value is None:
            continue
        column = index.get((term.name, value))
        if column is None:
            unseen.append(term)
        else:
            row[column] = 1.0
    return row, unseen


def mixture_quantile(weights: np.ndarray, means: np.ndarray, sds: np.ndarray, q: float) -> float:
    """The ``q`` quantile of a mixture of normals (weights summing to 1)."""
    def cdf_gap(x: float) -> float:
        return float(weights @ special.ndtr((x - means) / sds)) - q

    z = float(special.ndtri(q))
    low = float(np.min(means + z * sds)) - 1e-9
    high = float(np.max(means + z * sds)) + 1e-9
    if high - low < 1e-12:
        return float(means[0] + z * sds[0])
    return float(optimize.brentq(cdf_gap, low, high, xtol=1e-10))


def _grid(prior: EfficiencyPrior) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Grid points (noise, scale) and their log prior weight."""
    noise_axis = np.geomspace(*NOISE_RANGE, NOISE_POINTS)
    scale_axis = np.geomspace(*SCALE_RANGE, SCALE_POINTS)
    noise, scale = (a.ravel() for a in np.meshgrid(noise_axis, scale_axis, indexing="ij"))
    # scaled-inverse-chi^2 on noise^2, as a density of log(noise) (Jacobian 2 noise^2);
    # scale is log-uniform, i.e. flat on the log grid
    nu, s0 = prior.noise_dof, prior.noise
    log_prior = -nu * np.log(noise) - nu * s0**2 / (2.0 * noise**2)
    return noise, scale, log_prior


def fit(y: Sequence[float] | np.ndarray, levels: Sequence[Mapping[str, str | None]],
        prior: EfficiencyPrior) -> EfficiencyFit:
    """The posterior of the model (module doc) given observations ``y`` (log units) and each
    observation's levels (term -> level; None: the term does not apply to it)."""
    values = np.asarray(y, dtype=float)
    if values.ndim != 1 or len(levels) != values.size:
        raise ValueError("one set of levels per observation")
    if not np.all(np.isfinite(values)):
        raise ValueError("observations must be finite")
    counts: dict[tuple[str, str], int] = {}
    for observation in levels:
        for term in prior.terms:
            value = observation.get(term.name)
            if value is not None:
                counts[(term.name, value)] = counts.get((term.name, value), 0) + 1
    columns = tuple(sorted(counts))
    index = _column_index(columns)
    n, p = values.size, len(columns) + 1
    design = np.array([_design_row(observation, prior.terms, index)[0] for observation in levels]
                      ).reshape(n, p)
    widths = {term.name: term.width for term in prior.terms}
    column_widths = np.array([widths[term] for term, _ in columns])

    noise, scale, log_prior = _grid(prior)
    prior_mean = np.zeros(p)
    prior_mean[0] = prior.mean
    # prior precision per grid point: the intercept's, then each effect's (scale * width)^-2
    prior_var = np.empty((noise.size, p))
    prior_var[:, 0] = prior.sd**2
    prior_var[:, 1:] = (scale[:, None] * column_widths[None, :]) ** 2
    gram = design.T @ design
    moment = design.T @ values
    precision = (np.eye(p)[None] / prior_var[:, None, :]
                 + gram[None] / noise[:, None, None] ** 2)
    rhs = prior_mean[None] / prior_var + moment[None] / noise[:, None] ** 2
    chol = np.linalg.cholesky(precision)
    means = np.linalg.solve(precision, rhs[..., None])[..., 0]
    log_det_precision = 2.0 * np.log(np.diagonal(chol, axis1=1, axis2=2)).sum(axis=1)
    quad = (values @ values) / noise**2 + (prior_mean**2 / prior_var).sum(axis=1) \
        - np.einsum("gi,gi->g", means, rhs)
    log_ml = -0.5 * (n * math.log(2 * math.pi) + 2 * n * np.log(noise)
                     + np.log(prior_var).sum(axis=1) + log_det_precision + quad)
    log_post = log_ml + log_prior
    weights = np.exp(log_post - log_post.max())
    weights /= weights.sum()
    # the grid points that carry the posterior: all but a millionth of it
    order = np.argsort(weights)[::-1]
    keep = np.sort(order[:int(np.searchsorted(np.cumsum(weights[order]), 1.0 - 1e-6)) + 1])
    return EfficiencyFit(prior, columns, counts, n, weights[keep] / weights[keep].sum(),
                         noise[keep], scale[keep], means[keep], np.linalg.inv(precision[keep]))
