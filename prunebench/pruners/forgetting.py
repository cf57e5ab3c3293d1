"""Forgetting scores (Toneva et al., ICLR 2019): keep the samples forgotten most often.

A forgetting event is a sample going from classified correctly to misclassified between two
consecutive times it is trained; a sample never classified correctly counts as forgotten
infinitely often. The static baseline removes the least forgotten ("unforgettable") samples
first and keeps the most forgotten (1 - p) of the data. Correctness is read off the training
forward passes (public code: mtoneva/example_forgetting, which records each sample's
correctness at every training step), so no pass is spent beyond training. Toneva et al. count
over a whole proxy run; here the events of this run's scoring phase (``score_epochs`` epochs on
all data, static_scoring.py) are counted. Ties (e.g. the many samples never forgotten) fall to
random samples.
"""

from __future__ import annotations

import torch

from prunebench.pruners.registry import register_pruner
from prunebench.pruners.static_scoring import StaticScoringPruner


@register_pruner
class Forgetting(StaticScoringPruner):
    """Static: keep the samples with the most forgetting events in the scoring phase."""

    name = "forgetting"

    def _start_scores(self) -> None:
        self.correct = torch.zeros(self.n, dtype=torch.bool, device=self.device)
        """Whether the sample was classified correctly when last trained."""
        self.learned = torch.zeros(self.n, dtype=torch.bool, device=self.device)
        self.events = torch.zeros(self.n, dtype=torch.int64, device=self.device)

    def _tensor_state(self) -> dict[str, torch.Tensor]:
        return {
            **super()._tensor_state(),
            "correct": self.correct,
            "learned": self.learned,
            "events": self.events,
        }

    def prediction_statistic(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return (logits.argmax(dim=1) == labels).float()

    def observe_predictions(self, indices: torch.Tensor, values: torch.Tensor) -> None:
        if not self.scoring:
            return  # the counts are frozen once the subset is chosen
        self._follow_device(values)
        indices = indices.to(self.device, non_blocking=True)
        now = values > 0.5
        self.events[indices] += (self.correct[indices] & ~now).long()
        self.learned[indices] |= now
        self.correct[indices] = now

    def static_scores(self) -> torch.Tensor:
        never_learned = torch.full_like(self.events, torch.iinfo(torch.int64).max)
        return torch.where(self.learned, self.events, never_learned).double()
