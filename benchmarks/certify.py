"""Simulation: does racing pick the true winner, with fewer launches, and is its P honest?

Synthetic decisions with known true values: m = 3..5 candidates, three measured criteria
with restart-to-restart noise (relative SD per launch: decode 2.5 %, prefill 6.5 %,
output throughput 4.5 %), linear value functions on fixed ranges and fixed weights. The true
top-2 gap of the weighted sum is a set multiple of the noise of one launch's total; the
other candidates sit 0..4 noise units below the runner-up. One launch = one noisy draw of
all three metrics of one candidate.

Strategies: (a) one launch each, highest total; (b) three launches each (``vllm bench sweep
--num-runs 3``), highest mean; (c) racing with ``next_action`` at confidence 0.95 and a
budget of 3 m launches (never more than (b)). For (c) it also prints the mean P(best) stated
by its certificates beside the share of them that was right, and, as a reference for its
launches, an idealized race that knows the noise exactly and faces a single challenger
(``oracle_launches``).

    python benchmarks/certify.py [--trials N] [--seed S] [--jobs J]
"""

from __future__ import annotations

import argparse
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass

import numpy as np
from scipy import stats

from stackdecide.certify import (
    RaceState,
    estimate,
    next_action,
    pooled_rel_sd,
    prior_rel_sd_for,
    prior_strength_for,
    rank_probabilities,
    sample_t_cells,
)
from stackdecide.mcda.methods import weighted_sum

METRICS = ("decode_tok_s", "prefill_tok_s", "output_tok_s")
TRUE_REL_SD = np.array([0.025, 0.065, 0.045])
WORST = np.array([30.0, 2000.0, 300.0])
BEST = np.array([130.0, 14000.0, 2300.0])
WEIGHTS = np.array([0.4, 0.3, 0.3])
GAPS = (0.5, 1.0, 2.0, 4.0)
CONFIDENCE = 0.95
MC_SAMPLES = 4000


def normalize(raw: np.ndarray) -> np.ndarray:
    """Linear value function between worst and best, clipped to 0..1."""
    return np.clip((raw - WORST) / (BEST - WORST), 0.0, 1.0)


def total_noise(raw: np.ndarray, rel_sd: np.ndarray) -> float:
    """SD of one launch's weighted total at true values ``raw`` (linear part, no clipping)."""
    return float(np.sqrt(np.sum((WEIGHTS * rel_sd * raw / (BEST - WORST)) ** 2)))


def make_decision(rng: np.random.Generator, m: int, gap: float, rel_sd: np.ndarray) -> tuple[np.ndarray, int]:
    """True raw values (m, 3) with top-2 gap = ``gap`` x the winner's total noise; winner index."""
    top = rng.uniform(0.35, 0.75, 3)
    sigma = total_noise(WORST + top * (BEST - WORST), rel_sd)
    t1 = float(WEIGHTS @ top)
    targets = [t1, t1 - gap * sigma]
    targets += list(targets[1] - rng.uniform(0.0, 4.0, m - 2) * sigma)
    profiles = [top]
    for target in targets[1:]:
        # a different profile with the same weighted total: zero-weighted-sum jitter, then a shift
        d = rng.uniform(-0.08, 0.08, 3)
        profiles.append(top + d - WEIGHTS @ d + (target - t1))
    order = rng.permutation(m)
    raw = (WORST + np.array(profiles) * (BEST - WORST))[order]
    return raw, int(np.argmin(order))


def launch(rng: np.random.Generator, true_raw: np.ndarray, rel_sd: np.ndarray) -> np.ndarray:
    return true_raw * (1.0 + rel_sd * rng.standard_normal(true_raw.shape))


def fixed_replicates(rng: np.random.Generator, true_raw: np.ndarray, rel_sd: np.ndarray, runs: int) -> int:
    means = np.mean([launch(rng, true_raw, rel_sd) for _ in range(runs)], axis=0)
    return int(np.argmax(normalize(means) @ WEIGHTS))


