"""The device-utilization section: per leaderboard row, mean GPU and CPU utilization from
MLflow's system metrics next to train device-hours (reports.mlflow_ui computes them)."""

from __future__ import annotations

from prunebench.reports.frame import usable_runs
from prunebench.reports.html import HtmlReport
from prunebench.reports.mlflow_ui import format_utilization, utilization_table
from prunebench.reports.model import ReportContent, Section
from prunebench.reports.runs import training_runs


def html(page: HtmlReport, content: ReportContent) -> None:
    """Per section, the utilization table."""
    page.text(
        "Mean device utilization over each run's MLflow system metrics, mean over the seeds that "
        "sampled them, next to train device-hours:"
    )
    usable = usable_runs(training_runs(content.data.runs))
    for section in content.sections:
        page.heading(section.title, 3)
        utilization = utilization_table(section.board, usable, content.data.utilization)
        page.table(format_utilization(utilization))


REPORT_SECTION = Section(
    "utilization",
    "Device utilization",
    html,
    csv={"utilization": lambda content: content.data.utilization},
)
