"""CIFAR-10/100 from the python pickle batches (torchvision's layout), downloaded if missing."""

from __future__ import annotations

import pickle
from pathlib import Path

import numpy as np
import torchvision

from prunebench.datasets.arrays import SplitArrays
from prunebench.datasets.download import fetch_and_extract, files_stamp, resolve_data_dir
from prunebench.datasets.registry import register_dataset
from prunebench.datasets.sources import ArraySource
from prunebench.datasets.specs import DatasetSpec, canonical_split
from prunebench.errors import DataError

# Folder, file names and download coordinates come from torchvision, so an existing torchvision
# root works as a prunebench data directory and the other way round.
_TORCHVISION = {"cifar10": torchvision.datasets.CIFAR10, "cifar100": torchvision.datasets.CIFAR100}
_LABEL_KEY = {"cifar10": b"labels", "cifar100": b"fine_labels"}

CIFAR10 = DatasetSpec(
    name="cifar10",
    num_classes=10,
    channels=3,
    height=32,
    width=32,
    mean=(0.4914, 0.4822, 0.4465),
    std=(0.2470, 0.2435, 0.2616),
    train_size=50_000,
    test_size=10_000,
)

CIFAR100 = DatasetSpec(
    name="cifar100",
    num_classes=100,
    channels=3,
    height=32,
    width=32,
    mean=(0.5071, 0.4865, 0.4409),
    std=(0.2673, 0.2564, 0.2762),
    train_size=50_000,
    test_size=10_000,
)


def _split_files(name: str, split: str) -> list[str]:
    dataset = _TORCHVISION[name]
    listing = dataset.train_list if split == "train" else dataset.test_list
    return [filename for filename, _md5 in listing]


def read_cifar_batches(paths: list[Path], label_key: bytes) -> SplitArrays:
    """Concatenate CIFAR pickle batches (dict with b'data' [N, 3072] uint8 and labels) in order."""
    images, labels = [], []
    for path in paths:
        try:
            with path.open("rb") as handle:
                batch = pickle.load(handle, encoding="bytes")
            data = np.asarray(batch[b"data"], dtype=np.uint8)
            images.append(data.reshape(-1, 3, 32, 32).transpose(0, 2, 3, 1))
            labels.append(np.asarray(batch[label_key], dtype=np.int64))
        except (OSError, EOFError, KeyError, ValueError, pickle.UnpicklingError) as error:
            raise DataError(
                f"{path} is not a readable CIFAR batch ({type(error).__name__}: {error}); "
                "delete the folder to download it again, or point --data-dir at an intact copy"
            ) from None
    return SplitArrays(
        images=np.ascontiguousarray(np.concatenate(images)), labels=np.concatenate(labels)
    )


def locate_cifar(
    spec: DatasetSpec, split: str, data_dir: Path | str | None, *, url: str | None = None
) -> ArraySource:
    """The CIFAR split in `data_dir` (torchvision layout), downloading it there if it is absent."""
    split = canonical_split(split)
    dataset = _TORCHVISION[spec.name]
    root = resolve_data_dir(data_dir)
    folder = root / dataset.base_folder
    paths = [folder / filename for filename in _split_files(spec.name, split)]
    if not all(path.is_file() for path in paths):
        fetch_and_extract(
            url or dataset.url,
            root,
            dataset.filename,
            dataset.tgz_md5 if url is None else None,
            dataset.base_folder,
            what=f"{spec.name} ({dataset.base_folder}/)",
            looked_in=str(root),
        )
        missing = [path.name for path in paths if not path.is_file()]
        if missing:
            raise DataError(
                f"{folder} lacks {', '.join(missing)}; delete it and rerun to download it again"
            )
    return ArraySource(
        stamp=files_stamp(paths),
        read=lambda: read_cifar_batches(paths, _LABEL_KEY[spec.name]),
        description=str(folder),
    )


register_dataset(CIFAR10, locate_cifar)
register_dataset(CIFAR100, locate_cifar)
