"""Leaderboard: a row per dataset x model x budget x pruner x target ratio, over seeds.

Rows are placed and compared at their REALIZED prune ratio (:func:`ratio_key`); each pruned row
carries its accuracy's confidence interval, the lossless verdict (prunebench.stats) against full
data on the full budget and against full data given the same compute, its rank among the
pruners at that ratio (Holm-corrected pairwise tests, shown as letters), and MLPerf time to
accuracy.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from prunebench import record
from prunebench.pruners import reference_pruner
from prunebench.pruners.infobatch import RATIO_TOLERANCE
from prunebench.stats import (
    DEFAULT_CONFIDENCE,
    DEFAULT_LEVEL,
    MIN_SEEDS,
    lossless_test,
    mean_ci,
    rank_groups,
    time_to_accuracy,
)
from prunebench.stats.lossless import DEFAULT_MIN_TOLERANCE, lossless_tolerance

SECTION = ["dataset", "model", "budget"]
"""Runs are compared only within a section: same data, model and budget."""
CELL = [*SECTION, "pruner_label", "target_prune_ratio"]
"""A leaderboard row: a section plus the pruner variant and its target prune ratio."""
TTA_PREFIX = "metrics.tta_seconds_"
REFERENCE = reference_pruner()
"""The full-data reference pruner's name (also its label in tables and figures)."""


RATIO_MISS = 0.01
"""A run whose realized prune ratio misses its target by more than this is flagged."""
THROUGHPUT_FACTOR = 1.5
"""A run whose training throughput (samples per second) is more than this factor above or below
the median of the report's runs on the same dataset, model and device has its time figures
(device-hours, saved %, time to accuracy) flagged: its wall clock measured something else
(a shared or throttled machine), not the pruner."""
TIME_GROUP = ["dataset", "model", "params.device_kind"]
"""Runs whose throughputs are comparable: same data, model and device (its name)."""


def throughput_ratios(runs: pd.DataFrame) -> pd.Series:
    """Per run id: its training throughput over the median of its TIME_GROUP's runs."""
    needed = {"metrics.train_seconds_total", "metrics.samples_trained_total"}
    if runs.empty or not needed <= set(runs.columns):
        return pd.Series(dtype=float)
    seconds = runs["metrics.train_seconds_total"].where(runs["metrics.train_seconds_total"] > 0)
    throughput = runs["metrics.samples_trained_total"] / seconds
    group = [column for column in TIME_GROUP if column in runs]
    median = throughput.groupby([runs[c].fillna("") for c in group]).transform("median")
    return pd.Series((throughput / median).to_numpy(), index=runs["run_id"].to_numpy())


def is_reference(runs: pd.DataFrame) -> pd.Series:
    """Runs of the full-data reference pruner, in whatever comparison."""
    return (runs["pruner"] == REFERENCE) | (runs["pruner_label"] == REFERENCE)


def is_full(runs: pd.DataFrame) -> pd.Series:
    """Full data on the full budget: the reference every other cell is compared with."""
    if "comparison" not in runs:
        return is_reference(runs)
    return is_reference(runs) & (runs["comparison"] == record.COMPARISON_MAIN)


