"""The "lossless" rule shared by the report and the search: within seed noise of full data."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

DEFAULT_MIN_TOLERANCE = 0.001
"""0.1 accuracy points (accuracies are fractions): the paper's "typically within 0.1%"."""


def lossless_tolerance(
    full_accuracies: Sequence[float] | np.ndarray, min_tolerance: float = DEFAULT_MIN_TOLERANCE
) -> float:
    """max(min_tolerance, sample std (ddof=1) of the full-data seeds; 0 with a single seed)."""
    full = np.asarray(full_accuracies, dtype=np.float64)
    if full.size == 0:
        raise ValueError("the lossless tolerance needs at least one full-data accuracy")
    spread = float(np.std(full, ddof=1)) if full.size > 1 else 0.0
    return max(float(min_tolerance), spread)


def is_lossless(
    accuracies: Sequence[float] | np.ndarray,
    full_accuracies: Sequence[float] | np.ndarray,
    *,
    min_tolerance: float = DEFAULT_MIN_TOLERANCE,
    tolerance: float | None = None,
) -> bool:
    """True iff mean(accuracies) >= mean(full_accuracies) - tolerance (default: the rule above)."""
    acc = np.asarray(accuracies, dtype=np.float64)
    full = np.asarray(full_accuracies, dtype=np.float64)
    if acc.size == 0 or full.size == 0:
        raise ValueError("the lossless rule needs at least one accuracy on each side")
    if tolerance is None:
        tolerance = lossless_tolerance(full, min_tolerance)
    # A mean that equals the bound up to float rounding (e.g. 0.902 vs 0.91 - 0.008) is lossless.
    return bool(acc.mean() >= full.mean() - tolerance - 1e-12)
