"""Both backends' contract: follow a per-epoch plan, yield (images, labels, indices)."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator

import numpy as np
import torch

from prunebench.datasets.augment import (
    NO_AUGMENTATION,
    EpochAugmentation,
    Normalizer,
    draw_augmentation,
)
from prunebench.datasets.sources import Source
from prunebench.datasets.specs import DatasetSpec

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


class PlanLoader(ABC):
    """Batches of one split in the order of the current plan (set_plan), on `device`.

    Contract attributes: `spec`, `num_samples`, `labels` (int64 CPU, one per sample), `backend`.
    Without set_plan the loader visits 0..num_samples-1 in order with epoch 0's augmentation.
    """

    backend: str = ""
    source: Source | None = None
    """The located split the samples were read from (its stamp identifies the files)."""
    subset_indices: np.ndarray | None = None
    """Sorted positions in the whole split of the samples held; None: the whole split."""

    def __init__(
        self,
        spec: DatasetSpec,
        labels: torch.Tensor,
        *,
        batch_size: int,
        device: torch.device,
        augment: bool,
        seed: int,
        drop_last: bool,
    ) -> None:
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, got {batch_size}")
        self.spec = spec
        self.labels = labels.to(device="cpu", dtype=torch.int64)
        self.batch_size = int(batch_size)
        self.device = device
        self.augment = bool(augment)
        self.seed = int(seed)
        self.drop_last = bool(drop_last)
        self.normalize = Normalizer(spec, device)
        self.epoch = 0
        self._plan: torch.Tensor | None = None
        self._augmentation: EpochAugmentation = NO_AUGMENTATION

    @property
    def num_samples(self) -> int:
        """Samples in the split (after `subset`); plan indices refer to 0..num_samples-1."""
        return len(self.labels)

    @property
    def plan_device(self) -> torch.device:
        """Where the backend wants the plan's indices kept."""
        return self.device

    def set_plan(self, indices: torch.Tensor, epoch: int = 0) -> None:
        """Visit `indices` (1-D int, repeats allowed) in order; augmentation from (seed, epoch)."""
        plan = torch.as_tensor(indices)
        if plan.ndim != 1 or plan.dtype.is_floating_point or plan.dtype == torch.bool:
            raise ValueError(
                f"a plan must be a 1-D integer tensor, got {plan.dtype} {tuple(plan.shape)}"
            )
        # clone: the caller may reuse its buffer while this epoch is still being served.
        plan = plan.to(device=self.plan_device, dtype=torch.int64).clone()
        if len(plan):
            low, high = torch.aminmax(plan)  # one sync per epoch, not per batch
            if low < 0 or high >= self.num_samples:
                raise ValueError(
                    f"plan indices must lie in [0, {self.num_samples}), "
                    f"got [{int(low)}, {int(high)}]"
                )
        self._plan = plan
        self.epoch = int(epoch)
        self._augmentation = self._draw(len(plan))

    def _draw(self, count: int) -> EpochAugmentation:
        if not self.augment:
            return NO_AUGMENTATION
        return draw_augmentation(self.spec, count, self.seed, self.epoch, self.device)

    def _current_plan(self) -> torch.Tensor:
        if self._plan is None:
            self.set_plan(torch.arange(self.num_samples), epoch=0)
        assert self._plan is not None
        return self._plan

    def __len__(self) -> int:
        count = len(self._current_plan())
        return count // self.batch_size if self.drop_last else -(-count // self.batch_size)

    def __iter__(self) -> Iterator[Batch]:
        plan = self._current_plan()
        usable = len(self) * self.batch_size
        return self._batches(plan[:usable], self._augmentation)

    @abstractmethod
    def _batches(self, plan: torch.Tensor, augmentation: EpochAugmentation) -> Iterator[Batch]:
        """Yield (images float32 NCHW normalized, labels int64, indices int64) along `plan`."""
