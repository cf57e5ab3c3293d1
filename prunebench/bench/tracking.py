"""MLflow tracking for training runs: a reachability check that writes nothing, and a run writer.

Every call goes through an explicit ``MlflowClient(tracking_uri)``; the global MLflow state
(``mlflow.set_tracking_uri``, active runs) is never touched.
"""

from __future__ import annotations

import os
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

from prunebench.errors import UsageError

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
"""MLflow's embedded default: a SQLite file in the working directory."""
DEFAULT_EXPERIMENT = "prunebench"
_SQL_SCHEMES = ("postgresql", "mysql", "mssql")


def _check_writable_parent(path: Path, uri: str) -> None:
    parent = path.resolve().parent
    if not parent.is_dir():
        raise UsageError(
            f"tracking store {uri} is unreachable: directory {parent} does not exist; "
            "create it or pass another --tracking-uri"
        )
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
        raise UsageError(
            f"tracking store {uri} is not writable; pass a --tracking-uri you can write to"
        )


def resolve_tracking_uri(uri: str) -> str:
    """``uri`` with a relative SQLite path made absolute against the current directory.

    MLflow caches one store per URI string for the life of the process, so a relative path
    would keep pointing at the directory of the first use.
    """
    if uri.startswith("sqlite:///"):
        location = uri[len("sqlite:///") :]
        if location and location != ":memory:" and not location.startswith("/"):
            return f"sqlite:///{Path(location).resolve()}"
    return uri


def check_tracking_uri(uri: str, timeout_s: float = 5.0) -> None:
    """Raise UsageError unless ``uri`` looks reachable and writable; creates nothing.

    sqlite and file stores: the directory must exist and be writable. http(s): the server must
    answer within ``timeout_s``. SQL databases: a connection must open.
    """
    parsed = urllib.parse.urlparse(uri)
    scheme = parsed.scheme.split("+")[0]
    if uri.startswith("sqlite:///"):
        location = uri[len("sqlite:///") :]
        if location and location != ":memory:":
            _check_writable_parent(Path(location), uri)
    elif scheme in ("", "file"):
        _check_writable_parent(Path(parsed.path if scheme == "file" else uri), uri)
    elif scheme in ("http", "https"):
        try:
            with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout_s):
                pass
        except urllib.error.HTTPError:
            return  # the server answered; it may not serve /health behind a proxy
        except (OSError, ValueError) as error:
            raise UsageError(
                f"tracking server {uri} is unreachable ({error}); start it or pass another "
                "--tracking-uri"
            ) from None
    elif scheme in _SQL_SCHEMES:
        import sqlalchemy

        try:
            engine = sqlalchemy.create_engine(uri, connect_args={"connect_timeout": int(timeout_s)})
            with engine.connect():
                pass
            engine.dispose()
        except ModuleNotFoundError as error:
            raise UsageError(
                f"tracking URI {parsed.scheme}://... needs a database driver that is not "
                f"installed ({error}); install it or name an installed one (e.g. "
                "postgresql+psycopg2://)"
            ) from None
        except Exception as error:  # driver errors differ by database
            first_line = str(error).strip().splitlines()[0] if str(error).strip() else ""
            raise UsageError(
                f"tracking database {parsed.scheme}://{parsed.hostname} is unreachable "
                f"({first_line[:160]}); start it or pass another --tracking-uri"
            ) from None


class RunTracker:
    """Writes one training run: params and tags once, one metrics batch per epoch, artifacts."""

    def __init__(self, tracking_uri: str, experiment: str, run_id: str):
        from mlflow import MlflowClient

        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self.client = MlflowClient(tracking_uri)
        self.run_id = run_id

    @classmethod
    def start(
        cls, tracking_uri: str, experiment: str, run_name: str, tags: dict[str, str]
    ) -> RunTracker:
        """Create a new run in ``experiment`` (created if missing)."""
        from mlflow import MlflowClient

        from prunebench.bench.mlflow_native import get_or_create_experiment

        client = MlflowClient(tracking_uri)
        experiment_id = get_or_create_experiment(client, experiment)
        run = client.create_run(experiment_id, run_name=run_name, tags=tags)
        return cls(tracking_uri, experiment, run.info.run_id)

    @classmethod
    def attach(cls, tracking_uri: str, experiment: str, run_id: str) -> RunTracker:
        """Continue an existing run (resume): UsageError if this store does not have it."""
        from mlflow.exceptions import MlflowException

        tracker = cls(tracking_uri, experiment, run_id)
        try:
            tracker.client.get_run(run_id)
        except MlflowException:
            raise UsageError(
                f"the checkpoint's MLflow run {run_id} is not in {tracking_uri}; pass the "
                "--tracking-uri it was logged to, or run without --resume"
            ) from None
        tracker.client.update_run(run_id, status="RUNNING")
        return tracker

    def log_params(self, params: dict[str, Any]) -> None:
        """Log params (stringified), in batches of MLflow's limit of 100."""
        from mlflow.entities import Param

        items = [Param(key, str(value)) for key, value in params.items()]
        for start in range(0, len(items), 100):
            self.client.log_batch(self.run_id, params=items[start : start + 100])

    def set_tags(self, tags: dict[str, str]) -> None:
        """Set (or overwrite) tags."""
        from mlflow.entities import RunTag

        self.client.log_batch(self.run_id, tags=[RunTag(k, str(v)) for k, v in tags.items()])

    def log_metrics(self, metrics: dict[str, float], step: int = 0) -> None:
        """Log metrics at ``step`` in one batch."""
        from mlflow.entities import Metric

        timestamp = int(time.time() * 1000)
        batch = [Metric(key, float(value), timestamp, step) for key, value in metrics.items()]
        for start in range(0, len(batch), 1000):
            self.client.log_batch(self.run_id, metrics=batch[start : start + 1000])

    def log_artifact(self, path: Path) -> None:
        """Upload one local file to the run's artifact root."""
        self.client.log_artifact(self.run_id, str(path))

    def finish(self, status: str, failure_reason: str | None = None) -> None:
        """Set the prunebench status tags and MLflow's own run status (FINISHED/FAILED/KILLED)."""
        tags = {"prunebench.status": status if status != "KILLED" else "RUNNING"}
        if failure_reason:
            tags["prunebench.failure_reason"] = failure_reason
        self.set_tags(tags)
        self.client.set_terminated(self.run_id, status=status)
