"""How sure a measured ranking is: each measured cell's uncertainty, carried through the ranking.

A **replicate** of a candidate is one launch (``Cell.replicates``: the median of each launch's
records): the same configuration differs from restart to restart (an H100 gave decode -0.7% /
+3.7%, prefill +7.7% / +4.7%, throughput +3.9% / +4.9%), so two benchmarks on one server are one
replicate, not two. The replicates travel with the cell, so records from a store and the same
records from a JSON file give the same uncertainty.

For every measured cell the replicates give an ``Estimate`` (``certify.uncertainty``: a relative
noise per metric from a prior, the other candidates' replicates of the same criterion and the
cell's own, and a Student-t interval for the true value). The ranking's uncertainty follows by
Monte Carlo: each draw moves every measured raw value by its own t-distributed error of the mean,
re-applies the criterion's value function (``relative_to_best`` against that draw's best), keeps
judged cells at their score (or within their stated ``uncertainty``), optionally draws weights from
the decision's weight region (SMAA), and ranks. P(best), the rank distribution and pairwise
P(i beats k) are shares of draws (``certify.probability``).

A **predicted** cell (a configuration no launch measured, ``scoring.predicted``) is drawn from
the prediction model's mixture over its width scales (``Cell.mixture``): in each draw one
component per metric, shared by every predicted cell of that metric, then the log means of all
of a criterion's configurations together from that component's multivariate normal
(``MeanMixture.joint``, through its symmetric root): configurations that share a level (an
attention backend never launched, say) share its error, and configurations the model cannot tell
apart (they differ only in a setting that binds at no load of the criterion) are drawn as one.
A predicted 1/0 cell (a never-launched configuration's chance of starting, ``predict.starts``) is
drawn as a start or a failure with that chance, each configuration on its own.
Drawn one by one, each never-launched configuration was a chance of its own at the far tail, and
18 such chances held an H100 race's leader at P = 0.87 where the model puts it at 0.96
(docs/results/h100-space). A draw in which the predictions are off by much is so for all of
them, and the far tail, where a never-launched best sits, keeps the mixture's weight: a normal
matched to the interval thins it, and certificates resting on biased predictions were
over-confident that way (``benchmarks/search.py``). The component is the one at a uniform quantile
of the cell's weights, the quantile drawn once per draw and metric and the components in order of
width scale: cells with the same weights (the metric's fit, unless judged scores moved them) share
it, and the others take the component at the same quantile of theirs. One configuration's predicted
cells are drawn together, each as good as the others in a draw (one standard normal per candidate,
the same in each criterion's joint draw, its sign turned for a lower-is-better metric): what
moves a configuration's predictions is the same unknown effect of its settings, which speeds up
its decode and its throughput alike. Drawn independently, the errors of its criteria would
average out in its total and the certificate would be overconfident (a synthetic space with one
effect per setting, ``tests/loop/test_search.py``, was certified 8 points below its best that
way). A predicted cell with a measured twin
(``Cell.twin``) is drawn as the twin's cell, the same draw: the model knows nothing that tells the
two apart (a twin measured without replicates: log-normal about its value, as wide as the
prediction's interval). Measured twins hold their pooled launches (``scoring.predicted``) and are
drawn as one mean too, counted once in the noise the other candidates show.

Verdict: **certified** when the leader's P(best) reaches the confidence and the leader rests on at
least two launches (a lucky or broken single launch must not carry a certificate), the racing
policy's rule (``certify.racing``); otherwise a
**statistical tie** between the contenders (candidates with P(best) >= (1 - confidence) / m, the
racing policy's rule), or ``judged`` when no cell is measured.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
from numpy.typing import ArrayLike

from stackdecide.certify.indifference import Certificate, certificate, tolerance_total
from stackdecide.certify.probability import RankProbabilities, rank_probabilities
from stackdecide.certify.racing import (
    MIN_REPLICATES,
    contender_threshold,
    launches_required,
    tie_sentence,
)
from stackdecide.certify.uncertainty import (
    DEFAULT_PRIOR_STRENGTH,
    estimate,
    pooled_rel_sd,
    prior_rel_sd_for,
    prior_strength_for,
)
from stackdecide.mcda import methods
from stackdecide.mcda.value_functions import measured_scores
from stackdecide.mcda.weights import sampled_weights, weight_region
from stackdecide.model.cells import JointMixture, MeanMixture
from stackdecide.model.certainty import (
    CellEstimate,
    Certainty,
    CertaintySettings,
    Verdict,
    launches_of,
)
from stackdecide.model.metrics import METRICS
from stackdecide.model.ranking import Ranking
from stackdecide.model.score_uncertainty import score_uncertainty
from stackdecide.model.space import elsewhere
from stackdecide.scoring.predicted import scale_best


def cell_estimates(ranking: Ranking, confidence: float) -> dict[tuple[str, str], CellEstimate]:
    """The estimate of every measured cell from its replicates, noise pooled per criterion
    across candidates."""
    decision = ranking.decision
    found: dict[tuple[str, str], CellEstimate] = {}
    for j, criterion in enumerate(decision.criteria):
        replicates: dict[int, tuple[tuple[float, ...], tuple[str, ...]]] = {}
        for i in range(len(decision.candidates)):
            cell = ranking.cells[i][j]
            # pass/fail metrics have no noise to speak of; a zero has no relative spread
            if cell.measured and cell.replicates and not METRICS[str(cell.metric)].boolean \
                    and all(value != 0 for _, value in cell.replicates):
                replicates[i] = (tuple(value for _, value in cell.replicates),
                                 tuple(launch for launch, _ in cell.replicates))
        stated = decision.model.benchmark.noise
        cold = criterion.measure is not None and \
            criterion.measure.scenario.get("start") == "cold"
        # launched twins hold the same pooled replicates (``scoring.predicted``): one group each
        # in the noise the other candidates show
        group = {i: ranking.cells[i][j].twin or decision.candidate_ids[i] for i in replicates}
        heads = {group[i]: i for i in sorted(replicates, reverse=True)}
        for i, (values, launches) in replicates.items():
            metric = str(ranking.cells[i][j].metric)
            pooled, dof = pooled_rel_sd([replicates[k][0] for name, k in heads.items()
                                         if name != group[i]])
            # noise the decision states for its hardware outranks the GPU-measured default prior
            # (stated for the criterion, else for its metric)
            said = stated.get(criterion.id, stated.get(metric))
            prior = (said, DEFAULT_PRIOR_STRENGTH) if said is not None else \
                (prior_rel_sd_for(metric), prior_strength_for(metric))
            found[(decision.candidate_ids[i], criterion.id)] = CellEstimate(
                decision.candidate_ids[i], criterion.id, metric, values, launches,
                estimate(values, confidence, *prior, pooled if dof else None, dof), cold)
    return found


def _components(weights: ArrayLike, quantile: np.ndarray) -> np.ndarray:
    """The component of a mixture at each uniform ``quantile`` of its ``weights`` (in order of
    width scale, so that one quantile picks comparable components for every cell of a metric)."""
    cumulative = np.cumsum(weights)
    return np.minimum(np.searchsorted(cumulative, quantile * cumulative[-1], side="right"),
                      cumulative.size - 1)


def mixture_draws(mixture: MeanMixture, quantile: np.ndarray, z: np.ndarray) -> np.ndarray:
    """A predicted mean drawn from its mixture (``Cell.mixture``) alone: in each draw the component
    at ``quantile`` (uniform) of the weights, then that component's log-normal at the standard
    normal ``z``; none above the mixture's ceiling."""
    component = _components(mixture.weights, quantile)
    log_mean = np.asarray(mixture.centres)[component] + np.asarray(mixture.log_sds)[component] * z
    return np.minimum(np.exp(log_mean), mixture.ceiling)