def ratio_key(target: float, realized: float) -> float:
    """The realized prune ratio a row is keyed by: its target when met within RATIO_MISS
    (a pruner that steers to it, or whose ratio is exact), else the realized mean to 2 decimals."""
    if pd.isna(realized) or (pd.notna(target) and abs(realized - target) <= RATIO_MISS):
        return target
    return round(float(realized), 2)


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
    level: float = DEFAULT_LEVEL,
    histories: pd.DataFrame | None = None,
) -> pd.DataFrame:
    """The leaderboard of benchmark training runs (raw numbers; see ``format_leaderboard``).

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
    cells = train[[*CELL, "pruner", "expected_seeds", *_optional(train, ["comparison"])]]
    if expected_cells is not None and not expected_cells.empty:
        planned = expected_cells[[*CELL, "pruner"]].assign(expected_seeds=np.nan)
        cells = pd.concat([cells, planned], ignore_index=True)
    if "comparison" not in cells:
        cells = cells.assign(comparison=record.COMPARISON_MAIN)
    cells = cells.assign(comparison=cells["comparison"].fillna(record.COMPARISON_MAIN))
    # Every target logged anywhere gets columns (a cell that never reached it reads 0 of n);
    # the displayed one is the lowest target logged in the section.
    all_targets = tta_targets(usable)
    resolution = _eval_resolution(histories, usable)
    throughput = throughput_ratios(usable)
    rows, samples = [], []
    for _section, section_cells in cells.groupby(SECTION, sort=True, dropna=False):
        section_usable = usable[usable_section == keys(section_cells.iloc[:1], SECTION).iloc[0]]
        full = section_usable[is_full(section_usable)]
        full_acc = full["metrics.final_test_accuracy"].to_numpy(dtype=float)
        full_hours = full.get("metrics.train_device_hours", pd.Series(dtype=float)).mean()
        full_samples = full.get("metrics.samples_trained_total", pd.Series(dtype=float)).mean()
        tolerance = lossless_tolerance(full_acc, min_tolerance) if full_acc.size else np.nan
        targets = tta_targets(section_usable)
        for cell, cell_rows in section_cells.groupby(CELL, sort=False, dropna=False):
            cell_key = keys(cell_rows.iloc[:1], CELL).iloc[0]
            runs = usable[usable_cell == cell_key]
            acc = runs["metrics.final_test_accuracy"].to_numpy(dtype=float)
            row = dict(zip(CELL, cell, strict=True))
            row["pruner"] = cell_rows["pruner"].iloc[0]
            row["comparison"] = cell_rows["comparison"].iloc[0]
            row["is_full"] = bool(is_full(cell_rows).any())
            same_compute = row["comparison"] == record.COMPARISON_SAME_COMPUTE
            row["realized_prune_ratio_mean"] = _mean(runs, "metrics.realized_prune_ratio")
            row["realized_prune_ratio_std"] = _std(runs, "metrics.realized_prune_ratio")
            # Same-compute full data trains every sample: its ratio is the one it matches.
            row["prune_ratio"] = (
                row["target_prune_ratio"]
                if same_compute
                else ratio_key(row["target_prune_ratio"], row["realized_prune_ratio_mean"])
            )
            realized = runs.get("metrics.realized_prune_ratio", pd.Series(dtype=float))
            miss = (realized - row["target_prune_ratio"]).abs() > RATIO_MISS
            row["ratio_miss_runs"] = 0 if same_compute else int(miss.sum())
            row["ratio_flag"] = row["ratio_miss_runs"] > 0
            # Signed realized - target of pruners that steer to a target (InfoBatch realized).
            row["ratio_shortfall_mean"] = _mean(runs, f"metrics.{record.METRIC_RATIO_SHORTFALL}")
            row["samples_trained_mean"] = _mean(runs, "metrics.samples_trained_total")
            ci = mean_ci(acc, DEFAULT_CONFIDENCE)
            row["accuracy_mean"] = ci.mean
            row["accuracy_std"] = acc.std(ddof=1) if acc.size > 1 else np.nan
            row["accuracy_ci_low"], row["accuracy_ci_high"] = ci.low, ci.high
            row["n_seeds"] = int(acc.size)
            expected, expected_list = _expected(cell_rows, expected_seeds)
            row["expected_seeds"] = expected
            seeds = set(runs["seed"].tolist())
            missing = [s for s in expected_list if s not in seeds]
            row["missing_seeds"] = _seed_text(missing)
            row["seeds_flag"] = bool(pd.notna(expected) and acc.size < expected)
            row["full_accuracy_mean"] = full_acc.mean() if full_acc.size else np.nan
            row["full_n_seeds"] = int(full_acc.size)
            row["delta_to_full"] = row["accuracy_mean"] - row["full_accuracy_mean"]
            row["tolerance"] = tolerance
            verdict = (
                lossless_test(acc, full_acc, margin=min_tolerance, level=level)
                if acc.size and full_acc.size and not row["is_full"]
                else None
            )
            row.update(_verdict_columns("lossless", verdict))
            row["lossless"] = verdict.lossless if verdict is not None else pd.NA
            row["tta_target"] = targets[0] if targets else np.nan
            for target in all_targets:
                key = _target_key(target)
                column = f"{TTA_PREFIX}{key}"
                values = runs[column] if column in runs else pd.Series(np.nan, index=runs.index)
                tta = time_to_accuracy(values.to_numpy(dtype=float))
                row[f"tta_seconds_{key}_mean"] = values.mean()
                row[f"tta_seconds_{key}"] = tta.value
                row[f"tta_rule_{key}"] = tta.rule
                row[f"tta_samples_{key}_mean"] = _mean(runs, f"metrics.tta_samples_{key}")
                row[f"tta_reached_{key}"] = int(values.notna().sum())
            points = resolution.reindex(runs["run_id"])
            row["eval_points"] = float(points["points"].median()) if len(points) else np.nan
            row["eval_interval_seconds"] = (
                float(points["interval"].mean()) if len(points) else np.nan
            )
            row["train_device_hours_mean"] = _mean(runs, "metrics.train_device_hours")
            row["train_device_hours_std"] = _std(runs, "metrics.train_device_hours")
            row["total_device_hours_mean"] = _mean(runs, "metrics.total_device_hours")
            row["saved_pct"] = 100.0 * (1.0 - row["train_device_hours_mean"] / full_hours)
            # The hardware-independent saving: sample passes (forward + backward) not trained.
            row["saved_samples_pct"] = 100.0 * (1.0 - row["samples_trained_mean"] / full_samples)
            ratios = throughput.reindex(runs["run_id"]).dropna()
            off = (ratios > THROUGHPUT_FACTOR) | (ratios < 1.0 / THROUGHPUT_FACTOR)
            row["throughput_ratio_min"] = float(ratios.min()) if len(ratios) else np.nan
            row["throughput_ratio_max"] = float(ratios.max()) if len(ratios) else np.nan
            row["time_flag_runs"] = int(off.sum())
            row["time_flag"] = bool(off.any())
            cell_problems = problems[problem_cell == cell_key]
            row["problem_runs"] = int((~cell_problems["superseded"]).sum())
            row["notes"] = _notes(
                row, cell_problems, has_full=bool(full_acc.size), has_runs=cell_key in train_cells
            )
            rows.append(row)
            samples.append(acc)
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


def _optional(frame: pd.DataFrame, columns: list[str]) -> list[str]:
    return [c for c in columns if c in frame]


def _verdict_columns(prefix: str, verdict) -> dict:
    """``<prefix>_verdict``, ``_p_value``, ``_sentence`` and the seeds it rests on."""
    if verdict is None:
        return {
            f"{prefix}_verdict": pd.NA,
            f"{prefix}_p_value": np.nan,
            f"{prefix}_sentence": "",
            f"{prefix}_too_few_seeds": pd.NA,
            f"{prefix}_lower_bound": np.nan,
            f"{prefix}_upper_bound": np.nan,
            f"{prefix}_seeds_needed": np.nan,
        }
    return {
        f"{prefix}_verdict": verdict.verdict,
        f"{prefix}_p_value": verdict.p_value,
        f"{prefix}_sentence": verdict.sentence,
        f"{prefix}_too_few_seeds": min(verdict.n_pruned, verdict.n_full) < MIN_SEEDS,
        f"{prefix}_lower_bound": verdict.lower_bound,
        f"{prefix}_upper_bound": verdict.ci_high,
        f"{prefix}_seeds_needed": verdict.seeds_needed,
    }


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
        if match is None or not pruned or not samples[i].size:
            columns.append(
                {
                    "same_compute_accuracy_mean": np.nan,
                    "same_compute_samples_mean": np.nan,
                    "same_compute_n_seeds": 0,
                    "delta_to_same_compute": np.nan,
                    **_verdict_columns("same_compute", None),
                }
            )
            continue
        verdict = lossless_test(samples[i], samples[match], margin=margin, level=level)
        columns.append(
            {
                "same_compute_accuracy_mean": float(samples[match].mean()),
                "same_compute_samples_mean": board.loc[match, "samples_trained_mean"],
                "same_compute_n_seeds": int(samples[match].size),
                "delta_to_same_compute": verdict.difference,
                **_verdict_columns("same_compute", verdict),
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
    logged = histories.dropna(subset=["test_accuracy"])
    logged = logged[logged["run_id"].isin(usable["run_id"])].sort_values(["run_id", "step"])
    grouped = logged.groupby("run_id")
    points = grouped.size().astype(float)
    # The run's own count of evaluations (summary metric), when logged, is authoritative.
    if "metrics.evaluations" in usable:
        counted = usable.set_index("run_id")["metrics.evaluations"].reindex(points.index)
        points = counted.fillna(points)
    # From the start of training to the first evaluation counts as an interval too.
    interval = grouped["train_seconds"].max() / points
    return pd.DataFrame({"points": points, "interval": interval})


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


def _pct(value: float, digits: int = 1) -> str:
    return "—" if pd.isna(value) else f"{100.0 * value:.{digits}f}"


def _accuracy_text(row: pd.Series) -> str:
    """Mean ± half the 95% CI over seeds (a single seed has no interval)."""
    if row["n_seeds"] == 0:
        return "—"
    text = _pct(row["accuracy_mean"], 2)
    if pd.isna(row["accuracy_ci_low"]):
        return text
    return f"{text} ± {_pct((row['accuracy_ci_high'] - row['accuracy_ci_low']) / 2, 2)}"


def _seeds_text(row: pd.Series) -> str:
    if pd.isna(row["expected_seeds"]):
        return str(row["n_seeds"])
    text = f"{row['n_seeds']}/{int(row['expected_seeds'])}"
    return text + " (!)" if row["seeds_flag"] else text


def _tta_text(row: pd.Series) -> str:
    if pd.isna(row["tta_target"]) or row["n_seeds"] == 0:
        return "—"
    key = _target_key(row["tta_target"])
    value = row[f"tta_seconds_{key}"]
    head = "not reached" if pd.isna(value) else f"{value:.3g} s"
    return f"{head} ({row[f'tta_reached_{key}']}/{row['n_seeds']} seeds)"


def verdict_text(verdict, lower: float, needed: float, n: int, n_reference: int) -> str:
    """E.g. "lossless: loses ≤ 0.12 (5 vs 5 seeds; 3 decide)" or "undecided: too few seeds
    (1 vs 3)"; the bound is the one-sided 95% lower bound of pruned - reference, in points."""
    if pd.isna(verdict):
        return "—"
    if min(n, n_reference) < MIN_SEEDS:
        return f"{verdict}: too few seeds to decide ({n} vs {n_reference})"
    bound = f"loses ≤ {-100 * lower:.2f}" if lower < 0 else f"gains ≥ {100 * lower:.2f}"
    decide = "∞" if not np.isfinite(needed) else f"{int(needed)}"
    return f"{verdict}: {bound} ({n} vs {n_reference} seeds; {decide} decide)"


