"""EL2N (Paul et al., NeurIPS 2021): keep the samples with the largest early error norm.

A sample's EL2N score is ||softmax(f(x)) - onehot(y)||_2 at an early checkpoint of training; the
static baseline keeps the highest-scoring (1 - p) of the data. Here the checkpoint is the end of
this run's scoring phase (``score_epochs`` epochs on all data, static_scoring.py), where a
forward-only pass (eval mode) over every sample scores it: n passes, charged in
``scoring_forward_passes``. Paul et al. average the score over 10 independent proxy runs at
epoch 20 of 200 (public code: mansheej/data_diet); one run's score is used here, the rest of the
rule is theirs. GraNd, the expected gradient norm, is grand.py (the same norm at the logits,
averaged over the scoring phase).
"""

from __future__ import annotations

import torch

from prunebench.pruners.registry import register_pruner
from prunebench.pruners.static_scoring import StaticScoringPruner


def el2n_scores(logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """||softmax(logits) - onehot(labels)||_2 per sample (float32)."""
    probabilities = torch.softmax(logits.float(), dim=1)
    onehot = torch.nn.functional.one_hot(labels, probabilities.shape[1]).float()
    return (probabilities - onehot).norm(dim=1)


@register_pruner
class EL2N(StaticScoringPruner):
    """Static: keep the largest EL2N scores after the scoring phase."""

    name = "el2n"

    def _start_scores(self) -> None:
        self.el2n = torch.zeros(self.n, dtype=torch.float32, device=self.device)

    def _tensor_state(self) -> dict[str, torch.Tensor]:
        return {**super()._tensor_state(), "el2n": self.el2n}

    def scoring_request(self, epoch: int) -> torch.Tensor | None:
        """Every sample, once, when the scoring phase ends."""
        if epoch == self.score_epochs and self.scoring:
            return torch.arange(self.n, device=self.device)
        return None

    def prediction_statistic(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return el2n_scores(logits, labels)

    def observe_predictions(self, indices: torch.Tensor, values: torch.Tensor) -> None:
        # Training passes write too; the scoring pass at the phase's end overwrites them all.
        self._follow_device(values)
        self.el2n[indices.to(self.device, non_blocking=True)] = values.float()

    def static_scores(self) -> torch.Tensor:
        return self.el2n
