"""Table 6: the largest lossless prune ratio, from the Optuna searches (reports.searches) and
from the benchmark grid (the largest realized ratio among the leaderboard's lossless cells)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from prunebench.reports.frame import SECTION
from prunebench.reports.html import HtmlReport
from prunebench.reports.model import ReportContent, Section
from prunebench.reports.searches import lossless_table


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


@dataclass(frozen=True)
class Lossless:
    """Table 6 from the searches (their latest answers) and from the grid."""

    search_table: pd.DataFrame
    grid: pd.DataFrame


def compute(content: ReportContent) -> Lossless:
    """Both forms of Table 6."""
    return Lossless(lossless_table(content.searches), lossless_on_grid(content.board))


def _search_display(searches: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "Dataset": searches["dataset"],
            "Model": searches["model"],
            "Pruner": searches["pruner"],
            "Status": searches["status"],
            "Largest lossless ratio (%)": searches["largest_lossless_ratio"].map(
                lambda v: "none" if pd.isna(v) else f"{100 * v:.1f}"
            ),
            "Full accuracy (%)": [
                "—" if pd.isna(m) else f"{100 * m:.2f} ± {100 * s:.2f}"
                for m, s in zip(
                    searches["full_accuracy_mean"], searches["full_accuracy_std"], strict=True
                )
            ],
            "Margin": searches["tolerance"].map(lambda v: "—" if pd.isna(v) else f"{v:g}"),
            "Seeds": searches["seeds"],
            "Trials (lossless)": [
                f"{t} ({k})"
                for t, k in zip(searches["trials"], searches["lossless_trials"], strict=True)
            ],
            "Report's verdict: largest lossless (%)": [
                "—" if n == 0 else ("none" if pd.isna(v) else f"{100 * v:.1f}")
                for n, v in zip(
                    searches["report_decided_trials"],
                    searches["report_largest_lossless_ratio"],
                    strict=True,
                )
            ],
            "Verdicts agree": [
                "—" if n == 0 else ("yes" if d == 0 else f"no ({d} of {n} trials differ)")
                for n, d in zip(
                    searches["report_decided_trials"],
                    searches["verdict_disagreements"],
                    strict=True,
                )
            ],
            "Best parameters": searches["best_params"],
            "Reason": searches["failure_reason"],
        }
    )


def _grid_display(grid: pd.DataFrame) -> pd.DataFrame:
    if grid.empty:
        return grid
    values = grid.assign(
        value=["none" if pd.isna(v) else f"{100 * v:.1f}" for v in grid["largest_lossless_ratio"]]
    )
    table = values.pivot(index=SECTION, columns="pruner_label", values="value")
    return table.fillna("—").rename_axis(columns=None).reset_index()


def html(page: HtmlReport, content: ReportContent) -> None:
    """The searches' table and every search, then the grid's table."""
    searches, lossless = content.searches, content.parts["lossless"]
    if searches.empty:
        page.text("No search runs in this experiment (run `prunebench search` to add them).")
    else:
        page.text(
            "From Optuna searches (%; the latest finished search per pruner). A trial is "
            "lossless by the leaderboard's rule (one-sided Welch non-inferiority at margin "
            f"{100 * content.min_tolerance:g} points, level {content.level:g}); the report "
            "re-decides every trial from its seeds' runs and the full-data runs of the same "
            "seeds, and says whether its verdicts agree with the search's."
        )
        page.table(lossless.search_table)
        page.table(
            _search_display(searches),
            ["" if s == "FINISHED" else "failed" for s in searches["status"]],
        )
    page.text("From the benchmark grid (largest realized ratio (%) among lossless cells):")
    page.table(_grid_display(lossless.grid))


REPORT_SECTION = Section(
    "lossless",
    "Largest lossless prune ratio (Table 6 layout)",
    html,
    compute=compute,
    csv={
        "searches": lambda content: content.searches,
        "lossless_grid": lambda content: content.parts["lossless"].grid,
    },
)
