"""Build the report: read MLflow, compute tables and figures, write them atomically, log them.

The report is the list SECTIONS: each entry computes (per dataset / model / budget section, from
the runs frame and histories) its figure, and renders its heading, tables and figure into HTML,
Markdown and CSV; compute, render and write loop over the list. Entry point: :func:`build`.
"""

from __future__ import annotations

import datetime as dt
import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import Param

from prunebench import __version__, mlflow_store, record
from prunebench.errors import UsageError, write_error, write_failure
from prunebench.reports import answer
from prunebench.reports import figures as fig
from prunebench.reports.comparisons import (
    assign_sections,
    equal_time_table,
    of_comparison,
    same_compute_cells,
)
from prunebench.reports.diagnostics import (
    PHASE_NAMES,
    alignment_checkpoints,
    format_checkpoints,
    format_stability,
    jaccard_checkpoints,
    stability_phases,
    unmeasured_cells,
)
from prunebench.reports.html import HtmlReport, markdown_table
from prunebench.reports.leaderboard import (
    CELL,
    SECTION,
    THROUGHPUT_FACTOR,
    format_leaderboard,
    keys,
    leaderboard,
    lossless_on_grid,
    problem_runs,
    section_slug,
    section_title,
    usable_runs,
    verdict_text,
)
from prunebench.reports.mlflow_ui import (
    cell_run_links,
    format_utilization,
    links,
    utilization_table,
)
from prunebench.reports.pareto import PARETO_AXES, pareto_front
from prunebench.reports.runs import (
    ExperimentData,
    load_experiment,
    training_runs,
)
from prunebench.reports.searches import lossless_table, search_results
from prunebench.reports.stability import tta_curves
from prunebench.reports.theory_figures import theory_figures
from prunebench.reports.ui_links import DEFAULT_UI_URL
from prunebench.stats import DEFAULT_LEVEL, MIN_SEEDS, look_level
from prunebench.stats.lossless import DEFAULT_MIN_TOLERANCE
from prunebench.stores import redact_url


@dataclass
class SectionContent:
    """Tables and figures of one dataset / model / budget section."""

    key: tuple
    board: pd.DataFrame
    fronts: dict[str, pd.DataFrame]
    stability: pd.DataFrame
    """Table 9: accuracy over seeds and within-run gradient-norm spread per phase."""
    jaccard: pd.DataFrame
    """Table 8: consecutive-coreset Jaccard at the progress checkpoints."""
    alignment: pd.DataFrame
    """Table 11: grad_cosine at the progress checkpoints (cells that measured it)."""
    unmeasured: pd.DataFrame
    """Cells without a gradient-alignment measurement."""
    usage: pd.DataFrame
    figures: dict[str, fig.ReportFigure] = field(default_factory=dict)


@dataclass
class ReportContent:
    """Everything the report shows, computed from MLflow only."""

    data: ExperimentData
    board: pd.DataFrame
    problems: pd.DataFrame
    status_counts: pd.DataFrame
    sections: list[SectionContent]
    searches: pd.DataFrame
    search_table: pd.DataFrame
    grid_lossless: pd.DataFrame
    theory: list[fig.ReportFigure]
    steps_weighted: bool
    """Table 9 pooled every run's epochs by their step counts (else: epochs weighed equally)."""
    min_tolerance: float
    generated: str
    equal_time: pd.DataFrame = field(default_factory=pd.DataFrame)
    saturation: list[answer.Saturation] = field(default_factory=list)
    design: tuple[int, int] | None = None
    """An --until-decided experiment's (initial seeds, seeds a round adds); None: none."""
    """Full data on a multiple of the budget against the budget (the doubling test)."""
    level: float = DEFAULT_LEVEL
    ui_url: str = ""
    """The MLflow UI that run links point to ("": no links)."""


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


def _in_section(frame: pd.DataFrame, section: tuple) -> pd.DataFrame:
    if frame.empty:
        return frame
    wanted = keys(pd.DataFrame([section], columns=SECTION), SECTION).iloc[0]
    return frame[keys(frame, SECTION) == wanted]


