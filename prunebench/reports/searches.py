"""Table 6 from Optuna searches: the largest lossless prune ratio each search found.

The report re-decides every trial with the same rule the search used (prunebench.stats'
non-inferiority test) from the trial's own training runs and the full-data runs of the same
seeds, so a disagreement between the search's verdict and the report's would show.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from prunebench import record
from prunebench.reports.compare import compare_cells
from prunebench.reports.frame import FINAL_ACCURACY, is_full, usable_runs
from prunebench.stats import DEFAULT_LEVEL, DEFAULT_MARGIN

SEARCH_KEY = ["dataset", "model", "pruner"]


def _column(runs: pd.DataFrame, name: str) -> pd.Series:
    return runs[name] if name in runs else pd.Series(np.nan, index=runs.index)


def _first_of(runs: pd.DataFrame, *names: str) -> pd.Series:
    """Per run, the first of the columns ``names`` that holds a value."""
    values = pd.Series(pd.NA, index=runs.index, dtype=object)
    for name in names:
        values = values.where(values.notna(), _column(runs, name).astype(object))
    return values


def trial_verdicts(
    runs: pd.DataFrame,
    full: pd.DataFrame,
    *,
    margin: float = DEFAULT_MARGIN,
    level: float = DEFAULT_LEVEL,
) -> pd.DataFrame:
    """Each search trial re-decided by the report: its seeds' accuracies (its nested training
    runs) against the finished full-data runs ``full`` of the same dataset, model and seeds."""
    trials = runs[runs["kind"] == record.KIND_TRIAL]
    searches = runs[runs["kind"] == record.KIND_SEARCH].set_index("run_id")
    nested = runs[
        runs["kind"].isin((record.KIND_SEARCH_TRAIN, record.KIND_TRAIN))
        & (runs["status"] == "FINISHED")
        & runs["parent_run_id"].isin(set(trials["run_id"]))
    ]
    rows = []
    for _, trial in trials.iterrows():
        seeds = nested[nested["parent_run_id"] == trial["run_id"]]
        if seeds.empty or trial["parent_run_id"] not in searches.index:
            continue
        search = searches.loc[trial["parent_run_id"]]
        dataset = _param(search, "search_dataset", search["dataset"])
        model = _param(search, "search_model", search["model"])
        budget = _param(search, "budget", "")
        reference = full[(full["dataset"] == dataset) & (full["model"] == model)]
        if budget:
            reference = reference[reference["budget"] == budget]
        reference = reference[reference["seed"].isin(set(seeds["seed"]))]
        accuracies = seeds[FINAL_ACCURACY].to_numpy(dtype=float)
        full_acc = reference[FINAL_ACCURACY].to_numpy(dtype=float)
        verdict = compare_cells(accuracies, full_acc, margin=margin, level=level)
        logged = trial.get("metrics.lossless", np.nan)
        searched = pd.NA if pd.isna(logged) else bool(logged > 0.5)
        rows.append(
            {
                "search_run_id": trial["parent_run_id"],
                "trial_run_id": trial["run_id"],
                "prune_ratio": trial.get("metrics.prune_ratio", np.nan),
                "n_seeds": int(accuracies.size),
                "full_n_seeds": int(full_acc.size),
                "verdict": verdict.verdict if verdict else pd.NA,
                "p_value": verdict.p_value if verdict else np.nan,
                "search_lossless": searched,
                "agrees": (
                    pd.NA if verdict is None or pd.isna(searched) else verdict.lossless == searched
                ),
            }
        )
    return pd.DataFrame(rows)


def _param(run: pd.Series, name: str, default: str) -> str:
    value = run.get(f"params.{name}", np.nan)
    return default if pd.isna(value) else str(value)


def search_results(
    runs: pd.DataFrame,
    *,
    margin: float = DEFAULT_MARGIN,
    level: float = DEFAULT_LEVEL,
) -> pd.DataFrame:
    """One row per search run (finished or not): its pruner, largest lossless ratio, best params,
    and the largest ratio the report's own verdict finds lossless over the same trials."""
    searches = runs[runs["kind"] == record.KIND_SEARCH]
    if searches.empty:
        return pd.DataFrame()
    grid = runs[(runs["kind"] == record.KIND_TRAIN) & (runs["parent_run_id"] == "")]
    if "comparison" in grid:
        grid = grid[grid["comparison"] == record.COMPARISON_MAIN]
    full = usable_runs(grid[is_full(grid)]) if not grid.empty else grid
    verdicts = trial_verdicts(runs, full, margin=margin, level=level)
    if verdicts.empty:
        verdicts = pd.DataFrame(columns=["search_run_id", "prune_ratio", "verdict", "agrees"])
    decided = verdicts.groupby("search_run_id").size()
    report_best = (
        verdicts[verdicts["verdict"] == "lossless"].groupby("search_run_id")["prune_ratio"].max()
    )
    disagreements = verdicts[verdicts["agrees"] == False].groupby("search_run_id").size()  # noqa: E712
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
            "variant": _first_of(
                searches, "params.search_variant", "params.search_pruner", "pruner"
            ),
            "status": searches["status"],
            "failure_reason": searches["failure_reason"],
            "seeds": _column(searches, "params.search_seeds"),
            "tolerance": pd.to_numeric(_column(searches, "params.tolerance"), errors="coerce"),
            "full_accuracy_mean": _column(searches, "metrics.full_accuracy_mean"),
            "full_accuracy_std": _column(searches, "metrics.full_accuracy_std"),
            "largest_lossless_ratio": _column(searches, "metrics.largest_lossless_ratio"),
            "confirmed_lossless_ratio": _column(searches, "metrics.confirmed_lossless_ratio"),
            "confirmed_lower_bound": _column(searches, "metrics.confirmed_lower_bound"),
            "confirmed_seeds": _column(searches, "metrics.confirmed_seeds"),
            "confirm_attempts": _column(searches, "metrics.confirm_attempts"),
            "search_training_runs": _column(searches, "metrics.search_training_runs"),
            "trials": searches["run_id"].map(trial_counts).fillna(0).astype(int),
            "lossless_trials": searches["run_id"].map(lossless_counts).fillna(0).astype(int),
            "report_decided_trials": searches["run_id"].map(decided).fillna(0).astype(int),
            "report_largest_lossless_ratio": searches["run_id"].map(report_best),
            "verdict_disagreements": searches["run_id"].map(disagreements).fillna(0).astype(int),
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
    """The search's answer: confirmed on fresh seeds when it was, else labelled unconfirmed."""
    if row["status"] != "FINISHED":
        return row["status"]
    confirmed, ratio = row["confirmed_lossless_ratio"], row["largest_lossless_ratio"]
    if pd.notna(confirmed):
        return f"{100 * confirmed:.1f} (confirmed)"
    if pd.isna(ratio):
        return "none lossless"
    tried = row["confirm_attempts"]
    return f"{100 * ratio:.1f} (" + ("not confirmed" if tried > 0 else "unconfirmed") + ")"


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
