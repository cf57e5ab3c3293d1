"""Writing the report folder atomically: a new report replaces the old one whole, or not at all."""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable
from pathlib import Path

from prunebench.errors import UsageError, write_error, write_failure


def check_out(out: Path) -> None:
    """Refuse an --out that is a file, or a non-empty directory that is not a previous report."""
    if out.exists() and not out.is_dir():
        raise UsageError(f"--out {out} is a file; pass a directory path for the report.")
    here = Path.cwd()
    if out.resolve() in (here, *here.parents):
        raise UsageError(
            f"--out {out} is the current directory or holds it, and a report replaces its folder "
            "whole; pass a folder of its own, e.g. --out report"
        )
    if out.is_dir() and any(out.iterdir()) and not (out / "index.html").is_file():
        raise UsageError(
            f"--out {out} is a non-empty directory that is not a prunebench report; pass a new "
            f"or empty directory."
        )


def _replace_dir(new: Path, out: Path) -> None:
    """Move ``new`` to ``out``, replacing a previous report as a whole (never half-overwritten;
    on any failure the previous report is back in place and no ``.old-`` folder is left)."""
    if not out.exists():
        os.replace(new, out)
        return
    old = Path(tempfile.mkdtemp(prefix=f".{out.name}.old-", dir=out.parent))
    try:
        os.replace(out, old / "report")
        try:
            os.replace(new, out)
        except BaseException:
            os.replace(old / "report", out)
            raise
    finally:
        shutil.rmtree(old, ignore_errors=True)


def write_folder(out: Path, write: Callable[[Path], None]) -> None:
    """Call ``write`` on a staging folder beside ``out``, then put it in ``out``'s place; a full
    or read-only disk is a one-line error naming the fix."""
    out.parent.mkdir(parents=True, exist_ok=True)
    try:
        staging = Path(tempfile.mkdtemp(prefix=f".{out.name}.tmp-", dir=out.parent))
        try:
            write(staging)
            _replace_dir(staging, out)
        except BaseException:
            shutil.rmtree(staging, ignore_errors=True)
            raise
    except OSError as error:
        if (cause := write_failure(error)) is None:
            raise
        fix = "free space there or pass another --out, then run the command again"
        raise write_error(cause, out, fix, what="report") from None
