"""Vectorized flip + translate and normalization, shared by both backends.

An epoch's augmentation parameters are drawn for every position of its plan at once from a private
generator seeded by (seed, epoch), so they are a pure function of (seed, epoch, plan): a resumed run
sees the same pixels, and both backends produce identical batches.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from prunebench.datasets.specs import DatasetSpec

_AUGMENT_STREAM = 0xA06


@dataclass(frozen=True)
class EpochAugmentation:
    """Per plan position: flip (bool [m]) and window offsets dy, dx (int64 [m], 0..2*pad)."""

    flips: torch.Tensor | None
    dy: torch.Tensor | None
    dx: torch.Tensor | None

    def batch(self, start: int, stop: int) -> EpochAugmentation:
        """The parameters of plan positions start..stop-1."""

        def cut(values: torch.Tensor | None) -> torch.Tensor | None:
            return None if values is None else values[start:stop]

        return EpochAugmentation(cut(self.flips), cut(self.dy), cut(self.dx))


NO_AUGMENTATION = EpochAugmentation(None, None, None)


def epoch_generator(seed: int, epoch: int) -> torch.Generator:
    """A CPU generator whose state depends only on (seed, epoch)."""
    state = np.random.SeedSequence([int(seed), int(epoch), _AUGMENT_STREAM]).generate_state(
        2, np.uint32
    )
    return torch.Generator().manual_seed(int(state[0]) << 32 | int(state[1]))


def draw_augmentation(
    spec: DatasetSpec, count: int, seed: int, epoch: int, device: torch.device
) -> EpochAugmentation:
    """Flips (if the spec allows) and translations (up to spec.translate) for `count` positions."""
    generator = epoch_generator(seed, epoch)
    flips = dy = dx = None
    # Drawn on the CPU (identical on every device), then moved once per epoch.
    if spec.flip:
        flips = (torch.rand(count, generator=generator) < 0.5).to(device)
    if spec.translate > 0:
        offsets = torch.randint(0, 2 * spec.translate + 1, (2, count), generator=generator)
        dy, dx = offsets.to(device)
    return EpochAugmentation(flips, dy, dx)


def pad_with_fill(images: torch.Tensor, pad: int, fill: torch.Tensor) -> torch.Tensor:
    """uint8 [B, C, H, W] -> [B, C, H+2p, W+2p] with the border set to `fill` (uint8 [C])."""
    batch, channels, height, width = images.shape
    padded = (
        fill.view(1, channels, 1, 1)
        .expand(batch, channels, height + 2 * pad, width + 2 * pad)
        .clone()
    )
    padded[:, :, pad : pad + height, pad : pad + width] = images
    return padded


def crop_windows(
    padded: torch.Tensor, rows: torch.Tensor, dy: torch.Tensor, dx: torch.Tensor, pad: int
) -> torch.Tensor:
    """out[b] = padded[rows[b], :, dy[b]:dy[b]+H, dx[b]:dx[b]+W] as one strided gather."""
    count, channels, padded_h, padded_w = padded.shape
    height, width = padded_h - 2 * pad, padded_w - 2 * pad
    s_n, s_c, s_h, s_w = padded.stride()
    # View every possible window of every image; advanced indexing then picks one per batch row.
    windows = padded.as_strided(
        (count, channels, 2 * pad + 1, 2 * pad + 1, height, width), (s_n, s_c, s_h, s_w, s_h, s_w)
    )
    return windows[rows, :, dy, dx]


def apply_flips(images: torch.Tensor, flips: torch.Tensor) -> torch.Tensor:
    """Mirror the images whose flag is set (no host sync: a select, not a boolean index)."""
    return torch.where(flips.view(-1, 1, 1, 1), images.flip(-1), images)


class Normalizer:
    """uint8 NCHW -> float32 NCHW (contiguous), (x / 255 - mean) / std per channel."""

    def __init__(self, spec: DatasetSpec, device: torch.device) -> None:
        mean = torch.tensor(spec.mean, dtype=torch.float32) * 255
        std = torch.tensor(spec.std, dtype=torch.float32) * 255
        self.mean = mean.view(1, -1, 1, 1).to(device)
        self.inv_std = (1 / std).view(1, -1, 1, 1).to(device)
        # Border fill for translation: the mean pixel, i.e. zero after normalization.
        self.fill = mean.round().clamp(0, 255).to(torch.uint8).to(device)

    def __call__(self, images: torch.Tensor) -> torch.Tensor:
        out = images.to(dtype=torch.float32, memory_format=torch.contiguous_format)
        return out.sub_(self.mean).mul_(self.inv_std)
