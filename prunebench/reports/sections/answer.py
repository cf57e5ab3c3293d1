"""The report's first section: the answer to "which pruner saves how much without losing
accuracy", before any method.

It owns its compute (who is lossless, lossy or undecided at each realized ratio; the confirmed
largest lossless ratio per pruner; full data's saturation; the margin's power), its figure (a
forest plot of each pruner's difference against full data and same-compute full data, with the
one-sided 95% bounds and the margin marked, a panel per ratio) and its renderers. It reads the
leaderboard and the search table the report already computed, and the saturation runs.
Its report-wide part is the list of :class:`Saturation` measurements.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from prunebench import record
from prunebench.bench.budgets import parse_budget
from prunebench.reports.figures import new_figure
from prunebench.reports.frame import FINAL_ACCURACY, is_reference, usable_runs
from prunebench.reports.html import HtmlReport, markdown_table
from prunebench.reports.model import FigureInput, ReportContent, Section
from prunebench.stats import DEFAULT_LEVEL, DEFAULT_RESOLUTION, supported_margin, welch_bounds
from prunebench.stats.power import DEFAULT_POWER

SATURATION_AIM = 0.005
"""Full data is saturated when twice its budget gains under 0.5 accuracy points (the aim)."""
VERDICT_MARKS = {"lossless": "✓", "lossy": "✗", "undecided": "?"}


@dataclass(frozen=True)
class Saturation:
    """Full data on the budget against full data on a multiple of it, one dataset / model."""

    dataset: str
    model: str
    budget: str
    multiple: float
    base: np.ndarray
    more: np.ndarray

    @property
    def gain(self) -> float:
        """Mean accuracy gained by training ``multiple`` times longer."""
        return float(self.more.mean() - self.base.mean())

    def interval(self) -> tuple[float, float]:
        """The gain's two-sided 95% Welch interval (NaN with fewer than 2 seeds a side)."""
        if min(self.base.size, self.more.size) < 2:
            return np.nan, np.nan
        welch = welch_bounds(self.more, self.base, DEFAULT_RESOLUTION)
        return welch.bound(0.975, -1), welch.bound(0.975, +1)

    def sentence(self) -> str:
        """E.g. "Full data is saturated: 2x the budget gains +0.18 points (95% CI ...)"."""
        low, high = self.interval()
        ci = "" if np.isnan(low) else f", 95% CI {100 * low:+.2f} to {100 * high:+.2f}"
        verdict = "saturated" if self.gain < SATURATION_AIM else "NOT saturated"
        return (
            f"Full data on {self.dataset} / {self.model} is {verdict} at {self.budget}: "
            f"{self.multiple:g}x the budget gains {100 * self.gain:+.2f} points "
            f"({100 * self.base.mean():.2f}% -> {100 * self.more.mean():.2f}%, "
            f"{self.base.size} and {self.more.size} seeds{ci}); the aim is under "
            f"{100 * SATURATION_AIM:g} points. Pruning can only be lossless where full data has "
            "more training than it needs."
        )


def saturation(everything: pd.DataFrame) -> list[Saturation]:
    """Each dataset / model whose suite ran full data on a multiple of its budget."""
    if everything.empty or "budget_multiple" not in everything:
        return []
    runs = usable_runs(everything[is_reference(everything)])
    more = runs[runs["comparison"] == record.COMPARISON_SATURATION]
    base = runs[runs["comparison"] == record.COMPARISON_MAIN]
    out = []
    for (dataset, model, budget, multiple), group in more.groupby(
        ["dataset", "model", "budget", "budget_multiple"], sort=True
    ):
        doubled = parse_budget(budget)
        original = f"{doubled.kind}:{doubled.amount / multiple:g}"
        reference = base[
            (base["dataset"] == dataset) & (base["model"] == model) & (base["budget"] == original)
        ]
        if reference.empty:
            continue
        out.append(
            Saturation(
                dataset,
                model,
                original,
                float(multiple),
                reference[FINAL_ACCURACY].to_numpy(float),
                group[FINAL_ACCURACY].to_numpy(float),
            )
        )
    return out


