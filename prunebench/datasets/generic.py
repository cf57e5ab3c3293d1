"""Datasets described by their data: a plugin's arrays or torchvision dataset, an npz, a folder.

prunebench's loaders hold uint8 images [N, H, W, C]. :func:`split_arrays` brings what a user has
to that form: [N, H, W] grey or [N, H, W, C] / [N, C, H, W] images, or flat features [N, D]
(stored as 1x1 images of D channels, so per-channel normalization standardizes each feature);
uint8 values, or floats in [0, 1] (scaled to 0..255). :func:`spec_from_arrays` derives the
DatasetSpec (classes, shape, per-channel mean and std of the training split) and
:func:`content_stamp` the digest of the exact samples, which names caches (the FFCV .beton) and
enters the MLflow dataset digest, like the built-in datasets' file stamps.
"""

from __future__ import annotations

import hashlib
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from prunebench.datasets.arrays import SplitArrays
from prunebench.datasets.registry import register_described_dataset
from prunebench.datasets.sources import ArraySource
from prunebench.datasets.specs import SPLITS, DatasetSpec, canonical_split
from prunebench.errors import DataError

Loader = Callable[[str, Path], Any]
"""``load(split, data_dir)``: (images, labels) arrays, or a torchvision-style dataset."""


def _pixels(images: np.ndarray, where: str) -> np.ndarray:
    """uint8 pixels from uint8/integer values in 0..255 or floats in [0, 1]."""
    if images.dtype == np.uint8:
        return images
    if images.size and np.issubdtype(images.dtype, np.floating):
        if np.nanmin(images) < 0 or np.nanmax(images) > 1 or np.isnan(images).any():
            raise DataError(
                f"{where} holds floats outside [0, 1]; scale them to [0, 1] or to uint8 pixels"
            )
        return np.rint(images * 255).astype(np.uint8)
    if images.size and np.issubdtype(images.dtype, np.integer):
        if images.min() < 0 or images.max() > 255:
            raise DataError(f"{where} holds integers outside 0..255; store uint8 pixels")
        return images.astype(np.uint8)
    if not images.size:
        raise DataError(f"{where} holds no samples")
    raise DataError(f"{where} holds {images.dtype} values; store uint8 pixels or floats in [0, 1]")


def split_arrays(images: Any, labels: Any, where: str) -> SplitArrays:
    """The loaders' SplitArrays from images (or flat features) and integer labels."""
    images, labels = np.asarray(images), np.asarray(labels)
    if labels.ndim != 1 or len(labels) != len(images):
        raise DataError(
            f"{where}: labels must be one integer per sample ({len(images)}), got shape "
            f"{labels.shape}"
        )
    if not np.issubdtype(labels.dtype, np.integer) or (labels.size and labels.min() < 0):
        raise DataError(f"{where}: labels must be non-negative integers, got {labels.dtype}")
    if images.ndim == 2:  # flat features: 1x1 images with one channel per feature
        images = images[:, None, None, :]
    elif images.ndim == 3:  # grey images
        images = images[..., None]
    elif images.ndim == 4 and images.shape[-1] not in (1, 3, 4) and images.shape[1] in (1, 3, 4):
        images = images.transpose(0, 2, 3, 1)  # NCHW (torch) -> NHWC
    elif images.ndim != 4:
        raise DataError(
            f"{where}: expected images [N, H, W], [N, H, W, C], [N, C, H, W] or features "
            f"[N, D], got shape {images.shape}"
        )
    pixels = np.ascontiguousarray(_pixels(images, where))
    return SplitArrays(images=pixels, labels=labels.astype(np.int64))


def dataset_arrays(data: Any, where: str) -> SplitArrays:
    """SplitArrays from ``(images, labels)`` or a torchvision-style dataset (``.data`` and
    ``.targets``, as MNIST and CIFAR have, else ``data[i] = (image, label)`` decoded one by one)."""
    if isinstance(data, tuple) and len(data) == 2:
        return split_arrays(*data, where)
    if hasattr(data, "data") and hasattr(data, "targets"):
        images = data.data.numpy() if hasattr(data.data, "numpy") else data.data
        return split_arrays(images, np.asarray(data.targets), where)
    try:
        pairs = [data[i] for i in range(len(data))]
    except TypeError:
        raise DataError(
            f"{where}: a dataset loader must return (images, labels) or a dataset of "
            f"(image, label) pairs, got {type(data).__name__}"
        ) from None
    images = np.stack([np.asarray(image) for image, _ in pairs]) if pairs else np.empty(0)
    return split_arrays(images, np.array([int(label) for _, label in pairs]), where)


