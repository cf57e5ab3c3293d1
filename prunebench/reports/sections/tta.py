"""The time-to-accuracy section: per dataset / model / budget, test accuracy against training
seconds, mean over seeds, a panel per realized-ratio group."""

from __future__ import annotations

import pandas as pd

from prunebench.reports import figures as fig
from prunebench.reports.frame import in_section
from prunebench.reports.html import HtmlReport
from prunebench.reports.model import (
    Drawn,
    FigureInput,
    ReportContent,
    Section,
    SectionContent,
    show_figure,
)
from prunebench.reports.stability import tta_curves


def compute(content: ReportContent) -> pd.DataFrame:
    """Every usable run's accuracy curve, grouped as the leaderboard's rows are."""
    return fig.with_ratio_groups(tta_curves(content.data.histories, content.usable), content.board)


def curves(content: ReportContent, section: SectionContent) -> pd.DataFrame:
    """The section's curves."""
    return in_section(content.parts["tta"], section.key)


def figure(x: FigureInput) -> Drawn:
    """The curves, with the leaderboard's accuracy target dotted."""
    target = x.content.board["tta_target"].dropna()
    return (
        fig.tta_figure(
            x.content.parts["tta"],
            x.content.board,
            x.report.palette,
            target.iloc[0] if len(target) else None,
        ),
        f"Time to accuracy, {x.title}",
        "Test accuracy at each evaluation against cumulative training seconds (evaluation "
        "excluded), mean over seeds (line) ± 1 std (band), seeds aligned by epoch; full "
        "data dashed; dotted: the leaderboard's accuracy target. Every pruner of a section is "
        "evaluated at the same sample passes (seconds under time budgets), so the curves share "
        "one resolution; panels are the leaderboard's realized-ratio groups.",
    )


def html(page: HtmlReport, content: ReportContent) -> None:
    """Per section, the figure."""
    for section in content.sections:
        page.heading(section.title, 3)
        show_figure(page, section, "tta")


REPORT_SECTION = Section(
    "tta", "Time to accuracy", html, compute=compute, per_section=curves, figure=figure
)