def joint_draws(joint: JointMixture, quantile: np.ndarray, z: np.ndarray) -> np.ndarray:
    """Every mean of ``joint`` drawn together (samples, K): in each draw the component at
    ``quantile`` (uniform) of the weights, then that component's multivariate log-normal through
    its symmetric root at the standard normals ``z`` (one per configuration); none above its
    ceiling."""
    component = _components(joint.weights, quantile)
    log_means = np.empty(z.shape)
    for g in np.unique(component):
        rows = component == g
        log_means[rows] = joint.centres[g] + z[rows] @ joint.roots[g]
    return np.minimum(np.exp(log_means), joint.ceilings)


def _score_draws(ranking: Ranking, cells: Mapping[tuple[str, str], CellEstimate],
                 rng: np.random.Generator, samples: int) -> np.ndarray:
    """Score matrices (samples, candidates, criteria) on each criterion's scale."""
    decision = ranking.decision
    judged = score_uncertainty(decision)
    draws = judged.sample(rng, samples) if judged.any else np.repeat(
        decision.matrix[None].astype(float), samples, axis=0)
    scores = np.array([[cell.score for cell in row] for row in ranking.cells])
    goodness = rng.standard_normal((samples, len(decision.candidates)))
    index = {cid: i for i, cid in enumerate(decision.candidate_ids)}
    # the quantile that picks the width scale: one per draw and metric (module doc)
    scale_quantile = {metric: rng.random(samples) for metric in sorted(
        {str(cell.metric) for row in ranking.cells for cell in row if cell.mixture is not None})}
    measured_mask = np.array([[cell.measured for cell in row] for row in ranking.cells])
    away = elsewhere(decision.model)
    draws[:, measured_mask] = scores[measured_mask]  # measured cells without replicates stay put
    for j, criterion in enumerate(decision.criteria):
        estimated = [i for i, cid in enumerate(decision.candidate_ids) if (cid, criterion.id) in cells]
        predicted = [i for i in range(len(decision.candidates)) if ranking.cells[i][j].predicted]
        rows = estimated + predicted
        if not rows or criterion.measure is None:
            continue
        metric = METRICS[criterion.measure.metric]
        raw = np.empty((samples, len(rows)))
        twin_column: dict[str, int] = {}
        for column, i in enumerate(estimated):
            twin = ranking.cells[i][j].twin
            if twin in twin_column:  # launched twins: one mean, one draw (module doc)
                raw[:, column] = raw[:, twin_column[twin]]
                continue
            twin_column[decision.candidate_ids[i]] = column
            found = cells[(decision.candidate_ids[i], criterion.id)].estimate
            relative_se = found.standard_error / abs(found.center)
            center = ranking.cells[i][j].raw or found.center
            raw[:, column] = center * (1.0 + relative_se * rng.standard_t(found.dof, samples))
        # a predicted mean: from its criterion's joint mixture, the metric's width scale of the
        # draw; one draw of goodness per candidate for all its predicted cells (module doc)
        sign = 1.0 if metric.higher_is_better else -1.0
        quantile = scale_quantile.get(criterion.measure.metric)
        together: dict[int, np.ndarray] = {}
        for column, i in enumerate(predicted, start=len(estimated)):
            cell = ranking.cells[i][j]
            assert cell.raw is not None
            if metric.boolean:  # a chance of starting: a start or a failure, each on its own
                raw[:, column] = rng.random(samples) < cell.raw
                continue
            assert cell.log_sd is not None
            if cell.twin in twin_column:  # the same configuration here as a measured one: one draw
                raw[:, column] = raw[:, twin_column[cell.twin]]
            elif cell.mixture is not None and cell.mixture.joint is not None:
                joint = cell.mixture.joint
                if id(joint) not in together:
                    together[id(joint)] = joint_draws(joint, quantile, sign * goodness[
                        :, [index[cid] for cid in joint.candidates]])
                raw[:, column] = together[id(joint)][:, joint.candidates.index(
                    decision.candidate_ids[i])]
            elif cell.mixture is not None:
                raw[:, column] = mixture_draws(cell.mixture, quantile, sign * goodness[:, i])
            else:  # a twin measured without replicates (module doc)
                raw[:, column] = cell.raw * np.exp(sign * cell.log_sd * goodness[:, i])
        best = scale_best(raw, np.array([decision.candidate_ids[i] not in away for i in rows]),
                          metric.higher_is_better)
        draws[:, rows, j] = measured_scores(
            criterion.measure, raw, scale_low=criterion.scale.low,
            scale_high=criterion.scale.high, benefit=criterion.direction == "benefit",
            higher_is_better=metric.higher_is_better, best_raw=best[:, None],
            boolean=metric.boolean)
    return draws


