"""Dynamic random pruning: a fresh uniform subset of round((1 - p) * n) samples every epoch."""

from __future__ import annotations

from typing import Any

import torch

from prunebench.pruners.base import PRUNE_RATIO_SEARCH, EpochPlan, Pruner, check_range, kept_count
from prunebench.pruners.registry import register_pruner


@register_pruner
class DynamicRandom(Pruner):
    """Uniform without replacement within an epoch, independent across epochs."""

    name = "random"
    search_space = PRUNE_RATIO_SEARCH

    def __init__(
        self,
        n: int,
        epochs: int,
        seed: int,
        device: torch.device | str | None = None,
        prune_ratio: float = 0.5,
    ):
        super().__init__(n, epochs, seed, device)
        self.prune_ratio = check_range("prune_ratio", prune_ratio, 0.0, 1.0, high_open=True)
        self.kept = kept_count(n, self.prune_ratio)

    @property
    def params(self) -> dict[str, Any]:
        return {"prune_ratio": self.prune_ratio}

    def plan_epoch(self, epoch: int, progress: float | None = None) -> EpochPlan:
        # The first `kept` entries of a uniform permutation are a uniform subset in random order.
        return EpochPlan(indices=self._randperm(self.n)[: self.kept], n=self.n)
