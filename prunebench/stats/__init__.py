"""Shared statistical rules over seeds (the lossless rule and its bounds, confidence intervals,
power and seeds needed, Holm-controlled ranks, sequential looks, time-to-accuracy), imported by
both the suite layer and the reports."""

from prunebench.stats.inference import (
    DEFAULT_CONFIDENCE,
    DEFAULT_LEVEL,
    DEFAULT_MARGIN,
    DEFAULT_RESOLUTION,
    MIN_SEEDS,
    VERDICTS,
    MeanCI,
    NonInferiority,
    TimeToAccuracy,
    lossless_test,
    mean_ci,
    time_to_accuracy,
    welch_bounds,
)
from prunebench.stats.lossless import (
    DEFAULT_MIN_TOLERANCE,
    is_lossless,
    lossless_tolerance,
    lossless_verdict,
)
from prunebench.stats.power import seeds_for_margin, supported_margin
from prunebench.stats.ranks import RANK_RULE, Ranked, rank_groups
from prunebench.stats.sequential import look_level, planned_looks

__all__ = [
    "DEFAULT_CONFIDENCE",
    "DEFAULT_LEVEL",
    "DEFAULT_MARGIN",
    "DEFAULT_MIN_TOLERANCE",
    "DEFAULT_RESOLUTION",
    "MIN_SEEDS",
    "RANK_RULE",
    "VERDICTS",
    "MeanCI",
    "NonInferiority",
    "Ranked",
    "TimeToAccuracy",
    "is_lossless",
    "look_level",
    "lossless_test",
    "lossless_tolerance",
    "lossless_verdict",
    "mean_ci",
    "planned_looks",
    "rank_groups",
    "seeds_for_margin",
    "supported_margin",
    "time_to_accuracy",
    "welch_bounds",
]
