"""InfoBatch (ICLR 2024): prune a fixed share of below-mean-loss samples and rescale the rest.

Each pruning epoch, samples whose stored score (last training loss, 3.0 before the first) is at
least the mean of all scores are kept; of the ``m`` below-mean samples, floor(k * m) are kept,
drawn uniformly without replacement, with k = 1 - r clamped to [0.1, 1] as in the public code,
and weighted 1 / k in the loss. Epoch 0 trains on the full data (scores carry no information yet).
With ``anneal`` on, epochs from floor(delta * epochs) onward train on the full data, weight 1;
the OrderDP paper compares against InfoBatch with annealing off. The realized prune ratio is data
dependent and below r: read it from each plan, never from r.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from prunebench.errors import ConfigError
from prunebench.pruners.base import PRUNE_RATIO_SEARCH, EpochPlan, check_range
from prunebench.pruners.last_loss import LastLossPruner
from prunebench.pruners.registry import register_pruner

MIN_KEEP_FRACTION = 0.1
INITIAL_SCORE = 3.0


@register_pruner
class InfoBatch(LastLossPruner):
    """Mean-threshold soft pruning with loss rescaling and optional annealing."""

    name = "infobatch"
    search_space = PRUNE_RATIO_SEARCH

    def __init__(
        self,
        n: int,
        epochs: int,
        seed: int,
        device: torch.device | str | None = None,
        prune_ratio: float = 0.5,
        anneal: bool = True,
        delta: float = 0.875,
    ):
        super().__init__(n, epochs, seed, device, INITIAL_SCORE)
        self.prune_ratio = check_range("prune_ratio", prune_ratio, 0.0, 1.0, high_open=True)
        if not isinstance(anneal, bool):
            raise ConfigError(f"anneal must be true or false, got {anneal!r}")
        self.anneal = anneal
        self.delta = check_range("delta", delta, 0.0, 1.0)
        self.keep_fraction = max(1.0 - self.prune_ratio, MIN_KEEP_FRACTION)
        self.anneal_epoch = math.floor(self.delta * epochs) if anneal else epochs

    @property
    def params(self) -> dict[str, Any]:
        return {
            "prune_ratio": self.prune_ratio,
            "anneal": self.anneal,
            "delta": self.delta,
            "anneal_epoch": self.anneal_epoch,
        }

    def is_pruning_epoch(self, epoch: int) -> bool:
        """Whether ``epoch`` prunes: not the first epoch and, with annealing, before delta."""
        return 0 < epoch < self.anneal_epoch

    def plan_epoch(self, epoch: int) -> EpochPlan:
        if not self.is_pruning_epoch(epoch):
            return EpochPlan(indices=self._randperm(self.n), n=self.n)
        well_learned = self.scores < self.scores.mean()
        below = torch.nonzero(well_learned).squeeze(1)
        above = torch.nonzero(~well_learned).squeeze(1)
        keep_below = math.floor(self.keep_fraction * below.numel())
        kept_below = below[self._randperm(below.numel())[:keep_below]]
        indices = torch.cat([above, kept_below])
        weights = torch.cat(
            [
                torch.ones(above.numel(), dtype=torch.float32, device=self.device),
                torch.full(
                    (keep_below,), 1.0 / self.keep_fraction, dtype=torch.float32, device=self.device
                ),
            ]
        )
        order = self._randperm(indices.numel())
        return EpochPlan(indices=indices[order], weights=weights[order], n=self.n)
