"""Atomic per-epoch checkpoints: ``<checkpoint_dir>/<config_hash>.pt``, replaced by rename."""

from __future__ import annotations

import io
import os
import uuid
from pathlib import Path
from typing import Any

import torch

from prunebench.errors import UsageError, write_error
from prunebench.stores import probe_writable

CHECKPOINT_FORMAT = 1


def checkpoint_path(checkpoint_dir: str | os.PathLike, config_hash: str) -> Path:
    """Where the checkpoint of the run with ``config_hash`` lives."""
    return Path(checkpoint_dir) / f"{config_hash}.pt"


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Write ``state`` to ``path`` atomically: a temporary file in the same directory, renamed.

    A crash mid-write leaves the previous checkpoint intact, never a half-written one. A failed
    write (full disk, quota, read-only folder) is a UsageError naming the OS's reason.
    """
    # Serialize in memory first: torch's zip writer reports a failed file write as an opaque
    # "[enforce fail at inline_container.cc]"; writing the bytes ourselves keeps the OSError.
    buffer = io.BytesIO()
    torch.save({"format": CHECKPOINT_FORMAT, **state}, buffer)
    # A unique name opened with "xb" (not mkstemp): the file gets the umask's usual permissions.
    temporary = path.with_name(f".{path.name}.{os.getpid()}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        with open(temporary, "xb") as handle:
            handle.write(buffer.getbuffer())
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, path)
    except OSError as error:
        temporary.unlink(missing_ok=True)
        fix = "free space there or pass another --checkpoint-dir, then rerun with --resume"
        raise write_error(error, path, fix, what="checkpoint") from None
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise


def load_checkpoint(path: Path, map_location: torch.device) -> dict[str, Any]:
    """Read a checkpoint written by :func:`save_checkpoint`; UsageError if unreadable."""
    try:
        # weights_only: a checkpoint holds tensors and plain data only, never pickled code.
        state = torch.load(path, map_location=map_location, weights_only=True)
    except Exception as error:
        raise UsageError(
            f"checkpoint {path} is unreadable ({type(error).__name__}); delete it to start over"
        ) from None
    if not isinstance(state, dict) or state.get("format") != CHECKPOINT_FORMAT:
        raise UsageError(f"checkpoint {path} has an unknown format; delete it to start over")
    return state


def check_checkpoint_dir(checkpoint_dir: str | os.PathLike) -> None:
    """UsageError unless ``checkpoint_dir`` is (or can be created as) a writable directory.

    A write probe (a temporary file created and removed in the nearest existing folder), not a
    permission check: root passes every permission check, yet cannot write under /proc.
    """
    probe_writable(checkpoint_dir, "checkpoint directory", "a writable --checkpoint-dir")