def _delta_text(value: float) -> str:
    return "—" if pd.isna(value) else f"{100.0 * value:+.2f}"


def _rank_text(row: pd.Series) -> str:
    """E.g. "2 (ab)": rank 2, and the letter groups it shares with others."""
    if pd.isna(row["rank"]):
        return "—"
    return f"{int(row['rank'])} ({row['letters']})"


def _ratio_text(row: pd.Series) -> str:
    text = _pct(row["realized_prune_ratio_mean"], 1)
    return f"{text} (!)" if row["ratio_flag"] else text


def _time_text(row: pd.Series, text: str) -> str:
    """A time-derived figure, marked (!) when the row's runs' wall clocks are not trusted."""
    return f"{text} (!)" if row["time_flag"] and text != "—" else text


def _passes_text(row: pd.Series) -> str:
    """The row's mean sample passes, and those of the same-compute full data it is compared
    with, e.g. "28,000 (28,000)"."""
    text = _number(row["samples_trained_mean"], ",.0f")
    same = row.get("same_compute_samples_mean", np.nan)
    return text if pd.isna(same) else f"{text} ({same:,.0f})"


def _lossless_text(value) -> str:
    return "—" if pd.isna(value) else ("yes" if value else "no")


def _number(value: float, fmt: str) -> str:
    return "—" if pd.isna(value) else format(value, fmt)


