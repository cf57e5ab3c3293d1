"""Shared statistical rules (the lossless rule), imported by both the suite layer and reports."""

from prunebench.stats.lossless import DEFAULT_MIN_TOLERANCE, is_lossless, lossless_tolerance

__all__ = ["DEFAULT_MIN_TOLERANCE", "is_lossless", "lossless_tolerance"]
