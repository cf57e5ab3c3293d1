"""Leaderboard: a row per dataset x model x budget x pruner x target ratio, over seeds."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from prunebench.pruners import reference_pruner
from prunebench.stats.lossless import (
    DEFAULT_MIN_TOLERANCE,
    lossless_tolerance,
    lossless_verdict,
)

SECTION = ["dataset", "model", "budget"]
"""Runs are compared only within a section: same data, model and budget."""
CELL = [*SECTION, "pruner_label", "target_prune_ratio"]
"""A leaderboard row: a section plus the pruner variant and its target prune ratio."""
TTA_PREFIX = "metrics.tta_seconds_"
REFERENCE = reference_pruner()
"""The full-data reference pruner's name (also its label in tables and figures)."""


def is_full(runs: pd.DataFrame) -> pd.Series:
    """Full-data runs (the reference every other cell is compared with)."""
    return (runs["pruner"] == REFERENCE) | (runs["pruner_label"] == REFERENCE)


def keys(frame: pd.DataFrame, columns: Sequence[str]) -> pd.Series:
    """One hashable string per row identifying its values in ``columns`` (NaN-safe)."""
    if frame.empty:
        return pd.Series([], dtype=object, index=frame.index)
    # pandas 3's astype(str) keeps NaN (e.g. the seed of a run that crashed before its params).
    return frame[list(columns)].astype(str).fillna("nan").agg("\x1f".join, axis=1)


def usable_runs(train: pd.DataFrame) -> pd.DataFrame:
    """Finished training runs, one per (cell, seed): the latest one when a seed was rerun."""
    finished = train[train["status"] == "FINISHED"].sort_values("start_time", kind="stable")
    return finished.drop_duplicates([*CELL, "seed"], keep="last")


def problem_runs(train: pd.DataFrame) -> pd.DataFrame:
    """Every training run the leaderboard does not aggregate, with its status and reason."""
    used = set(usable_runs(train)["run_id"])
    problems = train[~train["run_id"].isin(used)].copy()
    finished = keys(train[train["run_id"].isin(used)], [*CELL, "seed"])
    problems["superseded"] = keys(problems, [*CELL, "seed"]).isin(set(finished)).astype(bool)
    duplicate = problems["status"] == "FINISHED"
    problems.loc[duplicate, "status"] = "DUPLICATE"
    problems.loc[duplicate, "failure_reason"] = "an earlier run of a seed that was run again"
    columns = [
        *CELL,
        "seed",
        "status",
        "failure_reason",
        "superseded",
        "run_name",
        "run_id",
    ]
    return problems[columns].sort_values([*CELL, "seed"], kind="stable").reset_index(drop=True)


def tta_targets(runs: pd.DataFrame) -> list[float]:
    """Accuracy targets with a logged ``tta_seconds_<t>`` in any of ``runs``, ascending."""
    targets = []
    for column in runs.columns:
        if column.startswith(TTA_PREFIX) and runs[column].notna().any():
            try:
                targets.append(float(column[len(TTA_PREFIX) :]))
            except ValueError:
                continue
    return sorted(set(targets))


def _target_key(target: float) -> str:
    return f"{target:.2f}"


def _expected(
    cell_runs: pd.DataFrame, expected_seeds: int | Sequence[int] | None
) -> tuple[float, list]:
    """Expected seed count and, when the preset lists them, the seeds themselves."""
    if isinstance(expected_seeds, int):
        return float(expected_seeds), []
    if expected_seeds is not None:
        seeds = sorted(set(expected_seeds))
        return float(len(seeds)), seeds
    tagged = cell_runs["expected_seeds"].max()
    return (float(tagged) if pd.notna(tagged) else float("nan")), []


def _seed_text(seeds) -> str:
    return ", ".join(str(int(s)) if float(s).is_integer() else str(s) for s in seeds)


