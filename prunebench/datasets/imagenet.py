"""ImageNet, or any ImageFolder-style dataset: <root>/train/<class>/* and <root>/val/<class>/*."""

from __future__ import annotations

import hashlib
from pathlib import Path

from PIL import Image
from torchvision.datasets.folder import IMG_EXTENSIONS, find_classes, make_dataset

from prunebench.datasets.download import resolve_data_dir
from prunebench.datasets.registry import register_dataset
from prunebench.datasets.sources import ImageFolderSource
from prunebench.datasets.specs import DatasetSpec, canonical_split
from prunebench.errors import DataError

_FOLDERS = {"train": "train", "test": "val"}

IMAGENET = DatasetSpec(
    name="imagenet",
    num_classes=1000,
    channels=3,
    height=224,
    width=224,
    mean=(0.485, 0.456, 0.406),
    std=(0.229, 0.224, 0.225),
    train_size=1_281_167,
    test_size=50_000,
    translate=0,  # random-resized-crop replaces translation
    encoding="jpeg",
    options=(("max_resolution", 256), ("jpeg_quality", 90), ("val_crop_ratio", 224 / 256)),
)


def _root(data_dir: Path | str | None) -> Path:
    base = resolve_data_dir(data_dir)
    candidates = [base / "imagenet", base]
    for root in candidates:
        if (root / "train").is_dir() and (root / "val").is_dir():
            return root
    looked = " and ".join(str(root) for root in candidates)
    raise DataError(
        f"ImageNet was not found: neither {looked} holds train/ and val/ class folders "
        "(ImageFolder layout, val sorted into class folders); pass its folder with --data-dir"
    )


def _folder_stamp(folder: Path, classes: list[str]) -> str:
    """Class folder names and mtimes: adding or removing images changes a folder's mtime."""
    digest = hashlib.sha256()
    for name in classes:
        digest.update(f"{name}:{(folder / name).stat().st_mtime_ns};".encode())
    return digest.hexdigest()[:10]


def locate_imagenet(
    spec: DatasetSpec, split: str, data_dir: Path | str | None
) -> ImageFolderSource:
    """The split's class folders; labels follow the sorted train classes for both splits."""
    split = canonical_split(split)
    root = _root(data_dir)
    train_classes, _ = find_classes(root / "train")
    folder = root / _FOLDERS[split]
    if split == "test":
        val_classes, _ = find_classes(folder)
        unknown = sorted(set(val_classes) - set(train_classes))
        if unknown:
            raise DataError(
                f"{folder} has class folders that train/ lacks ({', '.join(unknown[:3])}...); "
                "sort val/ into the train class folders"
            )
    present = [name for name in train_classes if (folder / name).is_dir()]
    return ImageFolderSource(
        root=folder, classes=tuple(train_classes), stamp=_folder_stamp(folder, present)
    )


class ImageFolderSamples:
    """Indexable (PIL RGB image, label, index) samples of an ImageFolderSource, for the FFCV writer.

    FFCV's writer waits forever if a worker process dies, so an unreadable image does not raise
    here: it is logged to `error_log` (appends are atomic across the forked workers) and replaced
    by a placeholder; the caller raises after the write and discards the file.
    """

    def __init__(self, source: ImageFolderSource, error_log: Path) -> None:
        class_to_idx = {name: i for i, name in enumerate(source.classes)}
        self.samples = make_dataset(
            source.root, class_to_idx, extensions=IMG_EXTENSIONS, allow_empty=True
        )
        if not self.samples:
            raise DataError(
                f"{source.root} holds no images; check the folder passed with --data-dir"
            )
        self.error_log = error_log

    def __len__(self) -> int:
        return len(self.samples)

    def __getitem__(self, index: int) -> tuple[Image.Image, int, int]:
        path, label = self.samples[index]
        try:
            with Image.open(path) as image:
                return image.convert("RGB"), label, index
        except (OSError, ValueError) as error:
            message = str(error).replace("\n", " ")
            with self.error_log.open("a") as log:
                log.write(f"{path}: {message}\n")
            return Image.new("RGB", (8, 8)), label, index

    def raise_errors(self) -> None:
        """DataError naming the unreadable images, if the write met any."""
        if not self.error_log.exists():
            return
        lines = self.error_log.read_text().splitlines()
        if lines:
            raise DataError(
                f"{len(lines)} image(s) could not be read, first {lines[0]}; "
                "repair or remove them and rerun"
            )


register_dataset(IMAGENET, locate_imagenet)
