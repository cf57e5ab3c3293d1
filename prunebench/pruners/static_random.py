"""Static random pruning: one uniform random subset chosen before training, kept every epoch.

The static "Random" baseline of the OrderDP paper's Table 1 (and of the static-pruning
literature it cites): round((1 - p) * n) samples drawn uniformly without replacement once, at
construction, from the pruner's seeded generator; every epoch trains that subset in a fresh
random order. No scoring, so nothing to charge beyond training. (SeTa's public ``Static`` class
keeps the FIRST int((1 - p) * n) samples of the dataset instead; a random draw is the baseline's
usual meaning and does not depend on the dataset's storage order.)
"""

from __future__ import annotations

from typing import Any

import torch

from prunebench.pruners.base import PRUNE_RATIO_SEARCH, EpochPlan, Pruner, check_range, kept_count
from prunebench.pruners.registry import register_pruner


@register_pruner
class StaticRandom(Pruner):
    """A uniform random subset fixed before training."""

    name = "static_random"
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
        self.subset = self._randperm(n)[: kept_count(n, self.prune_ratio)]

    @property
    def params(self) -> dict[str, Any]:
        return {"prune_ratio": self.prune_ratio}

    def _tensor_state(self) -> dict[str, torch.Tensor]:
        return {"subset": self.subset}

    def plan_epoch(self, epoch: int, progress: float | None = None) -> EpochPlan:
        return EpochPlan(indices=self._shuffled(self.subset), n=self.n)
