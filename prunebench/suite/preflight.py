"""Everything a suite, search or report needs, checked before the first cell and writing nothing.

A suite that cannot start (dataset missing and not obtainable, store unreachable, checkpoint
folder not writable, loader not installed) must stop with one sentence and exit 2, not fail
every cell in turn. These checks create no MLflow run or experiment, no Optuna study and no
store file: stores are probed by connecting (SQL) or by a write probe in their folder (SQLite).
Datasets are located, or fetched where the dataset can be downloaded, so a download happens
once, before any cell starts.
"""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

from prunebench import mlflow_store
from prunebench.errors import ConfigError
from prunebench.stores import (
    check_database_connects,
    check_sqlite_file,
    probe_writable,
    sqlite_path,
)
from prunebench.suite.preset_cells import Preset


def check_tracking_store(tracking_uri: str) -> None:
    """The MLflow store answers (server, database) or its SQLite folder takes a file."""
    uri = mlflow_store.resolve_tracking_uri(tracking_uri)
    mlflow_store.check_tracking_uri(uri)
    database = sqlite_path(uri)
    if database is not None:
        probe_writable(database.parent, "the tracking store's folder", "a writable --tracking-uri")


def check_storage(storage_url: str, timeout_s: float = 5.0) -> None:
    """The Optuna storage's database answers, or its SQLite folder takes a file; creates nothing."""
    if storage_url.startswith("sqlite:"):
        database = sqlite_path(storage_url)
        if database is not None:
            probe_writable(database.parent, "the Optuna storage's folder", "another --storage")
        check_sqlite_file(storage_url, "the Optuna storage", "--storage")
        return
    check_database_connects(storage_url, timeout_s, "the Optuna storage", "--storage URL")


def locate_datasets(datasets: Iterable[str], data_dir: str | None) -> None:
    """Find (or download) every split of ``datasets``; DataError with the fix if one is missing."""
    from prunebench.datasets import locate_dataset

    for name in dict.fromkeys(datasets):
        locate_dataset(name, data_dir)


def check_loader(loader: str) -> None:
    """The ffcv loader needs FFCV importable here (the tensor loader always works)."""
    if loader != "ffcv":
        return
    from prunebench.datasets.build import ffcv_import_error

    error = ffcv_import_error()
    if error is not None:
        raise ConfigError(
            f"the preset asks for the ffcv loader but FFCV cannot be imported ({error}); "
            "run `python3 tools/provision.py --for ffcv` and rebuild the environment, or set "
            'loader = "auto" (or "tensor") in the preset'
        )


def preflight_suite(
    preset: Preset,
    *,
    tracking_uri: str,
    storage_url: str,
    checkpoint_dir: str | Path,
    datasets: Iterable[str] | None = None,
    data: bool = True,
) -> None:
    """Check a suite or search can start; UsageError (one sentence, nothing written) if not.

    ``datasets`` defaults to the preset's; ``data=False`` skips locating them (a dry run).
    """
    check_tracking_store(tracking_uri)
    check_storage(storage_url)
    probe_writable(checkpoint_dir, "checkpoint folder", "a writable --checkpoint-dir")
    check_loader(preset.run_settings.get("loader", "tensor"))
    if data:
        locate_datasets(
            preset.datasets if datasets is None else datasets,
            preset.run_settings.get("data_dir"),
        )


def preflight_report(out: str | Path) -> None:
    """Check a report's folder takes a file (reports.runs.open_store checks its store)."""
    probe_writable(out, "report folder", "a writable --out")