def compute(
    data: ExperimentData,
    *,
    expected_seeds: int | Sequence[int] | None = None,
    expected_cells: pd.DataFrame | None = None,
    min_tolerance: float = DEFAULT_MIN_TOLERANCE,
    level: float = DEFAULT_LEVEL,
) -> ReportContent:
    """Every table and figure of the report from one experiment's MLflow data."""
    everything = training_runs(data.runs)
    # The per-section tables and figures show the preset's ordinary cells; same-compute full
    # runs join the leaderboard at their matched ratio, equal-time runs have a table of their own.
    train = of_comparison(everything, record.COMPARISON_MAIN)
    usable = usable_runs(train)
    same = same_compute_cells(
        assign_sections(of_comparison(everything, record.COMPARISON_SAME_COMPUTE), train)
    )
    equal = assign_sections(of_comparison(everything, record.COMPARISON_EQUAL_TIME), train)
    board = leaderboard(
        pd.concat([train, same], ignore_index=True) if not same.empty else train,
        expected_seeds=expected_seeds,
        expected_cells=expected_cells,
        min_tolerance=min_tolerance,
        level=level,
        histories=data.histories,
    )
    palette = fig.pruner_palette(board["pruner_label"].tolist())
    # Figures group cells by the leaderboard's realized-ratio key, as its rows do.
    usable = fig.with_ratio_groups(usable, board)
    stability, steps_weighted = stability_phases(data.histories, usable)
    stability = fig.with_ratio_groups(stability, board)
    jaccard = jaccard_checkpoints(data.histories, usable)
    alignment = alignment_checkpoints(data.histories, usable)
    curves = fig.with_ratio_groups(tta_curves(data.histories, usable), board)
    sections = []
    for section, section_board in board.groupby(SECTION, sort=True, dropna=False):
        section_board = section_board.reset_index(drop=True)
        section_usable = _in_section(usable, section)
        content = SectionContent(
            key=section,
            board=section_board,
            fronts={axis: pareto_front(section_board, axis) for axis in PARETO_AXES},
            stability=_in_section(stability, section),
            jaccard=_in_section(jaccard, section),
            alignment=_in_section(alignment, section),
            unmeasured=unmeasured_cells(section_usable, _in_section(alignment, section)),
            usage=usage_table(section_usable, data.usage),
        )
        content.figures = _section_figures(
            content,
            section_usable,
            _in_section(curves, section),
            data,
            palette,
            min_tolerance,
            level,
        )
        sections.append(content)
    searches = search_results(data.runs, margin=min_tolerance, level=level)
    counts = data.runs.assign(kind=data.runs["kind"].replace("", "(untagged)"))
    status_counts = counts.groupby(["kind", "status"]).size().rename("runs").reset_index()
    return ReportContent(
        data=data,
        board=board,
        problems=problem_runs(everything),
        status_counts=status_counts,
        sections=sections,
        searches=searches,
        search_table=lossless_table(searches),
        grid_lossless=lossless_on_grid(board),
        theory=theory_figures(usable),
        steps_weighted=steps_weighted,
        min_tolerance=min_tolerance,
        generated=dt.datetime.now(dt.timezone.utc).strftime("%Y-%m-%d %H:%M UTC"),
        equal_time=equal_time_table(equal, margin=min_tolerance, level=level),
        saturation=answer.saturation(everything),
        level=level,
    )


@dataclass(frozen=True)
class FigureInput:
    """What a section's figure is drawn from: one dataset / model / budget section's runs."""

    content: SectionContent
    usable: pd.DataFrame
    curves: pd.DataFrame
    data: ExperimentData
    palette: dict
    title: str
    margin: float
    level: float


Drawn = tuple  # (matplotlib Figure or None when there is nothing to draw, title, caption)


def _pareto_figure(x: FigureInput) -> Drawn:
    return (
        fig.pareto_figure(x.content.board, x.usable, x.palette),
        f"Pareto frontiers, {x.title}",
        "Small dots: individual runs; large markers: per-cell mean ± std over seeds; "
        "circled and dashed: the non-dominated cells.",
    )


def _tta_figure(x: FigureInput) -> Drawn:
    target = x.content.board["tta_target"].dropna()
    return (
        fig.tta_figure(
            x.curves, x.content.board, x.palette, target.iloc[0] if len(target) else None
        ),
        f"Time to accuracy, {x.title}",
        "Test accuracy at each evaluation against cumulative training seconds (evaluation "
        "excluded), mean over seeds (line) ± 1 std (band), seeds aligned by epoch; full "
        "data dashed; dotted: the leaderboard's accuracy target. Every pruner of a section is "
        "evaluated at the same sample passes (seconds under time budgets), so the curves share "
        "one resolution; panels are the leaderboard's realized-ratio groups.",
    )


def _usage_figure(x: FigureInput) -> Drawn:
    return (
        fig.usage_figure(x.usable, x.data.usage),
        f"Per-sample usage, {x.title}",
        "Samples trained k times in a run (averaged over seeds); the zero-usage count is "
        "annotated (red when some sample was never trained). Full data omitted: every "
        "sample is used every epoch.",
    )


def _phase_panel(stability: pd.DataFrame, mean: str, spread: str) -> pd.DataFrame:
    """One quantity of Table 9 as the figure's ``<phase>_mean`` / ``<phase>_std`` columns."""
    if stability.empty:
        return stability
    renamed = {}
    for phase in PHASE_NAMES:
        renamed[f"{phase}_{mean}"] = f"{phase}_mean"
        renamed[f"{phase}_{spread}"] = f"{phase}_std"
    keep = ["pruner_label", "target_prune_ratio", *_present(stability, [fig.RATIO_GROUP])]
    keep += ["n_seeds", *renamed]
    return stability[keep].rename(columns=renamed)


def _present(frame: pd.DataFrame, columns: list[str]) -> list[str]:
    return [column for column in columns if column in frame]


