"""KAKURENBO (NeurIPS 2023): hide the easy samples the model already predicts confidently.

Follows the public code, TruongThaoNguyen/kakurenbo: the CIFAR training scripts
(``ImageNet/pytorch_cifar100_WRN-28-10_hs_lag_v3.1.py``: the move-back loop, ``adjust_fraction``,
``adjust_learning_rate``, the ``log_loader`` pass) and ``ImageNet/utils/weight_sampler.py``.
Each epoch e with maximum hidden fraction F_e:

1. sort the samples by their last loss; the int(F_e * n) lowest are candidates;
2. a candidate is hidden only if its last prediction was correct with confidence >= 0.7; the
   others are "moved back" and trained;
3. the learning rate is scaled by 1 / (1 - F_e) (``lr_scale``);
4. the hidden samples get a forward-only pass after the epoch (here: before the next plan, at
   the same weights), refreshing their loss, correctness and confidence: the pass is charged in
   ``scoring_forward_passes``.

Every sample starts with loss 1 and "not correct" (the script's ``samples_impt`` ones and
``samples_fness`` zeros), so the first epoch trains everything. Defaults and their source:
prune_ratio (F) 0.3 and the schedule F, then 0.8F from 60% of the run, then 0.6F from 80% (the
CIFAR setting: epochs 120 and 160 of 200; the WRN-28-10 CIFAR-100 script steps earlier, at
60/120/160, down to 0.4F), threshold 0.7 (``THRESHOLD``). The forward-only pass runs in eval
mode (no BatchNorm statistics move); the public pass runs in the mode training left.

Confidence: the paper takes the softmax over the classes (the predicted class's probability).
The public code computes ``softmax(output, dim=0)``, across the samples of the batch, then the
largest entry of each row; that behaviour is ``confidence="batch_softmax"``.
"""

from __future__ import annotations

from typing import Any

import torch

from prunebench.errors import ConfigError
from prunebench.pruners.base import PRUNE_RATIO_SEARCH, EpochPlan, Pruner, check_range
from prunebench.pruners.registry import register_pruner

CONFIDENCE_RULES = ("class_softmax", "batch_softmax")
FRACTION_STEPS = ((0.6, 0.8), (0.8, 0.6))
"""(budget progress, factor): from that progress on, the hidden fraction is factor * F."""


def prediction_confidence(logits: torch.Tensor, labels: torch.Tensor, rule: str) -> torch.Tensor:
    """The confidence of each correct prediction, 0 for a wrong one (float32).

    ``class_softmax``: the predicted class's softmax probability (the paper). ``batch_softmax``:
    the row maximum of the softmax taken over the batch dimension (the public code).
    """
    logits = logits.float()
    correct = logits.argmax(dim=1) == labels
    dim = 1 if rule == "class_softmax" else 0
    confidence = torch.softmax(logits, dim=dim).amax(dim=1)
    return torch.where(correct, confidence, torch.zeros_like(confidence))


@register_pruner
class Kakurenbo(Pruner):
    """Hide the lowest-loss candidates that are predicted correctly and confidently."""

    name = "kakurenbo"
    search_space = PRUNE_RATIO_SEARCH
    observes_predictions = True

    def __init__(
        self,
        n: int,
        epochs: int,
        seed: int,
        device: torch.device | str | None = None,
        prune_ratio: float = 0.3,
        threshold: float = 0.7,
        confidence: str = "class_softmax",
        scale_lr: bool = True,
    ):
        super().__init__(n, epochs, seed, device)
        self.prune_ratio = check_range("prune_ratio", prune_ratio, 0.0, 1.0, high_open=True)
        self.threshold = check_range("threshold", threshold, 0.0, 1.0)
        if confidence not in CONFIDENCE_RULES:
            raise ConfigError(
                f"kakurenbo's confidence must be one of {', '.join(CONFIDENCE_RULES)}, "
                f"got {confidence!r}"
            )
        if not isinstance(scale_lr, bool):
            raise ConfigError(f"scale_lr must be true or false, got {scale_lr!r}")
        self.confidence = confidence
        self.scale_lr = scale_lr
        self.scores = torch.ones(n, dtype=torch.float32, device=self.device)
        self.confident = torch.zeros(n, dtype=torch.float32, device=self.device)
        """Last confidence of a correct prediction, 0 if wrong (``prediction_confidence``)."""
        self.hidden = torch.zeros(n, dtype=torch.bool, device=self.device)
        self.fraction = self.prune_ratio
        """F of the epoch planned last (the LR scale follows it)."""

    @property
    def params(self) -> dict[str, Any]:
        return {
            "prune_ratio": self.prune_ratio,
            "threshold": self.threshold,
            "confidence": self.confidence,
            "scale_lr": self.scale_lr,
            "lr_scale_rule": "1/(1-F)" if self.scale_lr else "1",
        }

    def _tensor_state(self) -> dict[str, torch.Tensor]:
        return {"scores": self.scores, "confident": self.confident, "hidden": self.hidden}

    def _extra_state(self) -> dict[str, Any]:
        return {"fraction": self.fraction}

    def max_fraction(self, epoch: int, progress: float | None = None) -> float:
        """F_e: prune_ratio, stepped down by the factors at the progress milestones."""
        done = self.epoch_progress(epoch, progress)
        factor = 1.0
        for milestone, step in FRACTION_STEPS:
            if done >= milestone - 1e-9:
                factor = step
        return factor * self.prune_ratio

    def lr_scale(self) -> float:
        return 1.0 / (1.0 - self.fraction) if self.scale_lr else 1.0

    def scoring_request(self, epoch: int) -> torch.Tensor | None:
        """The samples hidden last epoch: their forward-only pass refreshes their scores."""
        hidden = torch.nonzero(self.hidden).squeeze(1)  # one host read per epoch
        return hidden if hidden.numel() else None

    def observe(self, indices: torch.Tensor, losses: torch.Tensor) -> None:
        self._follow_device(losses)
        self.scores[indices.to(self.device, non_blocking=True)] = losses.detach().float()

    def prediction_statistic(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        return prediction_confidence(logits, labels, self.confidence)

    def observe_predictions(self, indices: torch.Tensor, values: torch.Tensor) -> None:
        self._follow_device(values)
        self.confident[indices.to(self.device, non_blocking=True)] = values.float()

    def plan_epoch(self, epoch: int, progress: float | None = None) -> EpochPlan:
        self.fraction = self.max_fraction(epoch, progress)
        candidates = torch.argsort(self.scores, stable=True)[: int(self.fraction * self.n)]
        self.hidden = torch.zeros_like(self.hidden)
        confident = self.confident[candidates]
        # A wrong prediction (0) is always moved back, whatever the threshold.
        self.hidden[candidates] = (confident > 0) & (confident >= self.threshold)
        trained = torch.nonzero(~self.hidden).squeeze(1)
        return EpochPlan(indices=self._shuffled(trained), n=self.n)
