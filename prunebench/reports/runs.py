"""MLflow -> pandas: open a tracking store; read an experiment's runs, histories and usage."""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import tempfile
import urllib.error
import urllib.parse
import urllib.request
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import ViewType
from mlflow.exceptions import MlflowException
from sqlalchemy.exc import SQLAlchemyError

from prunebench.errors import UsageError
from prunebench.reports.mlflow_ui import run_utilization

DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
HISTORY_METRICS = (
    "test_accuracy",
    "train_seconds",
    "samples_trained",
    "grad_norm",
    "subset_jaccard",
)
"""Per-epoch metrics the report draws curves and phase tables from."""

# Worst status wins when the prunebench tag and MLflow's own status disagree (a crashed process
# leaves the tag at RUNNING while MLflow may have marked the run FAILED or KILLED).
_STATUS_RANK = {"FINISHED": 0, "SCHEDULED": 1, "RUNNING": 2, "KILLED": 3, "FAILED": 4}
_DEFAULT_REASON = {
    "RUNNING": "no end was recorded: still running, or the process was interrupted",
    "SCHEDULED": "scheduled but never started",
    "KILLED": "the run was killed",
    "FAILED": "failed without a recorded reason",
}


@dataclass
class ExperimentData:
    """Everything the report reads from one MLflow experiment."""

    name: str
    experiment_id: str
    tracking_uri: str
    runs: pd.DataFrame
    """One row per run (every kind); typed columns plus ``params.*``, ``tags.*``, ``metrics.*``."""
    histories: pd.DataFrame = field(default_factory=pd.DataFrame)
    """Per-epoch metrics of usable training runs: ``run_id``, ``step`` and HISTORY_METRICS."""
    usage: dict[str, np.ndarray] = field(default_factory=dict)
    """Per-sample usage counts (``usage.npz``) of usable training runs, by run id."""
    utilization: pd.DataFrame = field(default_factory=pd.DataFrame)
    """Mean system-metrics utilization of usable training runs (mlflow_ui.run_utilization)."""


def _check_sqlite(uri: str) -> None:
    """Refuse a sqlite URI whose file is missing or not an MLflow store (MLflow would write it)."""
    path = Path(uri[len("sqlite:///") :])
    if not path.is_file():
        raise UsageError(
            f"No MLflow database at {path}; pass the store your runs were logged to "
            f"with --tracking-uri (e.g. sqlite:///path/to/mlflow.db)."
        )
    try:
        with sqlite3.connect(f"{path.resolve().as_uri()}?mode=ro", uri=True) as connection:
            tables = {
                row[0]
                for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
    except sqlite3.DatabaseError as error:
        raise UsageError(f"{path} is not a readable sqlite database ({error}).") from error
    if not {"experiments", "runs"} <= tables:
        raise UsageError(
            f"{path} is not an MLflow tracking database; pass the right --tracking-uri."
        )


def _check_http(uri: str, timeout_s: float) -> None:
    """Fail fast on an unreachable server (MLflow's own client retries for minutes)."""
    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout_s):
            pass
    except urllib.error.HTTPError:
        return  # the server answered: reachable (it may lack /health behind a proxy)
    except (OSError, ValueError) as error:
        raise UsageError(
            f"Cannot reach the MLflow tracking server at {uri} ({error}); start it or pass "
            f"the right --tracking-uri."
        ) from error


_DATABASE_PORTS = {"postgresql": 5432, "mysql": 3306, "mssql": 1433}


def _check_database(uri: str, timeout_s: float) -> None:
    """Fail fast on a database server that does not answer (SQLAlchemy retries for minutes)."""
    parsed = urllib.parse.urlparse(uri)
    dialect = parsed.scheme.split("+")[0]
    if not parsed.hostname or dialect not in _DATABASE_PORTS:
        return  # a unix socket or an unknown dialect: let MLflow try
    port = parsed.port or _DATABASE_PORTS[dialect]
    try:
        socket.create_connection((parsed.hostname, port), timeout=timeout_s).close()
    except OSError as error:
        raise UsageError(
            f"Cannot reach the {dialect} server of the MLflow store at {parsed.hostname}:{port} "
            f"({error}); start it or pass the right --tracking-uri."
        ) from error


def resolve_tracking_uri(tracking_uri: str | None) -> str:
    """The given URI, else $MLFLOW_TRACKING_URI, else sqlite:///mlflow.db (the harness default)."""
    return tracking_uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI


