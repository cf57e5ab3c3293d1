"""Shared statistical rules over seeds, used by the search and the report alike."""

from prunebench.stats.inference import (
    DEFAULT_CONFIDENCE,
    DEFAULT_LEVEL,
    DEFAULT_MARGIN,
    MIN_SEEDS,
    VERDICTS,
    Comparison,
    MeanCI,
    NonInferiority,
    TimeToAccuracy,
    compare,
    lossless_test,
    mean_ci,
    not_significantly_different,
    tie_groups,
    time_to_accuracy,
)

__all__ = [
    "DEFAULT_CONFIDENCE",
    "DEFAULT_LEVEL",
    "DEFAULT_MARGIN",
    "MIN_SEEDS",
    "VERDICTS",
    "Comparison",
    "MeanCI",
    "NonInferiority",
    "TimeToAccuracy",
    "compare",
    "lossless_test",
    "mean_ci",
    "not_significantly_different",
    "tie_groups",
    "time_to_accuracy",
]
