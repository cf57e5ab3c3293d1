"""What a dataset is (classes, image shape, normalization, split sizes), apart from its files."""

from __future__ import annotations

import hashlib
import json
from dataclasses import asdict, dataclass, field

SPLITS = ("train", "test")
# ImageNet calls its held-out split "val"; prunebench evaluates on it as the test split.
SPLIT_ALIASES = {"val": "test", "validation": "test"}


@dataclass(frozen=True)
class DatasetSpec:
    """Static facts about a dataset; `options` holds source parameters (e.g. the synthetic seed)."""

    name: str
    num_classes: int
    channels: int
    height: int
    width: int
    mean: tuple[float, ...]  # per channel, pixel values scaled to [0, 1]
    std: tuple[float, ...]
    train_size: int
    test_size: int
    flip: bool = True  # horizontal flip is label-preserving for this data
    translate: int = 4  # training augmentation shifts images by up to this many pixels
    # "raw": uint8 arrays that fit in memory (both backends); "jpeg": an image folder (FFCV only).
    encoding: str = "raw"
    options: tuple[tuple[str, object], ...] = field(default_factory=tuple)

    def __post_init__(self) -> None:
        if len(self.mean) != self.channels or len(self.std) != self.channels:
            raise ValueError(f"{self.name}: mean/std need one value per channel ({self.channels})")

    @property
    def image_shape(self) -> tuple[int, int, int]:
        """(channels, height, width) of one image as the loaders return it."""
        return (self.channels, self.height, self.width)

    def split_size(self, split: str) -> int:
        """Number of samples in `split` ("train" or "test")."""
        return self.train_size if canonical_split(split) == "train" else self.test_size

    def option(self, key: str, default: object = None) -> object:
        """The source option `key` (see `options`), or `default`."""
        return dict(self.options).get(key, default)

    def fingerprint(self) -> str:
        """Short stable hash of every field: cache files built for another spec never match."""
        text = json.dumps(asdict(self), sort_keys=True, default=str)
        return hashlib.sha256(text.encode()).hexdigest()[:10]


def canonical_split(split: str) -> str:
    """ "train" or "test" ("val" is accepted for the test split); ValueError otherwise."""
    name = SPLIT_ALIASES.get(split, split)
    if name not in SPLITS:
        raise ValueError(f"unknown split {split!r}; use 'train' or 'test'")
    return name
