"""Leaderboard: a row per dataset x model x budget x pruner x target ratio, over seeds.

Rows are placed and compared at their REALIZED prune ratio (:func:`ratio_key`); each pruned row
carries its accuracy's confidence interval, the lossless verdict (reports.compare) against full
data on the full budget and against full data given the same compute, its rank among the
pruners at that ratio (Holm-corrected pairwise tests, shown as letters), and MLPerf time to
accuracy. Its display is reports.sections.leaderboard's.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from prunebench import record
from prunebench.pruners.infobatch import RATIO_TOLERANCE
from prunebench.reports.compare import compare_cells, verdict_columns
from prunebench.reports.formatting import pct as _pct
from prunebench.reports.frame import (
    CELL,
    EPOCH_TRAIN_SECONDS,
    EVALUATIONS,
    FINAL_ACCURACY,
    RATIO_MISS,
    RATIO_SHORTFALL,
    REALIZED_RATIO,
    SAMPLES_TRAINED,
    SCORING_PASSES,
    SECTION,
    TEST_ACCURACY,
    THROUGHPUT_FACTOR,
    TOTAL_DEVICE_HOURS,
    TRAIN_DEVICE_HOURS,
    is_full,
    keys,
    mean_of,
    problem_runs,
    std_of,
    throughput_ratios,
    time_off,
    tta_column,
    tta_targets,
    usable_runs,
)
from prunebench.stats import (
    DEFAULT_CONFIDENCE,
    DEFAULT_LEVEL,
    mean_ci,
    rank_groups,
    time_to_accuracy,
)
from prunebench.stats.lossless import DEFAULT_MIN_TOLERANCE, lossless_tolerance


def ratio_key(target: float, realized: float) -> float:
    """The realized prune ratio a row is keyed by: its target when met within RATIO_MISS
    (a pruner that steers to it, or whose ratio is exact), else the realized mean to 2 decimals."""
    if pd.isna(realized) or (pd.notna(target) and abs(realized - target) <= RATIO_MISS):
        return target
    return round(float(realized), 2)


def passes(runs: pd.DataFrame) -> pd.Series:
    """Per run, every sample pass it spent: forward+backward plus forward-only (scoring) passes
    (a run that logged no scoring count made none)."""
    trained = runs[SAMPLES_TRAINED] if SAMPLES_TRAINED in runs else pd.Series(np.nan, runs.index)
    scoring = runs[SCORING_PASSES] if SCORING_PASSES in runs else pd.Series(0.0, runs.index)
    return trained + scoring.fillna(0.0)


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


@dataclass(frozen=True)
class _Reference:
    """Full data on the full budget of one section, which each of its cells is compared with."""

    accuracy: np.ndarray
    hours: float
    passes: float
    tolerance: float
    targets: list[float]
    """The section's logged accuracy targets; the leaderboard shows the lowest."""


def _reference(section_usable: pd.DataFrame, min_tolerance: float) -> _Reference:
    full = section_usable[is_full(section_usable)]
    accuracy = full[FINAL_ACCURACY].to_numpy(dtype=float)
    return _Reference(
        accuracy,
        full.get(TRAIN_DEVICE_HOURS, pd.Series(dtype=float)).mean(),
        passes(full).mean() if len(full) else np.nan,
        lossless_tolerance(accuracy, min_tolerance) if accuracy.size else np.nan,
        tta_targets(section_usable),
    )


@dataclass(frozen=True)
class _Context:
    """What every row of the leaderboard is computed with."""

    targets: list[float]
    """Every accuracy target logged by any usable run (each gets columns)."""
    resolution: pd.DataFrame
    throughput: pd.Series
    expected_seeds: int | Sequence[int] | None
    min_tolerance: float
    level: float


def _cell_rows(cells: pd.DataFrame, expected_cells: pd.DataFrame | None) -> pd.DataFrame:
    """Every cell the leaderboard shows: those with runs, and those the preset expects."""
    cells = cells[[*CELL, "pruner", "expected_seeds", *_optional(cells, ["comparison"])]]
    if expected_cells is not None and not expected_cells.empty:
        planned = expected_cells[[*CELL, "pruner"]].assign(expected_seeds=np.nan)
        cells = pd.concat([cells, planned], ignore_index=True)
    if "comparison" not in cells:
        cells = cells.assign(comparison=record.COMPARISON_MAIN)
    return cells.assign(comparison=cells["comparison"].fillna(record.COMPARISON_MAIN))


