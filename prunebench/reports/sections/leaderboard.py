"""The leaderboard section: per dataset / model / budget, every cell's accuracy, verdicts, rank,
time to accuracy and cost (its numbers: reports.leaderboard), with links to its runs."""

from __future__ import annotations

import numpy as np
import pandas as pd

from prunebench import record
from prunebench.reports.formatting import DASH, number, pct, rank_text, verdict_texts
from prunebench.reports.frame import usable_runs
from prunebench.reports.html import HtmlReport, markdown_table
from prunebench.reports.mlflow_ui import cell_run_links
from prunebench.reports.model import ReportContent, Section
from prunebench.reports.runs import training_runs


def _accuracy_text(row: pd.Series) -> str:
    """Mean ± half the 95% CI over seeds (a single seed has no interval)."""
    if row["n_seeds"] == 0:
        return DASH
    text = pct(row["accuracy_mean"], 2)
    if pd.isna(row["accuracy_ci_low"]):
        return text
    return f"{text} ± {pct((row['accuracy_ci_high'] - row['accuracy_ci_low']) / 2, 2)}"


def _seeds_text(row: pd.Series) -> str:
    if pd.isna(row["expected_seeds"]):
        return str(row["n_seeds"])
    text = f"{row['n_seeds']}/{int(row['expected_seeds'])}"
    return text + " (!)" if row["seeds_flag"] else text


def _tta_text(row: pd.Series) -> str:
    if pd.isna(row["tta_target"]) or row["n_seeds"] == 0:
        return DASH
    value = row[record.target_key(record.TTA_SECONDS, row["tta_target"])]
    head = "not reached" if pd.isna(value) else f"{value:.3g} s"
    reached = row[record.target_key("tta_reached", row["tta_target"])]
    return f"{head} ({reached}/{row['n_seeds']} seeds)"


def _ratio_text(row: pd.Series) -> str:
    text = pct(row["realized_prune_ratio_mean"], 1)
    return f"{text} (!)" if row["ratio_flag"] else text


def _time_text(row: pd.Series, text: str) -> str:
    """A time-derived figure, marked (!) when the row's runs' wall clocks are not trusted."""
    return f"{text} (!)" if row["time_flag"] and text != DASH else text


def _passes_text(row: pd.Series) -> str:
    """The row's mean sample passes, and those of the same-compute full data it is compared
    with, e.g. "28,000 (28,000)"."""
    text = number(row["samples_trained_mean"], ",.0f")
    same = row.get("same_compute_samples_mean", np.nan)
    return text if pd.isna(same) else f"{text} ({same:,.0f})"


def _scoring_text(row: pd.Series) -> str:
    """Forward-only (scoring) passes, and how many times the training set they make, e.g.
    "4,000 (2× n)"; "—" for runs that logged no count."""
    value = row.get("scoring_passes_mean", np.nan)
    text = number(value, ",.0f")
    size = row.get("train_size", np.nan)
    if pd.isna(value) or value == 0 or pd.isna(size) or size <= 0:
        return text
    return f"{text} ({value / size:.3g}× n)"


def format_leaderboard(board: pd.DataFrame) -> pd.DataFrame:
    """Human-readable leaderboard columns (percent, mean ± CI, verdicts) for Markdown/HTML."""
    if board.empty:
        return pd.DataFrame()
    targets = board["tta_target"].dropna().unique()
    tta_header = f"Time to {100 * targets[0]:g}%" if len(targets) == 1 else "Time to target"
    return pd.DataFrame(
        {
            "Ratio (%)": board["prune_ratio"].map(lambda v: pct(v, 0)),
            "Pruner": board["pruner_label"],
            "Rank (groups)": [
                rank_text(r, letters)
                for r, letters in zip(board["rank"], board["letters"], strict=True)
            ],
            "Realized ratio (%)": board.apply(_ratio_text, axis=1),
            "Accuracy (%, 95% CI)": board.apply(_accuracy_text, axis=1),
            "Seeds": board.apply(_seeds_text, axis=1),
            "vs full (pts)": verdict_texts(board, "lossless", "full_n_seeds"),
            "vs same compute (pts)": verdict_texts(board, "same_compute", "same_compute_n_seeds"),
            tta_header: board.apply(lambda r: _time_text(r, _tta_text(r)), axis=1),
            "Sample passes (same compute)": board.apply(_passes_text, axis=1),
            "Forward-only passes": board.apply(_scoring_text, axis=1),
            "Train device-h": board.apply(
                lambda r: _time_text(r, number(r["train_device_hours_mean"], ".3g")), axis=1
            ),
            "Saved vs full (%)": board.apply(
                lambda r: _time_text(r, number(r["saved_pct"], ".1f")), axis=1
            ),
            "Saved passes vs full (%)": board["saved_samples_pct"].map(lambda v: number(v, ".1f")),
            "Notes": board["notes"],
        }
    )


