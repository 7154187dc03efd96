"""KL divergence on top-k next-token distributions, agreement, perplexity ratio and the bootstrap
over prompts, against full distributions computed by hand and by brute force."""

from __future__ import annotations

import math

import numpy as np
import pytest

from stackdecide.certify.divergence import (
    NextTokens,
    _weighted_lower_percentiles,
    compare,
    greedy_shares,
    lower_percentile,
    lumped_kl,
    summarize,
)


def top_k(logprobs: np.ndarray, k: int, prompt_index: np.ndarray | None = None,
          own: np.ndarray | None = None) -> NextTokens:
    """What a server returns of full distributions (positions, vocab): each row's top k."""
    order = np.argsort(-logprobs, axis=1, kind="stable")[:, :k]
    rows = np.arange(logprobs.shape[0])[:, None]
    positions = logprobs.shape[0]
    return NextTokens(order, logprobs[rows, order],
                      np.zeros(positions) if own is None else own,
                      np.zeros(positions, dtype=int) if prompt_index is None else prompt_index)


def full_kl(p_log: np.ndarray, q_log: np.ndarray) -> np.ndarray:
    return (np.exp(p_log) * (p_log - q_log)).sum(axis=1)


def random_logprobs(rng: np.random.Generator, positions: int, vocab: int,
                    sharpness: float = 3.0) -> np.ndarray:
    logits = rng.normal(0.0, sharpness, (positions, vocab))
    return logits - np.logaddexp.reduce(logits, axis=1, keepdims=True)


def test_identical_passes_diverge_by_exactly_zero() -> None:
    rng = np.random.default_rng(1)
    tokens = top_k(random_logprobs(rng, 40, 30), 5)
    kl, lumped = lumped_kl(tokens, tokens)
    assert np.all(kl == 0.0)
    assert np.allclose(lumped, 1.0 - np.exp(tokens.top_logprobs).sum(axis=1))


def test_a_hand_computed_position() -> None:
    # vocab of 3: p = (0.7, 0.2, 0.1), q = (0.6, 0.3, 0.1); k = 1 keeps token 0 and lumps the rest
    p, q = np.log([[0.7, 0.2, 0.1]]), np.log([[0.6, 0.3, 0.1]])
    kl, lumped = lumped_kl(top_k(p, 1), top_k(q, 1))
    expected = 0.7 * math.log(0.7 / 0.6) + 0.3 * math.log(0.3 / 0.4)
    assert kl[0] == pytest.approx(expected, abs=1e-12)
    assert lumped[0] == pytest.approx(0.3)
    kl_all, lumped_all = lumped_kl(top_k(p, 3), top_k(q, 3))
    assert kl_all[0] == pytest.approx(full_kl(p, q)[0], abs=1e-12)
    assert lumped_all[0] == 0.0


def test_a_reference_token_the_candidate_left_out_joins_the_lumped_bucket() -> None:
    # the reference's second token (id 1) is not in the candidate's top 2 (ids 0 and 2)
    p, q = np.log([[0.5, 0.3, 0.15, 0.05]]), np.log([[0.5, 0.1, 0.3, 0.1]])
    kl, lumped = lumped_kl(top_k(p, 2), top_k(q, 2))
    expected = 0.5 * math.log(0.5 / 0.5) + 0.5 * math.log(0.5 / 0.5)
    assert kl[0] == pytest.approx(expected, abs=1e-12)
    assert lumped[0] == pytest.approx(0.5)


def test_the_lumped_kl_is_a_lower_bound_short_by_the_tails_divergence() -> None:
    """KL = KL_S + p_r KL(P|r || Q|r) (the chain rule), for every k."""
    rng = np.random.default_rng(7)
    p_log = random_logprobs(rng, 200, 40)
    q_log = p_log + rng.normal(0.0, 0.3, p_log.shape)
    q_log -= np.logaddexp.reduce(q_log, axis=1, keepdims=True)
    true = full_kl(p_log, q_log)
    previous = np.zeros_like(true)
    for k in (1, 3, 10, 40):
        reference, candidate = top_k(p_log, k), top_k(q_log, k)
        kl, lumped = lumped_kl(reference, candidate)
        assert np.all(kl <= true + 1e-12)
        for row in range(0, 200, 17):  # the gap is the tails' divergence, weighted
            shared = np.intersect1d(reference.top_ids[row], candidate.top_ids[row])
            rest = np.setdiff1d(np.arange(40), shared)
            if rest.size:
                p_rest, q_rest = np.exp(p_log[row, rest]), np.exp(q_log[row, rest])
                tails = (p_rest / p_rest.sum() * np.log((p_rest / p_rest.sum())
                                                        / (q_rest / q_rest.sum()))).sum()
                assert true[row] - kl[row] == pytest.approx(p_rest.sum() * tails, abs=1e-10)
                assert lumped[row] == pytest.approx(p_rest.sum(), abs=1e-12)
        previous = kl
    assert np.allclose(previous, true)  # k = vocab: nothing is lumped


