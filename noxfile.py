"""Sessions: tests and lint (default), demo, cifar_suite, suite, search, report, ui, dashboard,
bench.

Heavy sessions share one environment.

torch alone is ~5.5 GB, so every session that imports prunebench uses the single environment
.nox/prunebench-env, rebuilt only when pyproject.toml or the extras change. Before building it,
tools/provision.py installs the missing system packages (FFCV's build libraries, Fashion-MNIST;
PostgreSQL and Chromium for the tests) where apt and root allow, or prints the command to run;
FFCV is included whenever its libraries are there, and the environment is rebuilt with it once
they appear.
"""

from __future__ import annotations

import hashlib
import importlib.util
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


def _load_provision():
    # tools/ is not a package on sys.path when nox imports this file: load the module by path.
    spec = importlib.util.spec_from_file_location(
        "prunebench_provision", ROOT / "tools/provision.py"
    )
    module = importlib.util.module_from_spec(spec)
    sys.modules[spec.name] = module  # dataclasses resolve annotations through sys.modules
    spec.loader.exec_module(module)
    return module


provision = _load_provision()


def ffcv_buildable() -> bool:
    """FFCV 1.0.2 builds from source against OpenCV 4 and libturbojpeg via pkg-config."""
    if shutil.which("pkg-config") is None:
        return False
    return all(
        subprocess.run(["pkg-config", "--exists", lib], check=False).returncode == 0
        for lib in FFCV_SYSTEM_LIBS
    )


