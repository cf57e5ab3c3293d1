"""A split held as arrays, and the stratified seeded training subset."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from prunebench.errors import ConfigError, DataError


@dataclass(frozen=True)
class SplitArrays:
    """One split in memory: uint8 images [N, H, W, C] and int64 labels [N]."""

    images: np.ndarray
    labels: np.ndarray

    def __post_init__(self) -> None:
        if self.images.dtype != np.uint8 or self.images.ndim != 4:
            raise ValueError(
                f"images must be uint8 [N, H, W, C], got {self.images.dtype} {self.images.shape}"
            )
        if self.labels.shape != (len(self.images),):
            raise ValueError(f"labels must be [N={len(self.images)}], got {self.labels.shape}")

    def __len__(self) -> int:
        return len(self.labels)

    def check_shape(self, height: int, width: int, channels: int, where: str, name: str) -> None:
        """DataError if the images are not height x width x channels (a wrong --data-dir)."""
        shape = self.images.shape[1:]
        if shape != (height, width, channels):
            raise DataError(
                f"images in {where} are {shape[0]}x{shape[1]}x{shape[2]}, but {name} expects "
                f"{height}x{width}x{channels}; point --data-dir at the right dataset"
            )


def stratified_subset(labels: np.ndarray, size: int, seed: int) -> np.ndarray:
    """Sorted indices of `size` samples keeping each class's share (largest remainder), seeded."""
    n = len(labels)
    if not 1 <= size <= n:
        raise ConfigError(f"subset={size} is out of range; choose a value between 1 and {n}")
    classes, counts = np.unique(labels, return_counts=True)
    exact = counts * (size / n)
    quota = np.floor(exact).astype(np.int64)
    # Hand the remaining slots to the classes with the largest fractional parts (ties: lower class).
    remainder = size - int(quota.sum())
    order = np.lexsort((classes, -(exact - quota)))
    quota[order[:remainder]] += 1

    rng = np.random.default_rng([seed, 0x5B5E7])
    shuffled = rng.permutation(n)
    by_class = shuffled[np.argsort(labels[shuffled], kind="stable")]
    # Rank of each sample within its class in the shuffled order: keep the first `quota` of each.
    class_pos = np.searchsorted(classes, labels[by_class])
    starts = np.concatenate(([0], np.cumsum(counts)[:-1]))
    rank = np.arange(n) - starts[class_pos]
    keep = by_class[rank < quota[class_pos]]
    return np.sort(keep)
