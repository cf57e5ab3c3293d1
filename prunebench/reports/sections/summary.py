"""The closing section: the rules every number of the report follows, and the run counts."""

from __future__ import annotations

import pandas as pd

from prunebench.reports.frame import THROUGHPUT_FACTOR
from prunebench.reports.html import HtmlReport
from prunebench.reports.model import ReportContent, Section
from prunebench.stats import MIN_SEEDS

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
    "1 − sample passes / full data's, which no hardware changes, where a run's passes are its "
    "forward+backward passes plus the forward-only passes it spent scoring samples (shown as "
    "forward-only passes, × n the training set's size). Ranks and verdicts use accuracy "
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


def status_counts(content: ReportContent) -> pd.DataFrame:
    """Runs of the experiment by kind and status."""
    runs = content.data.runs
    counts = runs.assign(kind=runs["kind"].replace("", "(untagged)"))
    return counts.groupby(["kind", "status"]).size().rename("runs").reset_index()


def html(page: HtmlReport, content: ReportContent) -> None:
    """The rules and the run counts."""
    page.text(rules(content))
    page.table(
        content.parts["summary"].rename(
            columns={"kind": "Kind", "status": "Status", "runs": "Runs"}
        )
    )


def markdown(content: ReportContent) -> list[str]:
    """The rules, closing leaderboard.md."""
    return ["## Method and rules", "", rules(content), ""]


REPORT_SECTION = Section(
    "summary", "Method and rules", html, compute=status_counts, markdown=markdown
)