def _verdict(ranking: Ranking, probabilities: RankProbabilities | None, launches: dict[str, int],
             confidence: float) -> Verdict:
    """The racing policy's rule (``certify.racing``), applied to the evidence at hand."""
    ids = ranking.candidate_ids
    if ranking.winner is None:  # P(best) is 0 for all: no leader to certify or tie
        return Verdict("infeasible", None, (), "no candidate is feasible: nothing to certify")
    if probabilities is None:
        return Verdict("judged", ranking.winner, (), "no measured cell: the ranking rests on judged "
                       "scores alone (no measurement uncertainty to weigh)")
    p_best = probabilities.p_best
    leader = probabilities.leader()
    contenders = sorted(set(probabilities.contenders(contender_threshold(confidence, len(ids))))
                        | {leader}, key=lambda i: (-p_best[i], i))
    tied = tuple((ids[i], float(p_best[i])) for i in contenders)
    short = [ids[i] for i in contenders
             if launches[ids[i]] < launches_required(i == leader, MIN_REPLICATES)]
    name, p = ids[leader], float(p_best[leader])
    if p >= confidence and not short:
        return Verdict("certified", name, tied, f"certified: {name} (P = {p:.2f})")
    if p >= confidence:
        return Verdict("tie", name, tied, f"{name} leads (P = {p:.2f}) on too few launches: "
                       + ", ".join(f"{cid} rests on {launches[cid]} launch"
                                   + ("es" if launches[cid] != 1 else "") for cid in short)
                       + f"; a certificate needs {MIN_REPLICATES} launches of the leader "
                       "(launch --until-certain)")
    return Verdict("tie", name, tied, f"{tie_sentence(tied)}; more launches of each (launch "
                   "--until-certain) or a weight change would separate them")