def typical_spread(board: pd.DataFrame) -> tuple[float, int]:
    """The median seed spread over a section's main cells, and how many cells it is over; the
    spread the margin's power computation uses. A median, not a pooled variance: a collapsed
    cell (a method lossy by tens of points) has a seed spread of points that says nothing of
    the spread of a pruner as good as full data, and pooling let one such cell decide it."""
    cells = board[(board["comparison"] == record.COMPARISON_MAIN) & (board["n_seeds"] >= 2)]
    if cells.empty:
        return np.nan, 0
    return float(cells["accuracy_std"].median()), len(cells)


def power_sentence(board: pd.DataFrame, margin: float, level: float) -> str:
    """The margin against what the seeds can support (power 0.8 for a truly equal pruner)."""
    spread, cells = typical_spread(board)
    ran = board.loc[board["n_seeds"] > 0, "n_seeds"]
    seeds = int(ran.median()) if len(ran) else 0  # the typical cell's, not a partial one's
    if np.isnan(spread) or seeds < 2:
        return "Too few seeds to compute the margin's power."
    supported = supported_margin(spread, seeds, level)
    fits = "so a pruner truly as good as full data is" if supported <= margin else "too small:"
    tail = (
        "declared lossless with power at least 0.8"
        if supported <= margin
        else f"a truly equal pruner would be declared lossless with power under {DEFAULT_POWER}"
    )
    return (
        f"Margin {100 * margin:g} points. The median seed spread over {cells} cells is "
        f"{100 * spread:.3f} points; with {seeds} seeds a side a one-sided t-test at level "
        f"{level:g} supports margins down to {100 * supported:.3f} points (power "
        f"{DEFAULT_POWER:g}), {fits} {tail}."
    )


def verdict_frame(board: pd.DataFrame) -> pd.DataFrame:
    """The pruned main rows of a section: pruner, realized ratio, both verdicts and bounds; by
    realized ratio, then best lower bound against full data first (the verdict table's and the
    forest plot's order)."""
    rows = board[~board["is_full"] & (board["comparison"] == record.COMPARISON_MAIN)]
    rows = rows[rows["n_seeds"] > 0]
    return rows.sort_values(["prune_ratio", "lossless_lower_bound"], ascending=[True, False])


def _cell(verdict, lower: float) -> str:
    if pd.isna(verdict):
        return "—"
    bound = "" if pd.isna(lower) else f" {100 * lower:+.2f}"
    return f"{VERDICT_MARKS.get(verdict, '')} {verdict}{bound}"


def _cells(rows: pd.DataFrame, comparison: str) -> list[str]:
    """The verdict and lower bound of each row's comparison (``lossless``: against full data)."""
    verdicts, bounds = rows[f"{comparison}_verdict"], rows[f"{comparison}_lower_bound"]
    return [_cell(verdict, bound) for verdict, bound in zip(verdicts, bounds, strict=True)]


