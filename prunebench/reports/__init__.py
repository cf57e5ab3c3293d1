"""Reports built only from MLflow: leaderboards, Pareto fronts, curves, tables, theory figures."""

from __future__ import annotations

from typing import Any

from prunebench.reports.lossless import DEFAULT_MIN_TOLERANCE, is_lossless, lossless_tolerance

__all__ = ["DEFAULT_MIN_TOLERANCE", "build_report", "is_lossless", "lossless_tolerance"]


def __getattr__(name: str) -> Any:
    # build_report pulls in MLflow, matplotlib and seaborn: load them only when asked, so the
    # search can import the lossless rule cheaply.
    if name == "build_report":
        from prunebench.reports.build import build_report

        return build_report
    raise AttributeError(f"module 'prunebench.reports' has no attribute {name!r}")
