"""The report's sections, one module each, in the order the report shows them.

A module here exposes ``REPORT_SECTION`` (a reports.model.Section); a new section is one new
module and its name in SECTIONS.
"""

from __future__ import annotations

import importlib

from prunebench.reports.model import Section

SECTIONS = (
    "answer",
    "leaderboard",
    "utilization",
    "equal_time",
    "problems",
    "pareto",
    "tta",
    "usage",
    "jaccard",
    "stability",
    "alignment",
    "lossless",
    "theory",
    "summary",
)
"""The report, in order: module names of this package."""


def report_sections() -> tuple[Section, ...]:
    """Every section's ``REPORT_SECTION``, in SECTIONS' order."""
    return tuple(importlib.import_module(f"{__name__}.{name}").REPORT_SECTION for name in SECTIONS)
