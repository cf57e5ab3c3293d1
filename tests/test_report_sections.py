"""Report sections are modules (issue 20): the registry names exactly the modules of
reports/sections, each exposes one section object, and a new section is one Section handed to
build (no other edit); the leaderboard shows forward-only passes and charges them (issue 25)."""

from __future__ import annotations

import importlib
import pkgutil

import pandas as pd
import pytest
from matplotlib.figure import Figure
from reports_fixtures import EXPERIMENT, fill_store

from prunebench.reports import sections
from prunebench.reports.build import build
from prunebench.reports.leaderboard import leaderboard
from prunebench.reports.model import ReportContent, Section, SectionContent
from prunebench.reports.sections import SECTIONS, report_sections
from prunebench.reports.sections.answer import forest_figure, verdict_table
from prunebench.reports.sections.leaderboard import format_leaderboard, split_leaderboard


def test_the_registry_lists_exactly_the_section_modules_each_with_its_section_object():
    modules = {info.name for info in pkgutil.iter_modules(sections.__path__)}
    assert set(SECTIONS) == modules and len(SECTIONS) == len(modules)
    for name in SECTIONS:
        part = importlib.import_module(f"prunebench.reports.sections.{name}").REPORT_SECTION
        assert isinstance(part, Section) and part.name == name
    assert [part.name for part in report_sections()] == list(SECTIONS)


def _extra_compute(content: ReportContent) -> pd.DataFrame:
    return pd.DataFrame({"cells": [len(content.board)]})


def _extra_per_section(content: ReportContent, section: SectionContent) -> int:
    return len(section.board)


def _extra_figure(x):
    figure = Figure()
    figure.add_subplot().bar([0], [x.content.parts["extra"]])
    return figure, f"Extra, {x.title}", "Rows of the section."


def _extra_html(page, content: ReportContent) -> None:
    page.text(f"Extra section: {int(content.parts['extra']['cells'].iloc[0])} cells.")
    for section in content.sections:
        page.text(f"{section.title} has {section.parts['extra']} rows.")


EXTRA = Section(
    "extra",
    "An extra section",
    _extra_html,
    compute=_extra_compute,
    per_section=_extra_per_section,
    figure=_extra_figure,
    markdown=lambda content: ["## Extra", "", "extra markdown", ""],
    csv={"extra": lambda content: content.parts["extra"]},
)


def test_a_new_section_is_one_section_object_handed_to_build(tmp_path):
    uri, _, _ = fill_store(tmp_path / "store")
    out, _ = build(
        EXPERIMENT, tmp_path / "report", uri, log_run=False, sections=(*report_sections(), EXTRA)
    )
    html = (out / "index.html").read_text(encoding="utf-8")
    assert "An extra section" in html
    board = pd.read_csv(out / "leaderboard.csv")
    assert f"Extra section: {len(board)} cells." in html
    assert "extra markdown" in (out / "leaderboard.md").read_text(encoding="utf-8")
    assert pd.read_csv(out / "tables" / "extra.csv")["cells"].tolist() == [len(board)]
    drawn = sorted(p.name for p in (out / "figures").glob("extra-*.png"))
    assert len(drawn) == board.groupby(["dataset", "model", "budget"]).ngroups > 0
    # The registry's own sections are all still there, in order, before the extra one.
    headings = [part.heading for part in report_sections()] + ["An extra section"]
    positions = [html.index(heading) for heading in headings]
    assert positions == sorted(positions)


def _run(label, target, seed, samples, scoring=None, accuracy=0.9):
    row = {
        "dataset": "d", "model": "m", "budget": "epochs:10", "pruner_label": label,
        "pruner": label, "target_prune_ratio": target, "seed": float(seed),
        "status": "FINISHED", "start_time": seed, "run_id": f"{label}-{seed}",
        "run_name": label, "failure_reason": None, "expected_seeds": 2.0, "comparison": "main",
        "train_size": 1_000.0, "metrics.final_test_accuracy": accuracy + 0.001 * seed,
        "metrics.realized_prune_ratio": target, "metrics.samples_trained_total": samples,
        "metrics.train_device_hours": 1.0,
    }  # fmt: skip
    if scoring is not None:
        row["metrics.scoring_forward_passes_total"] = scoring
    return row


def test_forward_only_passes_are_shown_and_charged_in_the_saved_passes():
    """Full data trains 10,000 passes; a pruner trains 5,000 and scores 2,000 forward-only:
    it spent 7,000, so it saved 30% of full data's passes (not 50%), and its row shows
    "2,000 (2× n)" on a 1,000-sample training set. A run with no scoring count made none."""
    runs = pd.DataFrame(
        [_run("full", 0.0, s, 10_000.0) for s in range(2)]
        + [_run("kakurenbo", 0.5, s, 5_000.0, scoring=2_000.0) for s in range(2)]
        + [_run("random", 0.5, s, 5_000.0) for s in range(2)]
    )
    board = leaderboard(runs).set_index("pruner_label")
    assert board.loc["kakurenbo", "scoring_passes_mean"] == 2_000.0
    assert board.loc["kakurenbo", "saved_samples_pct"] == pytest.approx(30.0)
    assert board.loc["random", "saved_samples_pct"] == pytest.approx(50.0)
    shown = format_leaderboard(board.reset_index()).set_index("Pruner")
    assert shown.loc["kakurenbo", "Forward-only passes"] == "2,000 (2× n)"
    assert shown.loc["random", "Forward-only passes"] == "—"


def test_the_leaderboard_is_two_tables_that_each_fit_a_laptop_screen():
    """15 columns in one table ran past a laptop screen; the accuracy table and the cost table
    keep the ratio and pruner, share out every other column once, and hold 9 or fewer each."""
    runs = pd.DataFrame(
        [_run("full", 0.0, s, 10_000.0) for s in range(2)]
        + [_run("kakurenbo", 0.5, s, 5_000.0, scoring=2_000.0) for s in range(2)]
    )
    shown = format_leaderboard(leaderboard(runs))
    accuracy, cost = split_leaderboard(shown)
    assert max(len(accuracy.columns), len(cost.columns)) <= 9
    key = ["Ratio (%)", "Pruner"]
    assert list(accuracy.columns[:2]) == key and list(cost.columns[:2]) == key
    assert sorted([*accuracy.columns[2:], *cost.columns[2:]]) == sorted(shown.columns[2:])
    assert "vs full (pts)" in accuracy and "Forward-only passes" in cost


def test_the_forest_plot_is_one_panel_with_a_row_per_pruned_cell_in_the_tables_order():
    """A panel per realized ratio made six mostly empty panels once the newer methods realized
    their own ratios; one panel lists each cell once, in the verdict table's order."""
    runs = pd.DataFrame(
        [_run("full", 0.0, s, 10_000.0) for s in range(3)]
        + [_run("kakurenbo", 0.25, s, 7_500.0, scoring=2_000.0) for s in range(3)]
        + [_run("random", 0.5, s, 5_000.0) for s in range(3)]
    )
    board = leaderboard(runs)
    figure = forest_figure(board, margin=0.004)
    (ax,) = figure.axes
    ticks = [tick.get_text() for tick in ax.get_yticklabels()]
    table = verdict_table(board)
    rows = zip(table["Realized ratio"], table["Pruner"], strict=True)
    assert ticks == [f"{ratio} · {pruner}" for ratio, pruner in rows]
    assert ticks == ["25% · kakurenbo", "50% · random"]
