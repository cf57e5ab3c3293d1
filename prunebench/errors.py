"""Errors a user can cause: the CLI prints their one-sentence message and exits with code 2."""

from __future__ import annotations

import errno
import os
import shutil
from collections.abc import Iterable
from pathlib import Path


class UsageError(Exception):
    """A problem with the user's input or environment, stated in one sentence naming the fix."""


class ConfigError(UsageError, ValueError):
    """An invalid configuration value (unknown name, out-of-range number, malformed option)."""


class DataError(UsageError):
    """Data that is missing, unreadable or inconsistent (no local copy, truncated cache file)."""


def unknown(kind: str, name: object, choices: Iterable[str]) -> ConfigError:
    """The error for a name no registry knows: ``unknown <kind> 'name'; choose one of: a, b``."""
    return ConfigError(f"unknown {kind} {name!r}; choose one of: {', '.join(choices)}")


_WRITE_ERRNOS = {errno.ENOSPC, errno.EDQUOT, errno.EIO, errno.EROFS}
_SQLITE_WRITE_FAILURES = {
    "database or disk is full": errno.ENOSPC,
    "disk i/o error": errno.EIO,
}


def write_failure(error: BaseException) -> OSError | None:
    """The full disk (or quota, I/O error, read-only file system) behind ``error``: an OSError
    in its chain of causes, or SQLite's own words for one; None when it is something else."""
    seen: set[int] = set()
    current: BaseException | None = error
    while current is not None and id(current) not in seen:
        seen.add(id(current))
        if isinstance(current, OSError) and current.errno in _WRITE_ERRNOS:
            return current
        text = str(current).lower()
        for words, number in _SQLITE_WRITE_FAILURES.items():
            if words in text:
                return OSError(number, os.strerror(number))
        current = current.__cause__ or current.__context__
    return None


def free_space(path: str | os.PathLike) -> str:
    """The free space on the disk holding ``path`` (or its nearest existing folder), e.g. 40 KB."""
    existing = Path(path).resolve()
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    try:
        free = float(shutil.disk_usage(existing).free)
    except OSError:
        return "unknown space"
    for unit in ("bytes", "KB", "MB", "GB"):
        if free < 1024 or unit == "GB":
            return f"{free:.0f} {unit}" if unit == "bytes" else f"{free:.1f} {unit}"
        free /= 1024
    raise AssertionError("unreachable")


def write_error(cause: OSError, path: str | os.PathLike, fix: str, what: str = "") -> UsageError:
    """One line for a failed write: the OS's reason, what and where, the free space, the fix."""
    reason = (cause.strerror or type(cause).__name__).lower()
    where = f"{what} {path}" if what else str(path)
    return UsageError(f"{reason} while writing {where} ({free_space(path)} free there); {fix}")
