"""The paper's diagnostics, as its tables define them (REFERENCE.md sections 4 and 6).

- Table 8: Jaccard similarity of consecutive coresets at the 20/40/60/80/100% progress checkpoints
  (the per-epoch ``subset_jaccard`` of the first epoch whose end reaches each checkpoint).
- Table 9: per training phase (0-30, 30-50, 50-70, 70-100%, final), test accuracy mean ± std over
  seeds, next to "Grad ± Std": the gradient norm and its fluctuation WITHIN a run (the std of the
  per-step norms over the phase's steps), each averaged over seeds.
- Table 11: ``grad_cosine`` (the plan's weighted gradient vs the full-data gradient at the same
  weights) at the same checkpoints.

Every table has one row per cell (every pruner and ratio of the section) with its seed count.
Progress of an epoch is (epoch + 1) / epochs run, as for the phases (stability.py).
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from prunebench import record
from prunebench.reports.frame import (
    CELL,
    GRAD_ALIGNMENT_PROGRESS,
    GRAD_COSINE,
    GRAD_NORM,
    GRAD_NORM_STD,
    SUBSET_JACCARD,
    TEST_ACCURACY,
    TRAIN_STEPS,
)
from prunebench.reports.stability import (
    FINAL,
    PHASES,
    epoch_end_progress,
    over_seeds,
    per_run_phases,
    phase_of_progress,
)

CHECKPOINTS = record.PROGRESS_CHECKPOINTS
PROGRESS_TOLERANCE = 1e-9
"""``grad_alignment_progress`` is a float ratio: a checkpoint counts as reached within this."""
PHASE_NAMES = [name for name, _ in PHASES] + [FINAL]


def checkpoint_name(checkpoint: float) -> str:
    """Column name of a progress checkpoint, e.g. ``20%``."""
    return f"{100 * checkpoint:g}%"


def first_reaching(epochs: pd.DataFrame, progress: np.ndarray, checkpoint: float) -> pd.DataFrame:
    """Per run, the first epoch row (``epochs`` sorted by run and step) whose end ``progress``
    reaches ``checkpoint``, as Table 9's phases place epochs (budget progress, not epoch count)."""
    return epochs[progress >= checkpoint - PROGRESS_TOLERANCE].drop_duplicates("run_id")


def _usable_histories(histories: pd.DataFrame, usable: pd.DataFrame, metric: str) -> pd.DataFrame:
    if metric not in histories:
        return histories.iloc[0:0]
    logged = histories.dropna(subset=[metric])
    return logged[logged["run_id"].isin(usable["run_id"])]


def _checkpoint_frame(per_run: dict[str, pd.Series], usable: pd.DataFrame) -> pd.DataFrame:
    """Per cell, mean and std over seeds of per-run values at each checkpoint (CHECKPOINTS)."""
    runs = pd.DataFrame(per_run).rename_axis("run_id").reset_index()
    columns = [checkpoint_name(c) for c in CHECKPOINTS]
    runs = runs.reindex(columns=["run_id", *columns])
    return over_seeds(runs, usable, columns)


def jaccard_checkpoints(histories: pd.DataFrame, usable: pd.DataFrame) -> pd.DataFrame:
    """Table 8: per cell, ``subset_jaccard`` at each progress checkpoint, mean and std over seeds.

    A run's value at checkpoint c is the Jaccard of the first epoch whose end reaches c in budget
    progress (Table 9's rule: a budget-truncated last epoch ends at 100%) with the epoch before it
    (absent for epoch 0, so a run whose first epoch reaches c has none there).
    """
    logged = _usable_histories(histories, usable, SUBSET_JACCARD)
    if logged.empty:
        return pd.DataFrame()
    run_ids = logged["run_id"].unique()
    # Every epoch of those runs, epoch 0 (no Jaccard) included: it can be the first to reach c.
    epochs = histories[histories["run_id"].isin(run_ids)].sort_values(["run_id", "step"])
    progress = epoch_end_progress(epochs, usable)
    per_run = {}
    for checkpoint in CHECKPOINTS:
        first = first_reaching(epochs, progress, checkpoint).set_index("run_id")
        per_run[checkpoint_name(checkpoint)] = first[SUBSET_JACCARD].reindex(run_ids)
    return _checkpoint_frame(per_run, usable)