def _stability_figure(x: FigureInput) -> Drawn:
    table = x.content.stability
    return (
        fig.stability_figure(
            _phase_panel(table, "acc_mean", "acc_std"),
            _phase_panel(table, "grad_mean", "grad_std_mean"),
            x.palette,
        ),
        f"Accuracy and gradient stability by training phase, {x.title}",
        "Left: test accuracy, per run the mean over the phase's epochs, then mean ± std over "
        "seeds. Right: per-step gradient norm, mean over seeds of each run's phase mean, bars: "
        "mean over seeds of each run's within-phase std (the paper's Grad ± Std).",
    )


def _jaccard_figure(x: FigureInput) -> Drawn:
    return (
        fig.jaccard_figure(x.data.histories, x.usable, x.palette),
        f"Jaccard similarity of consecutive epochs' subsets, {x.title}",
        "Mean over seeds at each epoch.",
    )


def _section_figures(
    content: SectionContent,
    usable: pd.DataFrame,
    curves: pd.DataFrame,
    data: ExperimentData,
    palette: dict,
    margin: float,
    level: float,
) -> dict[str, fig.ReportFigure]:
    """Every report section's figure for one dataset / model / budget section."""
    slug = section_slug(content.key)
    inputs = FigureInput(
        content, usable, curves, data, palette, section_title(content.key), margin, level
    )
    out = {}
    for part in SECTIONS:
        if part.figure is None:
            continue
        figure, fig_title, caption = part.figure(inputs)
        if figure is not None:
            out[part.name] = fig.ReportFigure(
                f"{part.name}-{slug}", fig_title, caption, fig.render(figure)
            )
    return out


def _row_classes(board: pd.DataFrame) -> list[str]:
    flagged = board["seeds_flag"] | board["ratio_flag"]
    return [
        "failed" if (n == 0 or problems > 0) else ("flag" if flag else "")
        for n, problems, flag in zip(board["n_seeds"], board["problem_runs"], flagged, strict=True)
    ]


def _problems_display(problems: pd.DataFrame) -> pd.DataFrame:
    if problems.empty:
        return problems
    return pd.DataFrame(
        {
            "Dataset / model / budget": problems[SECTION].astype(str).agg(" / ".join, axis=1),
            "Pruner": problems["pruner_label"],
            "Target ratio (%)": (100 * problems["target_prune_ratio"]).map("{:.1f}".format),
            "Seed": problems["seed"].map(lambda s: "—" if pd.isna(s) else f"{s:g}"),
            "Status": problems["status"],
            "Reason": problems["failure_reason"],
            "Superseded by a finished rerun": problems["superseded"].map(
                {True: "yes", False: "no"}
            ),
            "Run": problems["run_name"],
            "Run id": problems["run_id"],
        }
    )


def _front_display(front: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "Pruner": front["pruner_label"],
            "Target ratio (%)": (100 * front["target_prune_ratio"]).map("{:.1f}".format),
            "Realized ratio (%)": (100 * front["realized_prune_ratio_mean"]).map("{:.1f}".format),
            "Accuracy (%)": (100 * front["accuracy_mean"]).map("{:.2f}".format),
            "Train device-h": front["train_device_hours_mean"].map("{:.3g}".format),
        }
    )


