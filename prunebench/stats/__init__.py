"""Shared statistical rules over seeds (the lossless rule, confidence intervals, ties,
time-to-accuracy), imported by both the suite layer and the reports."""

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
from prunebench.stats.lossless import (
    DEFAULT_MIN_TOLERANCE,
    is_lossless,
    lossless_tolerance,
    lossless_verdict,
)

__all__ = [
    "DEFAULT_CONFIDENCE",
    "DEFAULT_LEVEL",
    "DEFAULT_MARGIN",
    "DEFAULT_MIN_TOLERANCE",
    "MIN_SEEDS",
    "VERDICTS",
    "Comparison",
    "MeanCI",
    "NonInferiority",
    "TimeToAccuracy",
    "compare",
    "is_lossless",
    "lossless_test",
    "lossless_tolerance",
    "lossless_verdict",
    "mean_ci",
    "not_significantly_different",
    "tie_groups",
    "time_to_accuracy",
]
