"""The one comparison of a cell's seeds with a reference cell's, for every table that decides.

The leaderboard (against full data and same-compute full data), the equal-time table (against
full data given the same seconds) and the search table (each trial re-decided) all call
:func:`compare_cells` and lay its result out with :func:`verdict_columns`, so a verdict means the
same thing in every table.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from prunebench.stats import MIN_SEEDS, lossless_test


def compare_cells(pruned: np.ndarray, reference: np.ndarray, *, margin: float, level: float):
    """The non-inferiority test of ``pruned``'s accuracies against ``reference``'s (one per seed);
    None when either side has no seed."""
    if not pruned.size or not reference.size:
        return None
    return lossless_test(pruned, reference, margin=margin, level=level)


def verdict_columns(prefix: str, verdict) -> dict:
    """``<prefix>_verdict``, ``_p_value``, ``_sentence``, the bounds and the seeds it rests on."""
    if verdict is None:
        return {
            f"{prefix}_verdict": pd.NA,
            f"{prefix}_p_value": np.nan,
            f"{prefix}_sentence": "",
            f"{prefix}_too_few_seeds": pd.NA,
            f"{prefix}_lower_bound": np.nan,
            f"{prefix}_upper_bound": np.nan,
            f"{prefix}_seeds_needed": np.nan,
        }
    return {
        f"{prefix}_verdict": verdict.verdict,
        f"{prefix}_p_value": verdict.p_value,
        f"{prefix}_sentence": verdict.sentence,
        f"{prefix}_too_few_seeds": min(verdict.n_pruned, verdict.n_full) < MIN_SEEDS,
        f"{prefix}_lower_bound": verdict.lower_bound,
        f"{prefix}_upper_bound": verdict.ci_high,
        f"{prefix}_seeds_needed": verdict.seeds_needed,
    }
