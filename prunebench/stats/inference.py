"""Statistics over seeds: confidence intervals, the lossless (non-inferiority) rule, ties, TTA.

Accuracies are fractions (0.912, not 91.2). Every test is Welch's t-test from scipy.stats (no equal
variance assumed), at a stated level. Rules for edge cases, stated once here:

- Fewer than ``MIN_SEEDS`` (2) values on a side: no variance to test with, so no interval, the
  lossless verdict is "undecided" and two pruners are "not significantly different".
- A side whose seeds all agree is given the spread of one test image (``DEFAULT_RESOLUTION``,
  the ``resolution`` argument): the test set cannot resolve less, so equal seeds are evidence of
  a small spread, never of none, and never decide a verdict at p = 0.
- A bound exactly on the margin is on it (compared after rounding to 1e-9): not past it.
- Ranks: all pairwise Welch tests at a ratio under Holm's correction (``stats.ranks``).
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import special, stats

DEFAULT_LEVEL = 0.05
"""Significance level of every test (confidence 1 - level for one-sided bounds)."""
DEFAULT_CONFIDENCE = 0.95
"""Confidence of the intervals shown around a mean."""
DEFAULT_MARGIN = 0.001
"""Non-inferiority margin: 0.1 accuracy points (the paper's "typically within 0.1%")."""
MIN_SEEDS = 2
"""Fewest values per side a test or interval rests on (a sample variance needs two)."""
DEFAULT_RESOLUTION = 1e-4
"""One test image of a 10,000-image test set: the smallest spread a side's seeds are given."""
EXACT_DIGITS = 9
"""Bounds and margins are compared after rounding to 1e-9, far below one test image (1e-4 to
1e-6) and far above float error, so a difference exactly on the margin stays on it."""
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
    """The one-sided (1 - level) lower and upper bounds of the difference (together the
    two-sided 1 - 2 * level Welch interval); NaN when a side has fewer than 2 seeds."""
    n_pruned: int
    n_full: int
    margin: float
    level: float
    sentence: str
    """The verdict for a human, with the numbers it rests on."""
    spread_pruned: float = math.nan
    spread_full: float = math.nan
    """Each side's standard deviation as the test used it (at least one test image)."""

    @property
    def lossless(self) -> bool:
        """True only for a "lossless" verdict (undecided is not lossless)."""
        return self.verdict == "lossless"

    @property
    def seeds_needed(self) -> float:
        """Seeds a side that decide at this margin with power 0.8 if the observed difference
        and spreads are true (:func:`prunebench.stats.power.seeds_for_margin`); inf when the
        difference is on the margin, NaN with fewer than 2 seeds."""
        from prunebench.stats.power import pooled_spread, seeds_for_margin

        if math.isnan(self.spread_pruned):
            return math.nan
        spread = pooled_spread(self.spread_pruned, self.spread_full)
        return seeds_for_margin(spread, abs(self.difference + self.margin), self.level)

    @property
    def lower_bound(self) -> float:
        """The one-sided (1 - level) lower bound of pruned - full: "loses at most -bound"."""
        return self.ci_low

    def loss_text(self) -> str:
        """E.g. "loses at most 0.12 points" or "gains at least 0.05 points"."""
        if math.isnan(self.ci_low):
            return "no bound (too few seeds)"
        if self.ci_low < 0:
            return f"loses at most {-100 * self.ci_low:.2f} points"
        return f"gains at least {100 * self.ci_low:.2f} points"


@dataclass(frozen=True)
class WelchBounds:
    """Welch's difference of means with its one-sided bounds, on floored spreads."""

    difference: float
    standard_error: float
    df: float
    spread_pruned: float
    spread_full: float

    def bound(self, confidence: float, side: int) -> float:
        """The one-sided ``confidence`` bound: side -1 lower, +1 upper."""
        t = float(special.stdtrit(self.df, confidence))  # stats.t.ppf's kernel, without its checks
        return self.difference + side * t * self.standard_error

    def p_above(self, threshold: float) -> float:
        """One-sided p of H0 "true difference <= threshold"."""
        statistic = (self.difference - threshold) / self.standard_error
        return float(special.stdtr(self.df, -statistic))  # stats.t.sf's kernel


def welch_bounds(a: np.ndarray, b: np.ndarray, resolution: float) -> WelchBounds:
    """Welch's statistics of mean(a) - mean(b), each side's spread at least ``resolution``.

    The floor is the module's zero-spread rule: accuracies move in steps of one test image, so
    seeds that all agree show a spread below what the test set can resolve, not none. Above the
    floor this is exactly scipy's Welch test (tests/test_stats.py checks it).
    """
    s_a = max(float(np.std(a, ddof=1)), resolution)
    s_b = max(float(np.std(b, ddof=1)), resolution)
    v_a, v_b = s_a**2 / a.size, s_b**2 / b.size
    df = (v_a + v_b) ** 2 / (v_a**2 / (a.size - 1) + v_b**2 / (b.size - 1))
    return WelchBounds(float(a.mean() - b.mean()), math.sqrt(v_a + v_b), df, s_a, s_b)


def clears(value: float, threshold: float) -> bool:
    """value > threshold, exactly: both rounded to EXACT first, so a bound that equals the
    margin up to float error (0.95 - 0.951 vs -0.001) is ON the margin, never past it."""
    return round(value, EXACT_DIGITS) > round(threshold, EXACT_DIGITS)


def lossless_test(
    pruned: Sequence[float] | np.ndarray,
    full: Sequence[float] | np.ndarray,
    margin: float = DEFAULT_MARGIN,
    level: float = DEFAULT_LEVEL,
    resolution: float = DEFAULT_RESOLUTION,
) -> NonInferiority:
    """The lossless rule: a one-sided Welch non-inferiority test of pruned vs full accuracies.

    H0: mean(pruned) - mean(full) <= -margin; H1: the difference is > -margin. The verdict
    follows from the one-sided (1 - level) bounds of the difference: "lossless" when the lower
    bound is above -margin (the pruner loses at most -lower < margin), "lossy" when the upper
    bound is below -margin, "undecided" otherwise (a bound exactly on the margin included), and
    always with fewer than 2 seeds on a side. Each side's spread is at least ``resolution``
    (one test image; see :func:`welch_bounds`), so identical seeds never decide at p = 0.
    """
    if not 0 < level < 0.5:
        raise ValueError(f"level must be in (0, 0.5), got {level}")
    if not margin >= 0:
        raise ValueError(f"margin must be >= 0, got {margin}")
    a, b = _values(pruned, "pruned accuracies"), _values(full, "full-data accuracies")
    n_a, n_b = int(a.size), int(b.size)
    difference = float(a.mean() - b.mean()) if n_a and n_b else math.nan
    nan = math.nan

    def result(verdict, p, low, high, why, spreads=(nan, nan)) -> NonInferiority:
        seeds = f"{n_a} pruned vs {n_b} full-data seeds"
        diff = "no difference" if math.isnan(difference) else f"{_percent(difference)} points"
        sentence = (
            f"{verdict}: {why} ({diff}, {seeds}; margin {100 * margin:g} points, level {level:g})"
        )
        return NonInferiority(
            verdict, p, difference, low, high, n_a, n_b, margin, level, sentence, *spreads
        )

    if n_a < MIN_SEEDS or n_b < MIN_SEEDS:
        return result("undecided", nan, nan, nan, f"too few seeds to test (need {MIN_SEEDS} each)")
    welch = welch_bounds(a, b, resolution)
    low, high = welch.bound(1 - level, -1), welch.bound(1 - level, +1)
    p = welch.p_above(-margin)
    needed = (welch.spread_pruned, welch.spread_full)
    if clears(low, -margin):
        return result("lossless", p, low, high, f"non-inferior, p = {p:.3g}", needed)
    if clears(-margin, high):
        why = f"worse than the margin, upper bound {_percent(high)} points"
        return result("lossy", p, low, high, why, needed)
    return result("undecided", p, low, high, f"cannot tell at this level, p = {p:.3g}", needed)


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
