"""Headless Chromium for tests: page DOMs and screenshots, saved under test-artifacts/."""

from __future__ import annotations

import shutil
import subprocess
import tempfile
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
ARTIFACTS = REPO_ROOT / "test-artifacts"
"""Screenshots a test run leaves for people to look at (git-ignored)."""
MISSING = "Debian's `chromium` is not on PATH (CI installs it; apt-get install chromium)"

CHROMIUM_FLAGS = [
    "--headless",
    "--no-sandbox",
    "--disable-gpu",
    "--disable-quic",
    "--no-first-run",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
]


def chromium(tmp_path: Path, *args: str, timeout_s: float = 120) -> str:
    """Run headless Chromium with a fresh profile under ``tmp_path``; returns its stdout."""
    binary = shutil.which("chromium")
    profile = tempfile.mkdtemp(prefix="chromium-profile-", dir=tmp_path)
    result = subprocess.run(
        [binary, *CHROMIUM_FLAGS, f"--user-data-dir={profile}", *args],
        capture_output=True,
        text=True,
        timeout=timeout_s,
        check=True,
    )
    return result.stdout


def keep_artifact(path: Path, name: str) -> Path:
    """Copy ``path`` to test-artifacts/``name`` and return the copy."""
    ARTIFACTS.mkdir(exist_ok=True)
    kept = ARTIFACTS / name
    shutil.copyfile(path, kept)
    return kept
