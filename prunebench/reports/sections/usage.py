"""The per-sample usage section: per cell, how often each sample was trained (usage.npz), the
samples never trained, and a histogram per cell."""

from __future__ import annotations

import numpy as np
import pandas as pd

from prunebench.reports import figures as fig
from prunebench.reports.formatting import ratio_pct
from prunebench.reports.frame import CELL
from prunebench.reports.html import HtmlReport
from prunebench.reports.model import (
    Drawn,
    FigureInput,
    ReportContent,
    Section,
    SectionContent,
    per_section_csv,
    show_figure,
)


def usage_table(usable: pd.DataFrame, usage: dict[str, np.ndarray]) -> pd.DataFrame:
    """Per cell: seeds with usage counts, samples, zero-usage count (mean, max) and usage range."""
    rows = []
    for cell, runs in usable.groupby(CELL, sort=True, dropna=False):
        arrays = [usage[r] for r in runs["run_id"] if r in usage]
        zeros = [int((a == 0).sum()) for a in arrays]
        rows.append(
            {
                **dict(zip(CELL, cell, strict=True)),
                "seeds_with_usage": f"{len(arrays)}/{len(runs)}",
                "samples": int(arrays[0].size) if arrays else np.nan,
                "zero_usage_mean": float(np.mean(zeros)) if arrays else np.nan,
                "zero_usage_max": max(zeros) if arrays else np.nan,
                "usage_min": min(int(a.min()) for a in arrays) if arrays else np.nan,
                "usage_max": max(int(a.max()) for a in arrays) if arrays else np.nan,
            }
        )
    return pd.DataFrame(rows)


def per_section(content: ReportContent, section: SectionContent) -> pd.DataFrame:
    """The section's usage table."""
    return usage_table(section.usable, content.data.usage)


def figure(x: FigureInput) -> Drawn:
    """Usage histograms, one per pruned cell."""
    return (
        fig.usage_figure(x.content.usable, x.report.data.usage),
        f"Per-sample usage, {x.title}",
        "Samples trained k times in a run (averaged over seeds); the zero-usage count is "
        "annotated (red when some sample was never trained). Full data omitted: every "
        "sample is used every epoch.",
    )


def _display(table: pd.DataFrame) -> pd.DataFrame:
    if table.empty:
        return table
    return pd.DataFrame(
        {
            "Pruner": table["pruner_label"],
            "Target ratio (%)": ratio_pct(table["target_prune_ratio"]),
            "Seeds with usage.npz": table["seeds_with_usage"],
            "Samples": table["samples"].map(lambda v: "—" if pd.isna(v) else f"{int(v):,}"),
            "Zero-usage samples (mean)": table["zero_usage_mean"].map(
                lambda v: "—" if pd.isna(v) else f"{v:.3g}"
            ),
            "Zero-usage (max over seeds)": table["zero_usage_max"].map(
                lambda v: "—" if pd.isna(v) else f"{int(v)}"
            ),
            "Usage range (epochs)": [
                "—" if pd.isna(lo) else f"{int(lo)}–{int(hi)}"
                for lo, hi in zip(table["usage_min"], table["usage_max"], strict=True)
            ],
        }
    )


def html(page: HtmlReport, content: ReportContent) -> None:
    """Per section, the usage table and histograms."""
    for section in content.sections:
        page.heading(section.title, 3)
        page.table(_display(section.parts["usage"]))
        show_figure(page, section, "usage")


REPORT_SECTION = Section(
    "usage",
    "Per-sample usage",
    html,
    per_section=per_section,
    figure=figure,
    csv={"usage": per_section_csv("usage")},
)
