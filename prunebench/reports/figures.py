"""Report figures as PNG bytes: matplotlib Figure objects (Agg canvas) styled with seaborn."""

from __future__ import annotations

import io
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd
import seaborn as sns
from matplotlib.figure import Figure

from prunebench.reports.frame import CELL, FINAL_ACCURACY, REFERENCE, SUBSET_JACCARD, keys
from prunebench.reports.pareto import PARETO_AXES, pareto_mask
from prunebench.reports.stability import FINAL, PHASES, epoch_end_progress

DPI = 100
FULL_COLOR = (0.25, 0.25, 0.25)


@dataclass(frozen=True)
class ReportFigure:
    """One rendered figure: file stem, title, caption and PNG bytes."""

    name: str
    title: str
    caption: str
    png: bytes


def new_figure(width: float, height: float, rows: int = 1, cols: int = 1, **kwargs):
    """A pyplot-free Figure (no global backend state) with seaborn's whitegrid style."""
    with sns.axes_style("whitegrid"), sns.plotting_context("notebook", font_scale=0.8):
        figure = Figure(figsize=(width, height), dpi=DPI, layout="constrained")
        axes = figure.subplots(rows, cols, squeeze=False, **kwargs)
    return figure, axes


def render(figure: Figure) -> bytes:
    """PNG bytes of a figure (no timestamp metadata, so identical inputs give identical files)."""
    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=DPI, metadata={"Software": None})
    return buffer.getvalue()


def pruner_palette(labels: Sequence[str]) -> dict[str, tuple]:
    """A stable color per pruner label; full data is always dark grey."""
    others = sorted({label for label in labels if label != REFERENCE})
    colors = sns.color_palette("colorblind", max(len(others), 1))
    palette = {label: colors[i % len(colors)] for i, label in enumerate(others)}
    palette[REFERENCE] = FULL_COLOR
    return palette


RATIO_GROUP = "prune_ratio"
"""The column figures group cells by: the leaderboard's realized-ratio key (leaderboard.ratio_key)
of the cell, so a pruner that realized 34% at a 50% target is drawn where its row stands."""


def with_ratio_groups(frame: pd.DataFrame, board: pd.DataFrame) -> pd.DataFrame:
    """``frame`` (rows carrying the CELL columns: runs, curves or per-cell tables) with its
    cell's leaderboard ``prune_ratio`` in RATIO_GROUP (the target where the board lacks it)."""
    if frame.empty or not set(CELL) <= set(frame.columns):
        return frame
    groups = dict(zip(keys(board, CELL), board[RATIO_GROUP], strict=True)) if len(board) else {}
    grouped = keys(frame, CELL).map(groups).astype(float)
    return frame.assign(**{RATIO_GROUP: grouped.fillna(frame["target_prune_ratio"])})


def _ratio_group(frame: pd.DataFrame) -> pd.Series:
    """The realized-ratio group of each row (the target where none was attached)."""
    column = RATIO_GROUP if RATIO_GROUP in frame else "target_prune_ratio"
    return frame[column]


def cell_label(pruner_label: str, ratio: float) -> str:
    """A cell's name in legends and notes: the reference, or ``label @ ratio%``."""
    return REFERENCE if pruner_label == REFERENCE else f"{pruner_label} @ {100 * ratio:.0f}%"


