"""Build the report: read MLflow, compute every section, draw its figures, write, log.

The report is reports.sections.SECTIONS, one module per section (reports.model.Section): build
computes the leaderboard and what every section reads, then each section's parts, draws the
figures, renders HTML, Markdown and CSV, writes them atomically (reports.atomic) and logs them
(reports.publish). Entry point: :func:`build`.
"""

from __future__ import annotations

import datetime as dt
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

from prunebench import __version__, mlflow_store, record
from prunebench.reports import figures as fig
from prunebench.reports.atomic import check_out, write_folder
from prunebench.reports.comparisons import assign_sections, of_comparison, same_compute_cells
from prunebench.reports.frame import SECTION, in_section, section_slug, usable_runs
from prunebench.reports.html import HtmlReport
from prunebench.reports.leaderboard import leaderboard
from prunebench.reports.model import FigureInput, ReportContent, Section, SectionContent
from prunebench.reports.publish import log_report_run
from prunebench.reports.runs import ExperimentData, load_experiment, training_runs
from prunebench.reports.searches import search_results
from prunebench.reports.sections import report_sections
from prunebench.reports.ui_links import DEFAULT_UI_URL
from prunebench.stats import DEFAULT_LEVEL, look_level
from prunebench.stats.lossless import DEFAULT_MIN_TOLERANCE
from prunebench.stores import redact_url


def _base(
    data: ExperimentData,
    expected_seeds: int | Sequence[int] | None,
    expected_cells: pd.DataFrame | None,
    min_tolerance: float,
    level: float,
) -> ReportContent:
    """What every section reads: the leaderboard, the usable runs, the searches."""
    everything = training_runs(data.runs)
    # The per-section tables and figures show the preset's ordinary cells; same-compute full
    # runs join the leaderboard at their matched ratio, equal-time runs have a table of their own.
    train = of_comparison(everything, record.COMPARISON_MAIN)
    same = same_compute_cells(
        assign_sections(of_comparison(everything, record.COMPARISON_SAME_COMPUTE), train)
    )
    board = leaderboard(
        pd.concat([train, same], ignore_index=True) if not same.empty else train,
        expected_seeds=expected_seeds,
        expected_cells=expected_cells,
        min_tolerance=min_tolerance,
        level=level,
        histories=data.histories,
    )
    return ReportContent(
        data=data,
        everything=everything,
        board=board,
        # Figures group cells by the leaderboard's realized-ratio key, as its rows do.
        usable=fig.with_ratio_groups(usable_runs(train), board),
        searches=search_results(data.runs, margin=min_tolerance, level=level),
        palette=fig.pruner_palette(board["pruner_label"].tolist()),
        generated=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        min_tolerance=min_tolerance,
        level=level,
    )


def compute(
    data: ExperimentData,
    *,
    expected_seeds: int | Sequence[int] | None = None,
    expected_cells: pd.DataFrame | None = None,
    min_tolerance: float = DEFAULT_MIN_TOLERANCE,
    level: float = DEFAULT_LEVEL,
    sections: Sequence[Section] | None = None,
) -> ReportContent:
    """Every table and figure of the report from one experiment's MLflow data.

    ``sections`` (default: reports.sections, in order) are the parts computed and drawn."""
    parts = report_sections() if sections is None else tuple(sections)
    content = _base(data, expected_seeds, expected_cells, min_tolerance, level)
    content.sections = [
        SectionContent(key, rows.reset_index(drop=True), in_section(content.usable, key))
        for key, rows in content.board.groupby(SECTION, sort=True, dropna=False)
    ]
    for part in parts:
        if part.compute is not None:
            content.parts[part.name] = part.compute(content)
    for section in content.sections:
        for part in parts:
            if part.per_section is not None:
                section.parts[part.name] = part.per_section(content, section)
    draw_figures(content, parts)
    return content


def draw_figures(content: ReportContent, parts: Sequence[Section]) -> None:
    """Draw every section's figures into ``content`` (per dataset / model / budget section, and
    report-wide), after every part is computed."""
    for part in parts:
        if part.report_figures is not None:
            content.figures[part.name] = part.report_figures(content)
    for section in content.sections:
        slug = section_slug(section.key)
        inputs = FigureInput(section, content)
        for part in parts:
            if part.figure is None:
                continue
            figure, title, caption = part.figure(inputs)
            if figure is not None:
                section.figures[part.name] = fig.ReportFigure(
                    f"{part.name}-{slug}", title, caption, fig.render(figure)
                )


