"""Shared machinery of the bandit-style baselines (Raju et al., 2021): per-sample EMA loss stats.

No official code exists; prunebench follows the well-known re-implementations. Each sample keeps
an exponential moving average of its training loss (``momentum`` ~ 0.8) and of its squared
deviation from that mean. A sample's first loss sets its mean (spread 0). Samples never trained
score +inf, so they are explored first. A subset of round((1 - p) * n) samples is selected every
``period`` epochs and reused, reshuffled, in between.

``rescore=True`` is the variant of the only public re-implementation found (issue 21 item 6):
before every selection, every sample is re-scored by a forward-only pass (eval mode, no
gradients) at the current weights, so the samples not trained since the last selection are
updated too. Each re-scoring pass's losses are the EMA's observations (one per sample per
selection) and training losses are not: the statistics then compare every sample at the same
weights. The pass costs n forward passes per selection, counted in ``scoring_forward_passes``
and run inside the training clock (the trainer's scoring request, forward_passes.py). That
re-implementation also selects every 10 epochs (``period=10``) and trains on full data outside
a [start, end] window of epochs; the window is not offered.
"""

from __future__ import annotations

from abc import abstractmethod
from typing import Any

import torch

from prunebench.errors import ConfigError
from prunebench.pruners.base import EpochPlan, Pruner, check_int, check_range, kept_count


class LossBanditPruner(Pruner):
    """Base of UCB and epsilon-greedy: EMA loss statistics plus periodic re-selection."""

    def __init__(
        self,
        n: int,
        epochs: int,
        seed: int,
        device: torch.device | str | None,
        prune_ratio: float,
        momentum: float,
        period: int,
        rescore: bool = False,
    ):
        super().__init__(n, epochs, seed, device)
        self.prune_ratio = check_range("prune_ratio", prune_ratio, 0.0, 1.0, high_open=True)
        self.momentum = check_range("momentum", momentum, 0.0, 1.0, high_open=True)
        self.period = check_int("period", period, 1)
        if not isinstance(rescore, bool):
            raise ConfigError(f"rescore must be true or false, got {rescore!r}")
        self.rescore = rescore
        self.kept = kept_count(n, self.prune_ratio)
        self.loss_mean = torch.zeros(n, dtype=torch.float32, device=self.device)
        self.loss_var = torch.zeros(n, dtype=torch.float32, device=self.device)
        self.seen = torch.zeros(n, dtype=torch.bool, device=self.device)
        self.selected = torch.arange(0, dtype=torch.int64, device=self.device)

    @property
    def params(self) -> dict[str, Any]:
        return {
            "prune_ratio": self.prune_ratio,
            "momentum": self.momentum,
            "period": self.period,
            "rescore": self.rescore,
        }

    def _tensor_state(self) -> dict[str, torch.Tensor]:
        return {
            "loss_mean": self.loss_mean,
            "loss_var": self.loss_var,
            "seen": self.seen,
            "selected": self.selected,
        }

    @abstractmethod
    def select(self) -> torch.Tensor:
        """Indices of the ``self.kept`` samples to train on until the next re-selection."""

    def selects(self, epoch: int) -> bool:
        """Whether ``epoch`` selects a new subset (every ``period`` epochs, and the first time)."""
        return epoch % self.period == 0 or self.selected.numel() == 0

    def plan_epoch(self, epoch: int, progress: float | None = None) -> EpochPlan:
        if self.selects(epoch):
            self.selected = self.select()
        return EpochPlan(indices=self._shuffled(self.selected), n=self.n)

    def scoring_request(self, epoch: int) -> torch.Tensor | None:
        """rescore: every sample, before each selection; else nothing."""
        if self.rescore and self.selects(epoch):
            return torch.arange(self.n, device=self.device)
        return None

    def observe(self, indices: torch.Tensor, losses: torch.Tensor) -> None:
        if not self.rescore:  # rescore: the statistics come from the re-scoring passes only
            self._update(indices, losses)

    def observe_scoring(self, indices: torch.Tensor, losses: torch.Tensor) -> None:
        self._update(indices, losses)

    def _update(self, indices: torch.Tensor, losses: torch.Tensor) -> None:
        """One EMA step of the mean and squared deviation of the samples' losses."""
        self._follow_device(losses)
        indices = indices.to(self.device, non_blocking=True)
        losses = losses.detach().float()
        first = ~self.seen[indices]
        old_mean = self.loss_mean[indices]
        beta = self.momentum
        new_mean = torch.where(first, losses, beta * old_mean + (1 - beta) * losses)
        new_var = torch.where(
            first,
            torch.zeros_like(losses),
            beta * self.loss_var[indices] + (1 - beta) * (losses - old_mean).square(),
        )
        self.loss_mean[indices] = new_mean
        self.loss_var[indices] = new_var
        self.seen[indices] = True

    def _top_by(self, score: torch.Tensor, k: int) -> torch.Tensor:
        """The k highest-scoring samples, never-seen ones (+inf) first, ties broken at random."""
        candidates = self._randperm(self.n)
        ranked = torch.where(self.seen[candidates], score[candidates], torch.inf)
        return candidates[torch.topk(ranked, k, sorted=False).indices]
