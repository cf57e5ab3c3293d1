"""Ranks with family-wise error control: all pairwise tests at a ratio, Holm-corrected, shown as
a compact letter display.

Every pair of pruners at one realized ratio gets a two-sided Welch test (each side's spread
floored at one test image, as the lossless rule does); Holm's step-down correction
(:func:`holm_reject`, checked against statsmodels' ``multipletests``) keeps the chance of
ANY false difference among them at most ``level``. A pruner's rank is 1 + the number of pruners
significantly better than it, so two
pruners share a rank unless the tests separate them. Letters (Piepho's insert-absorb algorithm)
make the groups transitive to read: two pruners that share a letter are not significantly
different; "a" is the group of the best mean.
"""

from __future__ import annotations

import itertools
import string
from collections.abc import Hashable, Mapping, Sequence
from dataclasses import dataclass

import numpy as np

from prunebench.stats.inference import (
    DEFAULT_LEVEL,
    DEFAULT_RESOLUTION,
    MIN_SEEDS,
    welch_bounds,
)

RANK_RULE = "pairwise Welch tests, Holm-corrected (family-wise level {level:g})"
"""How ranks are decided, for reports."""


@dataclass(frozen=True)
class Ranked:
    """One pruner's place among the others at its ratio."""

    rank: int
    """1 + the number of pruners significantly better (Holm)."""
    letters: str
    """Its compact-letter-display groups ("a", "ab", ...): shared letter = not different."""


def pairwise_p_values(
    samples: Mapping[Hashable, np.ndarray], resolution: float = DEFAULT_RESOLUTION
) -> dict[tuple[Hashable, Hashable], float]:
    """Two-sided Welch p-value of every testable pair (both sides with >= 2 seeds)."""
    p_values = {}
    for a, b in itertools.combinations(samples, 2):
        x, y = np.asarray(samples[a], float), np.asarray(samples[b], float)
        if x.size < MIN_SEEDS or y.size < MIN_SEEDS:
            continue
        welch = welch_bounds(x, y, resolution)
        p_values[(a, b)] = min(1.0, 2 * min(welch.p_above(0.0), 1 - welch.p_above(0.0)))
    return p_values


def holm_differences(
    samples: Mapping[Hashable, Sequence[float] | np.ndarray],
    level: float = DEFAULT_LEVEL,
    resolution: float = DEFAULT_RESOLUTION,
) -> set[tuple[Hashable, Hashable]]:
    """The pairs (better, worse) that differ under Holm's correction at family-wise ``level``."""
    arrays = {key: np.asarray(values, float) for key, values in samples.items()}
    p_values = pairwise_p_values(arrays, resolution)
    if not p_values:
        return set()
    pairs = list(p_values)
    reject = holm_reject(np.array([p_values[pair] for pair in pairs]), level)
    return {
        (a, b) if arrays[a].mean() > arrays[b].mean() else (b, a)
        for (a, b), rejected in zip(pairs, reject, strict=True)
        if rejected
    }


def holm_reject(p_values: np.ndarray, level: float) -> np.ndarray:
    """Holm's step-down rejections at family-wise ``level``: the i-th smallest p (from 0) is
    rejected while every p up to it is at most level / (m - i). The same decisions as
    statsmodels' ``multipletests(method="holm")`` (tests/test_stats_decide.py checks it), which
    runs a full garbage collection on every call (25-100 ms; a report ranks every ratio)."""
    m = p_values.size
    order = np.argsort(p_values, kind="stable")
    passes = p_values[order] <= level / (m - np.arange(m))
    reject = np.zeros(m, dtype=bool)
    reject[order] = np.cumprod(passes).astype(bool)  # stop at the first that fails
    return reject


def rank_groups(
    samples: Mapping[Hashable, Sequence[float] | np.ndarray],
    level: float = DEFAULT_LEVEL,
    resolution: float = DEFAULT_RESOLUTION,
) -> dict[Hashable, Ranked]:
    """Rank and letters of every pruner in ``samples`` (see the module docstring)."""
    means = {key: float(np.mean(values)) for key, values in samples.items()}
    order = sorted(means, key=lambda key: -means[key])
    different = holm_differences(samples, level, resolution)
    letters = compact_letters(order, {frozenset(pair) for pair in different})
    return {
        key: Ranked(1 + sum((other, key) in different for other in order), letters[key])
        for key in order
    }


def compact_letters(order: Sequence[Hashable], different: set[frozenset]) -> dict[Hashable, str]:
    """Piepho's insert-absorb letters for ``order`` (best first) given the differing pairs."""
    groups: list[set] = [set(order)]
    for pair in different:
        a, b = tuple(pair)
        split = []
        for group in groups:
            if a in group and b in group:
                split += [group - {a}, group - {b}]
            else:
                split.append(group)
        # absorb: drop a group contained in another (and duplicates)
        groups = [
            g
            for i, g in enumerate(split)
            if g
            and not any(
                (g < other) or (g == other and j < i) for j, other in enumerate(split) if j != i
            )
        ]
    position = {key: i for i, key in enumerate(order)}
    groups.sort(key=lambda g: sorted(position[k] for k in g))
    names = _letter_names(len(groups))
    return {
        key: "".join(name for name, group in zip(names, groups, strict=True) if key in group)
        for key in order
    }


def _letter_names(count: int) -> list[str]:
    letters = string.ascii_lowercase
    names = list(letters)
    while len(names) < count:  # aa, ab, ... beyond 26 groups
        names += [a + b for a in letters for b in letters]
    return names[:count]
