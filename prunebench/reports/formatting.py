"""Table-cell formatters shared by the report's sections: percents, numbers, verdicts, spreads.

Every formatter shows a missing value as "—", so a table never prints NaN.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from prunebench.stats import MIN_SEEDS

DASH = "—"


def pct(value: float, digits: int = 1) -> str:
    """A fraction as percent with ``digits`` decimals, e.g. 0.3 -> "30.0"."""
    return DASH if pd.isna(value) else f"{100.0 * value:.{digits}f}"


def number(value: float, fmt: str) -> str:
    """``value`` formatted with ``fmt``."""
    return DASH if pd.isna(value) else format(value, fmt)


def ratio_pct(values: pd.Series) -> pd.Series:
    """A column of prune ratios as percent with one decimal (never missing)."""
    return (100 * values).map("{:.1f}".format)


def mean_std(mean: float, std: float, digits: int, scale: float = 1.0) -> str:
    """'mean ± std' (just the mean when the std is missing)."""
    if pd.isna(mean):
        return DASH
    if pd.isna(std):
        return f"{scale * mean:.{digits}f}"
    return f"{scale * mean:.{digits}f} ± {scale * std:.{digits}f}"


def rank_text(rank: float, letters: str) -> str:
    """E.g. "2 (ab)": rank 2, and the letter groups it shares with others."""
    return DASH if pd.isna(rank) else f"{int(rank)} ({letters})"


def verdict_text(verdict, lower: float, needed: float, n: int, n_reference: int) -> str:
    """E.g. "lossless: loses ≤ 0.12 (5 vs 5 seeds; 3 decide)" or "undecided: too few seeds
    (1 vs 3)"; the bound is the one-sided 95% lower bound of pruned - reference, in points."""
    if pd.isna(verdict):
        return DASH
    if min(n, n_reference) < MIN_SEEDS:
        return f"{verdict}: too few seeds to decide ({n} vs {n_reference})"
    bound = f"loses ≤ {-100 * lower:.2f}" if lower < 0 else f"gains ≥ {100 * lower:.2f}"
    decide = "∞" if not np.isfinite(needed) else f"{int(needed)}"
    return f"{verdict}: {bound} ({n} vs {n_reference} seeds; {decide} decide)"


def verdict_texts(table: pd.DataFrame, prefix: str, reference_seeds: str) -> list[str]:
    """:func:`verdict_text` of each row's ``<prefix>_*`` comparison columns (compare.py)."""
    return [
        verdict_text(v, low, need, n, m)
        for v, low, need, n, m in zip(
            table[f"{prefix}_verdict"],
            table[f"{prefix}_lower_bound"],
            table[f"{prefix}_seeds_needed"],
            table["n_seeds"],
            table[reference_seeds],
            strict=True,
        )
    ]


def dataset_model_budget(frame: pd.DataFrame, columns: list[str]) -> pd.Series:
    """Each row's section as 'dataset / model / budget'."""
    return frame[columns].astype(str).agg(" / ".join, axis=1)
