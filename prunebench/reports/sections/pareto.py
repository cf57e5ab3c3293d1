"""The Pareto section: per dataset / model / budget, the cells no other beats on both accuracy
and savings (reports.pareto), against realized prune ratio and against train device-hours."""

from __future__ import annotations

import pandas as pd

from prunebench.reports import figures as fig
from prunebench.reports.formatting import ratio_pct
from prunebench.reports.html import HtmlReport
from prunebench.reports.model import (
    Drawn,
    FigureInput,
    ReportContent,
    Section,
    SectionContent,
    concat,
    show_figure,
)
from prunebench.reports.pareto import PARETO_AXES, pareto_front


def fronts(content: ReportContent, section: SectionContent) -> dict[str, pd.DataFrame]:
    """The section's front on each axis of PARETO_AXES."""
    return {axis: pareto_front(section.board, axis) for axis in PARETO_AXES}


def figure(x: FigureInput) -> Drawn:
    """Both fronts with every run and cell behind them."""
    return (
        fig.pareto_figure(x.content.board, x.content.usable, x.report.palette),
        f"Pareto frontiers, {x.title}",
        "Small dots: individual runs; large markers: per-cell mean ± std over seeds; "
        "circled and dashed: the non-dominated cells.",
    )


def _display(front: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "Pruner": front["pruner_label"],
            "Target ratio (%)": ratio_pct(front["target_prune_ratio"]),
            "Realized ratio (%)": (100 * front["realized_prune_ratio_mean"]).map("{:.1f}".format),
            "Accuracy (%)": (100 * front["accuracy_mean"]).map("{:.2f}".format),
            "Train device-h": front["train_device_hours_mean"].map("{:.3g}".format),
        }
    )


def html(page: HtmlReport, content: ReportContent) -> None:
    """Per section, the figure and each front's cells."""
    for section in content.sections:
        page.heading(section.title, 3)
        show_figure(page, section, "pareto")
        for axis, front in section.parts["pareto"].items():
            page.text(f"Non-dominated cells, accuracy vs {PARETO_AXES[axis][2]}:")
            page.table(_display(front))


def _csv(content: ReportContent) -> pd.DataFrame:
    return concat(
        [
            front.assign(front=axis)
            for section in content.sections
            for axis, front in section.parts["pareto"].items()
        ]
    )


REPORT_SECTION = Section(
    "pareto",
    "Pareto frontiers",
    html,
    per_section=fronts,
    figure=figure,
    csv={"pareto": _csv},
)
