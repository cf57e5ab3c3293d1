"""Full data: every sample, every epoch, in a fresh random order (the p = 0 reference)."""

from __future__ import annotations

import torch

from prunebench.pruners.base import EpochPlan, Pruner
from prunebench.pruners.registry import register_pruner


@register_pruner
class FullData(Pruner):
    """Trains on the whole training set each epoch, reshuffled."""

    name = "full"
    is_reference = True
    ratio_params = ()

    def __init__(self, n: int, epochs: int, seed: int, device: torch.device | str | None = None):
        super().__init__(n, epochs, seed, device)

    def plan_epoch(self, epoch: int, progress: float | None = None) -> EpochPlan:
        return EpochPlan(indices=self._randperm(self.n), n=self.n)
