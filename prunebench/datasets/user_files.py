"""Your own data without code: ``--dataset npz:PATH`` and ``--dataset folder:PATH[@SIZE]``.

- ``npz:PATH``: one ``.npz`` file holding x_train, y_train, x_test, y_test (images [N, H, W],
  [N, H, W, C] or [N, C, H, W], or flat features [N, D]; see generic.py for the value rules).
- ``folder:PATH``: torchvision's ImageFolder layout, PATH/train/<class>/<image> and
  PATH/test/<class>/<image> (or val/ for test/). Every image is decoded to RGB and resized to
  SIZE x SIZE pixels (default 32; ``folder:PATH@64`` for 64), once: the decoded arrays are kept
  in ./prunebench-data/decoded/ (keyed by the files' names, sizes and times, and the size), and
  the FFCV loader writes its .beton from them once, like any array dataset. Labels follow the
  sorted class folder names of train/.

Both are described by their data (classes, shape, statistics) and stamped with the digest of
the exact decoded samples, which the MLflow dataset inputs carry.
"""

from __future__ import annotations

import os
import tempfile
from pathlib import Path

import numpy as np

from prunebench.datasets.arrays import SplitArrays
from prunebench.datasets.download import files_stamp, resolve_data_dir
from prunebench.datasets.generic import ArraysDataset, split_arrays
from prunebench.datasets.registry import DatasetEntry, register_dataset_family
from prunebench.errors import DataError

NPZ_KEYS = ("x_train", "y_train", "x_test", "y_test")
DEFAULT_IMAGE_SIZE = 32
IMAGE_SUFFIXES = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp", ".tif", ".tiff", ".ppm"}
TEST_FOLDERS = ("test", "val")


# ---------------------------------------------------------------------------------- npz
def _npz_entry(argument: str) -> DatasetEntry:
    path = Path(argument).expanduser().resolve()
    name = f"npz:{argument}"
    if not path.is_file():
        raise DataError(f"dataset {name}: no file {path}; pass the path of an .npz file")
    try:
        with np.load(path, allow_pickle=False) as archive:
            present = set(archive.files)
    except (OSError, ValueError) as error:
        raise DataError(f"dataset {name}: {path} is not a readable .npz file ({error})") from None
    missing = [key for key in NPZ_KEYS if key not in present]
    if missing:
        raise DataError(
            f"dataset {name}: {path} lacks {', '.join(missing)}; save the arrays "
            f"{', '.join(NPZ_KEYS)} (numpy.savez)"
        )

    def read(split: str) -> SplitArrays:
        with np.load(path, allow_pickle=False) as archive:
            return split_arrays(archive[f"x_{split}"], archive[f"y_{split}"], f"{path} ({split})")

    dataset = ArraysDataset(name, read, str(path))
    return DatasetEntry(dataset.describe, dataset.locate)


# ---------------------------------------------------------------------------------- folder
def _class_images(root: Path, name: str) -> dict[str, list[Path]]:
    """Class folder name -> its image files (sorted); DataError naming what is missing."""
    classes = sorted(entry for entry in root.iterdir() if entry.is_dir())
    if not classes:
        raise DataError(
            f"dataset {name}: {root} has no class folders; put images in {root}/<class>/"
        )
    found = {
        folder.name: sorted(p for p in folder.iterdir() if p.suffix.lower() in IMAGE_SUFFIXES)
        for folder in classes
    }
    empty = [label for label, files in found.items() if not files]
    if empty:
        raise DataError(
            f"dataset {name}: {root}/{empty[0]} holds no images "
            f"({', '.join(sorted(IMAGE_SUFFIXES))})"
        )
    return found


def _decode(files: dict[str, list[Path]], classes: list[str], size: int) -> SplitArrays:
    from PIL import Image

    images, labels = [], []
    for label, paths in files.items():
        for path in paths:
            try:
                with Image.open(path) as image:
                    rgb = image.convert("RGB").resize((size, size), Image.Resampling.BILINEAR)
                    images.append(np.asarray(rgb, dtype=np.uint8))
            except OSError as error:
                raise DataError(
                    f"{path} cannot be decoded ({error}); replace or remove it"
                ) from None
            labels.append(classes.index(label))
    return SplitArrays(images=np.stack(images), labels=np.array(labels, dtype=np.int64))


def _save_atomically(path: Path, arrays: SplitArrays) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, suffix=".npz.tmp")
    try:
        with os.fdopen(handle, "wb") as out:
            np.savez(out, images=arrays.images, labels=arrays.labels)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def _folder_entry(argument: str) -> DatasetEntry:
    text, at, size_text = argument.rpartition("@")
    if not (at and size_text.isdigit()):
        text, size_text = argument, str(DEFAULT_IMAGE_SIZE)
    size, root = int(size_text), Path(text).expanduser().resolve()
    name = f"folder:{argument}"
    if size < 8:
        raise DataError(f"dataset {name}: image size {size} is too small; use at least 8")
    if not root.is_dir():
        raise DataError(f"dataset {name}: no folder {root}; pass an ImageFolder tree")
    if not (root / "train").is_dir():
        raise DataError(
            f"dataset {name}: {root} has no train/ folder; put images in train/<class>/"
        )
    test = next((root / f for f in TEST_FOLDERS if (root / f).is_dir()), None)
    if test is None:
        raise DataError(
            f"dataset {name}: {root} has no test/ (or val/) folder; put held-out images in "
            "test/<class>/"
        )
    splits = {"train": _class_images(root / "train", name), "test": _class_images(test, name)}
    classes = list(splits["train"])
    unknown = sorted(set(splits["test"]) - set(classes))
    if unknown:
        raise DataError(
            f"dataset {name}: {test}/{unknown[0]} is a class train/ does not have; add it to train/"
        )

    def read(split: str) -> SplitArrays:
        files = splits[split]
        stamp = files_stamp([p for paths in files.values() for p in paths])
        cache = resolve_data_dir(None) / "decoded" / f"{root.name}-{split}-{size}-{stamp}.npz"
        if cache.is_file():
            with np.load(cache) as stored:
                return SplitArrays(images=stored["images"], labels=stored["labels"])
        arrays = _decode(files, classes, size)
        _save_atomically(cache, arrays)
        return arrays

    dataset = ArraysDataset(name, read, str(root))
    translate = max(1, size // 8)  # 4 pixels at 32, as CIFAR
    return DatasetEntry(lambda: dataset.describe(flip=True, translate=translate), dataset.locate)


register_dataset_family("npz", _npz_entry, "npz:PATH")
register_dataset_family("folder", _folder_entry, "folder:PATH[@SIZE]")