ACCURACY_COLUMNS = (
    "Ratio (%)",
    "Pruner",
    "Rank (groups)",
    "Realized ratio (%)",
    "Accuracy (%, 95% CI)",
    "Seeds",
    "vs full (pts)",
    "vs same compute (pts)",
)
"""The leaderboard's first table: what each cell reached and its verdicts."""


def split_leaderboard(shown: pd.DataFrame) -> tuple[pd.DataFrame, pd.DataFrame]:
    """:func:`format_leaderboard`'s columns as two tables that each fit a laptop screen:
    accuracy and verdicts, then cost (time, passes, device-hours, savings, notes); both keep
    the ratio and the pruner."""
    if shown.empty:
        return shown, shown
    cost = [c for c in shown.columns if c not in ACCURACY_COLUMNS]
    return shown[list(ACCURACY_COLUMNS)], shown[["Ratio (%)", "Pruner", *cost]]


def row_classes(board: pd.DataFrame) -> list[str]:
    """HTML row classes: failed (no seed, or a failed run), flag (seeds or ratio off), plain."""
    flagged = board["seeds_flag"] | board["ratio_flag"]
    return [
        "failed" if (n == 0 or problems > 0) else ("flag" if flag else "")
        for n, problems, flag in zip(board["n_seeds"], board["problem_runs"], flagged, strict=True)
    ]


def tta_note(board: pd.DataFrame) -> str:
    """How fine the section's time to accuracy is: evaluation points and seconds between them."""
    points, interval = board["eval_points"].dropna(), board["eval_interval_seconds"].dropna()
    if points.empty:
        return "Time to accuracy: no per-evaluation history was logged, its resolution is unknown."

    def span(low: float, high: float, fmt: str) -> str:
        return format(low, fmt) if low == high else f"{low:{fmt}}–{high:{fmt}}"

    return (
        f"Time to accuracy resolution: {span(points.min(), points.max(), 'g')} evaluation points "
        f"per run, one every {span(interval.min(), interval.max(), '.3g')} s of training on "
        "average; a time to accuracy can overstate the true one by up to one interval."
    )


def html(page: HtmlReport, content: ReportContent) -> None:
    """Per section, the leaderboard with links to each cell's runs and the tta resolution."""
    if content.ui_url:
        page.text(f"Run links open the MLflow UI at {content.ui_url} (start it with nox -s ui).")
    usable = usable_runs(training_runs(content.data.runs))
    for section in content.sections:
        page.heading(section.title, 3)
        runs = cell_run_links(section.board, usable, content.ui_url, content.data.experiment_id)
        accuracy, cost = split_leaderboard(format_leaderboard(section.board))
        classes = row_classes(section.board)
        page.table(accuracy.assign(Runs=runs), classes)
        page.text("Cost of each cell:")
        page.table(cost, classes)
        page.text(tta_note(section.board))


def markdown(content: ReportContent) -> list[str]:
    """Per section, the leaderboard and its tta resolution, for leaderboard.md."""
    lines = []
    for section in content.sections:
        accuracy, cost = split_leaderboard(format_leaderboard(section.board))
        lines += [f"## {section.title}", "", markdown_table(accuracy), ""]
        lines += ["Cost of each cell:", "", markdown_table(cost), tta_note(section.board), ""]
    return lines


REPORT_SECTION = Section("leaderboard", "Leaderboard", html, markdown=markdown)