def render_markdown(content: ReportContent, sections: Sequence[Section] | None = None) -> str:
    """leaderboard.md: the sections that have a Markdown form, in order."""
    lines = [
        f"# prunebench leaderboard: {content.data.name}",
        "",
        f"Store `{redact_url(content.data.tracking_uri)}`, generated {content.generated}, "
        f"prunebench {__version__}.",
        "",
    ]
    for part in report_sections() if sections is None else sections:
        if part.markdown is not None:
            lines += part.markdown(content)
    return "\n".join(lines)


def render_html(content: ReportContent, sections: Sequence[Section] | None = None) -> str:
    """index.html: every section's tables and figures, images embedded."""
    page = HtmlReport(f"prunebench report: {content.data.name}")
    for part in report_sections() if sections is None else sections:
        page.heading(part.heading)
        part.html(page, content)
    meta = (
        f"Experiment {content.data.name!r} · store {redact_url(content.data.tracking_uri)} · "
        "generated "
        f"{content.generated} · prunebench {__version__} · "
        f"{int((content.data.runs['kind'] == record.KIND_TRAIN).sum())} training runs"
    )
    return page.render(meta)


def write_report(
    content: ReportContent, directory: Path, sections: Sequence[Section] | None = None
) -> None:
    """Write index.html, leaderboard.md/.csv, figures/*.png and tables/*.csv into ``directory``."""
    parts = report_sections() if sections is None else tuple(sections)
    figures_dir = directory / "figures"
    tables_dir = directory / "tables"
    figures_dir.mkdir()
    tables_dir.mkdir()
    report_wide = [f for figures in content.figures.values() for f in figures]
    for figure in [f for s in content.sections for f in s.figures.values()] + report_wide:
        (figures_dir / f"{figure.name}.png").write_bytes(figure.png)
    content.board.to_csv(directory / "leaderboard.csv", index=False)
    (directory / "leaderboard.md").write_text(render_markdown(content, parts), encoding="utf-8")
    for part in parts:
        for name, table in part.csv.items():
            table(content).to_csv(tables_dir / f"{name}.csv", index=False)
    (directory / "index.html").write_text(render_html(content, parts), encoding="utf-8")


def build(
    experiment: str,
    out_dir: str | Path,
    tracking_uri: str | None = None,
    *,
    expected_seeds: int | Sequence[int] | None = None,
    expected_cells: pd.DataFrame | None = None,
    min_tolerance: float | None = None,
    log_run: bool = True,
    ui_url: str = DEFAULT_UI_URL,
    sections: Sequence[Section] | None = None,
) -> tuple[Path, str | None]:
    """Build the report into ``out_dir``; return it and the report run id (None: not logged).

    ``min_tolerance`` None: the margin an --until-decided suite recorded on the experiment,
    else DEFAULT_MIN_TOLERANCE. Verdicts test at DEFAULT_LEVEL / L when the experiment records
    a sequential design of L looks (suite.until_decided). ``sections``: the report's parts
    (default: reports.sections, in order)."""
    out = Path(out_dir)
    check_out(out)
    parts = report_sections() if sections is None else tuple(sections)
    uri = mlflow_store.resolve_tracking_uri(tracking_uri)
    client = mlflow_store.open_store(uri)
    data = load_experiment(client, experiment, uri)
    tags = client.get_experiment(data.experiment_id).tags
    if min_tolerance is None:
        min_tolerance = float(tags.get(record.TAG_MARGIN, DEFAULT_MIN_TOLERANCE))
    content = compute(
        data,
        expected_seeds=expected_seeds,
        expected_cells=expected_cells,
        min_tolerance=min_tolerance,
        level=look_level(int(tags.get(record.TAG_LOOKS, 1)), DEFAULT_LEVEL),
        sections=parts,
    )
    if record.TAG_ROUNDS in tags:
        initial, per_round = tags[record.TAG_ROUNDS].split("+")
        content.design = (int(initial), int(per_round))
    content.ui_url = ui_url
    write_folder(out, lambda staging: write_report(content, staging, parts))
    # Logged once the folder is in place: MLflow never holds a report that was not written.
    run_id = log_report_run(client, content, out) if log_run else None
    return out, run_id
