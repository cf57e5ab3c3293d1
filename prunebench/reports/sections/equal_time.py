"""The equal-time section: every pruner, full data included, trained for the same seconds (a
fraction of the full-data run's measured training time); accuracy, verdict and rank per pruner.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from prunebench import record
from prunebench.reports.compare import compare_cells, verdict_columns
from prunebench.reports.comparisons import assign_sections, of_comparison
from prunebench.reports.formatting import DASH, ratio_pct, verdict_texts
from prunebench.reports.frame import (
    FINAL_ACCURACY,
    REALIZED_RATIO,
    SECTION,
    TRAIN_SECONDS,
    is_reference,
    mean_of,
    section_title,
    throughput_ratios,
    time_off,
    usable_runs,
)
from prunebench.reports.html import HtmlReport, markdown_table
from prunebench.reports.model import ReportContent, Section
from prunebench.stats import mean_ci, rank_groups

EQUAL_TIME_KEY = [*SECTION, "time_budget_fraction"]
"""An equal-time comparison: a section and a fraction of its full-data training time."""


def equal_time_table(
    runs: pd.DataFrame, *, margin: float, level: float, confidence: float = 0.95
) -> pd.DataFrame:
    """Per section and time fraction, every pruner's accuracy (mean, CI), verdict and rank.

    ``runs`` are equal-time training runs already given their section
    (reports.comparisons.assign_sections). The verdict is the lossless test against full data
    trained for the same seconds; pruners ranks and letters come from Holm-corrected pairwise
    tests (stats.rank_groups).
    """
    usable = usable_runs(runs) if not runs.empty else runs
    if usable.empty:
        return pd.DataFrame()
    throughput = throughput_ratios(usable)
    rows = []
    for key, group in usable.groupby(EQUAL_TIME_KEY, sort=True, dropna=False):
        full_acc = group.loc[is_reference(group), FINAL_ACCURACY].to_numpy(dtype=float)
        samples = {}
        for (label, ratio), cell in group.groupby(
            ["pruner_label", "target_prune_ratio"], sort=True, dropna=False
        ):
            acc = cell[FINAL_ACCURACY].to_numpy(dtype=float)
            samples[(label, ratio)] = acc
            ci = mean_ci(acc, confidence)
            is_full = bool(is_reference(cell).any())
            verdict = None if is_full else compare_cells(acc, full_acc, margin=margin, level=level)
            rows.append(
                {
                    **dict(zip(EQUAL_TIME_KEY, key, strict=True)),
                    "pruner_label": label,
                    "target_prune_ratio": ratio,
                    "is_full": is_full,
                    "time_budget_seconds": float(cell["time_budget_seconds"].mean()),
                    "train_seconds_mean": mean_of(cell, TRAIN_SECONDS),
                    "realized_prune_ratio_mean": mean_of(cell, REALIZED_RATIO),
                    "accuracy_mean": ci.mean,
                    "accuracy_ci_low": ci.low,
                    "accuracy_ci_high": ci.high,
                    "n_seeds": ci.n,
                    "full_n_seeds": int(full_acc.size),
                    # Runs whose throughput is off the median (frame.THROUGHPUT_FACTOR): their
                    # seconds measured the machine, so this row's comparison is suspect.
                    "time_flag_runs": int(
                        time_off(throughput.reindex(cell["run_id"]).dropna()).sum()
                    ),
                    "delta_to_full": np.nan if verdict is None else verdict.difference,
                    **verdict_columns("lossless", verdict),
                }
            )
        ranks = rank_groups({k: v for k, v in samples.items() if v.size}, level)
        for row in rows[len(rows) - len(samples) :]:
            place = ranks.get((row["pruner_label"], row["target_prune_ratio"]))
            row["rank"] = np.nan if place is None else place.rank
            row["letters"] = "" if place is None else place.letters
    table = pd.DataFrame(rows)
    order = [*EQUAL_TIME_KEY, "rank", "accuracy_mean", "pruner_label"]
    ascending = [True] * len(EQUAL_TIME_KEY) + [True, False, True]
    return table.sort_values(order, ascending=ascending, kind="stable").reset_index(drop=True)


def compute(content: ReportContent) -> pd.DataFrame:
    """The equal-time table of the experiment's equal-time runs, each in the section it serves."""
    main = of_comparison(content.everything, record.COMPARISON_MAIN)
    equal = assign_sections(of_comparison(content.everything, record.COMPARISON_EQUAL_TIME), main)
    return equal_time_table(equal, margin=content.min_tolerance, level=content.level)