def test_the_gap_is_at_most_two_d_times_the_lumped_mass() -> None:
    """Where every tail probability moves by at most a factor e^d, the gap is at most 2 d p_r."""
    rng = np.random.default_rng(3)
    d = 0.05
    p_log = random_logprobs(rng, 300, 60)
    k = 8
    q_log = p_log.copy()
    tail = np.argsort(-p_log, axis=1)[:, k:]
    rows = np.arange(300)[:, None]
    q_log[rows, tail] += rng.uniform(-d, d, tail.shape)
    head_mass = 1.0 - np.exp(q_log[rows, tail]).sum(axis=1)
    head = np.argsort(-p_log, axis=1)[:, :k]
    # the head takes what the tail left, in proportion: q stays a distribution
    q_log[rows, head] = p_log[rows, head] + np.log(
        head_mass / np.exp(p_log[rows, head]).sum(axis=1))[:, None]
    kl, lumped = lumped_kl(top_k(p_log, k), top_k(q_log, k))
    gap = full_kl(p_log, q_log) - kl
    assert np.all(gap >= -1e-12)
    assert np.all(gap <= 2 * d * lumped + 1e-12)


def test_agreement_and_perplexity_ratio_by_hand() -> None:
    # two prompts, two positions each; the candidate's top token differs at one position
    p = np.log([[0.6, 0.3, 0.1], [0.5, 0.4, 0.1], [0.8, 0.1, 0.1], [0.2, 0.7, 0.1]])
    q = np.log([[0.6, 0.3, 0.1], [0.4, 0.5, 0.1], [0.8, 0.1, 0.1], [0.2, 0.7, 0.1]])
    prompts = np.array([0, 0, 1, 1])
    text = np.array([0, 0, 0, 1])  # the text's own token at each position
    own_p, own_q = p[np.arange(4), text], q[np.arange(4), text]
    reference = top_k(p, 2, prompts, own_p)
    candidate = top_k(q, 2, prompts, own_q)
    comparison = compare(reference, candidate, [[5, 6, 7], [8, 9]], [[5, 6, 1], [8, 9]])
    assert comparison.top1_same.tolist() == [True, False, True, True]
    summary = summarize(comparison)
    assert summary.top1_agree_pct.value == pytest.approx(75.0)
    assert summary.ppl_ratio.value == pytest.approx(math.exp(math.log(0.5 / 0.4) / 4))
    assert summary.greedy_agree_pct.value == pytest.approx(100 * (2 / 3 + 1) / 2)
    assert summary.prompts == 2 and summary.positions == 4


def test_greedy_shares_count_the_common_prefix() -> None:
    shares = greedy_shares([[1, 2, 3, 4], [1, 2], [9]], [[1, 2, 0, 4], [3, 2], [9]])
    assert shares.tolist() == [0.5, 0.0, 1.0]
    with pytest.raises(ValueError, match="2 reference continuations, 1 of the candidate"):
        greedy_shares([[1], [2]], [[1]])


def test_passes_over_different_texts_are_refused() -> None:
    rng = np.random.default_rng(0)
    with pytest.raises(ValueError, match="not the same text"):
        lumped_kl(top_k(random_logprobs(rng, 5, 10), 3), top_k(random_logprobs(rng, 6, 10), 3))


def test_the_bootstrap_interval_holds_the_value_and_is_reproducible() -> None:
    rng = np.random.default_rng(11)
    prompts = np.repeat(np.arange(30), 12)
    p_log = random_logprobs(rng, prompts.size, 25)
    q_log = p_log + rng.normal(0.0, 0.2, p_log.shape) * (prompts[:, None] % 3)  # prompts differ
    q_log -= np.logaddexp.reduce(q_log, axis=1, keepdims=True)
    comparison = compare(top_k(p_log, 5, prompts), top_k(q_log, 5, prompts),
                         [[1, 2]] * 30, [[1, 2]] * 15 + [[1, 3]] * 15)
    first, again = summarize(comparison), summarize(comparison)
    assert first == again
    for stat in (first.kl_mean, first.kl_p99, first.top1_agree_pct, first.ppl_ratio,
                 first.greedy_agree_pct):
        assert stat.low <= stat.value <= stat.high
    assert first.kl_mean.low < first.kl_mean.high  # prompts differ: the interval has a width
    assert first.kl_p99.value == lower_percentile(comparison.kl)
    assert summarize(comparison, seed=1).kl_mean != first.kl_mean  # another seed, other draws


def test_a_comparison_that_cannot_move_has_an_interval_of_zero_width() -> None:
    rng = np.random.default_rng(5)
    prompts = np.repeat(np.arange(8), 4)
    tokens = top_k(random_logprobs(rng, 32, 12), 4, prompts)
    summary = summarize(compare(tokens, tokens, [[1]] * 8, [[1]] * 8))
    assert (summary.kl_mean.low, summary.kl_mean.value, summary.kl_mean.high) == (0.0, 0.0, 0.0)
    assert summary.kl_p99.high == 0.0
    assert summary.top1_agree_pct.low == 100.0 and summary.ppl_ratio.value == 1.0


def test_the_bootstraps_percentile_is_the_percentile_of_the_resampled_values() -> None:
    """The weighted percentile (one sort, weights per resample) equals the percentile of each
    resample written out value by value."""
    rng = np.random.default_rng(2)
    prompts = np.repeat(np.arange(10), rng.integers(1, 8, 10))
    values = rng.exponential(1.0, prompts.size)
    counts = rng.multinomial(10, np.full(10, 0.1), size=50)
    found = _weighted_lower_percentiles(values, prompts, counts, 99.0)
    for b in range(50):
        written_out = np.concatenate([values[prompts == g] for g in range(10)
                                      for _ in range(counts[b, g])])
        assert found[b] == lower_percentile(written_out)
