"""FFCV backend: one ffcv Loader per split for the whole run, driven by the pruner's plan.

FFCV 1.0.2 fixes its traversal order at construction; here the Loader's `traversal_order` is
replaced by a PlanOrder that returns the current plan, and `first_traversal_order` (which FFCV
uses for len()) is kept in step, so subsets may grow, shrink or repeat samples between epochs
without recompiling the pipeline. FFCV decodes (and, for JPEG training, random-resized-crops);
flip, translation and normalization run on the device in torch, with the same (seed, epoch)
parameters as the tensor backend, so both backends return identical batches for raw data.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import numpy as np
import torch
from ffcv.fields.basics import IntDecoder
from ffcv.fields.decoders import CenterCropRGBImageDecoder, RandomResizedCropRGBImageDecoder
from ffcv.fields.ndarray import NDArrayDecoder
from ffcv.loader import Loader, OrderOption
from ffcv.pipeline.operation import Operation
from ffcv.transforms import ToDevice, ToTensor
from ffcv.traversal_order.base import TraversalOrder

from prunebench.datasets.arrays import stratified_subset
from prunebench.datasets.augment import EpochAugmentation, apply_flips, crop_windows, pad_with_fill
from prunebench.datasets.ffcv_files import BetonInfo, ensure_beton
from prunebench.datasets.loader import Batch, PlanLoader
from prunebench.datasets.registry import locate_source
from prunebench.datasets.specs import DatasetSpec

# numba's dispatcher finalizer can raise KeyError when FFCV's JPEG decoders (compiled with literal
# arguments) are garbage collected. Raised inside the garbage collector, that error can break
# unrelated code running at the time (CPython's AST constructor, under pytest), so compiled JPEG
# pipelines are kept for the life of the process; numba skips the finalizer at shutdown.
_KEPT_JPEG_PIPELINES: list[object] = []


class PlanOrder(TraversalOrder):
    """FFCV traversal order that returns whatever order was set last (file sample ids, uint64)."""

    def __init__(self, loader: Loader) -> None:
        super().__init__(loader)
        self.order = np.asarray(self.indices, dtype=np.uint64)

    def sample_order(self, epoch: int) -> np.ndarray:
        """The current plan, whatever the epoch number FFCV counts."""
        return self.order


class FFCVLoader(PlanLoader):
    """The contract's loader over a .beton file."""

    backend = "ffcv"

    def __init__(
        self,
        spec: DatasetSpec,
        path: Path,
        info: BetonInfo,
        *,
        subset_ids: np.ndarray | None,
        batch_size: int,
        device: torch.device,
        augment: bool,
        seed: int,
        drop_last: bool,
        num_workers: int,
    ) -> None:
        labels = info.labels if subset_ids is None else info.labels[subset_ids]
        super().__init__(
            spec,
            torch.from_numpy(labels),
            batch_size=batch_size,
            device=device,
            augment=augment,
            seed=seed,
            drop_last=drop_last,
        )
        self.path = path
        self._pad = spec.translate if augment else 0  # 0 for JPEG: its decoder crops instead
        self._subset_ids = subset_ids
        # Maps the file's sample ids back to positions in the subset (-1: not in the subset).
        self._to_local: torch.Tensor | None = None
        if subset_ids is not None:
            to_local = torch.full((info.num_samples,), -1, dtype=torch.int64)
            to_local[torch.from_numpy(subset_ids)] = torch.arange(len(subset_ids))
            self._to_local = to_local.to(device)

        on_device: list[Operation] = (
            [ToDevice(device, non_blocking=True)] if device.type != "cpu" else []
        )
        self._loader = Loader(
            str(path),
            batch_size=self.batch_size,
            num_workers=num_workers,
            order=OrderOption.SEQUENTIAL,
            seed=seed,  # unused by a sequential order, but keeps FFCV off numpy's global RNG
            drop_last=self.drop_last,
            pipelines={
                "image": [self._image_decoder(spec, augment), ToTensor(), *on_device],
                "label": [IntDecoder(), ToTensor(), *on_device],
                "index": [IntDecoder(), ToTensor(), *on_device],
            },
        )
        self._order = PlanOrder(self._loader)
        self._loader.traversal_order = self._order
        if spec.encoding == "jpeg":
            _KEPT_JPEG_PIPELINES.append(self._loader.code)

    @property
    def plan_device(self) -> torch.device:
        """FFCV reads its order on the host."""
        return torch.device("cpu")

    @staticmethod
    def _image_decoder(spec: DatasetSpec, augment: bool) -> Operation:
        if spec.encoding == "raw":
            return NDArrayDecoder()
        size = (spec.height, spec.width)
        if augment:
            return RandomResizedCropRGBImageDecoder(size)
        return CenterCropRGBImageDecoder(
            size, ratio=float(spec.option("val_crop_ratio", 224 / 256))
        )

    def set_plan(self, indices: torch.Tensor, epoch: int = 0) -> None:
        """As PlanLoader.set_plan, and point FFCV's traversal order at the plan's file samples."""
        super().set_plan(indices, epoch)
        assert self._plan is not None
        ids = self._plan.numpy()
        if self._subset_ids is not None:
            ids = self._subset_ids[ids]
        order = ids.astype(np.uint64)
        self._order.order = order
        self._loader.first_traversal_order = order  # FFCV's len() and epoch length follow it

    def _batches(self, plan: torch.Tensor, augmentation: EpochAugmentation) -> Iterator[Batch]:
        if not len(plan):
            return
        epoch = iter(self._loader)
        start = 0
        try:
            for images, labels, file_ids in epoch:
                count = len(file_ids)
                params = augmentation.batch(start, start + count)
                start += count
                images = images.permute(0, 3, 1, 2)  # NHWC -> NCHW view
                if params.dy is not None and params.dx is not None:
                    padded = pad_with_fill(images, self._pad, self.normalize.fill)
                    rows = torch.arange(count, device=images.device)
                    images = crop_windows(padded, rows, params.dy, params.dx, self._pad)
                if params.flips is not None:
                    images = apply_flips(images, params.flips)
                # FFCV recycles its buffers: everything handed out is a fresh tensor.
                file_ids = file_ids.view(-1)
                indices = file_ids.clone() if self._to_local is None else self._to_local[file_ids]
                yield self.normalize(images), labels.view(-1).clone(), indices
        finally:
            epoch.close()


def build_ffcv_loader(
    spec: DatasetSpec,
    split: str,
    *,
    data_dir: Path | str | None,
    subset: int | None,
    subset_seed: int,
    batch_size: int,
    device: torch.device,
    augment: bool,
    seed: int,
    drop_last: bool,
    num_workers: int | None,
    progress: bool = False,
) -> FFCVLoader:
    """Write (once) and open the split's .beton, then wrap it in a plan-following FFCVLoader."""
    # Default: the torch thread count, because FFCV sets torch's thread count to its own.
    workers = int(num_workers or torch.get_num_threads() or os.cpu_count() or 1)
    source = locate_source(spec, split, data_dir)
    path, info = ensure_beton(spec, split, source, data_dir, workers, progress=progress)
    subset_ids = None if subset is None else stratified_subset(info.labels, subset, subset_seed)
    loader = FFCVLoader(
        spec,
        path,
        info,
        subset_ids=subset_ids,
        batch_size=batch_size,
        device=device,
        augment=augment,
        seed=seed,
        drop_last=drop_last,
        num_workers=workers,
    )
    loader.source, loader.subset_indices = source, subset_ids
    return loader
