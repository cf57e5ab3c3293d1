"""Shared fixtures: a new MLflow SQLite store migrates for seconds, so tests copy a migrated one."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import torch


@pytest.fixture(scope="session")
def _mlflow_template(tmp_path_factory) -> Path:
    from mlflow import MlflowClient

    path = tmp_path_factory.mktemp("mlflow-template") / "mlflow.db"
    MlflowClient(f"sqlite:///{path}").search_experiments()  # creates and migrates the schema
    return path


@pytest.fixture
def mlflow_sqlite(tmp_path, _mlflow_template) -> str:
    """A fresh, already-migrated MLflow SQLite store in tmp_path; returns its tracking URI."""
    path = tmp_path / "mlflow.db"
    shutil.copyfile(_mlflow_template, path)
    return f"sqlite:///{path}"


@pytest.fixture(scope="module")
def one_thread():
    """Tiny models train faster on one thread, and far faster when the 2 CPUs are shared
    (a module's tests use it with ``pytestmark = pytest.mark.usefixtures("one_thread")``)."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)
