"""Seeded synthetic image data: class prototypes blended with a rival class, plus noise.

For tests and quick checks only, never presented as real results. Every sample is
``(1 - a) * P[y] + a * P[rival] + noise`` where the prototypes ``P`` are smooth random patterns and
the blend ``a ~ 0.9 * Beta(2, 5)`` makes a minority of samples ambiguous; a small fraction of
labels is replaced by a random class. So a small CNN learns it within an epoch or two, yet samples
differ in difficulty (which is what tells pruners apart). The test split has the same distribution.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F

from prunebench.datasets.arrays import SplitArrays
from prunebench.datasets.registry import register_dataset
from prunebench.datasets.sources import ArraySource
from prunebench.datasets.specs import DatasetSpec, canonical_split
from prunebench.errors import ConfigError

_CHUNK = 4096  # samples generated per step (bounds memory; fixed so the data never depends on it)
_PIXEL_SCALE = 50.0  # one unit of signal in uint8 pixel steps around mid-grey
_STREAMS = {"prototypes": 0, "train": 1, "test": 2}
# The blend a = 0.9 * Beta(2, 5), with its mean and mean square (Beta moments).
_BLEND_MAX, _BLEND_ALPHA, _BLEND_BETA = 0.9, 2.0, 5.0
_BLEND_MEAN = _BLEND_MAX * _BLEND_ALPHA / (_BLEND_ALPHA + _BLEND_BETA)
_BLEND_SQUARE_MEAN = (
    _BLEND_MAX**2
    * _BLEND_ALPHA
    * (_BLEND_ALPHA + 1)
    / ((_BLEND_ALPHA + _BLEND_BETA) * (_BLEND_ALPHA + _BLEND_BETA + 1))
)


def synthetic_spec(
    *,
    num_classes: int = 10,
    channels: int = 3,
    height: int = 32,
    width: int = 32,
    train_size: int = 10_000,
    test_size: int = 2_000,
    seed: int = 0,
    noise: float = 1.0,
    label_noise: float = 0.02,
) -> DatasetSpec:
    """A synthetic dataset of any size and shape; `seed` fixes the data (not the training run)."""
    checks = {
        "num_classes >= 2": num_classes >= 2,
        "channels >= 1": channels >= 1,
        "height >= 4 and width >= 4": min(height, width) >= 4,
        "train_size >= 1 and test_size >= 1": min(train_size, test_size) >= 1,
        "noise >= 0": noise >= 0,
        "0 <= label_noise < 1": 0 <= label_noise < 1,
    }
    failed = [rule for rule, ok in checks.items() if not ok]
    if failed:
        raise ConfigError(f"invalid synthetic dataset: need {', '.join(failed)}")
    # Pixels are 128 + scale * signal with scale = 50 / sqrt(1 + noise^2); the blend of two
    # independent unit-variance prototypes has variance E[(1 - a)^2 + a^2], plus noise^2.
    blend_variance = 1 - 2 * _BLEND_MEAN + 2 * _BLEND_SQUARE_MEAN
    std = _PIXEL_SCALE / 255.0 * np.sqrt((blend_variance + noise**2) / (1 + noise**2))
    return DatasetSpec(
        name="synthetic",
        num_classes=num_classes,
        channels=channels,
        height=height,
        width=width,
        mean=(128 / 255,) * channels,
        std=(float(std),) * channels,
        train_size=train_size,
        test_size=test_size,
        flip=False,  # prototypes are not mirror-symmetric: a flip would change the class evidence
        translate=2,
        options=(("seed", seed), ("noise", noise), ("label_noise", label_noise)),
    )


SYNTHETIC = synthetic_spec()


def _prototypes(spec: DatasetSpec, rng: np.random.Generator) -> np.ndarray:
    """One smooth unit-variance pattern per class, float32 [K, C, H, W]."""
    coarse = rng.standard_normal((spec.num_classes, spec.channels, 4, 4)).astype(np.float32)
    smooth = F.interpolate(
        torch.from_numpy(coarse),
        size=(spec.height, spec.width),
        mode="bicubic",
        align_corners=False,
    ).numpy()
    flat = smooth.reshape(spec.num_classes, -1)
    flat = (flat - flat.mean(axis=1, keepdims=True)) / flat.std(axis=1, keepdims=True)
    return flat.reshape(smooth.shape)


def generate_synthetic(spec: DatasetSpec, split: str) -> SplitArrays:
    """The `split` of synthetic dataset `spec`: a pure function of the spec (its seed included)."""
    split = canonical_split(split)
    seed = int(spec.option("seed", 0))
    noise = float(spec.option("noise", 1.0))
    label_noise = float(spec.option("label_noise", 0.0))
    num_classes = spec.num_classes
    prototypes = _prototypes(spec, np.random.default_rng([seed, _STREAMS["prototypes"]]))
    rng = np.random.default_rng([seed, _STREAMS[split]])
    n = spec.split_size(split)

    # Balanced classes in random order.
    labels = rng.permutation(np.arange(n) % num_classes)
    images = np.empty((n, spec.height, spec.width, spec.channels), dtype=np.uint8)
    scale = _PIXEL_SCALE / np.sqrt(1.0 + noise**2)
    for start in range(0, n, _CHUNK):
        y = labels[start : start + _CHUNK]
        m = len(y)
        rival = (y + rng.integers(1, num_classes, m)) % num_classes
        blend = (_BLEND_MAX * rng.beta(_BLEND_ALPHA, _BLEND_BETA, m)).astype(np.float32)[
            :, None, None, None
        ]
        signal = (1 - blend) * prototypes[y] + blend * prototypes[rival]
        signal += noise * rng.standard_normal(signal.shape, dtype=np.float32)
        pixels = np.clip(np.rint(128.0 + scale * signal), 0, 255).astype(np.uint8)
        images[start : start + m] = pixels.transpose(0, 2, 3, 1)

    noisy = rng.random(n) < label_noise
    labels = np.where(noisy, rng.integers(0, num_classes, n), labels)
    return SplitArrays(images=images, labels=labels.astype(np.int64))


def locate_synthetic(spec: DatasetSpec, split: str, data_dir: Path | str | None) -> ArraySource:
    """The split, generated on read: no files, the spec's fingerprint is its stamp."""
    # The spec (its seed included) fully determines the data, so its fingerprint is the stamp.
    del data_dir
    return ArraySource(
        stamp=spec.fingerprint(),
        read=lambda: generate_synthetic(spec, split),
        description=f"synthetic (seed {spec.option('seed')})",
    )


register_dataset(SYNTHETIC, locate_synthetic)
