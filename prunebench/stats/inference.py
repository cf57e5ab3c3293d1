"""Statistics over seeds: confidence intervals, the lossless (non-inferiority) rule, ties, TTA.

Accuracies are fractions (0.912, not 91.2). Every test is Welch's t-test from scipy.stats (no equal
variance assumed), at a stated level. Rules for edge cases, stated once here:

- Fewer than ``MIN_SEEDS`` (2) values on a side: no variance to test with, so no interval, the
  lossless verdict is "undecided" and two pruners are "not significantly different".
- Every value equal on both sides (zero standard error): the test degenerates; its limit as the
  spread goes to zero is taken, i.e. the observed difference is treated as exact.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
from scipy import stats

DEFAULT_LEVEL = 0.05
"""Significance level of every test (confidence 1 - level for one-sided bounds)."""
DEFAULT_CONFIDENCE = 0.95
"""Confidence of the intervals shown around a mean."""
DEFAULT_MARGIN = 0.001
"""Non-inferiority margin: 0.1 accuracy points (the paper's "typically within 0.1%")."""
MIN_SEEDS = 2
"""Fewest values per side a test or interval rests on (a sample variance needs two)."""
MLPERF_MIN_RUNS = 5
"""From this many runs on, time-to-accuracy drops the fastest and slowest run (MLPerf)."""

VERDICTS = ("lossless", "lossy", "undecided")


def _values(values: Sequence[float] | np.ndarray, what: str) -> np.ndarray:
    array = np.asarray(values, dtype=np.float64).ravel()
    if not np.all(np.isfinite(array)):
        raise ValueError(f"{what} must be finite (leave failed runs out), got {array.tolist()}")
    return array


def _percent(value: float) -> str:
    return f"{100 * value:+.2f}"


# --------------------------------------------------------------------------- mean and interval
@dataclass(frozen=True)
class MeanCI:
    """A mean over seeds with its two-sided Student-t interval (NaN bounds when n < 2)."""

    mean: float
    low: float
    high: float
    n: int
    confidence: float

    @property
    def has_interval(self) -> bool:
        """Whether there were enough seeds (>= 2) for an interval."""
        return self.n >= MIN_SEEDS

    @property
    def half_width(self) -> float:
        """Half the interval's width (NaN without an interval)."""
        return (self.high - self.low) / 2 if self.has_interval else math.nan

    def text(self, scale: float = 100.0, digits: int = 2) -> str:
        """E.g. "91.20 ± 0.35 (95% CI, 3 seeds)" or "91.20 (1 seed: no interval)"."""
        if self.n == 0:
            return "no runs"
        mean = f"{scale * self.mean:.{digits}f}"
        if not self.has_interval:
            return f"{mean} (1 seed: no interval)"
        return (
            f"{mean} ± {scale * self.half_width:.{digits}f} "
            f"({100 * self.confidence:g}% CI, {self.n} seeds)"
        )


def mean_ci(values: Sequence[float] | np.ndarray, confidence: float = DEFAULT_CONFIDENCE) -> MeanCI:
    """Mean and Student-t confidence interval over seeds; a single seed has no interval."""
    array = _values(values, "values")
    n = int(array.size)
    if n == 0:
        return MeanCI(math.nan, math.nan, math.nan, 0, confidence)
    mean = float(array.mean())
    if n < MIN_SEEDS:
        return MeanCI(mean, math.nan, math.nan, n, confidence)
    sem = float(stats.sem(array))
    if sem == 0.0:  # every seed equal: the interval collapses (scipy would return NaN)
        return MeanCI(mean, mean, mean, n, confidence)
    low, high = stats.t.interval(confidence, n - 1, loc=mean, scale=sem)
    return MeanCI(mean, float(low), float(high), n, confidence)


# --------------------------------------------------------------------------- non-inferiority
@dataclass(frozen=True)
class NonInferiority:
    """The lossless verdict of pruned against full-data accuracies (see :func:`lossless_test`)."""

    verdict: str
    """"lossless", "lossy" or "undecided" (one of VERDICTS)."""
    p_value: float
    """One-sided p of H0 "pruned mean <= full mean - margin" (NaN when not testable)."""
    difference: float
    """mean(pruned) - mean(full)."""
    ci_low: float
    ci_high: float
    """Two-sided (1 - 2 * level) Welch interval of the difference: its ends are the one-sided
    (1 - level) bounds the verdict uses. NaN when a side has fewer than 2 seeds."""
    n_pruned: int
    n_full: int
    margin: float
    level: float
    sentence: str
    """The verdict for a human, with the numbers it rests on."""

    @property
    def lossless(self) -> bool:
        """True only for a "lossless" verdict (undecided is not lossless)."""
        return self.verdict == "lossless"


def lossless_test(
    pruned: Sequence[float] | np.ndarray,
    full: Sequence[float] | np.ndarray,
    margin: float = DEFAULT_MARGIN,
    level: float = DEFAULT_LEVEL,
) -> NonInferiority:
    """The lossless rule: a one-sided Welch non-inferiority test of pruned vs full accuracies.

    H0: mean(pruned) - mean(full) <= -margin; H1: the difference is > -margin. Verdicts:
    "lossless" when H0 is rejected at ``level`` (equivalently the lower one-sided 1 - level bound
    of the difference is above -margin); "lossy" when the upper one-sided 1 - level bound is below
    -margin (the pruner is significantly worse than the margin allows); "undecided" otherwise,
    and always with fewer than 2 seeds on a side. With zero spread on both sides the observed
    difference is taken as exact (lossless iff it exceeds -margin, lossy iff below).
    """
    if not 0 < level < 0.5:
        raise ValueError(f"level must be in (0, 0.5), got {level}")
    if not margin >= 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    a, b = _values(pruned, "pruned accuracies"), _values(full, "full-data accuracies")
    n_a, n_b = int(a.size), int(b.size)
    difference = float(a.mean() - b.mean()) if n_a and n_b else math.nan
    nan = math.nan

    def result(verdict: str, p: float, low: float, high: float, why: str) -> NonInferiority:
        seeds = f"{n_a} pruned vs {n_b} full-data seeds"
        diff = "no difference" if math.isnan(difference) else f"{_percent(difference)} points"
        sentence = (
            f"{verdict}: {why} ({diff}, {seeds}; margin {100 * margin:g} points, level {level:g})"
        )
        return NonInferiority(verdict, p, difference, low, high, n_a, n_b, margin, level, sentence)

    if n_a < MIN_SEEDS or n_b < MIN_SEEDS:
        return result("undecided", nan, nan, nan, f"too few seeds to test (need {MIN_SEEDS} each)")
    shifted = b - margin
    if float(np.var(a, ddof=1)) == 0.0 and float(np.var(b, ddof=1)) == 0.0:
        # Welch's statistic is 0/0 here; its limit as the spread vanishes is the exact difference.
        if difference > -margin:
            return result("lossless", 0.0, difference, difference, "every seed equal, above")
        if difference < -margin:
            return result("lossy", 1.0, difference, difference, "every seed equal, below")
        return result("undecided", 1.0, difference, difference, "every seed equal, on the margin")
    test = _welch(a, shifted, alternative="greater")
    # The two-sided 1 - 2*level interval of (a - b): its ends are the one-sided 1 - level bounds.
    two_sided = _welch(a, b)
    interval = two_sided.confidence_interval(confidence_level=1 - 2 * level)
    low, high, p = float(interval.low), float(interval.high), float(test.pvalue)
    if p < level:
        why = f"non-inferior, p = {p:.3g}"
        return result("lossless", p, low, high, why)
    if high < -margin:
        why = f"worse than the margin, upper bound {_percent(high)} points"
        return result("lossy", p, low, high, why)
    return result("undecided", p, low, high, f"cannot tell at this level, p = {p:.3g}")


def _welch(x: np.ndarray, y: np.ndarray, alternative: str = "two-sided"):
    """scipy's Welch t-test. Seeds with equal accuracies (a side with zero spread, common with
    accuracies on a 10,000-image test set) make scipy warn of "catastrophic cancellation" in its
    moment check; the variance it then uses is exactly 0 and the test stays exact."""
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", "Precision loss occurred", RuntimeWarning)
        return stats.ttest_ind(x, y, equal_var=False, alternative=alternative)


# --------------------------------------------------------------------------- ties
@dataclass(frozen=True)
class Comparison:
    """Two-sided Welch comparison of two pruners' accuracies."""

    different: bool
    p_value: float
    difference: float
    """mean(a) - mean(b)."""


def compare(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    level: float = DEFAULT_LEVEL,
) -> Comparison:
    """Whether two pruners differ significantly (two-sided Welch at ``level``).

    Fewer than 2 seeds on a side cannot show a difference (not different). With zero spread on
    both sides they differ iff their means differ.
    """
    x, y = _values(a, "accuracies"), _values(b, "accuracies")
    difference = float(x.mean() - y.mean()) if x.size and y.size else math.nan
    if x.size < MIN_SEEDS or y.size < MIN_SEEDS:
        return Comparison(False, math.nan, difference)
    if float(np.var(x, ddof=1)) == 0.0 and float(np.var(y, ddof=1)) == 0.0:
        return Comparison(difference != 0.0, 0.0 if difference != 0.0 else 1.0, difference)
    p = float(_welch(x, y).pvalue)
    return Comparison(p < level, p, difference)


def not_significantly_different(
    a: Sequence[float] | np.ndarray,
    b: Sequence[float] | np.ndarray,
    level: float = DEFAULT_LEVEL,
) -> bool:
    """True when a two-sided Welch test at ``level`` cannot tell the two pruners apart."""
    return not compare(a, b, level).different


def tie_groups(
    samples: Mapping[str, Sequence[float] | np.ndarray], level: float = DEFAULT_LEVEL
) -> dict[str, int]:
    """Rank by mean (1 = best), giving tied pruners one rank instead of ordering them.

    Sorted by mean accuracy, each pruner joins the group of the group's leader (its best member)
    when it is not significantly different from that leader; otherwise it opens a new group,
    ranked by its position (competition ranking: 1, 1, 3).
    """
    order = sorted(samples, key=lambda key: -float(np.mean(samples[key])))
    ranks: dict[str, int] = {}
    leader: str | None = None
    for position, key in enumerate(order, start=1):
        if leader is not None and not_significantly_different(samples[leader], samples[key], level):
            ranks[key] = ranks[leader]
        else:
            leader, ranks[key] = key, position
    return ranks


# --------------------------------------------------------------------------- time to accuracy
@dataclass(frozen=True)
class TimeToAccuracy:
    """MLPerf-style summary of per-seed times to a target accuracy."""

    value: float
    """The central value (NaN when the rule below finds too many runs that never converged)."""
    reached: int
    runs: int
    rule: str
    """Which rule produced ``value``, in words."""

    def text(self, unit: str = "s") -> str:
        """E.g. "41.2 s (4 of 5 seeds reached it; ...)"."""
        head = "not reached" if math.isnan(self.value) else f"{self.value:.3g} {unit}"
        return f"{head} ({self.reached} of {self.runs} seeds reached it; {self.rule})"


def time_to_accuracy(values: Sequence[float] | np.ndarray) -> TimeToAccuracy:
    """Central time to accuracy over seeds, robust to one slow seed (NaN = never reached).

    A run that never reached the target counts as infinitely slow. With >= 5 runs (MLPerf): drop
    the fastest and the slowest and average the rest, so one run that never converges is
    allowed once. With fewer runs there is nothing to drop and average: the median (of 3 or 4
    runs it ignores one slow or non-converging seed; of 1 or 2 every run must converge). The value
    is NaN whenever a never-converged run would enter it.
    """
    array = np.asarray(values, dtype=np.float64).ravel()
    runs = int(array.size)
    reached = int(np.isfinite(array).sum())
    if runs == 0:
        return TimeToAccuracy(math.nan, 0, 0, "no runs")
    times = np.sort(np.where(np.isfinite(array), array, np.inf))
    if runs >= MLPERF_MIN_RUNS:
        kept = times[1:-1]
        value = float(kept.mean()) if np.all(np.isfinite(kept)) else math.nan
        rule = "mean without the fastest and slowest seed (MLPerf)"
    else:
        value = float(np.median(times))
        value = value if math.isfinite(value) else math.nan
        rule = f"median of {runs} seed{'s' if runs > 1 else ''} (fewer than {MLPERF_MIN_RUNS})"
    return TimeToAccuracy(value, reached, runs, rule)
