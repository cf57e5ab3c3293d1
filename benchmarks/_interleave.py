"""Interleaved, repeated timing: every benchmark figure as a median with a 95% interval.

On a shared machine the load drifts over minutes. Timing variants one after another puts a drift
into one variant; timing them in a fresh random order every round spreads it over all of them, and
a ratio of two variants measured in the same round cancels what the round shares. Each figure is
then the median over rounds of a per-round value, with scipy's distribution-free confidence interval
for that median (quantile_test: order statistics, no normality assumed).

Imported by the benchmark scripts (nox's bench session skips files starting with "_").
"""

from __future__ import annotations

import random
from collections.abc import Callable, Mapping
from dataclasses import dataclass

import numpy as np
from scipy.stats import quantile_test

CONFIDENCE = 0.95


@dataclass(frozen=True)
class Median:
    """The median of per-round values and its distribution-free interval."""

    value: float
    low: float
    high: float
    rounds: int

    def text(self, spec: str = ".3f") -> str:
        """``1.234 (1.200 to 1.250)``."""
        return f"{self.value:{spec}} ({self.low:{spec}} to {self.high:{spec}})"


def median_interval(values: np.ndarray, confidence: float = CONFIDENCE) -> Median:
    """Median of ``values`` with the order-statistic interval of scipy's quantile_test."""
    values = np.asarray(values, dtype=np.float64)
    middle = float(np.median(values))
    interval = quantile_test(values, q=middle, p=0.5).confidence_interval(confidence)
    return Median(middle, float(interval.low), float(interval.high), len(values))


def interleaved(
    variants: Mapping[str, Callable[[], float]], rounds: int, *, warmup: int = 1, seed: int = 0
) -> dict[str, np.ndarray]:
    """Run every variant once a round, in a seeded random order; each variant's values per round.

    A variant returns its own measurement (seconds of the part it times). The first ``warmup``
    rounds run but are not recorded (caches, allocator, lazy compilation).
    """
    order = list(variants)
    shuffle = random.Random(seed)
    recorded: dict[str, list[float]] = {name: [] for name in order}
    for round_index in range(warmup + rounds):
        shuffle.shuffle(order)
        for name in order:
            value = variants[name]()
            if round_index >= warmup:
                recorded[name].append(value)
    return {name: np.asarray(values) for name, values in recorded.items()}


def fewest_rounds(confidence: float = CONFIDENCE) -> int:
    """The fewest rounds for which the median's interval stops short of the extremes."""
    rounds = 2
    while True:
        values = np.arange(rounds, dtype=np.float64)
        interval = quantile_test(values, q=float(np.median(values)), p=0.5).confidence_interval(
            confidence
        )
        if interval.low > values[0] and interval.high < values[-1]:
            return rounds
        rounds += 1
