"""RS2 (Okanovic et al., 2024): repeated sampling without replacement across epochs.

The dataset is shuffled once and handed out in consecutive chunks of round((1 - p) * n); when
fewer than a chunk remain, the remainder opens the next epoch and a fresh permutation fills it up.
The fresh permutation puts the just-used remainder last, so every sample is used exactly once per
round, no epoch holds a sample twice, and no sample repeats before all others were seen.
"""

from __future__ import annotations

from typing import Any

import torch

from prunebench.pruners.base import PRUNE_RATIO_SEARCH, EpochPlan, Pruner, check_range, kept_count
from prunebench.pruners.registry import register_pruner


@register_pruner
class RS2(Pruner):
    """Consecutive chunks of a stream of permutations, without repeats inside a round."""

    name = "rs2"
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
        self.order = self._randperm(n)
        self.cursor = 0

    @property
    def params(self) -> dict[str, Any]:
        return {"prune_ratio": self.prune_ratio}

    def _tensor_state(self) -> dict[str, torch.Tensor]:
        return {"order": self.order}

    def _extra_state(self) -> dict[str, Any]:
        return {"cursor": self.cursor}

    def plan_epoch(self, epoch: int, progress: float | None = None) -> EpochPlan:
        remaining = self.n - self.cursor
        if remaining >= self.kept:
            chunk = self.order[self.cursor : self.cursor + self.kept]
            self.cursor += self.kept
            return EpochPlan(indices=chunk, n=self.n)
        leftover = self.order[self.cursor :]
        fresh = self._randperm(self.n)
        just_used = torch.zeros(self.n, dtype=torch.bool, device=self.device)
        just_used[leftover] = True
        used_last = just_used[fresh]
        self.order = torch.cat([fresh[~used_last], fresh[used_last]])
        self.cursor = self.kept - remaining
        return EpochPlan(indices=torch.cat([leftover, self.order[: self.cursor]]), n=self.n)
