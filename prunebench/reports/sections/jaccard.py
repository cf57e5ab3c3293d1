"""Table 8: the Jaccard similarity of consecutive epochs' coresets at the progress checkpoints
(reports.diagnostics computes it), and its per-epoch figure."""

from __future__ import annotations

import pandas as pd

from prunebench.reports import figures as fig
from prunebench.reports.diagnostics import format_checkpoints, jaccard_checkpoints
from prunebench.reports.frame import in_section
from prunebench.reports.html import HtmlReport
from prunebench.reports.model import (
    Drawn,
    FigureInput,
    ReportContent,
    Section,
    SectionContent,
    per_section_csv,
    per_section_markdown,
    show_figure,
)

NOTE = (
    "Jaccard similarity of the epoch's coreset (the samples it trains) with the previous "
    "epoch's, at the first epoch whose end reaches each progress checkpoint; mean ± std over "
    "seeds (none at a checkpoint reached by the first epoch). Full data: 1 by construction."
)


def compute(content: ReportContent) -> pd.DataFrame:
    """Table 8 over every usable run."""
    return jaccard_checkpoints(content.data.histories, content.usable)


def per_section(content: ReportContent, section: SectionContent) -> pd.DataFrame:
    """The section's rows of Table 8."""
    return in_section(content.parts["jaccard"], section.key)


def figure(x: FigureInput) -> Drawn:
    """The per-epoch Jaccard, mean over seeds."""
    return (
        fig.jaccard_figure(x.report.data.histories, x.content.usable, x.report.palette),
        f"Jaccard similarity of consecutive epochs' subsets, {x.title}",
        "Mean over seeds at each epoch.",
    )


def html(page: HtmlReport, content: ReportContent) -> None:
    """Per section, Table 8 and the figure."""
    page.text(NOTE)
    for section in content.sections:
        page.heading(section.title, 3)
        page.table(format_checkpoints(section.parts["jaccard"]))
        show_figure(page, section, "jaccard")


def markdown(content: ReportContent) -> list[str]:
    """Table 8 of every section, for leaderboard.md."""
    return per_section_markdown(
        content,
        "Table 8: coreset Jaccard at progress checkpoints",
        NOTE,
        lambda section: format_checkpoints(section.parts["jaccard"], 3),
    )


REPORT_SECTION = Section(
    "jaccard",
    "Coreset stability at progress checkpoints (Table 8 layout)",
    html,
    compute=compute,
    per_section=per_section,
    figure=figure,
    markdown=markdown,
    csv={"table8_jaccard": per_section_csv("jaccard")},
)
