"""Shared state of the pruners that score each sample by its latest training loss."""

from __future__ import annotations

import torch

from prunebench.pruners.base import Pruner


class LastLossPruner(Pruner):
    """Keeps ``scores``: every sample's last observed training loss (``initial_score`` before)."""

    def __init__(
        self,
        n: int,
        epochs: int,
        seed: int,
        device: torch.device | str | None,
        initial_score: float,
    ):
        super().__init__(n, epochs, seed, device)
        self.scores = torch.full((n,), initial_score, dtype=torch.float32, device=self.device)

    def _tensor_state(self) -> dict[str, torch.Tensor]:
        return {"scores": self.scores}

    def observe(self, indices: torch.Tensor, losses: torch.Tensor) -> None:
        self._follow_device(losses)
        self.scores[indices.to(self.device, non_blocking=True)] = losses.detach().float()
