"""Per-epoch views: stability over seeds by training phase, subset Jaccard, accuracy curves."""

from __future__ import annotations

import numpy as np
import pandas as pd

from prunebench.reports.frame import (
    CELL,
    EPOCH_SAMPLES,
    EPOCH_TRAIN_SECONDS,
    EPOCHS_RUN,
    EVAL_TRAIN_SECONDS,
    TEST_ACCURACY,
    logged_budget,
)

PHASES = (("0-30%", 30), ("30-50%", 50), ("50-70%", 70), ("70-100%", 100))
"""Training-progress phases of the paper's Table 9, by their upper bound in percent."""
FINAL = "final"


def phase_of(step: np.ndarray, epochs_run: np.ndarray) -> np.ndarray:
    """Phase index (0..3) of each epoch from progress (step + 1) / epochs_run, in exact integers.

    Phases are right-closed: with 10 epochs, epochs 0-2 (30%) are phase 0, 3-4 phase 1,
    5-6 phase 2 and 7-9 phase 3. Integer arithmetic keeps 3/10 exactly on its boundary.
    """
    percent = 100 * (np.asarray(step, dtype=np.int64) + 1)
    total = np.asarray(epochs_run, dtype=np.int64)
    bounds = np.array([bound for _, bound in PHASES[:-1]], dtype=np.int64)
    return (percent[:, None] > bounds[None, :] * total[:, None]).sum(axis=1)


_PHASE_SLACK = 1e-9  # 3 / 10 must stay on the 30% boundary whatever the float rounding


def phase_of_progress(progress: np.ndarray) -> np.ndarray:
    """Phase index (0..3) of each epoch from the budget progress in [0, 1] at its end; phases
    are right-closed (progress 0.3 is still in 0-30%)."""
    bounds = np.array([bound / 100 for _, bound in PHASES[:-1]])
    values = np.asarray(progress, dtype=np.float64)
    return (values[:, None] > bounds[None, :] + _PHASE_SLACK).sum(axis=1)


def epoch_end_progress(logged: pd.DataFrame, usable: pd.DataFrame) -> np.ndarray:
    """Budget progress at the end of each row's epoch (``logged``: history rows of usable runs),
    as the LR schedule and Table 11 follow it: samples trained / S under ``samples:S``, training
    seconds / T under ``time:T``, else (step + 1) / epochs_run (the run's epochs, not truncated:
    E for a finished ``epochs:E`` run)."""
    runs = usable.drop_duplicates("run_id").set_index("run_id")
    budget = runs["budget"] if "budget" in runs else pd.Series("", index=runs.index)
    # One parse per distinct budget (a handful per report), spread over the history's rows.
    texts = budget.astype(str)
    parsed = {text: logged_budget(text) for text in texts.unique()}
    kinds = {text: "" if b is None else b.kind for text, b in parsed.items()}
    amounts = {text: np.nan if b is None else float(b.amount) for text, b in parsed.items()}
    kind = texts.map(kinds).reindex(logged["run_id"]).to_numpy()
    amount = texts.map(amounts).reindex(logged["run_id"]).to_numpy(dtype=np.float64)
    epochs = _epochs_float(logged, usable).reindex(logged["run_id"]).to_numpy()
    step = logged["step"].to_numpy(dtype=np.float64) + 1
    progress = step / epochs
    used = {  # the budget's clock at each epoch end (epochs: step / epochs_run, as set above)
        "samples": _column(logged, EPOCH_SAMPLES),
        "time": _column(logged, EPOCH_TRAIN_SECONDS),
    }
    for name, values in used.items():
        chosen = (kind == name) & np.isfinite(amount) & np.isfinite(values)
        progress = np.where(chosen, values / np.where(chosen, amount, 1.0), progress)
    return np.clip(progress, 0.0, 1.0)


def _column(logged: pd.DataFrame, name: str) -> np.ndarray:
    if name not in logged:
        return np.full(len(logged), np.nan)
    return logged[name].to_numpy(dtype=np.float64)


