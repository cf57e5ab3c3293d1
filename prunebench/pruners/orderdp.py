"""OrderDP (ICLR 2026): explore a random pool, exploit its highest-loss members.

Each epoch draws a pool of s = floor(a * n) samples uniformly without replacement (exploration
ratio a = s / n) and trains on the q = floor(b * s) pool members with the highest stored score
(exploitation ratio b = q / s), in random order. A trained sample's score becomes its latest
training loss; untrained samples keep theirs. The kept fraction is exactly q / n every epoch.

Given only a target ``prune_ratio`` p, prunebench uses the balanced decomposition
a = b = sqrt(1 - p): as much exploration as exploitation. The paper's Figure 4 finds accuracy
insensitive to the split at a fixed product, and ``prunebench search`` explores it.
"""

from __future__ import annotations

import math
from typing import Any, ClassVar

import torch

from prunebench.errors import ConfigError
from prunebench.pruners.base import MAX_SEARCH_RATIO, EpochPlan, check_range
from prunebench.pruners.last_loss import LastLossPruner
from prunebench.pruners.registry import register_pruner


def default_decomposition(prune_ratio: float) -> tuple[float, float]:
    """(exploration, exploitation) used for a bare target prune ratio: both sqrt(1 - p)."""
    ratio = math.sqrt(1.0 - prune_ratio)
    return ratio, ratio


@register_pruner
class OrderDP(LastLossPruner):
    """Top-q by last training loss within a uniformly drawn pool of s samples."""

    name = "orderdp"
    # The search explores the prune ratio p and how 1 - p splits into exploration and
    # exploitation: a = (1 - p) ** u, b = (1 - p) ** (1 - u), u in [0, 1] (u = 0.5 balanced).
    search_space: ClassVar[dict[str, tuple[float, float]]] = {
        "prune_ratio": (0.0, MAX_SEARCH_RATIO),
        "exploration_share": (0.0, 1.0),
    }
    ratio_params = ("prune_ratio", "exploration", "exploitation")

    @classmethod
    def params_from_search(cls, values: dict[str, float]) -> dict[str, Any]:
        """(exploration, exploitation) of a searched prune ratio and exploration share."""
        keep, split = 1.0 - values["prune_ratio"], values["exploration_share"]
        return {"exploration": keep**split, "exploitation": keep ** (1.0 - split)}

    @classmethod
    def target_prune_ratio(cls, params: dict[str, Any]) -> float:
        """prune_ratio, or 1 - a * b from exploration a and exploitation b."""
        if "prune_ratio" not in params and "exploration" in params and "exploitation" in params:
            return round(1.0 - float(params["exploration"]) * float(params["exploitation"]), 6)
        return super().target_prune_ratio(params)

    def __init__(
        self,
        n: int,
        epochs: int,
        seed: int,
        device: torch.device | str | None = None,
        prune_ratio: float | None = None,
        exploration: float | None = None,
        exploitation: float | None = None,
        initial_score: float = 3.0,
    ):
        if isinstance(initial_score, bool) or not isinstance(initial_score, (int, float)):
            raise ConfigError(f"initial_score must be a number or inf, got {initial_score!r}")
        if math.isnan(initial_score):
            raise ConfigError("initial_score must be a number or inf, got nan")
        self.initial_score = float(initial_score)
        super().__init__(n, epochs, seed, device, self.initial_score)
        if (exploration is None) != (exploitation is None):
            raise ConfigError("orderdp needs both exploration and exploitation, or neither")
        if exploration is None:
            if prune_ratio is None:
                raise ConfigError("orderdp needs prune_ratio, or exploration and exploitation")
            check_range("prune_ratio", prune_ratio, 0.0, 1.0, high_open=True)
            exploration, exploitation = default_decomposition(float(prune_ratio))
        elif prune_ratio is not None:
            raise ConfigError(
                "orderdp takes either prune_ratio or exploration and exploitation, not both"
            )
        self.exploration = check_range("exploration", exploration, 0.0, 1.0, low_open=True)
        self.exploitation = check_range("exploitation", exploitation, 0.0, 1.0, low_open=True)
        # floor(), but robust to binary rounding: 0.29 * 100 must give 29, not 28.
        self.pool_size = math.floor(self.exploration * n + 1e-9)
        self.keep_size = math.floor(self.exploitation * self.pool_size + 1e-9)
        if self.keep_size < 1:
            raise ConfigError(
                f"orderdp keeps floor(b * floor(a * n)) = {self.keep_size} samples per epoch "
                f"(n={n}, a={self.exploration:g}, b={self.exploitation:g}); raise a or b"
            )

    @property
    def params(self) -> dict[str, Any]:
        return {
            "exploration": self.exploration,
            "exploitation": self.exploitation,
            "initial_score": self.initial_score,
            "pool_size": self.pool_size,
            "keep_size": self.keep_size,
        }

    @property
    def nominal_prune_ratio(self) -> float:
        """1 - q / n, the prune ratio every epoch realizes exactly."""
        return 1.0 - self.keep_size / self.n

    def plan_epoch(self, epoch: int, progress: float | None = None) -> EpochPlan:
        pool = self._randperm(self.n)[: self.pool_size]
        # The pool is in random order, so ties (e.g. equal initial scores) fall to random members.
        top = torch.topk(self.scores[pool], self.keep_size, sorted=False).indices
        return EpochPlan(indices=self._shuffled(pool[top]), n=self.n)