def leaderboard(
    train: pd.DataFrame,
    *,
    expected_seeds: int | Sequence[int] | None = None,
    expected_cells: pd.DataFrame | None = None,
    min_tolerance: float = DEFAULT_MIN_TOLERANCE,
) -> pd.DataFrame:
    """The leaderboard of benchmark training runs (raw numbers; see ``format_leaderboard``).

    ``expected_seeds`` (a count or the seeds themselves, from the preset) overrides the runs'
    ``prunebench.expected_seeds`` tags; ``expected_cells`` (columns CELL and ``pruner``, from
    the preset's grid) adds a row for every cell that has no run at all.
    """
    usable = usable_runs(train)
    problems = problem_runs(train)
    usable_section, usable_cell = keys(usable, SECTION), keys(usable, CELL)
    problem_cell = keys(problems, CELL)
    train_cells = set(keys(train, CELL))
    cells = train[[*CELL, "pruner", "expected_seeds"]]
    if expected_cells is not None and not expected_cells.empty:
        planned = expected_cells[[*CELL, "pruner"]].assign(expected_seeds=np.nan)
        cells = pd.concat([cells, planned], ignore_index=True)
    # Every target logged anywhere gets columns (a cell that never reached it reads 0 of n);
    # the displayed one is the lowest target logged in the section.
    all_targets = tta_targets(usable)
    rows = []
    for _section, section_cells in cells.groupby(SECTION, sort=True, dropna=False):
        section_usable = usable[usable_section == keys(section_cells.iloc[:1], SECTION).iloc[0]]
        full = section_usable[is_full(section_usable)]
        full_acc = full["metrics.final_test_accuracy"].to_numpy(dtype=float)
        full_hours = full.get("metrics.train_device_hours", pd.Series(dtype=float)).mean()
        tolerance = lossless_tolerance(full_acc, min_tolerance) if full_acc.size else np.nan
        targets = tta_targets(section_usable)
        for cell, cell_rows in section_cells.groupby(CELL, sort=False, dropna=False):
            cell_key = keys(cell_rows.iloc[:1], CELL).iloc[0]
            runs = usable[usable_cell == cell_key]
            acc = runs["metrics.final_test_accuracy"].to_numpy(dtype=float)
            row = dict(zip(CELL, cell, strict=True))
            row["pruner"] = cell_rows["pruner"].iloc[0]
            row["is_full"] = bool(is_full(cell_rows).any())
            row["realized_prune_ratio_mean"] = _mean(runs, "metrics.realized_prune_ratio")
            row["realized_prune_ratio_std"] = _std(runs, "metrics.realized_prune_ratio")
            row["accuracy_mean"] = acc.mean() if acc.size else np.nan
            row["accuracy_std"] = acc.std(ddof=1) if acc.size > 1 else np.nan
            row["n_seeds"] = int(acc.size)
            expected, expected_list = _expected(cell_rows, expected_seeds)
            row["expected_seeds"] = expected
            seeds = set(runs["seed"].tolist())
            missing = [s for s in expected_list if s not in seeds]
            row["missing_seeds"] = _seed_text(missing)
            row["seeds_flag"] = bool(pd.notna(expected) and acc.size < expected)
            row["full_accuracy_mean"] = full_acc.mean() if full_acc.size else np.nan
            row["delta_to_full"] = row["accuracy_mean"] - row["full_accuracy_mean"]
            row["tolerance"] = tolerance
            verdict = (
                lossless_verdict(acc, full_acc, min_tolerance=min_tolerance)
                if acc.size and full_acc.size
                else None
            )
            row["lossless"] = verdict.lossless if verdict is not None else pd.NA
            row["lossless_verdict"] = verdict.verdict if verdict is not None else pd.NA
            row["lossless_p_value"] = verdict.p_value if verdict is not None else np.nan
            row["tta_target"] = targets[0] if targets else np.nan
            for target in all_targets:
                key = _target_key(target)
                column = f"{TTA_PREFIX}{key}"
                values = runs[column] if column in runs else pd.Series(dtype=float)
                row[f"tta_seconds_{key}_mean"] = values.mean()
                row[f"tta_samples_{key}_mean"] = _mean(runs, f"metrics.tta_samples_{key}")
                row[f"tta_reached_{key}"] = int(values.notna().sum())
            row["train_device_hours_mean"] = _mean(runs, "metrics.train_device_hours")
            row["train_device_hours_std"] = _std(runs, "metrics.train_device_hours")
            row["total_device_hours_mean"] = _mean(runs, "metrics.total_device_hours")
            row["saved_pct"] = 100.0 * (1.0 - row["train_device_hours_mean"] / full_hours)
            cell_problems = problems[problem_cell == cell_key]
            row["problem_runs"] = int((~cell_problems["superseded"]).sum())
            row["notes"] = _notes(
                row, cell_problems, has_full=bool(full_acc.size), has_runs=cell_key in train_cells
            )
            rows.append(row)
    board = pd.DataFrame(rows)
    order = board.assign(_full=~board["is_full"]).sort_values(
        [*SECTION, "_full", "pruner_label", "target_prune_ratio"], kind="stable"
    )
    return order.drop(columns="_full").reset_index(drop=True)


def _mean(runs: pd.DataFrame, column: str) -> float:
    return float(runs[column].mean()) if column in runs and len(runs) else np.nan


def _std(runs: pd.DataFrame, column: str) -> float:
    return float(runs[column].std(ddof=1)) if column in runs and len(runs) > 1 else np.nan


