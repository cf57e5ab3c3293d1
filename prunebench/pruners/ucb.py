"""UCB (Raju et al., 2021): keep the samples with the highest upper confidence bound of their loss.

score = EMA loss mean + c * spread, where spread is the EMA variance (as in the InfoBatch authors'
re-implementation, the default) or its square root (``spread="std"``).
``rescore=True``: every sample re-scored before each selection (loss_bandit.py).
"""

from __future__ import annotations

from typing import Any

import torch

from prunebench.errors import ConfigError
from prunebench.pruners.base import PRUNE_RATIO_SEARCH, check_range
from prunebench.pruners.loss_bandit import LossBanditPruner
from prunebench.pruners.registry import register_pruner

SPREADS = ("variance", "std")


@register_pruner
class UCB(LossBanditPruner):
    """Top (1 - p) * n samples by mean + c * spread of their EMA loss."""

    name = "ucb"
    search_space = PRUNE_RATIO_SEARCH

    def __init__(
        self,
        n: int,
        epochs: int,
        seed: int,
        device: torch.device | str | None = None,
        prune_ratio: float = 0.5,
        momentum: float = 0.8,
        period: int = 1,
        c: float = 1.0,
        spread: str = "variance",
        rescore: bool = False,
    ):
        super().__init__(n, epochs, seed, device, prune_ratio, momentum, period, rescore)
        self.c = check_range("c", c, 0.0, float("inf"))
        if spread not in SPREADS:
            raise ConfigError(f"spread must be one of {', '.join(SPREADS)}, got {spread!r}")
        self.spread = spread

    @property
    def params(self) -> dict[str, Any]:
        return {**super().params, "c": self.c, "spread": self.spread}

    def select(self) -> torch.Tensor:
        spread = self.loss_var if self.spread == "variance" else self.loss_var.sqrt()
        return self._top_by(self.loss_mean + self.c * spread, self.kept)
