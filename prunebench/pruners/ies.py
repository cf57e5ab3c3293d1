"""IES (ICLR 2025): exclude the samples whose loss curve has flattened, re-score them each epoch.

Follows the public code, tmllab/2025_ICLR_IES ``cifar_main.py`` (``calculate_derivative``,
``correct_moving_average_new_new`` and the exclusion loop of ``main``). Every sample gets one loss
per epoch: its training loss, or, while it is excluded, the loss of an eval-mode forward-only
pass over the excluded samples after the epoch (charged in ``scoring_forward_passes``; here it
runs before the next plan, at the same weights). After each epoch a sample's second differences
of its per-epoch losses, d_t = L_t - 2 L_(t-1) + L_(t-2), are averaged in absolute value over
the last ``window`` of them; the sample is excluded from the next epoch when that mean is below
``threshold``. The rule is re-applied to every sample every epoch, so excluded samples come back
when their loss moves again. A sample is judged only once it has ``window`` + k second
differences (k = 1: the public ``len(derivatives) >= moving_average_rate + k``), i.e. losses
from window + 3 epochs.

Defaults and their source: threshold 1e-3 (``--threshold``; the script doubles it for CIFAR-100,
so pass 2e-3 there), window 3 (``--moving_average_rate``), k 1 (``--k``). The public losses are
unsmoothed cross-entropy; here they are the run's training loss (label smoothing as configured).
``prune_ratio``, not in the public code, optionally caps the excluded share per epoch (the
samples with the flattest curves go first); None (default) is the public rule.
"""

from __future__ import annotations

from typing import Any

import torch

from prunebench.pruners.base import EpochPlan, Pruner, check_int, check_range
from prunebench.pruners.registry import register_pruner

MIN_DIFFERENCES_BEYOND_WINDOW = 1
"""The public k: second differences needed beyond the window before a sample is judged."""


def flatness(losses: torch.Tensor) -> torch.Tensor:
    """Mean |second difference| along each row of per-epoch losses (oldest first)."""
    second = losses[:, 2:] - 2.0 * losses[:, 1:-1] + losses[:, :-2]
    return second.abs().mean(dim=1)


@register_pruner
class IES(Pruner):
    """Exclude samples whose recent losses have flat second differences."""

    name = "ies"

    def __init__(
        self,
        n: int,
        epochs: int,
        seed: int,
        device: torch.device | str | None = None,
        threshold: float = 1e-3,
        window: int = 3,
        prune_ratio: float | None = None,
    ):
        super().__init__(n, epochs, seed, device)
        self.threshold = check_range("threshold", threshold, 0.0, float("inf"))
        self.window = check_int("window", window, 1)
        self.prune_ratio = (
            None
            if prune_ratio is None
            else check_range("prune_ratio", prune_ratio, 0.0, 1.0, high_open=True)
        )
        # The window's second differences need window + 2 losses.
        self.losses = torch.zeros(n, self.window + 2, dtype=torch.float32, device=self.device)
        self.seen = torch.zeros(n, dtype=torch.int64, device=self.device)
        """Per-epoch losses observed per sample (capped; judged from window + k + 2 on)."""
        self.excluded = torch.zeros(n, dtype=torch.bool, device=self.device)

    @property
    def params(self) -> dict[str, Any]:
        return {"threshold": self.threshold, "window": self.window, "prune_ratio": self.prune_ratio}

    def _tensor_state(self) -> dict[str, torch.Tensor]:
        return {"losses": self.losses, "seen": self.seen, "excluded": self.excluded}

    def scoring_request(self, epoch: int) -> torch.Tensor | None:
        """The samples excluded from the last epoch: an eval-mode pass gives their loss."""
        excluded = torch.nonzero(self.excluded).squeeze(1)  # one host read per epoch
        return excluded if excluded.numel() else None

    def observe(self, indices: torch.Tensor, losses: torch.Tensor) -> None:
        self._follow_device(losses)
        indices = indices.to(self.device, non_blocking=True)
        rows = self.losses[indices]
        self.losses[indices] = torch.cat([rows[:, 1:], losses.detach().float()[:, None]], dim=1)
        self.seen[indices] = (self.seen[indices] + 1).clamp_max(self.judged_after)

    @property
    def judged_after(self) -> int:
        """Per-epoch losses a sample needs before it can be excluded."""
        return self.window + MIN_DIFFERENCES_BEYOND_WINDOW + 2

    def plan_epoch(self, epoch: int, progress: float | None = None) -> EpochPlan:
        judged = self.seen >= self.judged_after
        flat = torch.where(
            judged, flatness(self.losses), torch.full_like(self.losses[:, 0], torch.inf)
        )
        excluded = flat < self.threshold
        if self.prune_ratio is not None:
            cap = int(self.prune_ratio * self.n)
            count = int(excluded.sum())  # one host read per epoch
            if count > cap:
                flattest = torch.topk(flat, cap, largest=False).indices
                excluded = torch.zeros_like(excluded)
                excluded[flattest] = True
        trained = torch.nonzero(~excluded).squeeze(1)
        if trained.numel() == 0:  # every curve flat: train the least flat sample, not nothing
            excluded[torch.argmax(flat)] = False
            trained = torch.nonzero(~excluded).squeeze(1)
        self.excluded = excluded
        return EpochPlan(indices=self._shuffled(trained), n=self.n)
