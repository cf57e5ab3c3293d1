"""Table 6 from Optuna searches: the largest lossless prune ratio each search found."""

from __future__ import annotations

import numpy as np
import pandas as pd

from prunebench import record

SEARCH_KEY = ["dataset", "model", "pruner"]


def _column(runs: pd.DataFrame, name: str) -> pd.Series:
    return runs[name] if name in runs else pd.Series(np.nan, index=runs.index)


def search_results(runs: pd.DataFrame) -> pd.DataFrame:
    """One row per search run (finished or not): its pruner, largest lossless ratio, best params."""
    searches = runs[runs["kind"] == record.KIND_SEARCH]
    if searches.empty:
        return pd.DataFrame()
    trials = runs[runs["kind"] == record.KIND_TRIAL]
    trial_counts = trials.groupby("parent_run_id").size()
    lossless = _column(trials, "metrics.lossless").fillna(0) > 0.5
    lossless_counts = trials[lossless].groupby("parent_run_id").size()
    # The contract says params; a search that improves over time logs them as tags: read both.
    best_columns = sorted(
        c
        for c in searches.columns
        if c.startswith((f"params.{record.TAG_BEST_PREFIX}", f"tags.{record.TAG_BEST_PREFIX}"))
    )
    table = pd.DataFrame(
        {
            "dataset": _column(searches, "params.search_dataset").fillna(searches["dataset"]),
            "model": _column(searches, "params.search_model").fillna(searches["model"]),
            "pruner": _column(searches, "params.search_pruner").fillna(searches["pruner"]),
            "status": searches["status"],
            "failure_reason": searches["failure_reason"],
            "seeds": _column(searches, "params.search_seeds"),
            "tolerance": pd.to_numeric(_column(searches, "params.tolerance"), errors="coerce"),
            "full_accuracy_mean": _column(searches, "metrics.full_accuracy_mean"),
            "full_accuracy_std": _column(searches, "metrics.full_accuracy_std"),
            "largest_lossless_ratio": _column(searches, "metrics.largest_lossless_ratio"),
            "trials": searches["run_id"].map(trial_counts).fillna(0).astype(int),
            "lossless_trials": searches["run_id"].map(lossless_counts).fillna(0).astype(int),
            "best_params": searches[best_columns].apply(
                lambda row: ", ".join(
                    f"{k.split('.best.', 1)[1]}={v}" for k, v in row.items() if pd.notna(v)
                ),
                axis=1,
            )
            if best_columns
            else "",
            "start_time": searches["start_time"],
            "run_name": searches["run_name"],
            "run_id": searches["run_id"],
        }
    )
    return table.sort_values([*SEARCH_KEY, "start_time"], kind="stable").reset_index(drop=True)


def _cell_text(row: pd.Series) -> str:
    if row["status"] != "FINISHED":
        return row["status"]
    ratio = row["largest_lossless_ratio"]
    return "none lossless" if pd.isna(ratio) else f"{100 * ratio:.1f}"


def lossless_table(results: pd.DataFrame) -> pd.DataFrame:
    """Table 6 layout: rows dataset / model, a column per pruner, the latest search's answer (%)."""
    if results.empty:
        return pd.DataFrame()
    # The latest finished search answers; a failed one shows only when nothing finished.
    ranked = results.assign(_finished=results["status"] == "FINISHED")
    latest = ranked.sort_values(["_finished", "start_time"], kind="stable").drop_duplicates(
        SEARCH_KEY, keep="last"
    )
    cells = latest.assign(value=latest.apply(_cell_text, axis=1))
    table = cells.pivot(index=["dataset", "model"], columns="pruner", values="value")
    return table.fillna("—").rename_axis(columns=None).reset_index()
