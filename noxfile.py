"""Sessions: tests (default), lint, bench. Heavy sessions share one environment.

torch alone is ~5.5 GB, so every session that imports prunebench uses the single environment
.nox/prunebench-env, rebuilt only when pyproject.toml or the extras change. FFCV is included when
its system libraries are installed (see .ci/run); without them its tests skip with the reason.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import subprocess
import sys
from pathlib import Path

import nox

nox.options.sessions = ["tests", "lint"]
nox.options.reuse_existing_virtualenvs = True

ROOT = Path(__file__).resolve().parent
SHARED_ENV = ROOT / ".nox" / "prunebench-env"
FFCV_SYSTEM_LIBS = ("opencv4", "libturbojpeg")


def ffcv_buildable() -> bool:
    """FFCV 1.0.2 builds from source against OpenCV 4 and libturbojpeg via pkg-config."""
    if shutil.which("pkg-config") is None:
        return False
    return all(
        subprocess.run(["pkg-config", "--exists", lib], check=False).returncode == 0
        for lib in FFCV_SYSTEM_LIBS
    )


def shared_env(session: nox.Session) -> Path:
    """Create or update the shared environment, put it first on PATH and return its bin dir."""
    extras = ["test", "postgres"]
    if ffcv_buildable():
        extras.append("ffcv")
    else:
        session.warn(
            "FFCV's system libraries are missing, so FFCV is not installed and its tests skip; "
            "install them with: apt-get install libopencv-dev libturbojpeg0-dev pkg-config"
        )
    key = hashlib.sha256((ROOT / "pyproject.toml").read_bytes() + ",".join(extras).encode())
    stamp = SHARED_ENV / ".prunebench-stamp"
    bin_dir = SHARED_ENV / "bin"
    if not (bin_dir / "python").exists():
        session.run(sys.executable, "-m", "venv", str(SHARED_ENV), external=True)
    if not stamp.exists() or stamp.read_text() != key.hexdigest():
        python = str(bin_dir / "python")
        session.run(python, "-m", "pip", "install", "-q", "--upgrade", "pip", external=True)
        session.run(
            python, "-m", "pip", "install", "-q", "-e", f".[{','.join(extras)}]", external=True
        )
        stamp.write_text(key.hexdigest())
    session.env["VIRTUAL_ENV"] = str(SHARED_ENV)
    session.env["PATH"] = f"{bin_dir}{os.pathsep}{os.environ.get('PATH', '')}"
    return bin_dir


@nox.session(venv_backend="none")
def tests(session: nox.Session) -> None:
    """The test suite: pruners, data (FFCV included), training, suites, search, reports."""
    python = shared_env(session) / "python"
    session.run(str(python), "-m", "pytest", *session.posargs, external=True)


@nox.session(venv_backend="none")
def bench(session: nox.Session) -> None:
    """Speed benchmarks; each prints ratios measured in one run (pass --device cuda on a GPU)."""
    python = shared_env(session) / "python"
    for script in sorted((ROOT / "benchmarks").glob("*.py")):
        session.log(f"benchmark {script.name}")
        session.run(str(python), str(script), *session.posargs, external=True)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check over the whole repository."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")
