"""Helpers for the datasets tests: small files in each dataset's own on-disk format."""

from __future__ import annotations

import gzip
import pickle
from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from prunebench.datasets import DatasetSpec, PlanLoader


def require_ffcv() -> None:
    """Skip (printing why) only where FFCV cannot be imported; elsewhere the FFCV tests must run."""
    pytest.importorskip(
        "ffcv",
        reason="FFCV is not importable (install libopencv-dev, libturbojpeg0-dev, then ffcv)",
    )


def random_images(n: int, height: int, width: int, channels: int, seed: int) -> np.ndarray:
    """Uniform random uint8 images [n, H, W, C] (every pixel value likely, so mixups show)."""
    return np.random.default_rng(seed).integers(
        0, 256, (n, height, width, channels), dtype=np.uint8
    )


def write_cifar10(root: Path, per_batch: int, test: int, seed: int = 0) -> dict[str, tuple]:
    """cifar-10-batches-py with 5 train batches and a test batch; returns expected arrays."""
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    expected = {}
    rng = np.random.default_rng(seed)
    batches = [f"data_batch_{i}" for i in range(1, 6)]
    for name, count in [*((b, per_batch) for b in batches), ("test_batch", test)]:
        images = random_images(count, 32, 32, 3, int(rng.integers(1 << 30)))
        labels = rng.integers(0, 10, count)
        payload = {
            b"batch_label": name.encode(),
            b"labels": [int(label) for label in labels],
            # CIFAR rows are channel-major: 1024 red, 1024 green, 1024 blue values.
            b"data": images.transpose(0, 3, 1, 2).reshape(count, 3072),
            b"filenames": [f"img{i}.png".encode() for i in range(count)],
        }
        with (folder / name).open("wb") as handle:
            pickle.dump(payload, handle, protocol=2)
        expected[name] = (images, labels)
    train = tuple(np.concatenate([expected[b][k] for b in batches]) for k in (0, 1))
    return {"train": train, "test": expected["test_batch"]}


def write_cifar100(root: Path, train: int, test: int, seed: int = 0) -> dict[str, tuple]:
    """cifar-100-python: train and test files (fine and coarse labels); returns expected arrays."""
    folder = root / "cifar-100-python"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(seed)
    expected = {}
    for name, count in (("train", train), ("test", test)):
        images = random_images(count, 32, 32, 3, int(rng.integers(1 << 30)))
        fine = rng.integers(0, 100, count)
        payload = {
            b"filenames": [f"img{i}.png".encode() for i in range(count)],
            b"fine_labels": [int(label) for label in fine],
            b"coarse_labels": [int(label) // 5 for label in fine],
            b"data": images.transpose(0, 3, 1, 2).reshape(count, 3072),
        }
        with (folder / name).open("wb") as handle:
            pickle.dump(payload, handle, protocol=2)
        expected[name] = (images, fine)
    return expected


def write_idx(path: Path, array: np.ndarray) -> None:
    """An unsigned-byte IDX file (gzipped when the name ends in .gz)."""
    header = bytes([0, 0, 0x08, array.ndim]) + np.asarray(array.shape, dtype=">u4").tobytes()
    data = header + np.ascontiguousarray(array, dtype=np.uint8).tobytes()
    if path.suffix == ".gz":
        data = gzip.compress(data)
    path.write_bytes(data)


def write_image_folder(root: Path, counts: dict[str, int], seed: int) -> list[tuple[Path, int]]:
    """<root>/<class>/*.JPEG of assorted sizes; returns (path, label) sorted like ImageFolder."""
    rng = np.random.default_rng(seed)
    classes = sorted(counts)
    written = []
    for label, name in enumerate(classes):
        (root / name).mkdir(parents=True, exist_ok=True)
        for i in range(counts[name]):
            height, width = (int(v) for v in rng.integers(24, 64, 2))
            # Smooth gradients with a class-specific tint: JPEG keeps them close to the original.
            ys, xs = np.mgrid[0:height, 0:width]
            pixels = np.stack(
                [xs * 255 // width, ys * 255 // height, np.full_like(xs, 40 * label)], -1
            )
            path = root / name / f"img_{i:03d}.JPEG"
            Image.fromarray(pixels.astype(np.uint8)).save(path, quality=95)
            written.append((path, label))
    return written


def collect(loader: PlanLoader) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[int]]:
    """One pass: concatenated (images, labels, indices) on the CPU and every batch's size."""
    images, labels, indices, sizes = [], [], [], []
    for batch_images, batch_labels, batch_indices in loader:
        images.append(batch_images.cpu())
        labels.append(batch_labels.cpu())
        indices.append(batch_indices.cpu())
        sizes.append(len(batch_indices))
    if not sizes:
        empty = torch.empty(0, dtype=torch.int64)
        return torch.empty(0), empty, empty, sizes
    return torch.cat(images), torch.cat(labels), torch.cat(indices), sizes


def to_pixels(images: torch.Tensor, spec: DatasetSpec) -> torch.Tensor:
    """Undo the normalization: float NCHW -> uint8 NHWC (rounding; exact for unaltered pixels)."""
    mean = torch.tensor(spec.mean).view(1, -1, 1, 1) * 255
    std = torch.tensor(spec.std).view(1, -1, 1, 1) * 255
    return (images.double() * std + mean).round().clamp(0, 255).to(torch.uint8).permute(0, 2, 3, 1)
