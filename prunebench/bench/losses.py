"""The per-sample training loss, one definition for the trainer and the diagnostics."""

from __future__ import annotations

import torch
import torch.nn.functional as F


def sample_losses(
    logits: torch.Tensor, labels: torch.Tensor, label_smoothing: float
) -> torch.Tensor:
    """Per-sample cross-entropy in float32 (logits may be bf16 under autocast), label-smoothed."""
    return F.cross_entropy(
        logits.float(), labels, reduction="none", label_smoothing=label_smoothing
    )