def rounds(seeds: int, design: tuple[int, int] | None) -> int:
    """Rounds of seeds a verdict on ``seeds`` seeds rests on under an --until-decided
    ``design`` (initial seeds, seeds a round adds); 1 without one."""
    if design is None:
        return 1
    initial, per_round = design
    return 1 + max(0, -(-(seeds - initial) // per_round))


def verdict_table(board: pd.DataFrame, design: tuple[int, int] | None = None) -> pd.DataFrame:
    """A row per pruned cell, by realized ratio, then best lower bound first: the verdict
    against full data and against same-compute full data, each with its one-sided 95% lower
    bound (points); under an --until-decided ``design`` also the seeds and rounds it rests on.
    Long, not a column pair per ratio: methods that realize their own ratios would otherwise
    widen it past a laptop screen."""
    rows = verdict_frame(board)
    if rows.empty:
        return pd.DataFrame()
    table = pd.DataFrame(
        {
            "Realized ratio": [f"{100 * ratio:.0f}%" for ratio in rows["prune_ratio"]],
            "Pruner": rows["pruner_label"].to_numpy(),
            "vs full": _cells(rows, "lossless"),
            "vs same compute": _cells(rows, "same_compute"),
        }
    )
    if design is not None:
        table["Seeds (rounds)"] = [
            f"{int(n)} ({rounds(int(n), design)})" for n in rows["n_seeds"].to_numpy()
        ]
    return table


def decided_share(board: pd.DataFrame) -> tuple[int, int]:
    """(decided, all) main comparisons against full data."""
    verdicts = verdict_frame(board)["lossless_verdict"].dropna()
    return int((verdicts != "undecided").sum()), len(verdicts)


def ratio_sentences(board: pd.DataFrame, margin: float) -> list[str]:
    """One sentence per realized ratio: who is lossless, lossy and undecided against full data."""
    out = []
    for ratio, at in verdict_frame(board).groupby("prune_ratio", sort=True):
        parts = []
        for verdict in ("lossless", "lossy", "undecided"):
            chosen = at[at["lossless_verdict"] == verdict]
            if chosen.empty:
                continue
            names = ", ".join(
                f"{row.pruner_label} ({100 * row.lossless_lower_bound:+.2f})"
                for row in chosen.itertuples()  # verdict_frame's order: best bound first
            )
            parts.append(f"{verdict}: {names}")
        out.append(
            f"At {100 * ratio:.0f}% pruned (realized), against full data at a margin of "
            f"{100 * margin:g} points — " + "; ".join(parts) + "."
        )
    return out


CONFIRMED_INTRO = (
    "Largest lossless prune ratio per pruner: the search's answer on its own seeds, and its "
    "largest two lossless ratios retrained on fresh seeds no trial used, smaller first, against "
    "full data on those seeds (a fixed sequence that stops at the first ratio not lossless, so "
    "the false-lossless rate stays at the level), a candidate still undecided getting rounds of "
    "fresh seeds with the level split over its looks (Bonferroni). The confirmed answer is the "
    "largest ratio passed; an unconfirmed one is labelled so."
)


def confirmed_table(searches: pd.DataFrame) -> pd.DataFrame:
    """The latest finished search per pruner variant: its answer on its own seeds and on fresh
    seeds, and the training runs it cost."""
    if searches.empty or "confirmed_lossless_ratio" not in searches:
        return pd.DataFrame()
    finished = searches[searches["status"] == "FINISHED"]
    latest = finished.sort_values("start_time").drop_duplicates(
        ["dataset", "model", "variant"], keep="last"
    )

    def pct(value) -> str:
        return "none" if pd.isna(value) else f"{100 * value:.1f}%"

    return pd.DataFrame(
        {
            "Pruner": latest["variant"],
            "Largest lossless, search seeds (unconfirmed)": latest["largest_lossless_ratio"].map(
                pct
            ),
            "Confirmed on fresh seeds": latest["confirmed_lossless_ratio"].map(pct),
            "Lower bound there (pts, at its look's level)": latest["confirmed_lower_bound"].map(
                lambda v: "—" if pd.isna(v) else f"{100 * v:+.2f}"
            ),
            "Fresh seeds a side": latest["confirmed_seeds"].map(
                lambda v: "—" if pd.isna(v) else f"{int(v)}"
            ),
            "Trials": latest["trials"],
            "Training runs": latest["search_training_runs"].map(
                lambda v: "—" if pd.isna(v) else f"{int(v)}"
            ),
        }
    ).reset_index(drop=True)


def forest_figure(board: pd.DataFrame, margin: float, level: float = DEFAULT_LEVEL):
    """Each pruned cell's difference to full data (circle) and same-compute full data (square),
    in points, with its one-sided (1 - level) bounds: one panel, a row per cell in the verdict
    table's order, a rule between realized ratios; None if empty. (A panel per ratio, with the
    newer methods' own ratios, made six panels of mostly empty rows.)"""
    rows = verdict_frame(board)
    if rows.empty:
        return None
    labels = [
        f"{100 * ratio:.0f}% · {label}"
        for ratio, label in zip(rows["prune_ratio"], rows["pruner_label"], strict=True)
    ]
    figure, axes = new_figure(8.0, 0.3 * len(rows) + 1.2, 1, 1)
    ax = axes[0][0]
    y = np.arange(len(rows))
    for offset, prefix, delta, marker, name in (
        (-0.15, "lossless", "delta_to_full", "o", "vs full"),
        (0.15, "same_compute", "delta_to_same_compute", "s", "vs same compute"),
    ):
        centre = 100 * rows[delta].to_numpy(float)
        low = 100 * rows[f"{prefix}_lower_bound"].to_numpy(float)
        high = 100 * rows[f"{prefix}_upper_bound"].to_numpy(float)
        error = [centre - low, high - centre]
        ax.errorbar(centre, y + offset, xerr=error, fmt=marker, capsize=3, label=name)
    for boundary in np.flatnonzero(np.diff(rows["prune_ratio"].to_numpy(float))):
        ax.axhline(boundary + 0.5, color="0.85", linewidth=0.8)
    ax.axvline(0, color="0.3", linewidth=0.8)
    ax.axvline(-100 * margin, color="red", linestyle="--", linewidth=1, label="−margin")
    ax.set_yticks(y, labels)
    ax.invert_yaxis()  # the table's order, top down
    ax.set_xlabel("accuracy difference (points)")
    ax.legend(loc="lower center", bbox_to_anchor=(0.5, 1.0), ncol=3, fontsize=7, frameon=False)
    return figure


# ------------------------------------------------------------------ renderers
def figure(x: FigureInput) -> tuple:
    """The section's figure: a forest plot per dataset / model / budget section."""
    return (
        forest_figure(x.content.board, x.report.min_tolerance, x.report.level),
        f"Each pruner against full data, {x.title}",
        "Difference of mean accuracy (pruned − reference, points), a row per realized ratio and "
        "pruner: circles against full data on the full budget, squares against full data given "
        "the same sample passes; bars span the "
        "one-sided 95% bounds (the 90% two-sided Welch interval). A pruner is lossless when its "
        "bar's left end is right of the dashed red line (−margin), lossy when its right end is "
        "left of it.",
    )


def html(page: HtmlReport, content: ReportContent) -> None:
    """The answer in index.html: sentences, per section the forest plot and verdict table."""
    for line in _answer_lines(content):
        page.text(line)
    for section in content.sections:
        page.heading(section.title, 3)
        for line in ratio_sentences(section.board, content.min_tolerance):
            page.text(line)
        page.text(power_sentence(section.board, content.min_tolerance, content.level))
        if "answer" in section.figures:
            page.figure(section.figures["answer"])
        page.table(verdict_table(section.board, content.design))
    confirmed = confirmed_table(content.searches)
    if not confirmed.empty:
        page.text(CONFIRMED_INTRO)
        page.table(confirmed)


def _answer_lines(content: ReportContent) -> list[str]:
    decided, total = decided_share(content.board)
    lines = [
        f"{decided} of {total} comparisons against full data are decided (lossless or lossy), "
        f"at a margin of {100 * content.min_tolerance:g} accuracy points and level "
        f"{content.level:g}. ✓ lossless, ✗ lossy, ? undecided; each number is the one-sided 95% "
        "lower bound of pruned − reference in points: the pruner loses at most that much."
    ]
    if content.level < DEFAULT_LEVEL:
        looks = round(DEFAULT_LEVEL / content.level)
        lines.append(
            f"Seeds were added until decided (--until-decided), at most {looks} looks: every "
            f"verdict tests at level {content.level:.4g} = {DEFAULT_LEVEL:g} / {looks} "
            "(Bonferroni), so the false-lossless rate over all looks is at most "
            f"{DEFAULT_LEVEL:g}."
        )
    measured = content.parts["answer"]
    if not measured:
        lines.append(
            "Full data's saturation was not measured (preset key saturation = true trains it on "
            "twice the budget): without it a verdict cannot say whether full data was "
            "over-trained."
        )
    return lines + [s.sentence() for s in measured]


def markdown(content: ReportContent) -> list[str]:
    """The answer in leaderboard.md."""
    lines = ["## The answer", ""]
    lines += [line + "\n" for line in _answer_lines(content)]
    for section in content.sections:
        lines += [f"### {section.title}", ""]
        lines += [line + "\n" for line in ratio_sentences(section.board, content.min_tolerance)]
        lines += [power_sentence(section.board, content.min_tolerance, content.level), ""]
        lines += [markdown_table(verdict_table(section.board, content.design)), ""]
    confirmed = confirmed_table(content.searches)
    if not confirmed.empty:
        lines += [CONFIRMED_INTRO, ""]
        lines += [markdown_table(confirmed), ""]
    return lines


REPORT_SECTION = Section(
    "answer",
    "The answer: who saves how much without losing accuracy",
    html,
    compute=lambda content: saturation(content.everything),
    figure=figure,
    markdown=markdown,
    csv={"answer": lambda content: verdict_frame(content.board)},
)