def _display(table: pd.DataFrame) -> pd.DataFrame:
    """One equal-time comparison's rows for a human: ranked, with CI and verdict."""
    return pd.DataFrame(
        {
            "Rank": [
                DASH if pd.isna(r) else f"{int(r)} ({letters})"
                for r, letters in zip(table["rank"], table["letters"], strict=True)
            ],
            "Pruner": table["pruner_label"],
            "Target ratio (%)": ratio_pct(table["target_prune_ratio"]),
            "Realized ratio (%)": table["realized_prune_ratio_mean"].map(
                lambda v: DASH if pd.isna(v) else f"{100 * v:.1f}"
            ),
            "Accuracy (%, 95% CI)": [
                f"{100 * m:.2f}" if pd.isna(lo) else f"{100 * m:.2f} ± {100 * (hi - lo) / 2:.2f}"
                for m, lo, hi in zip(
                    table["accuracy_mean"],
                    table["accuracy_ci_low"],
                    table["accuracy_ci_high"],
                    strict=True,
                )
            ],
            "Seeds": table["n_seeds"],
            "Trained (s)": [
                DASH if pd.isna(v) else (f"{v:.3g} (!)" if flagged else f"{v:.3g}")
                for v, flagged in zip(
                    table["train_seconds_mean"], table["time_flag_runs"] > 0, strict=True
                )
            ],
            "Δ full, same time (pts)": table["delta_to_full"].map(
                lambda v: DASH if pd.isna(v) else f"{100 * v:+.2f}"
            ),
            "vs full, same time": verdict_texts(table, "lossless", "full_n_seeds"),
        }
    )


def _groups(table: pd.DataFrame):
    """(heading, rows) of each section and time fraction of the equal-time table."""
    for key, rows in table.groupby([*SECTION, "time_budget_fraction"], sort=True, dropna=False):
        fraction = key[-1]
        seconds = rows["time_budget_seconds"].mean()
        yield (
            f"{section_title(key[:-1])}: {100 * fraction:g}% of full data's training time "
            f"({seconds:.3g} s)",
            rows,
        )


_INTRO = (
    "Every pruner, full data included, trained for the same wall-clock seconds: a fraction of "
    "the full-data run's measured training time in the same suite. Verdicts are against full "
    "data given the same seconds; rank ties as in the leaderboard."
)


def html(page: HtmlReport, content: ReportContent) -> None:
    """Per section and time fraction, the ranked equal-time table."""
    table = content.parts["equal_time"]
    if table.empty:
        page.text("No equal-time runs in this experiment (a preset's `equal_time` adds them).")
        return
    page.text(_INTRO)
    for heading, rows in _groups(table):
        page.heading(heading, 3)
        page.table(_display(rows))


def markdown(content: ReportContent) -> list[str]:
    """The equal-time tables for leaderboard.md (nothing without equal-time runs)."""
    table = content.parts["equal_time"]
    if table.empty:
        return []
    lines = ["## Equal time", "", _INTRO, ""]
    for heading, rows in _groups(table):
        lines += [f"### {heading}", "", markdown_table(_display(rows))]
    return lines


REPORT_SECTION = Section(
    "equal_time",
    "Equal time budget",
    html,
    compute=compute,
    markdown=markdown,
    csv={"equal_time": lambda content: content.parts["equal_time"]},
)