def shared_env(session: nox.Session, purpose: str = "run") -> Path:
    """System packages of ``purpose``, then the shared environment (first on PATH); its bin dir."""
    if provision.provision([purpose], say=session.log).action == "present":
        session.log(f"system packages present: {' '.join(provision.packages_for([purpose]))}")
    extras = ["test", "postgres"]
    if ffcv_buildable():
        extras.append("ffcv")
    else:
        session.warn(
            "FFCV's system libraries are missing, so FFCV is not installed, its tests skip and "
            "the tensor loader is used; install them with: "
            + provision.manual_command(provision.FFCV)
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
    python = shared_env(session, "tests") / "python"
    session.run(str(python), "-m", "pytest", *session.posargs, external=True)


@nox.session(venv_backend="none")
def bench(session: nox.Session) -> None:
    """Speed benchmarks; each prints ratios measured in one run (pass --device cuda on a GPU)."""
    python = shared_env(session) / "python"
    for script in sorted((ROOT / "benchmarks").glob("[!_]*.py")):  # _x.py: shared helpers
        session.log(f"benchmark {script.name}")
        session.run(str(python), str(script), *session.posargs, external=True)


@nox.session
def lint(session: nox.Session) -> None:
    """ruff check and ruff format --check over the whole repository."""
    session.install("ruff>=0.6")
    session.run("ruff", "check", ".")
    session.run("ruff", "format", "--check", ".")


TRACKING_URI = "sqlite:///mlflow.db"  # MLflow's embedded store, in the working directory
STORAGE_URL = "sqlite:///optuna.db"  # Optuna's embedded store (suite queue and searches)


def prunebench(session: nox.Session, bin_dir: Path, *args: str) -> None:
    session.run(str(bin_dir / "prunebench"), *args, external=True)


def preset_argument(session: nox.Session, default: str) -> tuple[str, list[str]]:
    """The preset named after --, e.g. `nox -s suite -- quick-cifar10 --workers 2`."""
    if session.posargs:
        return session.posargs[0], list(session.posargs[1:])
    return default, []


def run_preset(
    session: nox.Session, bin_dir: Path, preset: str, search: bool, workers: int = 1
) -> None:
    """Suite, optional search, then the report of one preset, all on the embedded stores."""
    stores = ["--tracking-uri", TRACKING_URI]
    suite_args = ["--storage", STORAGE_URL, "--workers", str(workers), "--quiet"]
    prunebench(session, bin_dir, "suite", preset, *stores, *suite_args)
    if search:
        search_args = ["--storage", STORAGE_URL, "--workers", str(workers)]
        prunebench(session, bin_dir, "search", preset, *stores, *search_args)
    out = f"reports/{preset}"
    prunebench(session, bin_dir, "report", "--preset", preset, "--out", out, *stores)
    session.log(f"report: {ROOT / out / 'index.html'}  (compare runs: nox -s ui)")


@nox.session(venv_backend="none")
def demo(session: nox.Session) -> None:
    """The main job, offline on a CPU: every pruner on real Fashion-MNIST, a search, the report.

    Two workers: the demo's runs pin one torch thread each (its preset), so two fill 2 cores."""
    run_preset(session, shared_env(session), "demo-fmnist", search=True, workers=2)


@nox.session(venv_backend="none")
def cifar_suite(session: nox.Session) -> None:
    """The OrderDP paper's CIFAR-10/100 ResNet-18 protocol (GPU-sized), then the reports."""
    bin_dir = shared_env(session)
    for preset in ("paper-cifar10-r18", "paper-cifar100-r18"):
        run_preset(session, bin_dir, preset, search=False)


@nox.session(venv_backend="none")
def suite(session: nox.Session) -> None:
    """Run a preset's suite: `nox -s suite -- PRESET [prunebench suite options]`."""
    preset, extra = preset_argument(session, "demo-fmnist")
    prunebench(session, shared_env(session), "suite", preset, "--tracking-uri", TRACKING_URI,
               "--storage", STORAGE_URL, *extra)  # fmt: skip


@nox.session(venv_backend="none")
def search(session: nox.Session) -> None:
    """Search the largest lossless ratio: `nox -s search -- PRESET [prunebench search options]`."""
    preset, extra = preset_argument(session, "demo-fmnist")
    prunebench(session, shared_env(session), "search", preset, "--tracking-uri", TRACKING_URI,
               "--storage", STORAGE_URL, *extra)  # fmt: skip


@nox.session(venv_backend="none")
def report(session: nox.Session) -> None:
    """Build a preset's report from MLflow: `nox -s report -- PRESET`."""
    preset, extra = preset_argument(session, "demo-fmnist")
    prunebench(session, shared_env(session), "report", "--preset", preset,
               "--out", f"reports/{preset}", "--tracking-uri", TRACKING_URI, *extra)  # fmt: skip


def port_argument(session: nox.Session, default: str) -> str:
    """The port after `--port` in the session's arguments, e.g. `nox -s ui -- --port 5077`."""
    if "--port" in session.posargs:
        return session.posargs[session.posargs.index("--port") + 1]
    return default


@nox.session(venv_backend="none")
def ui(session: nox.Session) -> None:
    """The MLflow UI on the embedded store: `nox -s ui [-- --port 5000]`."""
    bin_dir = shared_env(session)
    port = port_argument(session, "5000")
    session.log(f"MLflow UI at http://127.0.0.1:{port} (store {TRACKING_URI}); Ctrl-C stops it")
    session.log("MLflow 3.17 opens on its GenAI pages: pick 'Model training' at the top left once")
    session.run(str(bin_dir / "mlflow"), "ui", "--backend-store-uri", TRACKING_URI,
                "--host", "127.0.0.1", "--port", port, external=True)  # fmt: skip


@nox.session(venv_backend="none")
def dashboard(session: nox.Session) -> None:
    """The Optuna dashboard on the embedded Optuna store: `nox -s dashboard [-- --port 8080]`."""
    bin_dir = shared_env(session)
    port = port_argument(session, "8080")
    session.log(f"Optuna dashboard at http://127.0.0.1:{port} (store {STORAGE_URL}); Ctrl-C: stop")
    # The search's studies and the suite's work queue live in this store (suite/workqueue.py).
    session.run(str(bin_dir / "optuna-dashboard"), STORAGE_URL, "--host", "127.0.0.1",
                "--port", port, external=True)  # fmt: skip