def _usage_display(table: pd.DataFrame) -> pd.DataFrame:
    if table.empty:
        return table
    return pd.DataFrame(
        {
            "Pruner": table["pruner_label"],
            "Target ratio (%)": (100 * table["target_prune_ratio"]).map("{:.1f}".format),
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


def _search_display(searches: pd.DataFrame) -> pd.DataFrame:
    return pd.DataFrame(
        {
            "Dataset": searches["dataset"],
            "Model": searches["model"],
            "Pruner": searches["pruner"],
            "Status": searches["status"],
            "Largest lossless ratio (%)": searches["largest_lossless_ratio"].map(
                lambda v: "none" if pd.isna(v) else f"{100 * v:.1f}"
            ),
            "Full accuracy (%)": [
                "—" if pd.isna(m) else f"{100 * m:.2f} ± {100 * s:.2f}"
                for m, s in zip(
                    searches["full_accuracy_mean"], searches["full_accuracy_std"], strict=True
                )
            ],
            "Margin": searches["tolerance"].map(lambda v: "—" if pd.isna(v) else f"{v:g}"),
            "Seeds": searches["seeds"],
            "Trials (lossless)": [
                f"{t} ({k})"
                for t, k in zip(searches["trials"], searches["lossless_trials"], strict=True)
            ],
            "Report's verdict: largest lossless (%)": [
                "—" if n == 0 else ("none" if pd.isna(v) else f"{100 * v:.1f}")
                for n, v in zip(
                    searches["report_decided_trials"],
                    searches["report_largest_lossless_ratio"],
                    strict=True,
                )
            ],
            "Verdicts agree": [
                "—" if n == 0 else ("yes" if d == 0 else f"no ({d} of {n} trials differ)")
                for n, d in zip(
                    searches["report_decided_trials"],
                    searches["verdict_disagreements"],
                    strict=True,
                )
            ],
            "Best parameters": searches["best_params"],
            "Reason": searches["failure_reason"],
        }
    )


def _grid_lossless_display(grid: pd.DataFrame) -> pd.DataFrame:
    if grid.empty:
        return grid
    values = grid.assign(
        value=["none" if pd.isna(v) else f"{100 * v:.1f}" for v in grid["largest_lossless_ratio"]]
    )
    table = values.pivot(index=SECTION, columns="pruner_label", values="value")
    return table.fillna("—").rename_axis(columns=None).reset_index()


RULES = (
    "Rows are keyed by the realized prune ratio: the target when the seeds' mean meets it within "
    "0.01, else the realized mean rounded to 2 decimals; a run whose realized ratio misses its "
    "target by more than 0.01 is flagged (!). Accuracy: final test accuracy, mean ± half the "
    "95% Student-t confidence interval over seeds. Lossless: a one-sided Welch non-inferiority "
    "test (unpaired: runs of different pruners share a seed's initialization but not its data "
    "order) of the seeds' accuracies against the reference's (full data on the full budget; "
    "full data given the same sample passes; full data given the same seconds) at margin "
    "{margin:g} accuracy points and level {level:g}. Each comparison gives the one-sided 95% "
    "lower bound of pruned − reference ('loses ≤ X' points) and the verdict follows from the "
    "bounds: lossless when the lower bound is above −margin, lossy when the upper bound is below "
    "it, undecided otherwise (a bound exactly on the margin, compared after rounding to 1e-9, is "
    "on it). A side whose seeds all agree is given the spread of one test image (0.01 points on "
    "10,000 images), never none. 'N decide': the seeds a side that would decide at this margin "
    "with power 0.8 if the observed difference and spreads are true (∞ on the margin). With "
    "fewer than {min_seeds} seeds a side a verdict is undecided: too few seeds to decide. Rank "
    "(groups): all pairwise two-sided Welch tests among the pruners at one realized ratio, "
    "Holm-corrected (family-wise level {level:g}); the rank is 1 + the number of pruners "
    "significantly better, and pruners sharing a letter are not significantly different. Time "
    "to target (MLPerf): training "
    "seconds to the first evaluation at or above the target; the median over seeds below 5 "
    "seeds, from 5 the mean without the fastest and slowest, a seed that never reached it "
    "counting as infinitely slow; it is only as fine as the evaluation points, which are the "
    "same sample passes (seconds under time budgets) for every pruner. Saved: 1 − train "
    "device-hours / full-data train device-hours (same dataset, model and budget); saved passes: "
    "1 − sample passes / full data's, which no hardware changes. Ranks and verdicts use accuracy "
    "only; the Pareto front against device-hours and every saving in seconds use the wall "
    "clock, so a run whose training throughput is more than {factor:g}× off the median of its "
    "dataset, model and device has its time figures marked (!) and a note. A cell is flagged "
    "when it has fewer finished seeds than its preset asks for."
)


def rules(content: ReportContent) -> str:
    """The rules the report's numbers follow, with this report's margin and level."""
    return RULES.format(
        margin=100 * content.min_tolerance,
        level=content.level,
        min_seeds=MIN_SEEDS,
        factor=THROUGHPUT_FACTOR,
    )


def _html_summary(page: HtmlReport, content: ReportContent) -> None:
    page.text(rules(content))
    page.table(
        content.status_counts.rename(columns={"kind": "Kind", "status": "Status", "runs": "Runs"})
    )


def tta_note(board: pd.DataFrame) -> str:
    """How fine the section's time to accuracy is: evaluation points and seconds between them."""
    points, interval = board["eval_points"].dropna(), board["eval_interval_seconds"].dropna()
    if points.empty:
        return "Time to accuracy: no per-evaluation history was logged, its resolution is unknown."

    def span(low: float, high: float, fmt: str) -> str:
        return format(low, fmt) if low == high else f"{low:{fmt}}–{high:{fmt}}"

    return (
        f"Time to accuracy resolution: {span(points.min(), points.max(), 'g')} evaluation points "
        f"per run, one every {span(interval.min(), interval.max(), '.3g')} s of training on "
        "average; a time to accuracy can overstate the true one by up to one interval."
    )


def _html_leaderboard(page: HtmlReport, content: ReportContent) -> None:
    if content.ui_url:
        page.text(f"Run links open the MLflow UI at {content.ui_url} (start it with nox -s ui).")
    usable = usable_runs(training_runs(content.data.runs))
    for section in content.sections:
        page.heading(section_title(section.key), 3)
        runs = cell_run_links(section.board, usable, content.ui_url, content.data.experiment_id)
        page.table(format_leaderboard(section.board).assign(Runs=runs), _row_classes(section.board))
        page.text(tta_note(section.board))


def _html_utilization(page: HtmlReport, content: ReportContent) -> None:
    page.text(
        "Mean device utilization over each run's MLflow system metrics, mean over the seeds that "
        "sampled them, next to train device-hours:"
    )
    usable = usable_runs(training_runs(content.data.runs))
    for section in content.sections:
        page.heading(section_title(section.key), 3)
        utilization = utilization_table(section.board, usable, content.data.utilization)
        page.table(format_utilization(utilization))


def _markdown_leaderboard(content: ReportContent) -> list[str]:
    lines = []
    for section in content.sections:
        lines += [
            f"## {section_title(section.key)}",
            "",
            markdown_table(format_leaderboard(section.board)),
            tta_note(section.board),
            "",
        ]
    return lines


def _equal_time_display(table: pd.DataFrame) -> pd.DataFrame:
    """One equal-time comparison's rows for a human: ranked, with CI and verdict."""
    return pd.DataFrame(
        {
            "Rank": [
                "—" if pd.isna(r) else f"{int(r)} ({letters})"
                for r, letters in zip(table["rank"], table["letters"], strict=True)
            ],
            "Pruner": table["pruner_label"],
            "Target ratio (%)": (100 * table["target_prune_ratio"]).map("{:.1f}".format),
            "Realized ratio (%)": table["realized_prune_ratio_mean"].map(
                lambda v: "—" if pd.isna(v) else f"{100 * v:.1f}"
            ),
            "Accuracy (%, 95% CI)": [
                f"{100 * m:.2f}" if pd.isna(lo) else f"{100 * m:.2f} ± {100 * (hi - lo) / 2:.2f}"
                for m, lo, hi in zip(
                    table["accuracy_mean"],
                    table["accuracy_ci_low"],
                    table["accuracy_ci_high"],
                    strict=True,
                )
            ],
            "Seeds": table["n_seeds"],
            "Trained (s)": [
                "—" if pd.isna(v) else (f"{v:.3g} (!)" if flagged else f"{v:.3g}")
                for v, flagged in zip(
                    table["train_seconds_mean"], table["time_flag_runs"] > 0, strict=True
                )
            ],
            "Δ full, same time (pts)": table["delta_to_full"].map(
                lambda v: "—" if pd.isna(v) else f"{100 * v:+.2f}"
            ),
            "vs full, same time": [
                verdict_text(v, low, need, n, m)
                for v, low, need, n, m in zip(
                    table["lossless_verdict"],
                    table["lossless_lower_bound"],
                    table["lossless_seeds_needed"],
                    table["n_seeds"],
                    table["full_n_seeds"],
                    strict=True,
                )
            ],
        }
    )


def _equal_time_groups(content: ReportContent):
    """(heading, rows) of each section and time fraction of the equal-time table."""
    table = content.equal_time
    if table.empty:
        return
    for key, rows in table.groupby([*SECTION, "time_budget_fraction"], sort=True, dropna=False):
        fraction = key[-1]
        seconds = rows["time_budget_seconds"].mean()
        yield (
            f"{section_title(key[:-1])}: {100 * fraction:g}% of full data's training time "
            f"({seconds:.3g} s)",
            rows,
        )


_EQUAL_TIME_INTRO = (
    "Every pruner, full data included, trained for the same wall-clock seconds: a fraction of "
    "the full-data run's measured training time in the same suite. Verdicts are against full "
    "data given the same seconds; rank ties as in the leaderboard."
)


def _html_equal_time(page: HtmlReport, content: ReportContent) -> None:
    if content.equal_time.empty:
        page.text("No equal-time runs in this experiment (a preset's `equal_time` adds them).")
        return
    page.text(_EQUAL_TIME_INTRO)
    for heading, rows in _equal_time_groups(content):
        page.heading(heading, 3)
        page.table(_equal_time_display(rows))


def _markdown_equal_time(content: ReportContent) -> list[str]:
    if content.equal_time.empty:
        return []
    lines = ["## Equal time", "", _EQUAL_TIME_INTRO, ""]
    for heading, rows in _equal_time_groups(content):
        lines += [f"### {heading}", "", markdown_table(_equal_time_display(rows))]
    return lines


def _html_problems(page: HtmlReport, content: ReportContent) -> None:
    if content.problems.empty:
        page.text("Every training run finished.")
    else:
        problems = content.problems
        run_links = [
            links(content.ui_url, content.data.experiment_id, [run_id], [name])
            for run_id, name in zip(problems["run_id"], problems["run_name"], strict=True)
        ]
        page.table(
            _problems_display(problems).assign(Run=run_links),
            ["" if s else "failed" for s in problems["superseded"]],
        )
    flagged = content.board[content.board["seeds_flag"]]
    if flagged.empty:
        page.text("Every cell has the seeds its preset asks for (or no expectation was recorded).")
    else:
        page.text("Cells with fewer finished seeds than expected:")
        page.table(
            pd.DataFrame(
                {
                    "Dataset / model / budget": flagged[SECTION]
                    .astype(str)
                    .agg(" / ".join, axis=1),
                    "Pruner": flagged["pruner_label"],
                    "Target ratio (%)": (100 * flagged["target_prune_ratio"]).map("{:.1f}".format),
                    "Finished seeds": flagged["n_seeds"],
                    "Expected": flagged["expected_seeds"].map("{:.0f}".format),
                    "Missing seeds": flagged["missing_seeds"].replace("", "—"),
                }
            ),
            ["flag"] * len(flagged),
        )


def _markdown_problems(content: ReportContent) -> list[str]:
    lines = ["## Failed, incomplete and superseded runs", ""]
    lines.append(
        markdown_table(_problems_display(content.problems))
        if not content.problems.empty
        else "None: every training run finished.\n"
    )
    return lines


def _html_pareto(page: HtmlReport, content: ReportContent) -> None:
    for section in content.sections:
        page.heading(section_title(section.key), 3)
        _maybe_figure(page, section, "pareto")
        for axis, front in section.fronts.items():
            page.text(f"Non-dominated cells, accuracy vs {PARETO_AXES[axis][2]}:")
            page.table(_front_display(front))


def _html_figures(name: str) -> Callable[[HtmlReport, ReportContent], None]:
    """A section that shows its figure for each dataset / model / budget section."""

    def html(page: HtmlReport, content: ReportContent) -> None:
        for section in content.sections:
            page.heading(section_title(section.key), 3)
            _maybe_figure(page, section, name)

    return html


def _html_usage(page: HtmlReport, content: ReportContent) -> None:
    for section in content.sections:
        page.heading(section_title(section.key), 3)
        page.table(_usage_display(section.usage))
        _maybe_figure(page, section, "usage")


def _stability_note(content: ReportContent) -> str:
    pooling = (
        "epochs pooled exactly by their optimizer-step counts"
        if content.steps_weighted
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


def _html_stability(page: HtmlReport, content: ReportContent) -> None:
    page.text(_stability_note(content))
    for section in content.sections:
        page.heading(section_title(section.key), 3)
        page.table(format_stability(section.stability))
        _maybe_figure(page, section, "stability")


JACCARD_NOTE = (
    "Jaccard similarity of the epoch's coreset (the samples it trains) with the previous "
    "epoch's, at the first epoch whose end reaches each progress checkpoint; mean ± std over "
    "seeds (none at a checkpoint reached by the first epoch). Full data: 1 by construction."
)
ALIGNMENT_NOTE = (
    "Cosine similarity between the gradient of the epoch's plan (its samples, repeats and loss "
    "weights) and the full-data gradient at the same weights, measured in train mode with "
    "training's augmentation at the first epoch end reaching each progress checkpoint, outside "
    "the training clock; mean ± std over seeds. The full-data row is the noise floor of the "
    "measurement: its plan is all data with unit weights, so it differs from the full gradient "
    "only by augmentation and batch composition (BatchNorm statistics per batch; with a "
    "probe, also by the probe's sample); a pruner's "
    "cosine near it means its weighted subset points where full data does."
)


def _html_jaccard(page: HtmlReport, content: ReportContent) -> None:
    page.text(JACCARD_NOTE)
    for section in content.sections:
        page.heading(section_title(section.key), 3)
        page.table(format_checkpoints(section.jaccard))
        _maybe_figure(page, section, "jaccard")


def _unmeasured_text(section: SectionContent) -> str | None:
    if section.unmeasured.empty:
        return None
    names = [
        fig.cell_label(label, ratio)
        for label, ratio in zip(
            section.unmeasured["pruner_label"],
            section.unmeasured["target_prune_ratio"],
            strict=True,
        )
    ]
    return "Not measured (grad_alignment off): " + ", ".join(names) + "."


def _html_alignment(page: HtmlReport, content: ReportContent) -> None:
    page.text(ALIGNMENT_NOTE)
    for section in content.sections:
        page.heading(section_title(section.key), 3)
        if section.alignment.empty:
            page.text("No run of this section measured gradient alignment.", "empty")
        else:
            page.table(format_checkpoints(section.alignment, digits=4))
        unmeasured = _unmeasured_text(section)
        if unmeasured:
            page.text(unmeasured)


def _markdown_diagnostics(content: ReportContent) -> list[str]:
    """Tables 8, 9 and 11 of every section, for leaderboard.md."""
    lines = []
    parts = (
        ("Table 8: coreset Jaccard at progress checkpoints", JACCARD_NOTE, "jaccard", 3),
        ("Table 9: accuracy and gradient stability by phase", _stability_note(content), "", 0),
        ("Table 11: gradient alignment with full data", ALIGNMENT_NOTE, "alignment", 4),
    )
    for heading, note, attr, digits in parts:
        lines += [f"## {heading}", "", note, ""]
        for section in content.sections:
            table = (
                format_checkpoints(getattr(section, attr), digits)
                if attr
                else format_stability(section.stability)
            )
            lines += [f"### {section_title(section.key)}", ""]
            lines.append(markdown_table(table) if not table.empty else "No data.\n")
            if attr == "alignment" and _unmeasured_text(section):
                lines += [_unmeasured_text(section), ""]
    return lines


def _html_lossless(page: HtmlReport, content: ReportContent) -> None:
    if content.searches.empty:
        page.text("No search runs in this experiment (run `prunebench search` to add them).")
    else:
        page.text(
            "From Optuna searches (%; the latest finished search per pruner). A trial is "
            "lossless by the leaderboard's rule (one-sided Welch non-inferiority at margin "
            f"{100 * content.min_tolerance:g} points, level {content.level:g}); the report "
            "re-decides every trial from its seeds' runs and the full-data runs of the same "
            "seeds, and says whether its verdicts agree with the search's."
        )
        page.table(content.search_table)
        page.table(
            _search_display(content.searches),
            ["" if s == "FINISHED" else "failed" for s in content.searches["status"]],
        )
    page.text("From the benchmark grid (largest realized ratio (%) among lossless cells):")
    page.table(_grid_lossless_display(content.grid_lossless))


def _html_theory(page: HtmlReport, content: ReportContent) -> None:
    for figure in content.theory:
        page.figure(figure)


def _per_section(attr: str) -> Callable[[ReportContent], pd.DataFrame]:
    """One CSV of a per-section table, every section's rows together."""
    return lambda content: _concat([getattr(s, attr) for s in content.sections])


def _pareto_csv(content: ReportContent) -> pd.DataFrame:
    fronts = [s.fronts[axis].assign(front=axis) for s in content.sections for axis in s.fronts]
    return _concat(fronts)


@dataclass(frozen=True)
class ReportSection:
    """One part of the report: a heading, and what it computes, draws, renders and writes.

    ``figure`` draws it per dataset / model / budget section (saved as figures/NAME-SLUG.png);
    ``html`` renders it into index.html, ``markdown`` (optional) into leaderboard.md; ``csv``
    maps table file names (tables/NAME.csv) to the frames this part writes.
    """

    name: str
    heading: str
    html: Callable[[HtmlReport, ReportContent], None]
    figure: Callable[[FigureInput], Drawn] | None = None
    markdown: Callable[[ReportContent], list[str]] | None = None
    csv: dict[str, Callable[[ReportContent], pd.DataFrame]] = field(default_factory=dict)


SECTIONS: list[ReportSection] = [
    ReportSection(
        "answer",
        "The answer: who saves how much without losing accuracy",
        answer.html,
        answer.figure,
        markdown=answer.markdown,
        csv={"answer": lambda content: answer.verdict_frame(content.board)},
    ),
    ReportSection("leaderboard", "Leaderboard", _html_leaderboard, markdown=_markdown_leaderboard),
    ReportSection(
        "utilization",
        "Device utilization",
        _html_utilization,
        csv={"utilization": lambda content: content.data.utilization},
    ),
    ReportSection(
        "equal_time",
        "Equal time budget",
        _html_equal_time,
        markdown=_markdown_equal_time,
        csv={"equal_time": lambda content: content.equal_time},
    ),
    ReportSection(
        "problems",
        "Failed, incomplete and missing runs",
        _html_problems,
        markdown=_markdown_problems,
        csv={"failed_runs": lambda content: content.problems},
    ),
    ReportSection(
        "pareto", "Pareto frontiers", _html_pareto, _pareto_figure, csv={"pareto": _pareto_csv}
    ),
    ReportSection("tta", "Time to accuracy", _html_figures("tta"), _tta_figure),
    ReportSection(
        "usage",
        "Per-sample usage",
        _html_usage,
        _usage_figure,
        csv={"usage": _per_section("usage")},
    ),
    ReportSection(
        "jaccard",
        "Coreset stability at progress checkpoints (Table 8 layout)",
        _html_jaccard,
        _jaccard_figure,
        markdown=_markdown_diagnostics,
        csv={"table8_jaccard": _per_section("jaccard")},
    ),
    ReportSection(
        "stability",
        "Accuracy and within-run gradient stability by phase (Table 9 layout)",
        _html_stability,
        _stability_figure,
        csv={"table9_stability": _per_section("stability")},
    ),
    ReportSection(
        "alignment",
        "Gradient alignment with full data (Table 11 layout)",
        _html_alignment,
        csv={"table11_grad_cosine": _per_section("alignment")},
    ),
    ReportSection(
        "lossless",
        "Largest lossless prune ratio (Table 6 layout)",
        _html_lossless,
        csv={
            "searches": lambda content: content.searches,
            "lossless_grid": lambda content: content.grid_lossless,
        },
    ),
    ReportSection("theory", "OrderDP theory: inclusion probabilities γ_j", _html_theory),
    ReportSection("summary", "Method and rules", _html_summary),
]
"""The report, in order: a new part is one function (or a few) and one entry here."""


def render_markdown(content: ReportContent) -> str:
    """leaderboard.md: the sections that have a Markdown form (leaderboard, problem runs)."""
    lines = [
        f"# prunebench leaderboard: {content.data.name}",
        "",
        f"Store `{redact_url(content.data.tracking_uri)}`, generated {content.generated}, "
        f"prunebench {__version__}.",
        "",
    ]
    for part in SECTIONS:
        if part.markdown is not None:
            lines += part.markdown(content)
    lines += ["## Method and rules", "", rules(content), ""]
    return "\n".join(lines)


def render_html(content: ReportContent) -> str:
    """index.html: every section's tables and figures, images embedded."""
    page = HtmlReport(f"prunebench report: {content.data.name}")
    for part in SECTIONS:
        page.heading(part.heading)
        part.html(page, content)
    meta = (
        f"Experiment {content.data.name!r} · store {redact_url(content.data.tracking_uri)} · "
        "generated "
        f"{content.generated} · prunebench {__version__} · "
        f"{int((content.data.runs['kind'] == record.KIND_TRAIN).sum())} training runs"
    )
    return page.render(meta)


def _maybe_figure(page: HtmlReport, section: SectionContent, name: str) -> None:
    if name in section.figures:
        page.figure(section.figures[name])
    else:
        page.text("No data for this figure.", "empty")


def write_report(content: ReportContent, directory: Path) -> None:
    """Write index.html, leaderboard.md/.csv, figures/*.png and tables/*.csv into ``directory``."""
    figures_dir = directory / "figures"
    tables_dir = directory / "tables"
    figures_dir.mkdir()
    tables_dir.mkdir()
    all_figures = [f for s in content.sections for f in s.figures.values()] + content.theory
    for figure in all_figures:
        (figures_dir / f"{figure.name}.png").write_bytes(figure.png)
    content.board.to_csv(directory / "leaderboard.csv", index=False)
    (directory / "leaderboard.md").write_text(render_markdown(content), encoding="utf-8")
    for part in SECTIONS:
        for name, table in part.csv.items():
            table(content).to_csv(tables_dir / f"{name}.csv", index=False)
    (directory / "index.html").write_text(render_html(content), encoding="utf-8")


def _concat(frames: list[pd.DataFrame]) -> pd.DataFrame:
    frames = [f for f in frames if not f.empty]
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def _check_out(out: Path) -> None:
    """Refuse an --out that is a file, or a non-empty directory that is not a previous report."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; pass a directory path for the report.")
    here = Path.cwd()
    if out.resolve() in (here, *here.parents):
        raise UsageError(
            f"--out {out} is the current directory or holds it, and a report replaces its folder "
            "whole; pass a folder of its own, e.g. --out report"
        )
    if out.is_dir() and any(out.iterdir()) and not (out / "index.html").is_file():
        raise UsageError(
            f"--out {out} is a non-empty directory that is not a prunebench report; pass a new "
            f"or empty directory."
        )


def _replace_dir(new: Path, out: Path) -> None:
    """Move ``new`` to ``out``, replacing a previous report as a whole (never half-overwritten;
    on any failure the previous report is back in place and no ``.old-`` folder is left)."""
    if not out.exists():
        os.replace(new, out)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
    try:
        os.replace(out, old / "report")
        try:
            os.replace(new, out)
        except BaseException:
            os.replace(old / "report", out)
            raise
    finally:
        shutil.rmtree(old, ignore_errors=True)


def _log_report_run(client: MlflowClient, content: ReportContent, directory: Path) -> str:
    """Log the written report as the artifacts of a new run (kind "report") in the experiment."""
    data = content.data
    run = client.create_run(
        data.experiment_id,
        run_name="report",
        tags=record.new_run_tags(record.KIND_REPORT),
    )
    run_id = run.info.run_id
    try:
        client.log_batch(
            run_id,
            params=[
                Param("report.experiment", data.name),
                Param("report.cells", str(len(content.board))),
                Param(
                    "report.training_runs", str(int((data.runs["kind"] == record.KIND_TRAIN).sum()))
                ),
                Param("report.problem_runs", str(len(content.problems))),
                Param("report.min_tolerance", f"{content.min_tolerance:g}"),
                Param("report.level", f"{content.level:g}"),
                Param(record.PARAM_VERSION, __version__),
            ],
        )
        client.log_artifacts(run_id, str(directory))
        mlflow_store.set_tags(client, run_id, record.end_tags("FINISHED"))
        client.set_terminated(run_id, "FINISHED")
    except Exception as error:
        mlflow_store.set_tags(
            client, run_id, record.end_tags("FAILED", f"logging the report failed: {error}")
        )
        client.set_terminated(run_id, "FAILED")
        raise
    return run_id


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
) -> tuple[Path, str | None]:
    """Build the report into ``out_dir``; return it and the report run id (None: not logged).

    ``min_tolerance`` None: the margin an --until-decided suite recorded on the experiment,
    else DEFAULT_MIN_TOLERANCE. Verdicts test at DEFAULT_LEVEL / L when the experiment records
    a sequential design of L looks (suite.until_decided)."""
    out = Path(out_dir)
    _check_out(out)
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
    )
    if record.TAG_ROUNDS in tags:
        initial, per_round = tags[record.TAG_ROUNDS].split("+")
        content.design = (int(initial), int(per_round))
    content.ui_url = ui_url
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
        try:
            write_report(content, staging)
            _replace_dir(staging, out)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    except OSError as error:
        if (cause := write_failure(error)) is None:
            raise
        fix = "free space there or pass another --out, then run the command again"
        raise write_error(cause, out, fix, what="report") from None
    # Logged once the folder is in place: MLflow never holds a report that was not written.
    run_id = _log_report_run(client, content, out) if log_run else None
    return out, run_id
