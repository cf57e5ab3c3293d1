"""Fashion-MNIST from the four standard IDX files (gzipped or not), found locally or downloaded."""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import torchvision

from prunebench.datasets.arrays import SplitArrays
from prunebench.datasets.download import fetch_file, files_stamp, resolve_data_dir
from prunebench.datasets.registry import register_dataset
from prunebench.datasets.sources import ArraySource
from prunebench.datasets.specs import DatasetSpec, canonical_split
from prunebench.errors import DataError

SYSTEM_DIR = Path("/usr/share/datasets/fashion-mnist")  # Debian's dataset-fashion-mnist package
_SUBDIRS = ("", "fashion-mnist", "FashionMNIST/raw")  # flat, prunebench's download, torchvision's
_PREFIX = {"train": "train", "test": "t10k"}
_IDX_DTYPES = {0x08: np.uint8}

FASHION_MNIST = DatasetSpec(
    name="fashion_mnist",
    num_classes=10,
    channels=1,
    height=28,
    width=28,
    mean=(0.2860,),
    std=(0.3530,),
    train_size=60_000,
    test_size=10_000,
    translate=2,
)


def read_idx(path: Path) -> np.ndarray:
    """Parse one IDX file (magic: two zero bytes, dtype code, ndim; big-endian uint32 dims)."""
    opener = gzip.open if path.suffix == ".gz" else open
    try:
        with opener(path, "rb") as handle:
            raw = handle.read()
    except (OSError, EOFError) as error:
        raise DataError(
            f"{path} cannot be read ({error}); replace it with an intact copy"
        ) from None
    if len(raw) < 4 or raw[0] != 0 or raw[1] != 0 or raw[2] not in _IDX_DTYPES:
        raise DataError(f"{path} is not an unsigned-byte IDX file; replace it with an intact copy")
    ndim = raw[3]
    dims = np.frombuffer(raw, dtype=">u4", count=ndim, offset=4).astype(np.int64)
    offset = 4 + 4 * ndim
    expected = int(np.prod(dims))
    if len(raw) - offset != expected:
        raise DataError(
            f"{path} holds {len(raw) - offset} bytes of data but its header promises {expected}; "
            "replace it with an intact copy"
        )
    # bytearray: a writable buffer, so torch can wrap the array without a warning.
    return np.frombuffer(bytearray(raw), dtype=np.uint8, offset=offset).reshape(tuple(dims))


def _split_paths(folder: Path, split: str) -> tuple[Path, Path] | None:
    """(images, labels) files of `split` in `folder`, gzipped or not; None if either is missing."""
    found = []
    for kind, rank in (("images", 3), ("labels", 1)):
        stem = f"{_PREFIX[split]}-{kind}-idx{rank}-ubyte"
        candidates = [folder / f"{stem}.gz", folder / stem]
        existing = [path for path in candidates if path.is_file()]
        if not existing:
            return None
        found.append(existing[0])
    return found[0], found[1]


def read_fashion_mnist(images_path: Path, labels_path: Path) -> SplitArrays:
    """Images [N, 28, 28, 1] and labels [N] from a pair of IDX files."""
    images = read_idx(images_path)
    labels = read_idx(labels_path)
    if images.ndim != 3 or labels.ndim != 1 or len(images) != len(labels):
        raise DataError(
            f"{images_path} ({images.shape}) and {labels_path} ({labels.shape}) do not form one "
            "split; replace them with the standard Fashion-MNIST files"
        )
    return SplitArrays(
        images=np.ascontiguousarray(images[..., None]), labels=labels.astype(np.int64)
    )


def search_dirs(data_dir: Path | str | None) -> list[Path]:
    """Folders searched, in order: the data directory (and its usual subfolders), then Debian's."""
    root = resolve_data_dir(data_dir)
    return [root / sub if sub else root for sub in _SUBDIRS] + [SYSTEM_DIR]


def locate_fashion_mnist(
    spec: DatasetSpec, split: str, data_dir: Path | str | None, *, mirror: str | None = None
) -> ArraySource:
    """The split's IDX files from the first folder holding both, else downloaded to the data dir."""
    split = canonical_split(split)
    folders = search_dirs(data_dir)
    for folder in folders:
        paths = _split_paths(folder, split)
        if paths is not None:
            break
    else:
        target = resolve_data_dir(data_dir) / "fashion-mnist"
        base = mirror or torchvision.datasets.FashionMNIST.mirrors[0]
        looked_in = ", ".join(str(folder) for folder in folders)
        for filename, md5 in torchvision.datasets.FashionMNIST.resources:
            if filename.startswith(_PREFIX[split]):
                fetch_file(
                    base + filename,
                    target,
                    filename,
                    md5 if mirror is None else None,
                    what=f"Fashion-MNIST {split} ({filename})",
                    looked_in=looked_in,
                )
        paths = _split_paths(target, split)
        assert paths is not None  # both files were just downloaded
    images_path, labels_path = paths
    return ArraySource(
        stamp=files_stamp(paths),
        read=lambda: read_fashion_mnist(images_path, labels_path),
        description=str(images_path.parent),
    )


register_dataset(FASHION_MNIST, locate_fashion_mnist)
