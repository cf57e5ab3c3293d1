"""The report's model: what every section reads, what one section is, and how its parts are kept.

A report section is one module of reports.sections exposing ``SECTION``, a :class:`Section`:
its heading, what it computes (once for the report, and per dataset / model / budget section),
the figure it draws per dataset / model / budget section, its HTML and Markdown renderers and
its CSV tables. Build computes every section's parts into ``ReportContent.parts[name]`` and
``SectionContent.parts[name]``, draws the figures, then renders; no section calls another.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from prunebench.reports.figures import ReportFigure
from prunebench.reports.frame import section_title
from prunebench.reports.html import HtmlReport, markdown_table
from prunebench.reports.runs import ExperimentData
from prunebench.stats import DEFAULT_LEVEL
from prunebench.stats.lossless import DEFAULT_MIN_TOLERANCE


@dataclass
class SectionContent:
    """One dataset / model / budget section: its leaderboard rows, runs, parts and figures."""

    key: tuple
    board: pd.DataFrame
    usable: pd.DataFrame
    """Its usable main training runs, with the leaderboard's ratio groups (figures.RATIO_GROUP)."""
    parts: dict[str, Any] = field(default_factory=dict)
    """Each report section's per-section result, by section name."""
    figures: dict[str, ReportFigure] = field(default_factory=dict)

    @property
    def title(self) -> str:
        """Its 'dataset / model / budget' heading."""
        return section_title(self.key)


@dataclass
class ReportContent:
    """Everything the report shows, computed from MLflow only."""

    data: ExperimentData
    everything: pd.DataFrame
    """Every benchmark training run, of every comparison (runs.training_runs)."""
    board: pd.DataFrame
    """The leaderboard (reports.leaderboard), which most sections read."""
    usable: pd.DataFrame
    """Usable main training runs, with the leaderboard's ratio groups."""
    searches: pd.DataFrame
    """Optuna searches (reports.searches.search_results), read by the answer and Table 6."""
    palette: dict
    generated: str
    min_tolerance: float = DEFAULT_MIN_TOLERANCE
    level: float = DEFAULT_LEVEL
    sections: list[SectionContent] = field(default_factory=list)
    parts: dict[str, Any] = field(default_factory=dict)
    """Each report section's report-wide result, by section name."""
    figures: dict[str, list[ReportFigure]] = field(default_factory=dict)
    """Each report section's report-wide figures (Section.report_figures), by section name."""
    design: tuple[int, int] | None = None
    """An --until-decided experiment's (initial seeds, seeds a round adds); None: none."""
    ui_url: str = ""
    """The MLflow UI that run links point to ("": no links)."""


@dataclass(frozen=True)
class FigureInput:
    """What a section's figure is drawn from: one dataset / model / budget section's runs."""

    content: SectionContent
    report: ReportContent

    @property
    def title(self) -> str:
        """The section's 'dataset / model / budget' title."""
        return self.content.title


Drawn = tuple
"""(matplotlib Figure, or None when there is nothing to draw; title; caption)."""


@dataclass(frozen=True)
class Section:
    """One part of the report: a heading, and what it computes, draws, renders and writes.

    ``compute`` runs once per report (its result: ``ReportContent.parts[name]``),
    ``per_section`` once per dataset / model / budget section after every ``compute``
    (``SectionContent.parts[name]``); ``figure`` draws it per dataset / model / budget section
    (saved as figures/NAME-SLUG.png), ``report_figures`` once for the report (saved under their
    own names); ``html`` renders it into index.html, ``markdown``
    (optional) into leaderboard.md; ``csv`` maps table file names (tables/NAME.csv) to the
    frames this part writes.
    """

    name: str
    heading: str
    html: Callable[[HtmlReport, ReportContent], None]
    compute: Callable[[ReportContent], Any] | None = None
    per_section: Callable[[ReportContent, SectionContent], Any] | None = None
    figure: Callable[[FigureInput], Drawn] | None = None
    report_figures: Callable[[ReportContent], list[ReportFigure]] | None = None
    markdown: Callable[[ReportContent], list[str]] | None = None
    csv: dict[str, Callable[[ReportContent], pd.DataFrame]] = field(default_factory=dict)


def concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    """The non-empty ``frames`` stacked (an empty frame when none is)."""
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def per_section_csv(name: str) -> Callable[[ReportContent], pd.DataFrame]:
    """One CSV of a per-section table: every section's ``parts[name]`` rows together."""
    return lambda content: concat([s.parts[name] for s in content.sections])


def per_section_markdown(
    content: ReportContent,
    heading: str,
    note: str,
    table: Callable[[SectionContent], pd.DataFrame],
    after: Callable[[SectionContent], str | None] = lambda section: None,
) -> list[str]:
    """A per-section table for leaderboard.md: the heading and note, then each section's table
    (or "No data.") and the optional line ``after`` gives for it."""
    lines = [f"## {heading}", "", note, ""]
    for section in content.sections:
        shown = table(section)
        lines += [f"### {section.title}", ""]
        lines.append(markdown_table(shown) if not shown.empty else "No data.\n")
        if extra := after(section):
            lines += [extra, ""]
    return lines


def show_figure(page: HtmlReport, section: SectionContent, name: str) -> None:
    """The section's figure ``name``, or a note that it had nothing to draw."""
    if name in section.figures:
        page.figure(section.figures[name])
    else:
        page.text("No data for this figure.", "empty")