def content_stamp(*splits: SplitArrays) -> str:
    """sha256 (16 hex digits) of the exact samples: pixels, shapes and labels."""
    digest = hashlib.sha256()
    for arrays in splits:
        digest.update(str(arrays.images.shape).encode())
        digest.update(arrays.images.tobytes())
        digest.update(np.ascontiguousarray(arrays.labels, dtype="<i8").tobytes())
    return digest.hexdigest()[:16]


def spec_from_arrays(
    name: str, train: SplitArrays, test: SplitArrays, **overrides: Any
) -> DatasetSpec:
    """A spec described by the data: its shape, classes, sizes and training-split statistics.

    ``overrides`` set DatasetSpec fields (e.g. ``num_classes``, ``flip``, ``translate``); by
    default no flips (not every image is mirror-symmetric in meaning) and no translation on
    feature data (1x1 "images").
    """
    height, width, channels = train.images.shape[1:]
    if test.images.shape[1:] != train.images.shape[1:]:
        raise DataError(
            f"dataset {name}: test samples are {test.images.shape[1:]} but training samples are "
            f"{train.images.shape[1:]}; give both splits one shape"
        )
    pixels = train.images.reshape(-1, channels).astype(np.float64) / 255.0
    std = np.maximum(pixels.std(axis=0), 1e-3)  # a constant channel would divide by 0
    labels = np.concatenate([train.labels, test.labels])
    values = {
        "name": name,
        "num_classes": int(labels.max()) + 1 if labels.size else 1,
        "channels": int(channels),
        "height": int(height),
        "width": int(width),
        "mean": tuple(float(v) for v in pixels.mean(axis=0)),
        "std": tuple(float(v) for v in std),
        "train_size": len(train),
        "test_size": len(test),
        "flip": False,
        "translate": min(4, int(height) // 8),
        "options": (("stamp", content_stamp(train, test)),),
    }
    values.update(overrides)
    return DatasetSpec(**values)


class ArraysDataset:
    """A dataset whose splits come from one read function, read once per process."""

    def __init__(self, name: str, read: Callable[[str], SplitArrays], description: str):
        self.name = name
        self._read = read
        self.description = description
        self._splits: dict[str, SplitArrays] = {}

    def arrays(self, split: str) -> SplitArrays:
        """The split's arrays (read on first use)."""
        split = canonical_split(split)
        if split not in self._splits:
            self._splits[split] = self._read(split)
        return self._splits[split]

    def describe(self, **overrides: Any) -> DatasetSpec:
        """The spec, from both splits."""
        return spec_from_arrays(self.name, *(self.arrays(s) for s in SPLITS), **overrides)

    def locate(self, spec: DatasetSpec, split: str, data_dir: Path | str | None) -> ArraySource:
        """The split as an ArraySource stamped with the data's content digest."""
        arrays = self.arrays(split)
        return ArraySource(
            stamp=str(spec.option("stamp")),
            read=lambda: arrays,
            description=self.description,
        )


def register_arrays_dataset(name: str, load: Loader, **spec_fields: Any) -> None:
    """Register dataset ``name`` whose ``load(split, data_dir)`` returns its data (see module).

    The data is read once per process, when a run first needs the dataset (``data_dir``: the
    run's --data-dir, default ./prunebench-data); ``spec_fields`` override derived spec fields.
    """
    from prunebench.datasets.download import resolve_data_dir

    def read(split: str) -> SplitArrays:
        where = f"dataset {name} ({split})"
        return dataset_arrays(load(split, resolve_data_dir(None)), where)

    dataset = ArraysDataset(name, read, f"dataset {name} (plugin)")
    register_described_dataset(name, lambda: dataset.describe(**spec_fields), dataset.locate)
