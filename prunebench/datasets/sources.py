"""What a located split is: arrays to read into memory, or a folder of JPEGs (ImageNet)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from prunebench.datasets.arrays import SplitArrays


@dataclass(frozen=True)
class ArraySource:
    """A split small enough to hold as uint8 arrays; `stamp` identifies the files it reads."""

    stamp: str
    read: Callable[[], SplitArrays]
    description: str


@dataclass(frozen=True)
class ImageFolderSource:
    """A split stored as <root>/<class>/<image>; labels follow `classes` (the train classes)."""

    root: Path
    classes: tuple[str, ...]
    stamp: str

    @property
    def description(self) -> str:
        """Where the images are read from."""
        return str(self.root)


Source = ArraySource | ImageFolderSource