def format_leaderboard(board: pd.DataFrame) -> pd.DataFrame:
    """Human-readable leaderboard columns (percent, mean ± CI, verdicts) for Markdown/HTML."""
    if board.empty:
        return pd.DataFrame()
    targets = board["tta_target"].dropna().unique()
    tta_header = f"Time to {100 * targets[0]:g}%" if len(targets) == 1 else "Time to target"
    out = pd.DataFrame(
        {
            "Ratio (%)": board["prune_ratio"].map(lambda v: _pct(v, 0)),
            "Pruner": board["pruner_label"],
            "Rank (groups)": board.apply(_rank_text, axis=1),
            "Realized ratio (%)": board.apply(_ratio_text, axis=1),
            "Accuracy (%, 95% CI)": board.apply(_accuracy_text, axis=1),
            "Seeds": board.apply(_seeds_text, axis=1),
            "vs full (pts)": _verdicts(board, "lossless", "full_n_seeds"),
            "vs same compute (pts)": _verdicts(board, "same_compute", "same_compute_n_seeds"),
            tta_header: board.apply(lambda r: _time_text(r, _tta_text(r)), axis=1),
            "Sample passes (same compute)": board.apply(_passes_text, axis=1),
            "Train device-h": board.apply(
                lambda r: _time_text(r, _number(r["train_device_hours_mean"], ".3g")), axis=1
            ),
            "Saved vs full (%)": board.apply(
                lambda r: _time_text(r, _number(r["saved_pct"], ".1f")), axis=1
            ),
            "Saved passes vs full (%)": board["saved_samples_pct"].map(lambda v: _number(v, ".1f")),
            "Notes": board["notes"],
        }
    )
    return out


def _verdicts(board: pd.DataFrame, prefix: str, reference_seeds: str) -> list[str]:
    return [
        verdict_text(v, low, need, n, m)
        for v, low, need, n, m in zip(
            board[f"{prefix}_verdict"],
            board[f"{prefix}_lower_bound"],
            board[f"{prefix}_seeds_needed"],
            board["n_seeds"],
            board[reference_seeds],
            strict=True,
        )
    ]


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
        lossless = cells[cells["lossless_verdict"] == "lossless"].dropna(subset=["prune_ratio"])
        best = lossless.loc[lossless["prune_ratio"].idxmax()] if len(lossless) else None
        rows.append(
            {
                **dict(zip([*SECTION, "pruner_label"], group, strict=True)),
                "largest_lossless_ratio": np.nan if best is None else best["prune_ratio"],
                "at_target_ratio": np.nan if best is None else best["target_prune_ratio"],
                "seeds": "" if best is None else f"{best['n_seeds']} vs {best['full_n_seeds']}",
                "ratios_tested": len(cells),
                "undecided_ratios": int((cells["lossless_verdict"] == "undecided").sum()),
            }
        )
    return pd.DataFrame(rows)
