"""Epsilon-greedy (Raju et al., 2021): mostly the highest-loss samples, an epsilon share at random.

Of the round((1 - p) * n) kept samples, round(epsilon * kept) are drawn uniformly from the samples
not chosen greedily; the rest are the highest by EMA loss mean (never-seen samples first).
``rescore=True``: every sample re-scored before each selection (loss_bandit.py).
"""

from __future__ import annotations

from typing import Any

import torch

from prunebench.pruners.base import PRUNE_RATIO_SEARCH, check_range
from prunebench.pruners.loss_bandit import LossBanditPruner
from prunebench.pruners.registry import register_pruner


@register_pruner
class EpsilonGreedy(LossBanditPruner):
    """Greedy by EMA loss with an epsilon share of uniform exploration."""

    name = "epsilon_greedy"
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
        epsilon: float = 0.1,
        rescore: bool = False,
    ):
        super().__init__(n, epochs, seed, device, prune_ratio, momentum, period, rescore)
        self.epsilon = check_range("epsilon", epsilon, 0.0, 1.0)
        self.explore_count = round(self.epsilon * self.kept)

    @property
    def params(self) -> dict[str, Any]:
        return {**super().params, "epsilon": self.epsilon}

    def select(self) -> torch.Tensor:
        greedy = self._top_by(self.loss_mean, self.kept - self.explore_count)
        rest = torch.ones(self.n, dtype=torch.bool, device=self.device)
        rest[greedy] = False
        others = torch.nonzero(rest).squeeze(1)
        explore = others[self._randperm(others.numel())[: self.explore_count]]
        return torch.cat([greedy, explore])
