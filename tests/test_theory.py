"""OrderDP's inclusion probabilities against exact combinatorics and their asymptotic limit."""

from __future__ import annotations

from fractions import Fraction
from math import comb

import numpy as np
import pytest

from prunebench.pruners.theory import asymptotic_inclusion, orderdp_inclusion, surrogate_weights


def exact_inclusion(n: int, s: int, q: int) -> list[Fraction]:
    """REFERENCE.md's sum formula, in exact rational arithmetic."""
    return [
        sum(
            (
                Fraction(comb(j - 1, m - 1) * comb(n - j, s - m), comb(n, s))
                for m in range(max(1, s - n + j), min(q, j) + 1)
            ),
            Fraction(0),
        )
        for j in range(1, n + 1)
    ]


@pytest.mark.parametrize(
    "n,s,q", [(12, 7, 3), (10, 10, 4), (9, 5, 1), (9, 5, 5), (30, 12, 11), (1, 1, 1), (40, 20, 6)]
)
def test_matches_the_exact_sum(n, s, q):
    exact = np.array([float(x) for x in exact_inclusion(n, s, q)])
    np.testing.assert_allclose(orderdp_inclusion(n, s, q), exact, rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize(
    "n,s,q", [(200, 100, 30), (50_000, 25_000, 15_000), (1_281_167, 640_583, 384_350)]
)
def test_sums_to_q_and_is_non_increasing(n, s, q):
    gamma = orderdp_inclusion(n, s, q)
    assert gamma.shape == (n,) and gamma.dtype == np.float64
    assert gamma.sum() == pytest.approx(q, rel=1e-9)
    assert np.all(np.diff(gamma) <= 1e-15)
    assert np.all((gamma >= 0) & (gamma <= s / n + 1e-15))
    assert surrogate_weights(n, s, q).sum() == pytest.approx(1.0, rel=1e-9)


def test_keeping_the_whole_pool_is_uniform():
    np.testing.assert_array_equal(orderdp_inclusion(1000, 300, 300), np.full(1000, 0.3))


def test_top_ranks_are_kept_whenever_pooled_and_bottom_ranks_never():
    gamma = orderdp_inclusion(100, 50, 10)
    np.testing.assert_allclose(gamma[:10], 0.5, rtol=1e-12)  # rank <= q: kept iff drawn
    assert np.all(gamma[100 - 50 + 10 :] == 0)  # s - q pool members always outrank these


def test_converges_to_the_beta_limit_at_rate_one_over_n():
    # Paper Fig. 5 setting: (s, q) = (100, 30); n * gamma_j -> s * P(Beta(q, s - q) > j / n).
    z = np.linspace(0.01, 0.99, 99)
    errors = []
    for n in (1_000, 10_000, 100_000):
        gamma = orderdp_inclusion(n, 100, 30)
        j = np.round(z * n).astype(int)
        errors.append(np.abs(n * gamma[j - 1] - asymptotic_inclusion(z, 100, 30)).max())
    assert errors[0] > 8 * errors[1] > 64 * errors[2]
    assert errors[2] < 0.02  # out of a peak value of s = 100


def test_asymptotic_limit_is_s_times_beta_survival():
    assert asymptotic_inclusion(0.0, 100, 30) == pytest.approx(100)
    assert asymptotic_inclusion(1.0, 100, 30) == pytest.approx(0)
    np.testing.assert_array_equal(asymptotic_inclusion(np.array([0.2, 0.9]), 7, 7), [7.0, 7.0])


@pytest.mark.parametrize("n,s,q", [(10, 3, 4), (10, 11, 2), (10, 5, 0)])
def test_invalid_sizes_are_rejected(n, s, q):
    with pytest.raises(ValueError, match="q <= s <= n"):
        orderdp_inclusion(n, s, q)