def open_store(tracking_uri: str | None, timeout_s: float = 10.0) -> MlflowClient:
    """An MlflowClient for ``tracking_uri``; an unreachable or missing store is a UsageError."""
    uri = resolve_tracking_uri(tracking_uri)
    scheme = urllib.parse.urlparse(uri).scheme
    if uri.startswith("sqlite:///"):
        _check_sqlite(uri)
    elif scheme in ("http", "https"):
        _check_http(uri, timeout_s)
    elif scheme.split("+")[0] in _DATABASE_PORTS:
        _check_database(uri, timeout_s)
    elif scheme in ("", "file"):
        path = Path(urllib.parse.urlparse(uri).path if scheme == "file" else uri)
        if not path.is_dir():
            raise UsageError(
                f"No MLflow store at {path}; pass the store your runs were logged to with "
                f"--tracking-uri (e.g. sqlite:///mlflow.db)."
            )
    try:
        client = MlflowClient(tracking_uri=uri)
        client.search_experiments(max_results=1)
    except (MlflowException, SQLAlchemyError, OSError, ImportError) as error:
        first_line = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
        raise UsageError(
            f"Cannot read the MLflow store at {uri} ({first_line}); pass a reachable "
            f"--tracking-uri."
        ) from error
    return client


def find_experiment(client: MlflowClient, name: str) -> str:
    """The id of experiment ``name``, or UsageError listing the experiments that exist."""
    experiment = client.get_experiment_by_name(name)
    if experiment is not None:
        return experiment.experiment_id
    names = sorted(e.name for e in client.search_experiments(view_type=ViewType.ACTIVE_ONLY))
    listed = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")
    raise UsageError(
        f"No MLflow experiment named {name!r} in this store (it has: {listed or 'none'}); "
        f"pass one of those to --experiment or the right --tracking-uri."
    )


def _search_all(client: MlflowClient, experiment_id: str) -> list:
    runs, token = [], None
    while True:
        page = client.search_runs([experiment_id], max_results=1000, page_token=token)
        runs.extend(page)
        token = page.token
        if not token:
            return runs


def _float(value: object) -> float:
    try:
        return float(value)  # type: ignore[arg-type]
    except (TypeError, ValueError):
        return float("nan")


def _status(tag_status: str | None, mlflow_status: str) -> str:
    candidates = [s for s in (tag_status, mlflow_status) if s in _STATUS_RANK]
    return max(candidates, key=_STATUS_RANK.__getitem__) if candidates else "RUNNING"


def _run_row(run) -> dict:
    params, tags, metrics = run.data.params, run.data.tags, run.data.metrics
    # The cell tag "<dataset>/<model>/<pruner_label>/<ratio>" backs up params a crash never logged.
    cell_parts = (tags.get("prunebench.cell", "").split("/") + [""] * 4)[:4]
    status = _status(tags.get("prunebench.status"), run.info.status)
    reason = tags.get("prunebench.failure_reason") or (
        _DEFAULT_REASON.get(status, "") if status != "FINISHED" else ""
    )
    label = params.get("pruner_label") or cell_parts[2] or params.get("pruner", "")
    row = {
        "run_id": run.info.run_id,
        "run_name": tags.get("mlflow.runName", run.info.run_name or ""),
        "kind": tags.get("prunebench.kind", ""),
        "status": status,
        "failure_reason": reason,
        "start_time": int(run.info.start_time or 0),
        "parent_run_id": tags.get("mlflow.parentRunId", ""),
        "cell": tags.get("prunebench.cell", ""),
        "dataset": params.get("dataset") or cell_parts[0],
        "model": params.get("model") or cell_parts[1],
        "pruner": params.get("pruner") or label,
        "pruner_label": label,
        # Rounded so "0.3" from a param and 1 - 0.7 from a preset name the same cell.
        "target_prune_ratio": round(_float(params.get("target_prune_ratio", cell_parts[3])), 9),
        "seed": _float(params.get("seed")),
        "budget": params.get("budget", ""),
        "train_size": _float(params.get("train_size")),
        "expected_seeds": _float(tags.get("prunebench.expected_seeds")),
    }
    row.update({f"params.{k}": v for k, v in params.items()})
    row.update({f"tags.{k}": v for k, v in tags.items()})
    row.update({f"metrics.{k}": v for k, v in metrics.items()})
    return row