def alignment_checkpoints(histories: pd.DataFrame, usable: pd.DataFrame) -> pd.DataFrame:
    """Table 11: per cell that measured it, ``grad_cosine`` at each checkpoint over seeds.

    A run's value at checkpoint c is its first measurement taken at progress >= c (the trainer
    measures at the first epoch end reaching c; ``grad_alignment_progress`` says where).
    """
    logged = _usable_histories(histories, usable, GRAD_COSINE)
    if logged.empty:
        return pd.DataFrame()
    logged = logged.sort_values(["run_id", "step"])
    per_run = {}
    for checkpoint in CHECKPOINTS:
        reached = logged[logged[GRAD_ALIGNMENT_PROGRESS] >= checkpoint - PROGRESS_TOLERANCE]
        per_run[checkpoint_name(checkpoint)] = reached.groupby("run_id")[GRAD_COSINE].first()
    return _checkpoint_frame(per_run, usable)


def unmeasured_cells(usable: pd.DataFrame, alignment: pd.DataFrame) -> pd.DataFrame:
    """The cells of ``usable`` with no gradient-alignment measurement (grad_alignment off)."""
    cells = usable[CELL].drop_duplicates().sort_values(CELL)
    if alignment.empty:
        return cells.reset_index(drop=True)
    measured = cells.merge(alignment[CELL], how="left", indicator=True)
    return measured.loc[measured["_merge"] == "left_only", CELL].reset_index(drop=True)


def grad_norm_phases(histories: pd.DataFrame, usable: pd.DataFrame) -> tuple[pd.DataFrame, bool]:
    """Per run and phase: the mean and std of the per-step gradient norms over the phase's steps.

    Epochs pool exactly: with n_e steps of mean m_e and std s_e (ddof=0) per epoch, the phase's
    mean is sum(n_e m_e) / N and its variance sum(n_e (s_e^2 + m_e^2)) / N - mean^2. ``final`` is
    the last epoch's own. Returns (frame with ``<phase>_grad`` and ``<phase>_grad_std`` per run,
    whether every epoch had its step count; where one lacks ``train_steps`` its epochs weigh
    equally, an approximation when epochs differ in step count).
    """
    logged = _usable_histories(histories, usable, GRAD_NORM)
    if logged.empty:
        return pd.DataFrame(), True
    steps = logged[TRAIN_STEPS] if TRAIN_STEPS in logged else pd.Series(np.nan, logged.index)
    exact = bool(steps.notna().all())
    weight = steps.fillna(1.0).to_numpy()
    mean = logged[GRAD_NORM].to_numpy()
    std = (
        logged[GRAD_NORM_STD] if GRAD_NORM_STD in logged else pd.Series(np.nan, logged.index)
    ).to_numpy()
    phase = phase_of_progress(epoch_end_progress(logged, usable))  # Table 9's phases
    parts = pd.DataFrame(
        {
            "run_id": logged["run_id"].to_numpy(),
            "phase": np.array(PHASE_NAMES[:-1])[phase],
            "w": weight,
            "wm": weight * mean,
            "wq": weight * (std**2 + mean**2),  # NaN when the epoch has no std: so is the phase
        }
    )
    sums = parts.groupby(["run_id", "phase"]).sum(min_count=1)
    pooled_mean = sums["wm"] / sums["w"]
    pooled_std = np.sqrt((sums["wq"] / sums["w"] - pooled_mean**2).clip(lower=0.0))
    # groupby.sum skips NaN: an epoch without a std must leave the phase's std unknown.
    missing = parts.assign(nan=parts["wq"].isna()).groupby(["run_id", "phase"])["nan"].any()
    pooled_std[missing] = np.nan
    table = pd.concat(
        [
            pooled_mean.unstack().reindex(columns=PHASE_NAMES[:-1]).add_suffix("_grad"),
            pooled_std.unstack().reindex(columns=PHASE_NAMES[:-1]).add_suffix("_grad_std"),
        ],
        axis=1,
    )
    last = logged.assign(grad_norm_std=std).sort_values("step").groupby("run_id").last()
    table[f"{FINAL}_grad"] = last[GRAD_NORM]
    table[f"{FINAL}_grad_std"] = last[GRAD_NORM_STD]
    return table.rename_axis("run_id").reset_index(), exact


