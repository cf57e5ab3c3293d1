"""The problems section: every training run the leaderboard does not aggregate (failed,
incomplete, superseded), and the cells with fewer finished seeds than their preset asks for."""

from __future__ import annotations

import pandas as pd

from prunebench.reports.formatting import dataset_model_budget, ratio_pct
from prunebench.reports.frame import SECTION, problem_runs
from prunebench.reports.html import HtmlReport, markdown_table
from prunebench.reports.mlflow_ui import links
from prunebench.reports.model import ReportContent, Section


def _display(problems: pd.DataFrame) -> pd.DataFrame:
    if problems.empty:
        return problems
    return pd.DataFrame(
        {
            "Dataset / model / budget": dataset_model_budget(problems, SECTION),
            "Pruner": problems["pruner_label"],
            "Target ratio (%)": ratio_pct(problems["target_prune_ratio"]),
            "Seed": problems["seed"].map(lambda s: "—" if pd.isna(s) else f"{s:g}"),
            "Status": problems["status"],
            "Reason": problems["failure_reason"],
            "Superseded by a finished rerun": problems["superseded"].map(
                {True: "yes", False: "no"}
            ),
            "Run": problems["run_name"],
            "Run id": problems["run_id"],
        }
    )


def _missing_seeds(flagged: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "Dataset / model / budget": dataset_model_budget(flagged, SECTION),
            "Pruner": flagged["pruner_label"],
            "Target ratio (%)": ratio_pct(flagged["target_prune_ratio"]),
            "Finished seeds": flagged["n_seeds"],
            "Expected": flagged["expected_seeds"].map("{:.0f}".format),
            "Missing seeds": flagged["missing_seeds"].replace("", "—"),
        }
    )


def html(page: HtmlReport, content: ReportContent) -> None:
    """The problem runs, linked to their run pages, then the cells short of seeds."""
    problems = content.parts["problems"]
    if problems.empty:
        page.text("Every training run finished.")
    else:
        run_links = [
            links(content.ui_url, content.data.experiment_id, [run_id], [name])
            for run_id, name in zip(problems["run_id"], problems["run_name"], strict=True)
        ]
        page.table(
            _display(problems).assign(Run=run_links),
            ["" if s else "failed" for s in problems["superseded"]],
        )
    flagged = content.board[content.board["seeds_flag"]]
    if flagged.empty:
        page.text("Every cell has the seeds its preset asks for (or no expectation was recorded).")
    else:
        page.text("Cells with fewer finished seeds than expected:")
        page.table(_missing_seeds(flagged), ["flag"] * len(flagged))


def markdown(content: ReportContent) -> list[str]:
    """The problem runs for leaderboard.md."""
    problems = content.parts["problems"]
    lines = ["## Failed, incomplete and superseded runs", ""]
    lines.append(
        markdown_table(_display(problems))
        if not problems.empty
        else "None: every training run finished.\n"
    )
    return lines


REPORT_SECTION = Section(
    "problems",
    "Failed, incomplete and missing runs",
    html,
    compute=lambda content: problem_runs(content.everything),
    markdown=markdown,
    csv={"failed_runs": lambda content: content.parts["problems"]},
)