def pareto_figure(
    board: pd.DataFrame, usable: pd.DataFrame, palette: Mapping[str, tuple]
) -> Figure:
    """Accuracy vs realized ratio and vs device-hours: runs, cell means ± std, the front."""
    figure, axes = new_figure(11, 4.2, 1, 2)
    cells = board[board["n_seeds"] > 0]
    for ax, (axis, (column, maximize, label)) in zip(axes[0], PARETO_AXES.items(), strict=True):
        run_column = "metrics." + column.removesuffix("_mean")
        scale = 100.0 if axis == "ratio" else 1.0
        for pruner_label, runs in usable.groupby("pruner_label", sort=True):
            if run_column in runs:
                ax.scatter(
                    runs[run_column] * scale,
                    runs[FINAL_ACCURACY] * 100,
                    s=12,
                    alpha=0.35,
                    color=palette[pruner_label],
                    linewidths=0,
                )
        for pruner_label, group in cells.groupby("pruner_label", sort=True):
            xerr = group.get(column.replace("_mean", "_std"))
            ax.errorbar(
                group[column] * scale,
                group["accuracy_mean"] * 100,
                xerr=None if xerr is None else xerr.fillna(0) * scale,
                yerr=group["accuracy_std"].fillna(0) * 100,
                fmt="o",
                ms=5,
                capsize=3,
                color=palette[pruner_label],
                label=pruner_label,
            )
        mask = pareto_mask(
            cells[column].to_numpy(dtype=float),
            cells["accuracy_mean"].to_numpy(dtype=float),
            maximize_x=maximize,
        )
        front = cells[mask].sort_values(column)
        ax.step(
            front[column] * scale,
            front["accuracy_mean"] * 100,
            where="post" if maximize else "pre",
            color="black",
            lw=1,
            ls="--",
            label="non-dominated",
        )
        ax.scatter(
            front[column] * scale,
            front["accuracy_mean"] * 100,
            s=110,
            facecolors="none",
            edgecolors="black",
            linewidths=1,
        )
        ax.set_xlabel(label + (" (%)" if axis == "ratio" else " (h)"))
        ax.set_ylabel("final test accuracy (%)")
        ax.set_title(f"accuracy vs {label}")
    axes[0][1].legend(loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    return figure


def tta_figure(
    curves: pd.DataFrame,
    board: pd.DataFrame,
    palette: Mapping[str, tuple],
    target: float | None,
) -> Figure | None:
    """Test accuracy vs training seconds, one panel per realized-ratio group (the leaderboard's
    rows); mean line, ±1 std band."""
    if curves.empty:
        return None
    is_full = curves["pruner_label"] == REFERENCE
    group = _ratio_group(curves)
    ratios = sorted(group[~is_full].unique()) or [0.0]
    figure, axes = new_figure(min(4.2 * len(ratios), 14), 3.6, 1, len(ratios), sharey=True)
    for ax, ratio in zip(axes[0], ratios, strict=True):
        panel = curves[is_full | (group == ratio)]
        for (label, _), curve in panel.groupby(["pruner_label", "target_prune_ratio"], sort=True):
            color = palette[label]
            seeds = int(curve["n_seeds"].max())
            ax.plot(
                curve["train_seconds"],
                curve["accuracy_mean"] * 100,
                color=color,
                ls="--" if label == REFERENCE else "-",
                label=f"{label} ({seeds} seed{'s' if seeds != 1 else ''})",
            )
            ax.fill_between(
                curve["train_seconds"],
                (curve["accuracy_mean"] - curve["accuracy_std"]) * 100,
                (curve["accuracy_mean"] + curve["accuracy_std"]) * 100,
                color=color,
                alpha=0.2,
                linewidth=0,
            )
        if target is not None:
            ax.axhline(100 * target, color="grey", lw=0.8, ls=":")
        ax.set_title("full data" if ratio == 0 else f"realized prune ratio {100 * ratio:.0f}%")
        ax.set_xlabel("cumulative training seconds")
        ax.legend(fontsize=7, loc="lower right")
    axes[0][0].set_ylabel("test accuracy (%)")
    return figure


def usage_figure(usable: pd.DataFrame, usage: Mapping[str, np.ndarray]) -> Figure | None:
    """Per-sample usage histograms per pruner (rows) and realized-ratio group (columns), zeros
    annotated."""
    pruned = usable[usable["pruner_label"] != REFERENCE]
    if pruned.empty:
        return None
    labels = sorted(pruned["pruner_label"].unique())
    group = _ratio_group(pruned)
    ratios = sorted(group.unique())
    figure, axes = new_figure(
        3.3 * len(ratios) + 0.5, 2.4 * len(labels) + 0.3, len(labels), len(ratios)
    )
    for r, label in enumerate(labels):
        for c, ratio in enumerate(ratios):
            ax = axes[r][c]
            runs = pruned[(pruned["pruner_label"] == label) & (group == ratio)]
            if runs.empty:
                ax.set_axis_off()
                continue
            arrays = [usage[run_id] for run_id in runs["run_id"] if run_id in usage]
            ax.set_title(cell_label(label, ratio), fontsize=9)
            if not arrays:
                ax.text(
                    0.5,
                    0.5,
                    "no usage.npz logged",
                    ha="center",
                    va="center",
                    transform=ax.transAxes,
                )
                continue
            top = max(int(a.max()) for a in arrays)
            # Average histogram over seeds: how many samples were trained k times in one run.
            mean_hist = np.mean([np.bincount(a, minlength=top + 1) for a in arrays], axis=0)
            colors = [sns.color_palette()[0]] * (top + 1)
            colors[0] = "firebrick"  # never-trained samples stand out
            ax.bar(np.arange(top + 1), mean_hist, width=1.0, color=colors)
            zeros = [int((a == 0).sum()) for a in arrays]
            text = f"zero usage: {np.mean(zeros):.3g}"
            if len(arrays) > 1:
                text += f"\n(mean of {len(arrays)} seeds, max {max(zeros)})"
            ax.text(
                0.02,
                0.96,
                text,
                ha="left",
                va="top",
                fontsize=7.5,
                transform=ax.transAxes,
                color="firebrick" if max(zeros) else "black",
                bbox={"facecolor": "white", "alpha": 0.85, "edgecolor": "none", "pad": 1.5},
            )
            ax.set_ylim(0, mean_hist.max() * 1.35)
            ax.set_xlabel("epochs trained on")
            ax.set_ylabel("samples")
    return figure


def stability_figure(
    accuracy: pd.DataFrame, grad_norm: pd.DataFrame, palette: Mapping[str, tuple]
) -> Figure | None:
    """Accuracy and gradient norm per training phase: mean ± std over seeds for every cell."""
    panels = [
        (t, name)
        for t, name in ((accuracy, "test accuracy (%)"), (grad_norm, "gradient norm"))
        if not t.empty
    ]
    if not panels:
        return None
    phases = [name for name, _ in PHASES] + [FINAL]
    figure, axes = new_figure(5.2 * len(panels) + 1.5, 3.8, 1, len(panels))
    for ax, (table, ylabel) in zip(axes[0], panels, strict=True):
        scale = 100.0 if ylabel.startswith("test") else 1.0
        offsets = np.linspace(-0.25, 0.25, len(table)) if len(table) > 1 else [0.0]
        for offset, (_, row) in zip(offsets, table.iterrows(), strict=True):
            label = cell_label(row["pruner_label"], row.get(RATIO_GROUP, row["target_prune_ratio"]))
            means = np.array([row[f"{p}_mean"] for p in phases], dtype=float) * scale
            stds = np.array([row[f"{p}_std"] for p in phases], dtype=float) * scale
            ax.errorbar(
                np.arange(len(phases)) + offset,
                means,
                yerr=np.nan_to_num(stds),
                fmt="o-",
                ms=3,
                lw=0.8,
                capsize=2,
                color=palette[row["pruner_label"]],
                alpha=0.9,
                label=f"{label} (n={row['n_seeds']})",
            )
        ax.set_xticks(np.arange(len(phases)), phases)
        ax.set_xlabel("training progress")
        ax.set_ylabel(ylabel)
    axes[0][-1].legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    return figure


def jaccard_figure(
    histories: pd.DataFrame, usable: pd.DataFrame, palette: Mapping[str, tuple]
) -> Figure | None:
    """Jaccard similarity of consecutive epochs' subsets vs training progress, mean over seeds."""
    logged = histories.dropna(subset=[SUBSET_JACCARD]).merge(usable[["run_id", *CELL]], on="run_id")
    logged = logged[logged["pruner_label"] != REFERENCE]
    if logged.empty:
        return None
    progress = 100 * epoch_end_progress(logged, usable)  # Table 8's and Table 9's progress
    logged = logged.assign(progress=progress, _group=_ratio_group(logged))
    ratios = sorted(logged["_group"].unique())
    styles = dict(zip(ratios, ["-", "--", ":", "-."] * len(ratios), strict=False))
    figure, axes = new_figure(7.5, 3.6)
    ax = axes[0][0]
    for (label, ratio), cell in logged.groupby(["pruner_label", "_group"], sort=True):
        curve = cell.groupby("progress")[SUBSET_JACCARD].mean()
        ax.plot(
            curve.index,
            curve.to_numpy(),
            marker=".",
            color=palette[label],
            ls=styles[ratio],
            label=cell_label(label, ratio),
        )
    ax.set_xlabel("training progress (%)")
    ax.set_ylabel("Jaccard(epoch, previous epoch)")
    ax.set_ylim(0, 1.02)
    ax.legend(fontsize=7, loc="center left", bbox_to_anchor=(1.01, 0.5), frameon=False)
    return figure
