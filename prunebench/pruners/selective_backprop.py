"""Selective Backprop (Jiang et al. 2019): backpropagate a sample with probability percentile^beta.

Follows the public code, angelajiang/SelectiveBackprop: ``lib/calculators.py``
(``BatchedRelativeProbabilityCalculator``), ``lib/hist.py`` (``UnboundedHistogram``),
``lib/selectors.py`` (``SamplingSelector``, ``PrimedSelector``) and ``lib/SelectiveBackpropper.py``
(its hard-coded settings). Every step the trainer scores a candidate batch by a forward-only pass;
the batch's losses are appended to a history of the last ``history`` losses, and each candidate is
kept with probability (share of the history strictly below its loss) ** beta; the kept samples are
queued into full batches and backpropagated. The first epoch trains every sample (the public
``PrimedSelector`` primes with num_training_images images) and scores nothing.
Defaults and their source: beta 3 (the paper's and scripts' prob_pow), history 1024
(``max_history_len``), sampling_min 0 (no floor on the probability), first epoch full
(``num_images_to_prime = num_training_images``).

Cost: a forward-only pass per candidate (``scoring_forward_passes``) plus forward+backward per
kept sample; the saving is backward passes only. The expected kept share is 1 / (beta + 1) when
the percentiles are uniform, so ``prune_ratio`` p stands for beta = p / (1 - p) (p 0.75 is beta
3). Under an epochs budget the LR follows epochs (the candidates consumed); under a samples budget
it counts backpropagated samples, as the public ``lr_sched`` on ``num_backpropped`` does.
The public "stale" forward selector (``lib/fp_selectors.py``, ``StaleSelector``) is
``staleness`` k > 1: a sample gets a fresh forward pass only when its stored loss is k epochs
old. Every sample is a candidate every epoch, so after the primed epoch the fresh epochs are
every k-th one; in the epochs between, the same rule runs over candidate batches of the stored
losses when the epoch is planned, with no forward-only pass. The default k = 1 is the plain
method; the paper's stale variant uses k = 3.
"""

from __future__ import annotations

from typing import Any

import torch

from prunebench.errors import ConfigError
from prunebench.pruners.base import (
    PRUNE_RATIO_SEARCH,
    EpochPlan,
    Pruner,
    check_int,
    check_range,
)
from prunebench.pruners.registry import register_pruner


def backprop_probability(history: torch.Tensor, losses: torch.Tensor, beta: float) -> torch.Tensor:
    """(share of ``history`` strictly below each loss) ** beta: the public percentile rule."""
    below = (history.unsqueeze(0) < losses.unsqueeze(1)).sum(dim=1)
    return (below.float() / history.numel()) ** beta


@register_pruner
class SelectiveBackprop(Pruner):
    """Per-step Bernoulli selection on the loss percentile among recent losses."""

    name = "selective_backprop"
    selects_per_step = True
    search_space = PRUNE_RATIO_SEARCH
    ratio_params = ("prune_ratio", "beta")

    @classmethod
    def target_prune_ratio(cls, params: dict[str, Any]) -> float:
        """prune_ratio, else beta / (beta + 1) (uniform percentiles keep 1 / (beta + 1))."""
        if "prune_ratio" in params:
            return float(params["prune_ratio"])
        beta = float(params.get("beta", 3.0))
        return beta / (beta + 1.0)

    def __init__(
        self,
        n: int,
        epochs: int,
        seed: int,
        device: torch.device | str | None = None,
        prune_ratio: float | None = None,
        beta: float | None = None,
        history: int = 1024,
        prime_epochs: int = 1,
        staleness: int = 1,
    ):
        super().__init__(n, epochs, seed, device)
        if prune_ratio is not None and beta is not None:
            raise ConfigError("selective_backprop takes prune_ratio or beta, not both")
        if prune_ratio is not None:
            check_range("prune_ratio", prune_ratio, 0.0, 1.0, high_open=True)
            beta = prune_ratio / (1.0 - prune_ratio)
        self.beta = check_range("beta", 3.0 if beta is None else beta, 0.0, 1e6)
        self.history_size = check_int("history", history, 1)
        self.prime_epochs = check_int("prime_epochs", prime_epochs, 0)
        self.staleness = check_int("staleness", staleness, 1)
        # Never scored: +inf, the top percentile (such a sample is always backpropagated).
        self.last_loss = torch.full((n,), torch.inf, dtype=torch.float32, device=self.device)
        self.history = torch.zeros(self.history_size, dtype=torch.float32, device=self.device)
        self.filled = 0
        """Losses in the history so far (at most history_size); host count, no sync."""
        self.cursor = 0
        """Slot of the history the next loss overwrites (the oldest, once full)."""

    @property
    def params(self) -> dict[str, Any]:
        return {
            "beta": self.beta,
            "history": self.history_size,
            "prime_epochs": self.prime_epochs,
            "staleness": self.staleness,
        }

    def _tensor_state(self) -> dict[str, torch.Tensor]:
        return {"history": self.history, "last_loss": self.last_loss}

    def _extra_state(self) -> dict[str, Any]:
        return {"filled": self.filled, "cursor": self.cursor}

    def is_fresh(self, epoch: int) -> bool:
        """Whether ``epoch`` scores its candidates afresh (else: stored losses, or primed)."""
        return epoch >= self.prime_epochs and (epoch - self.prime_epochs) % self.staleness == 0

    def plan_epoch(self, epoch: int, progress: float | None = None) -> EpochPlan:
        # Every sample is a candidate, once, in random order; the primed epochs train them all.
        candidates = self._randperm(self.n)
        if epoch < self.prime_epochs or self.is_fresh(epoch):
            return EpochPlan(indices=candidates, n=self.n, per_step=self.is_fresh(epoch))
        # A stale epoch: the per-step rule over candidate batches of the stored losses.
        batches = candidates.split(self.batch_size)
        keep = torch.cat([self._select(self.last_loss[batch]) for batch in batches])
        kept = candidates[keep]
        return EpochPlan(indices=kept if kept.numel() else candidates[:1], n=self.n)

    def select_step(self, indices: torch.Tensor, losses: torch.Tensor) -> torch.Tensor:
        self._follow_device(losses)
        losses = losses.detach().float()
        self.last_loss[indices.to(self.device, non_blocking=True)] = losses
        return self._select(losses)

    def _select(self, losses: torch.Tensor) -> torch.Tensor:
        """Keep mask of one candidate batch: history updated, then percentile ** beta draws."""
        self._remember(losses)
        probability = backprop_probability(self.history[: self.filled], losses, self.beta)
        draws = torch.rand(losses.numel(), generator=self.generator).to(self.device)
        return draws < probability

    def _remember(self, losses: torch.Tensor) -> None:
        """Append a batch's losses to the ring of the last ``history_size`` (the public code
        adds the whole batch before computing its percentiles)."""
        recent = losses[-self.history_size :]
        count = recent.numel()
        slots = (self.cursor + torch.arange(count, device=self.device)) % self.history_size
        self.history[slots] = recent
        self.cursor = (self.cursor + count) % self.history_size
        self.filled = min(self.filled + count, self.history_size)
