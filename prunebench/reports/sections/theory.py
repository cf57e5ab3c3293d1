"""The theory section: OrderDP's inclusion probabilities γ_j (reports.theory_figures draws them,
with the decompositions the experiment's OrderDP runs used)."""

from __future__ import annotations

from prunebench.reports.html import HtmlReport
from prunebench.reports.model import ReportContent, Section
from prunebench.reports.theory_figures import theory_figures


def html(page: HtmlReport, content: ReportContent) -> None:
    """Every theory figure."""
    for figure in content.figures["theory"]:
        page.figure(figure)


REPORT_SECTION = Section(
    "theory",
    "OrderDP theory: inclusion probabilities γ_j",
    html,
    report_figures=lambda content: theory_figures(content.usable),
)
