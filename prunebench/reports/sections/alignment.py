"""Table 11: the cosine between the gradient of each epoch's plan and the full-data gradient at
the progress checkpoints (reports.diagnostics computes it), and the cells that did not measure it.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from prunebench.reports import figures as fig
from prunebench.reports.diagnostics import (
    alignment_checkpoints,
    format_checkpoints,
    unmeasured_cells,
)
from prunebench.reports.frame import in_section
from prunebench.reports.html import HtmlReport
from prunebench.reports.model import (
    ReportContent,
    Section,
    SectionContent,
    concat,
    per_section_markdown,
)

NOTE = (
    "Cosine similarity between the gradient of the epoch's plan (its samples, repeats and loss "
    "weights) and the full-data gradient at the same weights, measured in train mode with "
    "training's augmentation at the first epoch end reaching each progress checkpoint, outside "
    "the training clock; mean ± std over seeds. The full-data row is the noise floor of the "
    "measurement: its plan is all data with unit weights, so it differs from the full gradient "
    "only by augmentation and batch composition (BatchNorm statistics per batch; with a "
    "probe, also by the probe's sample); a pruner's "
    "cosine near it means its weighted subset points where full data does."
)


@dataclass(frozen=True)
class Alignment:
    """One section's Table 11 rows, and its cells without a measurement."""

    table: pd.DataFrame
    unmeasured: pd.DataFrame


def compute(content: ReportContent) -> pd.DataFrame:
    """Table 11 over every usable run."""
    return alignment_checkpoints(content.data.histories, content.usable)


def per_section(content: ReportContent, section: SectionContent) -> Alignment:
    """The section's rows of Table 11 and its unmeasured cells."""
    table = in_section(content.parts["alignment"], section.key)
    return Alignment(table, unmeasured_cells(section.usable, table))


def _unmeasured_text(section: SectionContent) -> str | None:
    unmeasured = section.parts["alignment"].unmeasured
    if unmeasured.empty:
        return None
    names = [
        fig.cell_label(label, ratio)
        for label, ratio in zip(
            unmeasured["pruner_label"], unmeasured["target_prune_ratio"], strict=True
        )
    ]
    return "Not measured (grad_alignment off): " + ", ".join(names) + "."


def html(page: HtmlReport, content: ReportContent) -> None:
    """Per section, Table 11 and the cells it lacks."""
    page.text(NOTE)
    for section in content.sections:
        page.heading(section.title, 3)
        table = section.parts["alignment"].table
        if table.empty:
            page.text("No run of this section measured gradient alignment.", "empty")
        else:
            page.table(format_checkpoints(table, digits=4))
        unmeasured = _unmeasured_text(section)
        if unmeasured:
            page.text(unmeasured)


def markdown(content: ReportContent) -> list[str]:
    """Table 11 of every section, for leaderboard.md."""
    return per_section_markdown(
        content,
        "Table 11: gradient alignment with full data",
        NOTE,
        lambda section: format_checkpoints(section.parts["alignment"].table, 4),
        after=_unmeasured_text,
    )


def _csv(content: ReportContent) -> pd.DataFrame:
    return concat([section.parts["alignment"].table for section in content.sections])


REPORT_SECTION = Section(
    "alignment",
    "Gradient alignment with full data (Table 11 layout)",
    html,
    compute=compute,
    per_section=per_section,
    markdown=markdown,
    csv={"table11_grad_cosine": _csv},
)
