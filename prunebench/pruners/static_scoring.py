"""Shared phases of the static pruners that score samples in the run before pruning once.

A static pruner trains its first ``score_epochs`` epochs on all the data (its scoring phase: the
proxy training whose forward+backward passes are charged to it like any other training), scores
every sample, keeps round((1 - p) * n) of them by score once, and trains that fixed subset in a
fresh random order every later epoch. The model is not restarted after the scoring phase (the
published static baselines score with a separate proxy run and train a fresh model on the
subset; here proxy and final training are one run, so the scoring cost shows in the same budget).
Default score_epochs: 10% of the run's epochs, at least 1 (EL2N's 20 of 200 CIFAR epochs).
"""

from __future__ import annotations

from typing import Any, ClassVar

import torch

from prunebench.pruners.base import (
    PRUNE_RATIO_SEARCH,
    EpochPlan,
    Pruner,
    check_int,
    check_range,
    kept_count,
)

SCORE_FRACTION = 0.1
"""Default scoring phase as a share of the run's epochs (EL2N: epoch 20 of 200)."""


class StaticScoringPruner(Pruner):
    """Full data for ``score_epochs`` epochs, then the fixed subset its scores choose."""

    observes_predictions = True
    search_space = PRUNE_RATIO_SEARCH
    keep_highest: ClassVar[bool] = True
    """Whether the highest-scoring samples are kept (the hardest, for EL2N and forgetting)."""

    def __init__(
        self,
        n: int,
        epochs: int,
        seed: int,
        device: torch.device | str | None = None,
        prune_ratio: float = 0.5,
        score_epochs: int | None = None,
    ):
        super().__init__(n, epochs, seed, device)
        self.prune_ratio = check_range("prune_ratio", prune_ratio, 0.0, 1.0, high_open=True)
        if score_epochs is None:
            score_epochs = max(1, round(SCORE_FRACTION * epochs))
        self.score_epochs = check_int("score_epochs", score_epochs, 1)
        self.kept = kept_count(n, self.prune_ratio)
        self.subset = torch.zeros(0, dtype=torch.int64, device=self.device)
        """The kept samples, chosen at the first plan after the scoring phase (empty before)."""
        self._start_scores()

    def _start_scores(self) -> None:
        """Create the per-sample score tensors (on ``self.device``)."""

    @property
    def params(self) -> dict[str, Any]:
        return {"prune_ratio": self.prune_ratio, "score_epochs": self.score_epochs}

    def _tensor_state(self) -> dict[str, torch.Tensor]:
        return {"subset": self.subset}

    @property
    def scoring(self) -> bool:
        """Whether the scoring phase is still on (no subset chosen yet)."""
        return self.subset.numel() == 0

    def static_scores(self) -> torch.Tensor:
        """Every sample's score at the end of the scoring phase (float, on the device)."""
        raise NotImplementedError

    def plan_epoch(self, epoch: int, progress: float | None = None) -> EpochPlan:
        if epoch < self.score_epochs:
            return EpochPlan(indices=self._randperm(self.n), n=self.n)
        if self.scoring:
            # Random order first, so that equal scores fall to random samples.
            order = self._randperm(self.n)
            scores = self.static_scores()[order]
            top = torch.topk(scores, self.kept, largest=self.keep_highest).indices
            self.subset = order[top]
        return EpochPlan(indices=self._shuffled(self.subset), n=self.n)