def runs_frame(runs: Iterable) -> pd.DataFrame:
    """One row per MLflow run: typed columns plus ``params.*``, ``tags.*``, ``metrics.*``."""
    frame = pd.DataFrame([_run_row(run) for run in runs])
    if frame.empty:
        return frame
    # A finished training run without its summary is incomplete, not a result.
    if "metrics.final_test_accuracy" not in frame:
        frame["metrics.final_test_accuracy"] = np.nan
    broken = (
        (frame["kind"] == "train")
        & (frame["status"] == "FINISHED")
        & frame["metrics.final_test_accuracy"].isna()
    )
    frame.loc[broken, "status"] = "INCOMPLETE"
    frame.loc[broken, "failure_reason"] = "finished without a final_test_accuracy summary metric"
    return frame


def training_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """Benchmark training runs: kind "train", excluding those nested under a search's trials."""
    if runs.empty:
        return runs
    search_ids = set(runs.loc[runs["kind"].isin(["search", "trial"]), "run_id"])
    keep = (runs["kind"] == "train") & ~runs["parent_run_id"].isin(search_ids)
    return runs[keep]


def _step_then_time(metric) -> tuple[int, int]:
    return metric.step, metric.timestamp


def _histories(client: MlflowClient, run_ids: Iterable[str]) -> pd.DataFrame:
    frames = []
    for run_id in run_ids:
        columns = {}
        for key in HISTORY_METRICS:
            # A step logged twice (a resumed run repeats its last epoch) keeps its latest value.
            history = sorted(client.get_metric_history(run_id, key), key=_step_then_time)
            if history:
                values = pd.Series([m.value for m in history], [m.step for m in history], float)
                columns[key] = values[~values.index.duplicated(keep="last")]
        if columns:
            frame = pd.DataFrame(columns).rename_axis("step").reset_index()
            frame.insert(0, "run_id", run_id)
            frames.append(frame)
    if not frames:
        return pd.DataFrame(columns=["run_id", "step", *HISTORY_METRICS])
    out = pd.concat(frames, ignore_index=True)
    for key in HISTORY_METRICS:
        if key not in out:
            out[key] = np.nan
    return out


@contextlib.contextmanager
def _no_progress_bars() -> Iterator[None]:
    """Silence MLflow's per-download progress bar (one per run would flood the terminal)."""
    key = "MLFLOW_ENABLE_ARTIFACTS_PROGRESS_BAR"
    previous = os.environ.get(key)
    os.environ[key] = "false"
    try:
        yield
    finally:
        if previous is None:
            os.environ.pop(key, None)
        else:
            os.environ[key] = previous


def _usage(client: MlflowClient, run_ids: Iterable[str]) -> dict[str, np.ndarray]:
    usage = {}
    with _no_progress_bars(), tempfile.TemporaryDirectory(prefix="prunebench-usage-") as tmp:
        for run_id in run_ids:
            try:
                path = client.download_artifacts(run_id, "usage.npz", str(Path(tmp) / run_id))
                with np.load(path, allow_pickle=False) as archive:
                    usage[run_id] = np.asarray(archive["counts"], dtype=np.int64)
            except (MlflowException, OSError, KeyError, ValueError):
                continue  # the report shows the run as lacking usage counts
    return usage


def load_experiment(client: MlflowClient, name: str, tracking_uri: str) -> ExperimentData:
    """Read every run of experiment ``name``, plus histories and usage of usable training runs."""
    experiment_id = find_experiment(client, name)
    runs = runs_frame(_search_all(client, experiment_id))
    if runs.empty:
        raise UsageError(
            f"Experiment {name!r} has no runs; run `prunebench suite` or `prunebench run` "
            f"with --experiment {name} first."
        )
    train = training_runs(runs)
    if train.empty:
        raise UsageError(
            f"Experiment {name!r} has no training runs (kind 'train'); run a suite into it first."
        )
    usable = train.loc[train["status"] == "FINISHED", "run_id"].tolist()
    return ExperimentData(
        name=name,
        experiment_id=experiment_id,
        tracking_uri=tracking_uri,
        runs=runs,
        histories=_histories(client, usable),
        usage=_usage(client, usable),
        utilization=run_utilization(client, train[train["run_id"].isin(usable)]),
    )