def certifiable(ranking: Ranking) -> np.ndarray:
    """The candidates a certificate may name and is about, as a mask: those that can be chosen
    here (``Ranking.choosable``: feasible, on the decision's own hardware; a space's
    configurations for other hardware are ranked by their prediction only)."""
    here = set(ranking.choosable)
    return np.array([cid in here for cid in ranking.candidate_ids], dtype=bool)


def _within_verdict(ids: tuple[str, ...], within: Certificate, launches: dict[str, int]) -> Verdict:
    """The certificate within a tolerance (``certify.indifference``), with the racing policy's
    rule that its leader rests on at least two launches."""
    p_within = within.probabilities.p_within
    tied = tuple((ids[i], float(p_within[i])) for i in within.contenders)
    leader = ids[within.leader]
    text = within.statement(ids, [launches[cid] for cid in ids])
    if within.kind == "certified" and launches[leader] >= MIN_REPLICATES:
        return Verdict("certified", leader, tied, text)
    if within.kind == "certified":
        text += (f"; but {leader} rests on {launches[leader]} launch"
                 + ("es" if launches[leader] != 1 else "")
                 + f" and a certificate needs {MIN_REPLICATES} (launch --until-certain)")
    return Verdict("undecided", leader, tied, text)


def certainty(ranking: Ranking, settings: CertaintySettings) -> Certainty:
    """P(best), rank and pairwise probabilities of ``ranking`` under measurement noise."""
    cells = cell_estimates(ranking, settings.confidence)
    decision = ranking.decision
    probabilities = totals = None
    may_win = certifiable(ranking)
    if cells or any(cell.predicted for row in ranking.cells for cell in row):
        rng = np.random.default_rng(settings.seed)
        normalized = decision.normalize(_score_draws(ranking, cells, rng, settings.samples))
        weights = decision.weights
        if settings.sample_weights:
            spec = decision.model.sensitivity
            region = weight_region(decision.criterion_ids, spec.weight_bounds,
                                   spec.importance_order)
            weights = sampled_weights(region, settings.samples, settings.seed)
        totals = methods.get_method(ranking.method)(normalized, weights).totals
        probabilities = rank_probabilities(totals, may_win, settings.seed)
    launches = launches_of(cells.values(), decision.candidate_ids)
    within = None
    if totals is not None and settings.tolerance > 0 and may_win.any():
        within = certificate(totals, tolerance_total(settings.tolerance), settings.confidence,
                             contender_threshold(settings.confidence, len(decision.candidates)),
                             may_win)
        verdict = _within_verdict(decision.candidate_ids, within, launches)
    else:
        verdict = _verdict(ranking, probabilities, launches, settings.confidence)
    return Certainty(decision.candidate_ids, cells, probabilities, settings, verdict, within, totals)
