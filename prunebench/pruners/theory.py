"""OrderDP's inclusion probabilities: how often the rank-j sample is trained in an epoch.

With n samples ranked by score (rank 1 = highest), a pool of s drawn uniformly without
replacement and the q highest of the pool kept, the rank-j sample is kept with probability

    gamma_j = sum_{l=max(1, s-n+j)}^{min(q, j)} C(j-1, l-1) C(n-j, s-l) / C(n, s)
            = (s / n) * P(T >= j),

where T is the q-th smallest member of a uniform (s-1)-subset of {1, ..., n-1}: the sample is in
the pool with probability s/n and then kept iff fewer than q of the other s-1 pool members
outrank it. T's probability mass is a ratio of binomials, evaluated in log space, and the
survival function is a reversed cumulative sum, so tail probabilities keep full precision and
n = 1,281,167 takes a few tens of milliseconds.
"""

from __future__ import annotations

import numpy as np
from scipy import special, stats


def _check(n: int, s: int, q: int) -> None:
    if not (1 <= q <= s <= n):
        raise ValueError(f"need 1 <= q <= s <= n, got n={n}, s={s}, q={q}")


def _log_comb(a: np.ndarray, b: np.ndarray | int) -> np.ndarray:
    return special.gammaln(a + 1) - special.gammaln(b + 1) - special.gammaln(a - b + 1)


def orderdp_inclusion(n: int, s: int, q: int) -> np.ndarray:
    """gamma[j - 1] = P(the rank-j sample is trained in an epoch), float64, length n."""
    _check(n, s, q)
    if q == s:
        return np.full(n, s / n)
    # T ranges over q..n-s+q (at least q-1 below it and s-1-q above it in {1..n-1}).
    t = np.arange(q, n - s + q + 1, dtype=np.float64)
    log_pmf = _log_comb(t - 1, q - 1) + _log_comb(n - 1 - t, s - 1 - q) - _log_comb(n - 1, s - 1)
    pmf = np.exp(log_pmf - log_pmf.max())
    # The mass sums to 1 exactly; normalizing cancels the rounding of the large log-binomials.
    pmf /= pmf.sum()
    survival = np.zeros(n + 1)  # survival[j] = P(T >= j) for j = 0..n
    survival[q : n - s + q + 1] = np.cumsum(pmf[::-1])[::-1]
    survival[:q] = 1.0
    return (s / n) * survival[1 : n + 1]


def asymptotic_inclusion(z: np.ndarray | float, s: int, q: int) -> np.ndarray:
    """gamma(z) = lim n * gamma_j for j / n -> z: s * P(Beta(q, s - q) > z)."""
    if not (1 <= q <= s):
        raise ValueError(f"need 1 <= q <= s, got s={s}, q={q}")
    z = np.asarray(z, dtype=np.float64)
    if q == s:
        return np.full_like(z, float(s))
    return s * stats.beta.sf(z, q, s - q)


def surrogate_weights(n: int, s: int, q: int) -> np.ndarray:
    """Weights w_j = gamma_j / q of the surrogate loss L_q = sum_j w_j L_(j); they sum to 1."""
    return orderdp_inclusion(n, s, q) / q