def leaderboard(
    train: pd.DataFrame,
    *,
    expected_seeds: int | Sequence[int] | None = None,
    expected_cells: pd.DataFrame | None = None,
    min_tolerance: float = DEFAULT_MIN_TOLERANCE,
    level: float = DEFAULT_LEVEL,
    histories: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The leaderboard of benchmark training runs (raw numbers; see sections.leaderboard).

    ``train`` holds the main runs and, relabelled (reports.comparisons.same_compute_cells), the
    same-compute full runs. ``expected_seeds`` (a count or the seeds themselves, from the preset)
    overrides the runs' ``prunebench.expected_seeds`` tags; ``expected_cells`` (columns CELL and
    ``pruner``, from the preset's grid) adds a row for every cell that has no run at all.
    ``min_tolerance`` is the non-inferiority margin, ``level`` the tests' level; ``histories``
    (per-epoch metrics) give time to accuracy its resolution.
    """
    usable = usable_runs(train)
    problems = problem_runs(train)
    usable_section, usable_cell = keys(usable, SECTION), keys(usable, CELL)
    problem_cell = keys(problems, CELL)
    train_cells = set(keys(train, CELL))
    cells = _cell_rows(train, expected_cells)
    # Every target logged anywhere gets columns (a cell that never reached it reads 0 of n);
    # the displayed one is the lowest target logged in the section.
    context = _Context(
        tta_targets(usable),
        _eval_resolution(histories, usable),
        throughput_ratios(usable),
        expected_seeds,
        min_tolerance,
        level,
    )
    rows, samples = [], []
    for _section, section_cells in cells.groupby(SECTION, sort=True, dropna=False):
        section_usable = usable[usable_section == keys(section_cells.iloc[:1], SECTION).iloc[0]]
        reference = _reference(section_usable, min_tolerance)
        for cell, cell_rows in section_cells.groupby(CELL, sort=False, dropna=False):
            cell_key = keys(cell_rows.iloc[:1], CELL).iloc[0]
            runs = usable[usable_cell == cell_key]
            row = _row(cell, cell_rows, runs, reference, context)
            cell_problems = problems[problem_cell == cell_key]
            row["problem_runs"] = int((~cell_problems["superseded"]).sum())
            row["notes"] = _notes(
                row,
                cell_problems,
                has_full=bool(reference.accuracy.size),
                has_runs=cell_key in train_cells,
            )
            rows.append(row)
            samples.append(runs[FINAL_ACCURACY].to_numpy(dtype=float))
    board = pd.DataFrame(rows)
    if board.empty:
        return board
    board = _against_same_compute(board, samples, min_tolerance, level)
    board = _ranks(board, samples, level)
    order = board.assign(_full=~board["is_full"]).sort_values(
        [*SECTION, "_full", "prune_ratio", "rank", "pruner_label", "target_prune_ratio"],
        kind="stable",
    )
    return order.drop(columns="_full").reset_index(drop=True)


def _row(cell, cell_rows: pd.DataFrame, runs: pd.DataFrame, ref: _Reference, ctx: _Context) -> dict:
    """One leaderboard row from its cell's usable runs and its section's full-data reference."""
    acc = runs[FINAL_ACCURACY].to_numpy(dtype=float)
    row = dict(zip(CELL, cell, strict=True))
    row["pruner"] = cell_rows["pruner"].iloc[0]
    row["comparison"] = cell_rows["comparison"].iloc[0]
    row["is_full"] = bool(is_full(cell_rows).any())
    row.update(_ratio_columns(row, runs))
    ci = mean_ci(acc, DEFAULT_CONFIDENCE)
    row["accuracy_mean"] = ci.mean
    row["accuracy_std"] = acc.std(ddof=1) if acc.size > 1 else np.nan
    row["accuracy_ci_low"], row["accuracy_ci_high"] = ci.low, ci.high
    row["n_seeds"] = int(acc.size)
    expected, expected_list = _expected(cell_rows, ctx.expected_seeds)
    row["expected_seeds"] = expected
    seeds = set(runs["seed"].tolist())
    row["missing_seeds"] = _seed_text([s for s in expected_list if s not in seeds])
    row["seeds_flag"] = bool(pd.notna(expected) and acc.size < expected)
    row["full_accuracy_mean"] = ref.accuracy.mean() if ref.accuracy.size else np.nan
    row["full_n_seeds"] = int(ref.accuracy.size)
    row["delta_to_full"] = row["accuracy_mean"] - row["full_accuracy_mean"]
    row["tolerance"] = ref.tolerance
    margin, level = ctx.min_tolerance, ctx.level
    verdict = (
        None if row["is_full"] else compare_cells(acc, ref.accuracy, margin=margin, level=level)
    )
    row.update(verdict_columns("lossless", verdict))
    row["lossless"] = verdict.lossless if verdict is not None else pd.NA
    row["tta_target"] = ref.targets[0] if ref.targets else np.nan
    for target in ctx.targets:
        row.update(_tta_columns(runs, target))
    points = ctx.resolution.reindex(runs["run_id"])
    row["eval_points"] = float(points["points"].median()) if len(points) else np.nan
    row["eval_interval_seconds"] = float(points["interval"].mean()) if len(points) else np.nan
    row.update(_cost_columns(runs, ref, ctx.throughput))
    return row


def _ratio_columns(row: dict, runs: pd.DataFrame) -> dict:
    """Realized ratio, the ratio the row is keyed by, and how far its runs miss their target."""
    same_compute = row["comparison"] == record.COMPARISON_SAME_COMPUTE
    realized_mean = mean_of(runs, REALIZED_RATIO)
    realized = runs.get(REALIZED_RATIO, pd.Series(dtype=float))
    misses = (
        0
        if same_compute
        else int(((realized - row["target_prune_ratio"]).abs() > RATIO_MISS).sum())
    )
    return {
        "realized_prune_ratio_mean": realized_mean,
        "realized_prune_ratio_std": std_of(runs, REALIZED_RATIO),
        # Same-compute full data trains every sample: its ratio is the one it matches.
        "prune_ratio": (
            row["target_prune_ratio"]
            if same_compute
            else ratio_key(row["target_prune_ratio"], realized_mean)
        ),
        "ratio_miss_runs": misses,
        "ratio_flag": misses > 0,
        # Signed realized - target of pruners that steer to a target (InfoBatch realized).
        "ratio_shortfall_mean": mean_of(runs, RATIO_SHORTFALL),
        "samples_trained_mean": mean_of(runs, SAMPLES_TRAINED),
        # Forward-only passes a pruner spends scoring samples it does not train (issue 25).
        "scoring_passes_mean": mean_of(runs, SCORING_PASSES),
        "train_size": mean_of(runs, "train_size"),
    }


def _tta_columns(runs: pd.DataFrame, target: float) -> dict:
    """Time to ``target`` over the seeds (MLPerf rule), its rule, and the seeds that reached it."""
    seconds = record.target_key(record.TTA_SECONDS, target)
    column = f"metrics.{seconds}"
    values = runs[column] if column in runs else pd.Series(np.nan, index=runs.index)
    tta = time_to_accuracy(values.to_numpy(dtype=float))
    return {
        f"{seconds}_mean": values.mean(),
        seconds: tta.value,
        record.target_key("tta_rule", target): tta.rule,
        record.target_key(record.TTA_SAMPLES, target) + "_mean": mean_of(
            runs, tta_column(record.TTA_SAMPLES, target)
        ),
        record.target_key("tta_reached", target): int(values.notna().sum()),
    }


def _cost_columns(runs: pd.DataFrame, ref: _Reference, throughput: pd.Series) -> dict:
    """Device-hours and passes against full data's, and whether the runs' clocks are trusted."""
    hours = mean_of(runs, TRAIN_DEVICE_HOURS)
    spent = passes(runs).mean() if len(runs) else np.nan
    ratios = throughput.reindex(runs["run_id"]).dropna()
    off = time_off(ratios)
    return {
        "train_device_hours_mean": hours,
        "train_device_hours_std": std_of(runs, TRAIN_DEVICE_HOURS),
        "total_device_hours_mean": mean_of(runs, TOTAL_DEVICE_HOURS),
        "saved_pct": 100.0 * (1.0 - hours / ref.hours),
        # The hardware-independent saving: every sample pass (forward+backward, and the
        # forward-only passes of scoring) not spent.
        "saved_samples_pct": 100.0 * (1.0 - spent / ref.passes),
        "throughput_ratio_min": float(ratios.min()) if len(ratios) else np.nan,
        "throughput_ratio_max": float(ratios.max()) if len(ratios) else np.nan,
        "time_flag_runs": int(off.sum()),
        "time_flag": bool(off.any()),
    }


def _optional(frame: pd.DataFrame, columns: list[str]) -> list[str]:
    return [c for c in columns if c in frame]


def _against_same_compute(
    board: pd.DataFrame, samples: list[np.ndarray], margin: float, level: float
) -> pd.DataFrame:
    """Each pruned row's delta and verdict against same-compute full data at its ratio."""
    same = board["comparison"] == record.COMPARISON_SAME_COMPUTE
    reference = {
        (*board.loc[i, SECTION], round(board.loc[i, "prune_ratio"], 2)): i
        for i in board.index[same]
        if samples[i].size
    }
    columns = []
    for i, row in board.iterrows():
        match = reference.get((*row[SECTION], round(row["prune_ratio"], 2)))
        pruned = not row["is_full"] and not same[i]
        if match is None or not pruned or not samples[i].size:  # a side without seeds: no test
            columns.append(
                {
                    "same_compute_accuracy_mean": np.nan,
                    "same_compute_samples_mean": np.nan,
                    "same_compute_n_seeds": 0,
                    "delta_to_same_compute": np.nan,
                    **verdict_columns("same_compute", None),
                }
            )
            continue
        verdict = compare_cells(samples[i], samples[match], margin=margin, level=level)
        columns.append(
            {
                "same_compute_accuracy_mean": float(samples[match].mean()),
                "same_compute_samples_mean": board.loc[match, "samples_trained_mean"],
                "same_compute_n_seeds": int(samples[match].size),
                "delta_to_same_compute": verdict.difference,
                **verdict_columns("same_compute", verdict),
            }
        )
    return pd.concat([board, pd.DataFrame(columns, index=board.index)], axis=1)


def _ranks(board: pd.DataFrame, samples: list[np.ndarray], level: float) -> pd.DataFrame:
    """Rank and letters among the rows at one realized ratio of a section (stats.rank_groups:
    Holm-corrected pairwise tests); full data on the full budget is not ranked."""
    rank = pd.Series(np.nan, index=board.index)
    letters = pd.Series("", index=board.index)
    ranked = board[~board["is_full"] & (board["n_seeds"] > 0)]
    for _, group in ranked.groupby([*SECTION, "prune_ratio"], sort=False, dropna=False):
        for i, place in rank_groups({i: samples[i] for i in group.index}, level).items():
            rank[i], letters[i] = place.rank, place.letters
    return board.assign(rank=rank, letters=letters)


def _eval_resolution(histories: pd.DataFrame | None, usable: pd.DataFrame) -> pd.DataFrame:
    """Per run: evaluation points logged and the mean training seconds between them."""
    if histories is None or histories.empty:
        return pd.DataFrame(columns=["points", "interval"], dtype=float)
    logged = histories.dropna(subset=[TEST_ACCURACY])
    logged = logged[logged["run_id"].isin(usable["run_id"])].sort_values(["run_id", "step"])
    grouped = logged.groupby("run_id")
    points = grouped.size().astype(float)
    # The run's own count of evaluations (summary metric), when logged, is authoritative.
    if EVALUATIONS in usable:
        counted = usable.set_index("run_id")[EVALUATIONS].reindex(points.index)
        points = counted.fillna(points)
    # From the start of training to the first evaluation counts as an interval too.
    interval = grouped[EPOCH_TRAIN_SECONDS].max() / points
    return pd.DataFrame({"points": points, "interval": interval})


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
    if row["ratio_flag"]:
        notes.append(
            f"realized ratio {_pct(row['realized_prune_ratio_mean'])}% misses its target "
            f"{_pct(row['target_prune_ratio'])}% by more than {RATIO_MISS:g} "
            f"({row['ratio_miss_runs']} of {row['n_seeds']} runs)"
        )
    shortfall = row["ratio_shortfall_mean"]  # realized - target, signed
    if pd.notna(shortfall) and abs(shortfall) > RATIO_TOLERANCE:
        realized = _pct(row["realized_prune_ratio_mean"], 0)
        target = _pct(row["target_prune_ratio"], 0)
        if shortfall < 0:
            text = (
                f"{row['pruner_label']} cannot reach {target}% on this data: realized {realized}%"
            )
        else:
            text = f"{row['pruner_label']} overshoots its target {target}%: realized {realized}%"
        notes.append(f"{text} ({100 * shortfall:+.1f} pts)")
    if row["time_flag"]:
        low, high = row["throughput_ratio_min"], row["throughput_ratio_max"]
        spread = f"{low:.2g}×" if low == high else f"{low:.2g}–{high:.2g}×"
        notes.append(
            f"time figures not trusted: {row['time_flag_runs']} of {row['n_seeds']} runs trained "
            f"at {spread} the median throughput of this dataset, model and device (more than "
            f"{THROUGHPUT_FACTOR:g}× off: a shared or throttled machine?)"
        )
    if not has_full:
        notes.append("no finished full-data run to compare with")
    return "; ".join(notes)
