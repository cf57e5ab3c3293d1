"""The "lossless" rule shared by the report and the search (defined in ``prunebench.stats``).

A pruned cell is lossless when a one-sided Welch non-inferiority test of its seed accuracies
against full data's, at a margin (default 0.1 accuracy points) and level (default 0.05), says so;
see :func:`prunebench.stats.lossless_test` for the verdicts and the rules for too few seeds.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from prunebench.stats.inference import (
    DEFAULT_LEVEL,
    DEFAULT_MARGIN,
    NonInferiority,
    lossless_test,
)

DEFAULT_MIN_TOLERANCE = DEFAULT_MARGIN
"""The default non-inferiority margin, 0.1 accuracy points (the report's ``--min-tolerance``)."""


def lossless_tolerance(
    full_accuracies: Sequence[float] | np.ndarray, min_tolerance: float = DEFAULT_MIN_TOLERANCE
) -> float:
    """The margin the lossless test uses: ``min_tolerance`` itself, whatever the full-data seeds.

    (It was once the full-data seeds' spread; the test now accounts for the spread itself.)
    """
    if np.asarray(full_accuracies).size == 0:
        raise ValueError("the lossless rule needs at least one full-data accuracy")
    return float(min_tolerance)


def lossless_verdict(
    accuracies: Sequence[float] | np.ndarray,
    full_accuracies: Sequence[float] | np.ndarray,
    *,
    min_tolerance: float = DEFAULT_MIN_TOLERANCE,
    level: float = DEFAULT_LEVEL,
) -> NonInferiority:
    """The full verdict ("lossless", "lossy" or "undecided") with its p-value and sentence."""
    acc = np.asarray(accuracies, dtype=np.float64)
    full = np.asarray(full_accuracies, dtype=np.float64)
    if acc.size == 0 or full.size == 0:
        raise ValueError("the lossless rule needs at least one accuracy on each side")
    return lossless_test(acc, full, margin=min_tolerance, level=level)


def is_lossless(
    accuracies: Sequence[float] | np.ndarray,
    full_accuracies: Sequence[float] | np.ndarray,
    *,
    min_tolerance: float = DEFAULT_MIN_TOLERANCE,
    level: float = DEFAULT_LEVEL,
) -> bool:
    """True iff the non-inferiority verdict is "lossless" (undecided counts as not lossless)."""
    verdict = lossless_verdict(
        accuracies, full_accuracies, min_tolerance=min_tolerance, level=level
    )
    return verdict.lossless
