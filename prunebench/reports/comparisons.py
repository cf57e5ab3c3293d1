"""Runs of the suite's extra comparisons: same-compute full data, and every pruner at equal time.

A same-compute or equal-time run trains its own budget (``samples:`` or ``time:``), so its
``budget`` is not the section's. :func:`assign_sections` gives each such run the budget of the
ordinary ("main") section it serves, so the report compares it within that section.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from prunebench import record
from prunebench.bench.budgets import SAME_COMPUTE, Budget, plan_sample_passes
from prunebench.reports.leaderboard import (
    REFERENCE,
    SECTION,
    THROUGHPUT_FACTOR,
    is_full,
    is_reference,
    throughput_ratios,
    usable_runs,
)
from prunebench.stats import lossless_test, mean_ci, rank_groups

SAME_COMPUTE_LABEL = f"{REFERENCE} (same compute)"
"""Leaderboard label of full data trained on the sample passes of a prune ratio's runs."""
_RELATIVE_MATCH = 0.02
"""A budget implied by a main section matches a run's within this relative difference."""


def of_comparison(train: pd.DataFrame, comparison: str) -> pd.DataFrame:
    """The training runs serving ``comparison`` (untagged runs count as main)."""
    if train.empty:
        return train
    return train[train["comparison"] == comparison]


def _amount(budget: str) -> tuple[str, float]:
    kind, _, amount = str(budget).partition(":")
    try:
        return kind, float(amount)
    except ValueError:
        return kind, float("nan")


def _same_compute_samples(budget: str, train_size: float, ratio: float) -> float:
    """Sample passes of full data matching prune ratio ``ratio`` under a main ``budget``
    (budgets.plan_sample_passes; NaN under a time budget, where they are measured)."""
    kind, amount = _amount(budget)
    if kind not in ("epochs", "samples") or not np.isfinite(amount) or pd.isna(train_size):
        return float("nan")
    passes = plan_sample_passes(Budget(kind, amount), int(train_size), ratio)
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
        full.groupby(SECTION)["metrics.train_seconds_total"].mean()
        if "metrics.train_seconds_total" in full
        else pd.Series(dtype=float)
    )
    sections = main.groupby(SECTION, sort=True)["train_size"].max().reset_index()
    budgets = []
    for _, run in runs.iterrows():
        candidates = sections[
            (sections["dataset"] == run["dataset"]) & (sections["model"] == run["model"])
        ].copy()
        _, have = _amount(run["budget"])
        if run["comparison"] == record.COMPARISON_SAME_COMPUTE and str(run["budget"]).startswith(
            f"{SAME_COMPUTE}:"
        ):  # resolved from the pruned runs of a time budget's section
            candidates = candidates[candidates["budget"].astype(str).str.startswith("time:")]
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


EQUAL_TIME_KEY = [*SECTION, "time_budget_fraction"]
"""An equal-time comparison: a section and a fraction of its full-data training time."""


def equal_time_table(
    runs: pd.DataFrame, *, margin: float, level: float, confidence: float = 0.95
) -> pd.DataFrame:
    """Per section and time fraction, every pruner's accuracy (mean, CI), verdict and rank.

    ``runs`` are equal-time training runs already given their section (:func:`assign_sections`).
    The verdict is the lossless test against full data trained for the same seconds; pruners
    ranks and letters come from Holm-corrected pairwise tests (stats.rank_groups).
    """
    usable = usable_runs(runs) if not runs.empty else runs
    if usable.empty:
        return pd.DataFrame()
    throughput = throughput_ratios(usable)
    rows = []
    for key, group in usable.groupby(EQUAL_TIME_KEY, sort=True, dropna=False):
        full = group[is_reference(group)]
        full_acc = full["metrics.final_test_accuracy"].to_numpy(dtype=float)
        samples = {}
        for (label, ratio), cell in group.groupby(
            ["pruner_label", "target_prune_ratio"], sort=True, dropna=False
        ):
            acc = cell["metrics.final_test_accuracy"].to_numpy(dtype=float)
            samples[(label, ratio)] = acc
            ci = mean_ci(acc, confidence)
            row = {
                **dict(zip(EQUAL_TIME_KEY, key, strict=True)),
                "pruner_label": label,
                "target_prune_ratio": ratio,
                "is_full": bool(is_reference(cell).any()),
                "time_budget_seconds": float(cell["time_budget_seconds"].mean()),
                "train_seconds_mean": _mean(cell, "metrics.train_seconds_total"),
                "realized_prune_ratio_mean": _mean(cell, "metrics.realized_prune_ratio"),
                "accuracy_mean": ci.mean,
                "accuracy_ci_low": ci.low,
                "accuracy_ci_high": ci.high,
                "n_seeds": ci.n,
                "full_n_seeds": int(full_acc.size),
                # Runs whose throughput is off the median (leaderboard.THROUGHPUT_FACTOR):
                # their seconds measured the machine, so this row's comparison is suspect.
                "time_flag_runs": _off(throughput.reindex(cell["run_id"]).dropna()),
            }
            if full_acc.size and not row["is_full"]:
                verdict = lossless_test(acc, full_acc, margin=margin, level=level)
                row.update(
                    delta_to_full=verdict.difference,
                    lossless_verdict=verdict.verdict,
                    lossless_p_value=verdict.p_value,
                    lossless_sentence=verdict.sentence,
                    lossless_lower_bound=verdict.lower_bound,
                    lossless_seeds_needed=verdict.seeds_needed,
                )
            rows.append(row)
        ranks = rank_groups({k: v for k, v in samples.items() if v.size}, level)
        for row in rows[len(rows) - len(samples) :]:
            place = ranks.get((row["pruner_label"], row["target_prune_ratio"]))
            row["rank"] = np.nan if place is None else place.rank
            row["letters"] = "" if place is None else place.letters
    table = pd.DataFrame(rows)
    for column in (
        "delta_to_full",
        "lossless_verdict",
        "lossless_p_value",
        "lossless_sentence",
        "lossless_lower_bound",
        "lossless_seeds_needed",
    ):
        if column not in table:
            table[column] = np.nan
    order = [*EQUAL_TIME_KEY, "rank", "accuracy_mean", "pruner_label"]
    ascending = [True] * len(EQUAL_TIME_KEY) + [True, False, True]
    return table.sort_values(order, ascending=ascending, kind="stable").reset_index(drop=True)


def _off(ratios: pd.Series) -> int:
    return int(((ratios > THROUGHPUT_FACTOR) | (ratios < 1.0 / THROUGHPUT_FACTOR)).sum())


def _mean(runs: pd.DataFrame, column: str) -> float:
    return float(runs[column].mean()) if column in runs and len(runs) else np.nan
