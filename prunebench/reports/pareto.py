"""Pareto frontiers: which cells are not beaten on both accuracy and savings by another."""

from __future__ import annotations

import numpy as np
import pandas as pd


def pareto_mask(
    x: np.ndarray, y: np.ndarray, *, maximize_x: bool = True, maximize_y: bool = True
) -> np.ndarray:
    """Boolean mask of non-dominated points; NaN points are never on the front.

    Point i is dominated when some j is at least as good on both axes and strictly better on
    one. Identical points do not dominate each other, so ties stay on the front together.
    """
    xs = np.asarray(x, dtype=np.float64) * (1.0 if maximize_x else -1.0)
    ys = np.asarray(y, dtype=np.float64) * (1.0 if maximize_y else -1.0)
    valid = ~(np.isnan(xs) | np.isnan(ys))
    xs, ys = np.where(valid, xs, -np.inf), np.where(valid, ys, -np.inf)
    # [j, i]: does j dominate i?  O(n^2) memory is fine for leaderboard-sized inputs.
    geq = (xs[:, None] >= xs[None, :]) & (ys[:, None] >= ys[None, :])
    gt = (xs[:, None] > xs[None, :]) | (ys[:, None] > ys[None, :])
    dominates = geq & gt & valid[:, None]
    return valid & ~dominates.any(axis=0)


PARETO_AXES = {
    "ratio": ("realized_prune_ratio_mean", True, "realized prune ratio"),
    "device_hours": ("train_device_hours_mean", False, "train device-hours"),
}
"""Frontier name -> (leaderboard column, maximize it?, axis label); accuracy is always maximized."""


def pareto_front(board: pd.DataFrame, axis: str) -> pd.DataFrame:
    """Leaderboard rows on the accuracy-vs-``axis`` front of one section, sorted along the axis."""
    column, maximize, _ = PARETO_AXES[axis]
    mask = pareto_mask(
        board[column].to_numpy(dtype=float),
        board["accuracy_mean"].to_numpy(dtype=float),
        maximize_x=maximize,
    )
    return board[mask].sort_values(column, kind="stable")