def _epochs_float(logged: pd.DataFrame, usable: pd.DataFrame) -> pd.Series:
    steps = logged.groupby("run_id")["step"].max() + 1
    summary = usable.set_index("run_id").get(EPOCHS_RUN, pd.Series(dtype=float))
    return summary.reindex(steps.index).fillna(steps).astype(np.float64)


def per_run_phases(histories: pd.DataFrame, usable: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Within each run, the mean of ``metric`` over each phase's epochs, plus its final value."""
    logged = histories.dropna(subset=[metric])
    logged = logged[logged["run_id"].isin(usable["run_id"])]
    if logged.empty:
        return pd.DataFrame(columns=["run_id", *[name for name, _ in PHASES], FINAL])
    # Phases by budget progress, the same progress as the LR schedule and Table 11's points.
    phase = phase_of_progress(epoch_end_progress(logged, usable))
    names = np.array([name for name, _ in PHASES])
    means = logged.assign(phase=names[phase]).pivot_table(
        index="run_id", columns="phase", values=metric, aggfunc="mean"
    )
    final = logged.sort_values("step").groupby("run_id")[metric].last()
    table = means.reindex(columns=list(names)).assign(**{FINAL: final})
    return table.rename_axis(columns=None).reset_index()


def over_seeds(runs: pd.DataFrame, usable: pd.DataFrame, columns: list[str]) -> pd.DataFrame:
    """Per cell: ``n_seeds`` and, for each column of the per-run frame ``runs``,
    ``<column>_mean`` and ``<column>_std`` (sample std, ddof=1) over the cell's runs."""
    merged = runs.merge(usable[["run_id", *CELL]], on="run_id")
    grouped = merged.groupby(CELL, sort=True, dropna=False)[columns]
    means = grouped.mean().add_suffix("_mean")
    stds = grouped.std(ddof=1).add_suffix("_std")
    counts = grouped.size().rename("n_seeds")
    table = pd.concat([counts, means, stds], axis=1)
    ordered = ["n_seeds"] + [f"{c}_{s}" for c in columns for s in ("mean", "std")]
    return table[ordered].reset_index()


def phase_table(histories: pd.DataFrame, usable: pd.DataFrame, metric: str) -> pd.DataFrame:
    """Table 9 layout: per cell and phase, mean and std (ddof=1) over seeds of the run means.

    Columns: CELL, n_seeds, then ``<phase>_mean`` and ``<phase>_std`` for every phase and final.
    """
    runs = per_run_phases(histories, usable, metric)
    if runs.empty:
        return pd.DataFrame()
    return over_seeds(runs, usable, [name for name, _ in PHASES] + [FINAL])


def tta_curves(histories: pd.DataFrame, usable: pd.DataFrame) -> pd.DataFrame:
    """Accuracy vs cumulative training seconds per cell: mean and std over seeds at each epoch.

    Seeds are aligned by epoch (their clocks differ), so a point is (mean training seconds,
    mean accuracy) over the seeds that ran that epoch; ``n_seeds`` says how many did.
    """
    logged = histories.dropna(subset=[TEST_ACCURACY, EPOCH_TRAIN_SECONDS])
    if EVAL_TRAIN_SECONDS in logged:  # the evaluation's own clock (it may be mid-epoch)
        logged = logged.assign(
            train_seconds=logged[EVAL_TRAIN_SECONDS].fillna(logged[EPOCH_TRAIN_SECONDS])
        )
    merged = logged.merge(usable[["run_id", *CELL]], on="run_id")
    if merged.empty:
        return pd.DataFrame()
    grouped = merged.groupby([*CELL, "step"], sort=True, dropna=False)
    curves = grouped.agg(
        train_seconds=("train_seconds", "mean"),
        accuracy_mean=(TEST_ACCURACY, "mean"),
        accuracy_std=(TEST_ACCURACY, "std"),
        n_seeds=("run_id", "nunique"),
    ).reset_index()
    curves["accuracy_std"] = curves["accuracy_std"].fillna(0.0)  # one seed: no band
    return curves