def _notes(row: dict, cell_problems: pd.DataFrame, has_full: bool, has_runs: bool) -> str:
    notes = [] if has_runs else ["not run: the preset asks for this cell, MLflow has no run"]
    if row["seeds_flag"]:
        text = f"{row['n_seeds']} of {int(row['expected_seeds'])} expected seeds"
        if row["missing_seeds"]:
            text += f" (missing seed {row['missing_seeds']})"
        notes.append(text)
    for _, problem in cell_problems[~cell_problems["superseded"]].iterrows():
        reason = str(problem["failure_reason"])
        reason = reason if len(reason) <= 90 else reason[:87] + "..."
        notes.append(f"seed {_seed_text([problem['seed']])} {problem['status']}: {reason}")
    if not has_full:
        notes.append("no finished full-data run to compare with")
    return "; ".join(notes)


def _pct(value: float, digits: int = 1) -> str:
    return "—" if pd.isna(value) else f"{100.0 * value:.{digits}f}"


def _accuracy_text(row: pd.Series) -> str:
    if row["n_seeds"] == 0:
        return "—"
    text = _pct(row["accuracy_mean"], 2)
    return text if pd.isna(row["accuracy_std"]) else f"{text} ± {_pct(row['accuracy_std'], 2)}"


def _seeds_text(row: pd.Series) -> str:
    if pd.isna(row["expected_seeds"]):
        return str(row["n_seeds"])
    text = f"{row['n_seeds']}/{int(row['expected_seeds'])}"
    return text + " (!)" if row["seeds_flag"] else text


def _tta_text(row: pd.Series) -> str:
    if pd.isna(row["tta_target"]) or row["n_seeds"] == 0:
        return "—"
    key = _target_key(row["tta_target"])
    reached = row[f"tta_reached_{key}"]
    mean = row[f"tta_seconds_{key}_mean"]
    value = "not reached" if reached == 0 else f"{mean:.3g} s"
    return f"{value} ({reached}/{row['n_seeds']} seeds)"


def _lossless_text(value) -> str:
    return "—" if pd.isna(value) else ("yes" if value else "no")


def _number(value: float, fmt: str) -> str:
    return "—" if pd.isna(value) else format(value, fmt)


def format_leaderboard(board: pd.DataFrame) -> pd.DataFrame:
    """Human-readable leaderboard columns (percent, mean ± std, seed counts) for Markdown/HTML."""
    if board.empty:
        return pd.DataFrame()
    targets = board["tta_target"].dropna().unique()
    tta_header = f"Time to {100 * targets[0]:g}%" if len(targets) == 1 else "Time to target"
    out = pd.DataFrame(
        {
            "Pruner": board["pruner_label"],
            "Target ratio (%)": board["target_prune_ratio"].map(lambda v: _pct(v, 1)),
            "Realized ratio (%)": board["realized_prune_ratio_mean"].map(lambda v: _pct(v, 1)),
            "Accuracy (%)": board.apply(_accuracy_text, axis=1),
            "Seeds": board.apply(_seeds_text, axis=1),
            "Δ full (pts)": board["delta_to_full"].map(
                lambda v: "—" if pd.isna(v) else f"{100.0 * v:+.2f}"
            ),
            "Lossless": board["lossless"].map(_lossless_text),
            tta_header: board.apply(_tta_text, axis=1),
            "Train device-h": board["train_device_hours_mean"].map(lambda v: _number(v, ".3g")),
            "Saved vs full (%)": board["saved_pct"].map(lambda v: _number(v, ".1f")),
            "Notes": board["notes"],
        }
    )
    return out


def section_title(section: Sequence) -> str:
    """'dataset / model / budget' heading of a leaderboard section."""
    return " / ".join(str(part) for part in section)


def section_slug(section: Sequence) -> str:
    """A file-name-safe identifier of a section, e.g. 'fashion_mnist-small_cnn-epochs-10'."""
    text = "-".join(str(part) for part in section)
    return "".join(c if c.isalnum() or c in "_-." else "-" for c in text)


def lossless_on_grid(board: pd.DataFrame) -> pd.DataFrame:
    """Table 6 from the benchmark grid: largest realized ratio of a lossless cell per pruner."""
    pruned = board[~board["is_full"]]
    if pruned.empty:
        return pd.DataFrame()
    rows = []
    for group, cells in pruned.groupby([*SECTION, "pruner_label"], sort=True, dropna=False):
        lossless = cells[cells["lossless"].fillna(False).astype(bool)]
        lossless = lossless.dropna(subset=["realized_prune_ratio_mean"])
        best = (
            lossless.loc[lossless["realized_prune_ratio_mean"].idxmax()] if len(lossless) else None
        )
        rows.append(
            {
                **dict(zip([*SECTION, "pruner_label"], group, strict=True)),
                "largest_lossless_ratio": (
                    np.nan if best is None else best["realized_prune_ratio_mean"]
                ),
                "at_target_ratio": np.nan if best is None else best["target_prune_ratio"],
                "ratios_tested": len(cells),
            }
        )
    return pd.DataFrame(rows)
