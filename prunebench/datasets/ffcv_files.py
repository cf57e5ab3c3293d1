"""Writing a split to a .beton once (atomically) and validating it whenever it is opened.

Each .beton has a checksum file beside it (``<name>.beton.sha256``, ``sha256sum -c`` format),
written before the .beton is renamed into place and verified the first time a process opens the
file, so bytes damaged in place (same size) are found, not trained on.

Every .beton holds three fields: `image` (raw uint8 HWC array, or JPEG for image folders), `label`
and `index` (the sample's position in the split, so batches can report which samples they hold).
"""

from __future__ import annotations

import contextlib
import hashlib
import io
import json
import logging
import os
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from ffcv.fields import IntField, NDArrayField, RGBImageField
from ffcv.reader import Reader
from ffcv.types import HeaderType
from ffcv.writer import DatasetWriter

from prunebench.datasets.arrays import SplitArrays
from prunebench.datasets.download import resolve_data_dir
from prunebench.datasets.imagenet import ImageFolderSamples
from prunebench.datasets.sources import ArraySource, ImageFolderSource, Source
from prunebench.datasets.specs import DatasetSpec
from prunebench.errors import DataError
from prunebench.stores import exclusive_lock

log = logging.getLogger(__name__)

# Bump when the layout of the written files changes: old caches then simply stop matching.
FORMAT_VERSION = "pb1"
FIELD_NAMES = ("image", "label", "index")


def beton_path(spec: DatasetSpec, split: str, source: Source, data_dir: Path | str | None) -> Path:
    """Cache file of this split: its name changes with the format, the spec and the source."""
    identity = {
        "format": FORMAT_VERSION,
        "name": spec.name,
        "encoding": spec.encoding,
        "channels": spec.channels,
        "options": spec.options,
        "stamp": source.stamp,
    }
    if spec.encoding == "raw":  # a JPEG file serves any decode resolution
        identity["shape"] = (spec.height, spec.width)
    text = json.dumps(identity, sort_keys=True, default=str)
    key = hashlib.sha256(text.encode()).hexdigest()[:12]
    return resolve_data_dir(data_dir) / "ffcv" / f"{spec.name}-{split}-{FORMAT_VERSION}-{key}.beton"


class _ArraySamples:
    """Indexable (image HWC uint8, label, index) samples for FFCV's writer."""

    def __init__(self, arrays: SplitArrays) -> None:
        self.arrays = arrays

    def __len__(self) -> int:
        return len(self.arrays)

    def __getitem__(self, index: int) -> tuple[np.ndarray, int, int]:
        return self.arrays.images[index], int(self.arrays.labels[index]), index


def write_beton(
    spec: DatasetSpec, source: Source, path: Path, num_workers: int, *, progress: bool = False
) -> None:
    """Write `source` to `path` via a temporary file renamed on success (never a half file).

    `progress`: FFCV's own progress bar on stderr while it writes.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{os.getpid()}.partial")
    error_log = temporary.with_suffix(".errors")
    image_samples: ImageFolderSamples | None = None
    if isinstance(source, ArraySource):
        arrays = source.read()
        arrays.check_shape(spec.height, spec.width, spec.channels, source.description, spec.name)
        image_field = NDArrayField(np.dtype("uint8"), (spec.height, spec.width, spec.channels))
        samples: _ArraySamples | ImageFolderSamples = _ArraySamples(arrays)
    else:
        assert isinstance(source, ImageFolderSource)
        image_field = RGBImageField(
            write_mode="jpg",
            max_resolution=int(spec.option("max_resolution", 256)),
            jpeg_quality=int(spec.option("jpeg_quality", 90)),
        )
        samples = image_samples = ImageFolderSamples(source, error_log)
    fields = dict(zip(FIELD_NAMES, (image_field, IntField(), IntField()), strict=True))
    try:
        writer = DatasetWriter(str(temporary), fields, num_workers=num_workers)
        # FFCV's writer always draws a tqdm bar on sys.stderr (it has no option to turn it off),
        # so a quiet write sends that stream to a discarded buffer for the write's duration.
        # Unreadable samples are reported through the error log, not stderr.
        bar = contextlib.nullcontext() if progress else contextlib.redirect_stderr(io.StringIO())
        with bar:
            writer.from_indexed_dataset(samples, chunksize=256)
        if image_samples is not None:
            image_samples.raise_errors()
        check_beton(temporary, spec)
        # The checksum first: a crash between the two renames leaves no .beton without one.
        _write_checksum(checksum_path(path), file_sha256(temporary))
        os.replace(temporary, path)
    finally:
        temporary.unlink(missing_ok=True)
        error_log.unlink(missing_ok=True)


CHUNK_BYTES = 8 << 20
"""Read size for checksums: large reads keep hashing at the disk's or the hash's speed."""
_VERIFIED: set[tuple[str, int, int, int]] = set()
"""Files whose checksum this process has verified, by (path, inode, size, mtime_ns)."""


def checksum_path(path: Path) -> Path:
    """The checksum file that belongs to the .beton at ``path``."""
    return path.with_name(path.name + ".sha256")


def file_sha256(path: Path) -> str:
    """SHA-256 of the file's content, hex (hashlib reads in large chunks, without the GIL)."""
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