def cell_laws(values: list[list[np.ndarray]]) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Centre, standard error and dof per (candidate, metric), pooling the other candidates."""
    m = len(values)
    center, scale, dof = np.zeros((m, 3)), np.zeros((m, 3)), np.ones((m, 3))
    for i in range(m):
        if not values[i]:
            continue
        mine = np.array(values[i])
        for j, metric in enumerate(METRICS):
            others = [np.array(values[k])[:, j] for k in range(m) if k != i and values[k]]
            pooled, pooled_dof = pooled_rel_sd(others)
            est = estimate(mine[:, j], CONFIDENCE, prior_rel_sd_for(metric), prior_strength_for(metric),
                           pooled_rel_sd=pooled, pooled_dof=pooled_dof)
            center[i, j], scale[i, j], dof[i, j] = est.center, est.standard_error, est.dof
    return center, scale, dof


def race_state(values: list[list[np.ndarray]], rng: np.random.Generator) -> RaceState:
    m = len(values)
    launches = np.array([len(v) for v in values])
    center, scale, dof = cell_laws(values)
    raw = sample_t_cells(center, scale, dof, MC_SAMPLES, rng)
    totals = weighted_sum(normalize(raw), WEIGHTS)
    p = rank_probabilities(totals, feasible=launches > 0)
    # optimistic total of an unmeasured candidate: every measured cell at the scale's best
    optimistic = np.full(m, float(WEIGHTS.sum()))
    lead_expected = p.expected_totals[p.leader()] if launches.any() else -np.inf
    return RaceState(tuple(f"c{i}" for i in range(m)), launches, p,
                     (launches == 0) & (optimistic > lead_expected), optimistic)


@dataclass(frozen=True)
class RaceOutcome:
    pick: int
    launches: int
    certified: bool
    p_best: float  # the pick's P(best) when the race stopped


def race(rng: np.random.Generator, true_raw: np.ndarray, rel_sd: np.ndarray) -> RaceOutcome:
    m = len(true_raw)
    values: list[list[np.ndarray]] = [[] for _ in range(m)]
    while True:
        state = race_state(values, rng)
        action = next_action(state, confidence=CONFIDENCE, max_launches=3 * m)
        if action.kind != "launch":
            leader = state.p.leader()
            return RaceOutcome(leader, int(state.launches.sum()), action.kind == "certified",
                               float(state.p.p_best[leader]))
        i = state.candidates.index(str(action.candidate))
        values[i].append(launch(rng, true_raw[i], rel_sd))


def trial(seed: np.random.SeedSequence, gap: float, rel_sd: np.ndarray) -> tuple[float, ...]:
    """One decision: (a correct, a launches, b correct, b launches, c correct, c launches, c certified,
    c's stated P(best))."""
    rng = np.random.default_rng(seed)
    m = int(rng.integers(3, 6))
    true_raw, winner = make_decision(rng, m, gap, rel_sd)
    once = fixed_replicates(rng, true_raw, rel_sd, 1)
    thrice = fixed_replicates(rng, true_raw, rel_sd, 3)
    out = race(rng, true_raw, rel_sd)
    return (once == winner, m, thrice == winner, 3 * m, out.pick == winner, out.launches, out.certified,
            out.p_best)


def run_chunk(args: tuple[list[np.random.SeedSequence], float, np.ndarray]) -> np.ndarray:
    seeds, gap, rel_sd = args
    return np.array([trial(s, gap, rel_sd) for s in seeds], dtype=float)


def run_all(trials: int, seed: int, jobs: int, noise_scale: float = 1.0, chunk: int = 25) -> list[np.ndarray]:
    """Per gap level, one row per decision; small chunks keep both workers busy."""
    work = []
    for gap_seed, gap in zip(np.random.SeedSequence(seed).spawn(len(GAPS)), GAPS, strict=True):
        seeds = gap_seed.spawn(trials)
        work += [(seeds[k:k + chunk], gap, noise_scale * TRUE_REL_SD) for k in range(0, trials, chunk)]
    if jobs > 1:
        with ProcessPoolExecutor(jobs) as pool:
            parts = list(pool.map(run_chunk, work))
    else:
        parts = [run_chunk(w) for w in work]
    return [np.vstack([p for p, (_, g, _) in zip(parts, work, strict=True) if g == gap]) for gap in GAPS]


def oracle_launches(rng: np.random.Generator, m: int, gap: float, z_goal: float) -> int:
    """An idealized (c): two candidates ``gap`` sigma apart, the others out of reach, noise known
    exactly; one launch each, then the leader's second, then the less-replicated side; stop when
    the leader has two launches and its z score reaches ``z_goal``, or at 3 m launches."""
    draws: list[list[float]] = [[gap + float(rng.standard_normal())], [float(rng.standard_normal())]]
    used = m
    while used < 3 * m:
        lead = int(np.mean(draws[1]) > np.mean(draws[0]))
        n_lead, n_other = len(draws[lead]), len(draws[1 - lead])
        z = (np.mean(draws[lead]) - np.mean(draws[1 - lead])) / np.sqrt(1 / n_lead + 1 / n_other)
        if n_lead >= 2 and z >= z_goal:
            break
        i = lead if n_lead < n_other or n_lead == n_other < 2 else 1 - lead
        draws[i].append((gap if i == 0 else 0.0) + float(rng.standard_normal()))
        used += 1
    return used


def oracle_ratio(gap: float, seed: int, trials: int = 20000) -> float:
    """Launches of :func:`oracle_launches` / launches of (b), m = 3..5 equally often."""
    rng = np.random.default_rng(seed)
    z_goal = float(stats.norm.ppf(CONFIDENCE))
    ms = rng.integers(3, 6, trials)
    return float(sum(oracle_launches(rng, int(m), gap, z_goal) for m in ms) / (3 * ms.sum()))


def binomial_se(p: float, k: int) -> float:
    return float(np.sqrt(p * (1 - p) / k)) if k else float("nan")


def table_rows(label: str, r: np.ndarray) -> list[str]:
    launches_b = r[:, 3].mean()
    cert = r[:, 6].astype(bool)
    calib = r[cert, 4].mean() if cert.any() else float("nan")
    rows = []
    for name, ok, used in (("(a) n=1", 0, 1), ("(b) n=3", 2, 3), ("(c) racing", 4, 5)):
        line = (f"{label:>8} {name:<11} {r[:, ok].mean():>8.1%} {r[:, used].mean():>9.2f} "
                f"{r[:, used].mean() / launches_b:>8.2f}")
        if ok == 4:
            stated = r[cert, 7].mean() if cert.any() else float("nan")
            line += (f" {cert.mean():>10.1%} {calib:>12.1%} ± {binomial_se(calib, int(cert.sum())):.1%}"
                     f" (n={int(cert.sum())}) {stated:>7.1%}")
        rows.append(line)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--trials", type=int, default=400, help="decisions per gap level")
    parser.add_argument("--seed", type=int, default=2024)
    parser.add_argument("--jobs", type=int, default=2, help="worker processes")
    parser.add_argument("--noise-scale", type=float, default=1.0,
                        help="true noise = this x the measured spreads, the priors unchanged (robustness)")
    args = parser.parse_args()
    start = time.perf_counter()
    results = run_all(args.trials, args.seed, args.jobs, args.noise_scale)
    print(f"{args.trials} decisions per gap level, m = 3..5, seed {args.seed}, confidence {CONFIDENCE}, "
          f"true noise {args.noise_scale:g} x measured spreads")
    print("σ = SD of one launch's weighted total; vs (b) = launches / launches of (b); "
          "calibration = share correct among certified ± binomial SE; stated = their mean P(best)")
    print(f"{'gap/σ':>8} {'strategy':<11} {'correct':>8} {'launches':>9} {'vs (b)':>8} "
          f"{'certified':>10} {'calibration':>12} {'':>14} {'stated':>7}")
    for gap, r in zip(GAPS, results, strict=True):
        print("\n".join(table_rows(f"{gap:g}", r)))
    print("\n".join(table_rows(">=2", np.vstack(results[2:]))))
    print("\n".join(table_rows("all", np.vstack(results))))
    print("reference, launches vs (b) of an idealized race that knows the noise, faces one challenger "
          "and stops "
          "when its z score reaches P = 0.95: "
          + ", ".join(f"{oracle_ratio(gap, args.seed):.2f} at {gap:g}σ" for gap in GAPS[2:]))
    print(f"({time.perf_counter() - start:.0f} s)")


if __name__ == "__main__":
    main()