def stability_phases(histories: pd.DataFrame, usable: pd.DataFrame) -> tuple[pd.DataFrame, bool]:
    """Table 9: per cell and phase, accuracy over seeds next to the within-run gradient spread.

    Columns per phase p: ``p_acc_mean``/``p_acc_std`` (the run's mean accuracy over the phase's
    epochs, then mean and std over seeds); ``p_grad_mean`` (the mean over seeds of the run's mean
    per-step norm) and ``p_grad_std_mean`` (the mean over seeds of the run's within-phase std of
    per-step norms: the paper's "Std"); their spreads over seeds as ``..._std``. Returns the
    table and whether the pooling was exact (see :func:`grad_norm_phases`).
    """
    accuracy = per_run_phases(histories, usable, TEST_ACCURACY)
    grad, exact = grad_norm_phases(histories, usable)
    if accuracy.empty and grad.empty:
        return pd.DataFrame(), exact
    runs = accuracy.rename(columns={p: f"{p}_acc" for p in PHASE_NAMES})
    runs = runs.merge(grad, on="run_id", how="outer") if not grad.empty else runs
    columns = [f"{p}_{kind}" for p in PHASE_NAMES for kind in ("acc", "grad", "grad_std")]
    runs = runs.reindex(columns=["run_id", *columns])
    return over_seeds(runs, usable, columns), exact


# ---------------------------------------------------------------------------- display
def _mean_std(mean: float, std: float, digits: int, scale: float = 1.0) -> str:
    if pd.isna(mean):
        return "—"
    if pd.isna(std):
        return f"{scale * mean:.{digits}f}"
    return f"{scale * mean:.{digits}f} ± {scale * std:.{digits}f}"


def _cell_columns(table: pd.DataFrame) -> dict[str, list]:
    return {
        "Pruner": list(table["pruner_label"]),
        "Target ratio (%)": [f"{100 * v:.1f}" for v in table["target_prune_ratio"]],
        "Seeds": list(table["n_seeds"]),
    }


def format_checkpoints(table: pd.DataFrame, digits: int = 3) -> pd.DataFrame:
    """Tables 8 and 11 for display: 'mean ± std over seeds' at each checkpoint."""
    if table.empty:
        return pd.DataFrame()
    out = _cell_columns(table)
    for checkpoint in CHECKPOINTS:
        name = checkpoint_name(checkpoint)
        out[name] = [
            _mean_std(m, s, digits)
            for m, s in zip(table[f"{name}_mean"], table[f"{name}_std"], strict=True)
        ]
    return pd.DataFrame(out)


def format_stability(table: pd.DataFrame) -> pd.DataFrame:
    """Table 9 for display: per phase, 'Acc (%)' mean ± std over seeds and 'Grad ± Std'."""
    if table.empty:
        return pd.DataFrame()
    out = _cell_columns(table)
    for phase in PHASE_NAMES:
        out[f"{phase} Acc (%)"] = [
            _mean_std(m, s, 2, 100.0)
            for m, s in zip(table[f"{phase}_acc_mean"], table[f"{phase}_acc_std"], strict=True)
        ]
        out[f"{phase} Grad ± Std"] = [
            _mean_std(m, s, 3)
            for m, s in zip(
                table[f"{phase}_grad_mean"], table[f"{phase}_grad_std_mean"], strict=True
            )
        ]
    return pd.DataFrame(out)
