"""Table 9: per training phase, test accuracy over seeds next to the within-run fluctuation of
the per-step gradient norm (reports.diagnostics computes it), and its figure."""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from prunebench.reports import figures as fig
from prunebench.reports.diagnostics import PHASE_NAMES, format_stability, stability_phases
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


@dataclass(frozen=True)
class Phases:
    """Table 9 over every usable run, and whether its epochs pooled exactly by step counts."""

    table: pd.DataFrame
    steps_weighted: bool


def compute(content: ReportContent) -> Phases:
    """Table 9, its rows grouped as the leaderboard's are."""
    table, steps_weighted = stability_phases(content.data.histories, content.usable)
    return Phases(fig.with_ratio_groups(table, content.board), steps_weighted)


def per_section(content: ReportContent, section: SectionContent) -> pd.DataFrame:
    """The section's rows of Table 9."""
    return in_section(content.parts["stability"].table, section.key)


def _phase_panel(stability: pd.DataFrame, mean: str, spread: str) -> pd.DataFrame:
    """One quantity of Table 9 as the figure's ``<phase>_mean`` / ``<phase>_std`` columns."""
    if stability.empty:
        return stability
    renamed = {}
    for phase in PHASE_NAMES:
        renamed[f"{phase}_{mean}"] = f"{phase}_mean"
        renamed[f"{phase}_{spread}"] = f"{phase}_std"
    keep = ["pruner_label", "target_prune_ratio"]
    keep += [column for column in [fig.RATIO_GROUP] if column in stability]
    keep += ["n_seeds", *renamed]
    return stability[keep].rename(columns=renamed)


def figure(x: FigureInput) -> Drawn:
    """Accuracy and gradient norm per phase, a bar per cell."""
    table = x.content.parts["stability"]
    return (
        fig.stability_figure(
            _phase_panel(table, "acc_mean", "acc_std"),
            _phase_panel(table, "grad_mean", "grad_std_mean"),
            x.report.palette,
        ),
        f"Accuracy and gradient stability by training phase, {x.title}",
        "Left: test accuracy, per run the mean over the phase's epochs, then mean ± std over "
        "seeds. Right: per-step gradient norm, mean over seeds of each run's phase mean, bars: "
        "mean over seeds of each run's within-phase std (the paper's Grad ± Std).",
    )


def note(content: ReportContent) -> str:
    """What Table 9's columns are, and whether its epochs pooled exactly."""
    pooling = (
        "epochs pooled exactly by their optimizer-step counts"
        if content.parts["stability"].steps_weighted
        else "APPROXIMATION: some runs logged no per-epoch step count (train_steps), so their "
        "epochs weigh equally when pooled into a phase"
    )
    return (
        "Per training-progress phase (epoch e ends at (e + 1) / epochs run): Acc = test "
        "accuracy, each run's mean over the phase's epochs, then mean ± std over seeds. Grad ± "
        "Std = the fluctuation of the per-step gradient norm inside a run: each run's mean and "
        "std of its per-step norms over the phase's steps (" + pooling + "), each averaged over "
        "seeds. Final: the last epoch."
    )


def html(page: HtmlReport, content: ReportContent) -> None:
    """Per section, Table 9 and the figure."""
    page.text(note(content))
    for section in content.sections:
        page.heading(section.title, 3)
        page.table(format_stability(section.parts["stability"]))
        show_figure(page, section, "stability")


def markdown(content: ReportContent) -> list[str]:
    """Table 9 of every section, for leaderboard.md."""
    return per_section_markdown(
        content,
        "Table 9: accuracy and gradient stability by phase",
        note(content),
        lambda section: format_stability(section.parts["stability"]),
    )


REPORT_SECTION = Section(
    "stability",
    "Accuracy and within-run gradient stability by phase (Table 9 layout)",
    html,
    compute=compute,
    per_section=per_section,
    figure=figure,
    markdown=markdown,
    csv={"table9_stability": per_section_csv("stability")},
)
