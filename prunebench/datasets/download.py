"""Data directories, source-file stamps, and downloads that fail with one clear sentence."""

from __future__ import annotations

import contextlib
import hashlib
import os
import shutil
import tempfile
from collections.abc import Iterable
from pathlib import Path

from torchvision.datasets.utils import download_url, extract_archive

from prunebench.errors import DataError

DEFAULT_DATA_DIR = "prunebench-data"


def resolve_data_dir(data_dir: str | os.PathLike[str] | None) -> Path:
    """`data_dir`, or ./prunebench-data under the working directory when None."""
    return Path(data_dir) if data_dir is not None else Path.cwd() / DEFAULT_DATA_DIR


def files_stamp(paths: Iterable[Path]) -> str:
    """Cheap identity of source files (name, size, mtime): a changed source gets a new cache."""
    digest = hashlib.sha256()
    for path in paths:
        info = path.stat()
        digest.update(f"{path.name}:{info.st_size}:{info.st_mtime_ns};".encode())
    return digest.hexdigest()[:10]


def _download_failed(what: str, looked_in: str, url: str, error: Exception) -> DataError:
    reason = str(getattr(error, "reason", None) or error).strip() or type(error).__name__
    return DataError(
        f"{what} was not found in {looked_in} and downloading it from {url} failed ({reason}); "
        f"download it on a machine with network access and pass its folder with --data-dir"
    )


def fetch_file(
    url: str, folder: Path, filename: str, md5: str | None, *, what: str, looked_in: str
) -> Path:
    """Download `url` to folder/filename (torchvision's downloader, md5 checked) or raise DataError.

    A failed download leaves nothing behind: no partial file, no folder it had to create.
    """
    created = [parent for parent in (folder, *folder.parents) if not parent.exists()]
    try:
        download_url(url, root=str(folder), filename=filename, md5=md5)
    except (OSError, RuntimeError) as error:  # URLError, socket errors, md5 mismatch
        (folder / filename).unlink(missing_ok=True)
        for directory in created:  # deepest first
            with contextlib.suppress(OSError):
                directory.rmdir()
        raise _download_failed(what, looked_in, url, error) from None
    return folder / filename


def fetch_and_extract(
    url: str,
    data_dir: Path,
    filename: str,
    md5: str | None,
    extracted: str,
    *,
    what: str,
    looked_in: str,
) -> Path:
    """Download an archive into `data_dir`; extract its folder `extracted` atomically (rename)."""
    archive = fetch_file(url, data_dir, filename, md5, what=what, looked_in=looked_in)
    staging = Path(tempfile.mkdtemp(prefix=".extract-", dir=data_dir))
    try:
        extract_archive(str(archive), str(staging))
        target = data_dir / extracted
        os.replace(staging / extracted, target)
    except (OSError, RuntimeError, EOFError) as error:
        raise DataError(
            f"the archive {archive} could not be extracted ({error}); delete it and rerun to "
            f"download it again, or pass a folder holding {extracted} with --data-dir"
        ) from None
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    return target
