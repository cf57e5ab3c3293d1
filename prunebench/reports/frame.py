"""The runs frame's vocabulary: which columns name a section, a cell, a metric; which runs count.

Every report module reads the frame (reports.runs) through these names, so a column is named in
one place. Metric columns are built from record's names and checked against them at import.
"""

from __future__ import annotations

from collections.abc import Sequence

import pandas as pd

from prunebench import record
from prunebench.bench.budgets import Budget, parse_budget
from prunebench.errors import ConfigError
from prunebench.pruners import reference_pruner

SECTION = ["dataset", "model", "budget"]
"""Runs are compared only within a section: same data, model and budget."""
CELL = [*SECTION, "pruner_label", "target_prune_ratio"]
"""A leaderboard row: a section plus the pruner variant and its target prune ratio."""
REFERENCE = reference_pruner()
"""The full-data reference pruner's name (also its label in tables and figures)."""


def summary(name: str) -> str:
    """The runs-frame column of summary metric ``name`` (ValueError unless record names it)."""
    if name not in record.SUMMARY_METRICS:
        raise ValueError(f"summary metric {name!r} is not in record.SUMMARY_METRICS")
    return f"metrics.{name}"


FINAL_ACCURACY = summary(record.METRIC_FINAL_ACCURACY)
REALIZED_RATIO = summary(record.METRIC_REALIZED_RATIO)
TRAIN_SECONDS = summary(record.METRIC_TRAIN_SECONDS_TOTAL)
SAMPLES_TRAINED = summary(record.METRIC_SAMPLES_TRAINED_TOTAL)
SCORING_PASSES = summary(record.METRIC_SCORING_PASSES_TOTAL)
TRAIN_DEVICE_HOURS = summary(record.METRIC_TRAIN_DEVICE_HOURS)
TOTAL_DEVICE_HOURS = summary(record.METRIC_TOTAL_DEVICE_HOURS)
EPOCHS_RUN = summary(record.METRIC_EPOCHS_RUN)
EVALUATIONS = summary(record.METRIC_EVALUATIONS)
RATIO_SHORTFALL = f"metrics.{record.METRIC_RATIO_SHORTFALL}"


def epoch_metric(name: str) -> str:
    """The history-frame column of per-epoch metric ``name`` (ValueError unless record names it)."""
    if name not in record.EPOCH_METRICS:
        raise ValueError(f"per-epoch metric {name!r} is not in record.EPOCH_METRICS")
    return name


TEST_ACCURACY = epoch_metric("test_accuracy")
EPOCH_TRAIN_SECONDS = epoch_metric("train_seconds")
EVAL_TRAIN_SECONDS = epoch_metric("eval_train_seconds")
EPOCH_SAMPLES = epoch_metric("samples_trained")
TRAIN_STEPS = epoch_metric("train_steps")
GRAD_NORM = epoch_metric("grad_norm")
GRAD_NORM_STD = epoch_metric("grad_norm_std")
SUBSET_JACCARD = epoch_metric("subset_jaccard")
GRAD_COSINE = epoch_metric("grad_cosine")
GRAD_ALIGNMENT_PROGRESS = epoch_metric("grad_alignment_progress")
TTA_PREFIX = f"metrics.{record.TTA_SECONDS}_"
"""Columns ``metrics.tta_seconds_<target>`` (record.target_key)."""


def tta_column(prefix: str, target: float) -> str:
    """The runs-frame column of a time-to-accuracy metric, e.g. ``metrics.tta_seconds_0.90``."""
    return f"metrics.{record.target_key(prefix, target)}"


def logged_budget(text: str) -> Budget | None:
    """A run's ``budget`` param as budgets.parse_budget reads it; None for a symbolic budget
    (``same-compute:p``, ``time-fraction:F``) or a missing one."""
    try:
        return parse_budget(text)
    except ConfigError:
        return None


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
    if runs.empty or not {TRAIN_SECONDS, SAMPLES_TRAINED} <= set(runs.columns):
        return pd.Series(dtype=float)
    seconds = runs[TRAIN_SECONDS].where(runs[TRAIN_SECONDS] > 0)
    throughput = runs[SAMPLES_TRAINED] / seconds
    group = [column for column in TIME_GROUP if column in runs]
    median = throughput.groupby([runs[c].fillna("") for c in group]).transform("median")
    return pd.Series((throughput / median).to_numpy(), index=runs["run_id"].to_numpy())


def time_off(ratios: pd.Series) -> pd.Series:
    """Which throughput ratios are more than THROUGHPUT_FACTOR off the median."""
    return (ratios > THROUGHPUT_FACTOR) | (ratios < 1.0 / THROUGHPUT_FACTOR)


def is_reference(runs: pd.DataFrame) -> pd.Series:
    """Runs of the full-data reference pruner, in whatever comparison."""
    return (runs["pruner"] == REFERENCE) | (runs["pruner_label"] == REFERENCE)


def is_full(runs: pd.DataFrame) -> pd.Series:
    """Full data on the full budget: the reference every other cell is compared with."""
    if "comparison" not in runs:
        return is_reference(runs)
    return is_reference(runs) & (runs["comparison"] == record.COMPARISON_MAIN)


def keys(frame: pd.DataFrame, columns: Sequence[str]) -> pd.Series:
    """One hashable string per row identifying its values in ``columns`` (NaN-safe)."""
    if frame.empty:
        return pd.Series([], dtype=object, index=frame.index)
    # pandas 3's astype(str) keeps NaN (e.g. the seed of a run that crashed before its params).
    return frame[list(columns)].astype(str).fillna("nan").agg("\x1f".join, axis=1)


def in_section(frame: pd.DataFrame, section: tuple) -> pd.DataFrame:
    """The rows of ``frame`` in dataset / model / budget ``section``."""
    if frame.empty:
        return frame
    wanted = keys(pd.DataFrame([section], columns=SECTION), SECTION).iloc[0]
    return frame[keys(frame, SECTION) == wanted]


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
    columns = [*CELL, "seed", "status", "failure_reason", "superseded", "run_name", "run_id"]
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


def mean_of(runs: pd.DataFrame, column: str) -> float:
    """The mean of ``column`` over ``runs`` (NaN when absent or empty)."""
    return float(runs[column].mean()) if column in runs and len(runs) else float("nan")


def std_of(runs: pd.DataFrame, column: str) -> float:
    """The sample std of ``column`` over ``runs`` (NaN when absent or under 2 runs)."""
    return float(runs[column].std(ddof=1)) if column in runs and len(runs) > 1 else float("nan")


def section_title(section: Sequence) -> str:
    """'dataset / model / budget' heading of a leaderboard section."""
    return " / ".join(str(part) for part in section)


def section_slug(section: Sequence) -> str:
    """A file-name-safe identifier of a section, e.g. 'fashion_mnist-small_cnn-epochs-10'."""
    text = "-".join(str(part) for part in section)
    return "".join(c if c.isalnum() or c in "_-." else "-" for c in text)
