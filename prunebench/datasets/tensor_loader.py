"""In-memory backend (airbench style): the split lives on the device as uint8, batches are gathers.

With augmentation the split is stored pre-padded by the translation margin, so gathering a batch
and translating it is one strided gather; flips and normalization follow as whole-batch ops.
"""

from __future__ import annotations

from collections.abc import Iterator

import torch

from prunebench.datasets.arrays import SplitArrays
from prunebench.datasets.augment import EpochAugmentation, apply_flips, crop_windows, pad_with_fill
from prunebench.datasets.loader import Batch, PlanLoader
from prunebench.datasets.specs import DatasetSpec


class TensorLoader(PlanLoader):
    """The contract's loader over a split held in device memory."""

    backend = "tensor"

    def __init__(
        self,
        spec: DatasetSpec,
        arrays: SplitArrays,
        *,
        batch_size: int,
        device: torch.device,
        augment: bool,
        seed: int,
        drop_last: bool,
    ) -> None:
        super().__init__(
            spec,
            torch.from_numpy(arrays.labels),
            batch_size=batch_size,
            device=device,
            augment=augment,
            seed=seed,
            drop_last=drop_last,
        )
        images = torch.from_numpy(arrays.images).permute(0, 3, 1, 2)  # NHWC storage -> NCHW view
        self._pad = spec.translate if augment else 0
        if self._pad:
            images = pad_with_fill(images, self._pad, self.normalize.fill.cpu())
        self._images = images.contiguous().to(device)
        self._device_labels = self.labels.to(device)

    def _batches(self, plan: torch.Tensor, augmentation: EpochAugmentation) -> Iterator[Batch]:
        for start in range(0, len(plan), self.batch_size):
            stop = start + self.batch_size
            indices = plan[start:stop]
            params = augmentation.batch(start, stop)
            if params.dy is not None and params.dx is not None:  # drawn iff the store is padded
                images = crop_windows(self._images, indices, params.dy, params.dx, self._pad)
            else:
                images = self._images[indices]
            if params.flips is not None:
                images = apply_flips(images, params.flips)
            yield self.normalize(images), self._device_labels[indices], indices
