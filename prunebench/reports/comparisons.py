"""Runs of the suite's extra comparisons: same-compute full data, and every pruner at equal time.

A same-compute or equal-time run trains its own budget (``samples:`` or ``time:``), so its
``budget`` is not the section's. :func:`assign_sections` gives each such run the budget of the
ordinary ("main") section it serves, so the report compares it within that section.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from prunebench import record
from prunebench.bench.budgets import SAME_COMPUTE, plan_sample_passes
from prunebench.reports.frame import (
    REFERENCE,
    SECTION,
    TRAIN_SECONDS,
    is_full,
    logged_budget,
    usable_runs,
)

SAME_COMPUTE_LABEL = f"{REFERENCE} (same compute)"
"""Leaderboard label of full data trained on the sample passes of a prune ratio's runs."""
_RELATIVE_MATCH = 0.02
"""A budget implied by a main section matches a run's within this relative difference."""


def of_comparison(train: pd.DataFrame, comparison: str) -> pd.DataFrame:
    """The training runs serving ``comparison`` (untagged runs count as main)."""
    if train.empty:
        return train
    return train[train["comparison"] == comparison]


def _amount(budget: str) -> float:
    """The amount of a concrete logged budget; NaN for a symbolic one."""
    parsed = logged_budget(budget)
    return float("nan") if parsed is None else float(parsed.amount)


def _same_compute_samples(budget: str, train_size: float, ratio: float) -> float:
    """Sample passes of full data matching prune ratio ``ratio`` under a main ``budget``
    (budgets.plan_sample_passes; NaN under a time budget, where they are measured)."""
    parsed = logged_budget(budget)
    if parsed is None or pd.isna(train_size):
        return float("nan")
    passes = plan_sample_passes(parsed, int(train_size), ratio)
    return float("nan") if passes is None else float(passes)


def _closest(candidates: pd.DataFrame, wanted: float, have: float) -> pd.Series | None:
    """The candidate section whose implied amount ``wanted`` is closest to ``have``."""
    if len(candidates) == 1:
        return candidates.iloc[0]
    error = (candidates[wanted] - have).abs() / max(abs(have), 1e-12)
    error = error[error <= _RELATIVE_MATCH]
    return candidates.loc[error.idxmin()] if len(error) else None


def assign_sections(runs: pd.DataFrame, main: pd.DataFrame) -> pd.DataFrame:
    """``runs`` (same-compute or equal-time) with ``budget`` set to the main section they serve.

    Among the main sections of the same dataset and model: the only one, else the one whose
    implied budget (same compute: budgets.plan_sample_passes at p; equal time: the fraction
    of its full-data runs' mean training seconds) matches the run's. The run's own budget is kept
    as ``run_budget``; a run no section matches keeps its budget (a section of its own).
    """
    if runs.empty:
        return runs.assign(run_budget=pd.Series(dtype=object))
    full = usable_runs(main[is_full(main)]) if not main.empty else main
    seconds = (
        full.groupby(SECTION)[TRAIN_SECONDS].mean()
        if TRAIN_SECONDS in full
        else pd.Series(dtype=float)
    )
    sections = main.groupby(SECTION, sort=True)["train_size"].max().reset_index()
    budgets = []
    for _, run in runs.iterrows():
        candidates = sections[
            (sections["dataset"] == run["dataset"]) & (sections["model"] == run["model"])
        ].copy()
        have = _amount(run["budget"])
        if run["comparison"] == record.COMPARISON_SAME_COMPUTE and str(run["budget"]).startswith(
            f"{SAME_COMPUTE}:"
        ):  # resolved from the pruned runs of a time budget's section: any of them matches
            candidates = candidates[candidates["budget"].astype(str).str.startswith("time:")]
            have = run["matched_prune_ratio"]
            candidates["wanted"] = have
        elif run["comparison"] == record.COMPARISON_SAME_COMPUTE:
            candidates["wanted"] = [
                _same_compute_samples(b, n, run["matched_prune_ratio"])
                for b, n in zip(candidates["budget"], candidates["train_size"], strict=True)
            ]
        else:
            have = run["time_budget_seconds"] if pd.notna(run["time_budget_seconds"]) else have
            candidates["wanted"] = [
                run["time_budget_fraction"] * seconds.get(tuple(key), np.nan)
                for key in candidates[SECTION].itertuples(index=False)
            ]
        best = _closest(candidates, "wanted", have) if len(candidates) else None
        budgets.append(run["budget"] if best is None else best["budget"])
    return runs.assign(run_budget=runs["budget"], budget=budgets)


def same_compute_cells(same: pd.DataFrame) -> pd.DataFrame:
    """Same-compute full runs as leaderboard cells: their own label, at their matched ratio."""
    if same.empty:
        return same
    return same.assign(
        pruner_label=SAME_COMPUTE_LABEL,
        target_prune_ratio=same["matched_prune_ratio"].round(9),
    )