def _write_checksum(target: Path, digest: str) -> None:
    temporary = target.with_name(f".{target.name}.{os.getpid()}.partial")
    temporary.write_text(f"{digest}  {target.name.removesuffix('.sha256')}\n")
    os.replace(temporary, target)


def verify_checksum(path: Path) -> None:
    """DataError unless the .beton's content matches its checksum file (once per process).

    A .beton from before checksums existed gets its checksum written now (trust on first use).
    """
    stat = path.stat()
    key = (str(path.resolve()), stat.st_ino, stat.st_size, stat.st_mtime_ns)
    if key in _VERIFIED:
        return
    recorded = checksum_path(path)
    actual = file_sha256(path)
    try:
        expected = recorded.read_text().split()[0]
    except FileNotFoundError:
        log.info("writing the missing checksum of %s", path)
        _write_checksum(recorded, actual)
        expected = actual
    except (OSError, IndexError):
        expected = ""
    if actual != expected:
        raise DataError(
            f"the FFCV cache {path} is damaged (its content does not match {recorded.name}); "
            "delete it and rerun to rebuild it"
        )
    _VERIFIED.add(key)


@dataclass(frozen=True)
class BetonInfo:
    """What a validated .beton holds: sample count and labels (int64)."""

    num_samples: int
    labels: np.ndarray


def check_beton(path: Path, spec: DatasetSpec) -> BetonInfo:
    """Open `path` and check header, fields, image shape, length, allocations, index and labels."""

    def corrupt(what: str) -> DataError:
        return DataError(
            f"the FFCV cache {path} is truncated or corrupt ({what}); "
            "delete it and rerun to rebuild it"
        )

    size = path.stat().st_size
    if size < HeaderType.itemsize:
        raise corrupt(f"{size} bytes, shorter than its header")
    try:
        reader = Reader(str(path))
    except Exception as error:  # FFCV raises assorted errors on a damaged file
        raise corrupt(f"{type(error).__name__}: {error}") from None
    n = int(reader.num_samples)
    if tuple(reader.field_names) != FIELD_NAMES:
        raise corrupt(f"fields {reader.field_names}, expected {list(FIELD_NAMES)}")
    image, *scalars = reader.handlers.values()
    if not all(isinstance(handler, IntField) for handler in scalars):
        raise corrupt("label and index are not integer fields")
    if spec.encoding == "jpeg" and not isinstance(image, RGBImageField):
        raise corrupt("the image field is not an RGB image field")
    expected_shape = (spec.height, spec.width, spec.channels)
    if spec.encoding == "raw" and not (
        isinstance(image, NDArrayField) and tuple(image.shape) == expected_shape
    ):
        raise corrupt(f"the image field is not a uint8 array of shape {expected_shape}")
    if len(reader.metadata) != n:
        raise corrupt(f"metadata for {len(reader.metadata)} of {n} samples")
    table = reader.alloc_table
    table_start = int(reader.header["alloc_table_ptr"])
    if table_start > size or len(np.unique(table["sample_id"])) != n:
        raise corrupt(
            f"allocation table covers {len(np.unique(table['sample_id']))} of {n} samples"
        )
    if len(table) and int((table["ptr"] + table["size"]).max()) > table_start:
        raise corrupt("sample data runs past the allocation table")
    index = reader.metadata["f2"]
    if not np.array_equal(index, np.arange(n)):
        raise corrupt("the index field is not 0..n-1")
    labels = reader.metadata["f1"].astype(np.int64)
    if n and (labels.min() < 0 or labels.max() >= spec.num_classes):
        raise corrupt(f"labels outside [0, {spec.num_classes})")
    return BetonInfo(num_samples=n, labels=labels)


def ensure_beton(
    spec: DatasetSpec,
    split: str,
    source: Source,
    data_dir: Path | str | None,
    num_workers: int,
    *,
    progress: bool = False,
) -> tuple[Path, BetonInfo]:
    """The validated cache file of this split, written first if it does not exist yet."""
    path = beton_path(spec, split, source, data_dir)
    if not path.exists():
        path.parent.mkdir(parents=True, exist_ok=True)
        with exclusive_lock(path.parent):  # workers starting together write the file once
            if not path.exists():
                write_beton(spec, source, path, num_workers, progress=progress)
    verify_checksum(path)
    return path, check_beton(path, spec)
