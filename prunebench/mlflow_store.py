"""Store access for MLflow: the tracking URI rule, store checks, the client, experiments, the
one write path, paged search, and the repair of a half-migrated store on request.

record.py holds the names (tags, metrics, params, artifacts); this module holds how they reach a
store. Every MLflow client is an explicit ``MlflowClient(tracking_uri)`` made by :func:`client`;
the global MLflow state (``mlflow.set_tracking_uri``, active runs) is never used. Runs, searches
and reports write through :func:`log_values` (metrics, params and tags in MLflow's batch limits)
and :func:`set_tags`.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import time
import urllib.parse
from collections.abc import Mapping
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prunebench.errors import UsageError
from prunebench.record import DEFAULT_TRACKING_URI, NEW_EXPERIMENT_TAGS
from prunebench.store_repair import Repair, repair_sqlite_store
from prunebench.stores import (
    can_write,
    check_database_connects,
    check_sqlite_file,
    create_sqlite_whole,
    first_use_lock,
    redact_text,
    redact_url,
    sqlite_path,
)

if TYPE_CHECKING:
    from mlflow import MlflowClient

TRACKING_URI_VARIABLE = "MLFLOW_TRACKING_URI"
"""Every command honours it when --tracking-uri is not given, as MLflow itself does."""
TRACKING_URI_HELP = (
    f"MLflow tracking URI (default: ${TRACKING_URI_VARIABLE}, else {DEFAULT_TRACKING_URI})"
)

# MLflow's batch limits (log_batch refuses larger batches).
_PARAMS_PER_BATCH = 100
_METRICS_PER_BATCH = 1000


# ---------------------------------------------------------------------------- writes
def log_values(
    store: MlflowClient,
    run_id: str,
    *,
    metrics: Mapping[str, float] | None = None,
    params: Mapping[str, Any] | None = None,
    tags: Mapping[str, Any] | None = None,
    step: int = 0,
) -> None:
    """Write ``metrics`` (at ``step``, one timestamp), ``params`` and ``tags`` (stringified) of
    run ``run_id`` in as few batches as MLflow's limits allow: the one write path of runs,
    searches and reports."""
    from mlflow.entities import Metric, Param, RunTag

    timestamp = int(time.time() * 1000)
    metric_items = [
        Metric(key, float(value), timestamp, step) for key, value in (metrics or {}).items()
    ]
    param_items = [Param(key, str(value)) for key, value in (params or {}).items()]
    tag_items = [RunTag(key, str(value)) for key, value in (tags or {}).items()]
    while metric_items or param_items or tag_items:
        store.log_batch(
            run_id,
            metrics=metric_items[:_METRICS_PER_BATCH],
            params=param_items[:_PARAMS_PER_BATCH],
            tags=tag_items,
        )
        metric_items = metric_items[_METRICS_PER_BATCH:]
        param_items = param_items[_PARAMS_PER_BATCH:]
        tag_items = []


def set_tags(store: MlflowClient, run_id: str, tags: Mapping[str, Any]) -> None:
    """Set (or overwrite) ``tags`` of run ``run_id`` in one call."""
    log_values(store, run_id, tags=tags)


# ---------------------------------------------------------------------------- tracking URI
def resolve_tracking_uri(uri: str | None = None) -> str:
    """The given URI, else $MLFLOW_TRACKING_URI, else DEFAULT_TRACKING_URI; a relative SQLite
    path made absolute against the current directory.

    MLflow caches one store per URI string for the life of the process, so a relative path
    would keep pointing at the directory of the first use.
    """
    uri = uri or os.environ.get(TRACKING_URI_VARIABLE) or DEFAULT_TRACKING_URI
    if uri.startswith("sqlite:///"):
        location = uri[len("sqlite:///") :]
        if location and location != ":memory:" and not location.startswith("/"):
            return f"sqlite:///{Path(location).resolve()}"
    return uri


_SQL_SCHEMES = ("postgresql", "mysql", "mssql")
_DATABASE_PORTS = {"postgresql": 5432, "mysql": 3306, "mssql": 1433}


def _check_writable_parent(path: Path, uri: str) -> None:
    parent = path.resolve().parent
    if not parent.is_dir():
        raise UsageError(
            f"tracking store {redact_url(uri)} is unreachable: directory {parent} does not exist; "
            "create it or pass another --tracking-uri"
        )
    if not can_write(parent) or (path.exists() and not can_write(path)):
        raise UsageError(
            f"tracking store {redact_url(uri)} is not writable; "
            "pass a --tracking-uri you can write to"
        )


def _check_sqlite_database(uri: str) -> None:
    """An existing file must be a completely migrated SQLite database (MLflow would print a long
    traceback); opened read-write as MLflow will, so SQLite rolls back a hot journal."""
    check_sqlite_file(uri, "tracking store", "--tracking-uri")


def _check_http(uri: str, timeout_s: float) -> None:
    """Fail fast on an unreachable server (MLflow's own client retries for minutes)."""
    import urllib.error
    import urllib.request  # here, not at import: it costs the CLI's start about 50 ms

    try:
        with urllib.request.urlopen(uri.rstrip("/") + "/health", timeout=timeout_s):
            pass
    except urllib.error.HTTPError:
        return  # the server answered: reachable (it may lack /health behind a proxy)
    except (OSError, ValueError) as error:
        raise UsageError(
            f"Cannot reach the MLflow tracking server ({redact_text(error)}): tracking server "
            f"{redact_url(uri)} is unreachable; start it or pass another --tracking-uri."
        ) from None


def _check_database_answers(uri: str, timeout_s: float) -> None:
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
            f"({redact_text(error)}); start it or pass the right --tracking-uri."
        ) from error


def _check_sqlite_store(uri: str) -> None:
    """Refuse a sqlite URI whose file is missing or not an MLflow store (MLflow would write it)."""
    path = sqlite_path(uri)
    if path is None or not path.is_file():
        raise UsageError(
            f"No MLflow database at {redact_url(uri.removeprefix('sqlite:///'))}; pass the store "
            "your runs were logged to with --tracking-uri (e.g. sqlite:///path/to/mlflow.db)."
        )
    _check_sqlite_database(uri)  # a hot journal rolled back, a half-migrated store named
    try:
        with contextlib.closing(sqlite3.connect(path.as_uri(), uri=True)) as connection:
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


def check_tracking_uri(uri: str, timeout_s: float = 5.0, *, existing: bool = False) -> None:
    """Raise UsageError unless the store at ``uri`` is usable; creates and writes nothing.

    To write (default): sqlite and file stores need an existing, writable directory; SQL
    databases must accept a connection. To read (``existing``): the store must already exist
    (a sqlite file with MLflow's tables, a file store's directory) and a database server must
    answer. http(s), either way: the server must answer ``/health`` within ``timeout_s``.
    """
    parsed = urllib.parse.urlparse(uri)
    scheme = parsed.scheme.split("+")[0]
    if uri.startswith("sqlite:///"):
        database = sqlite_path(uri)
        if existing:
            _check_sqlite_store(uri)
        elif database is not None:
            _check_writable_parent(database, uri)
            _check_sqlite_database(uri)
    elif scheme in ("", "file"):
        path = Path(parsed.path if scheme == "file" else uri)
        if not existing:
            _check_writable_parent(path, uri)
        elif not path.is_dir():
            raise UsageError(
                f"No MLflow store at {path}; pass the store your runs were logged to with "
                f"--tracking-uri (e.g. sqlite:///mlflow.db)."
            )
    elif scheme in ("http", "https"):
        _check_http(uri, timeout_s)
    elif scheme in _SQL_SCHEMES:
        if existing:
            _check_database_answers(uri, timeout_s)
        else:
            check_database_connects(uri, timeout_s, "tracking database", "--tracking-uri")


# ---------------------------------------------------------------------------- client
_OPENED: set[str] = set()
"""Stores this process has opened once under :func:`first_use_lock`."""


def client(tracking_uri: str) -> MlflowClient:
    """An explicit MLflow client for ``tracking_uri`` (never the global MLflow state).

    MLflow creates (or migrates) a database's tables on the first access of each process, and
    processes starting together on a NEW store race to do it (the losers crash with ``table ...
    already exists``); so each process's first access runs under the store's first-use lock.
    """
    from mlflow import MlflowClient

    if tracking_uri in _OPENED:
        return MlflowClient(tracking_uri)
    with first_use_lock(tracking_uri):
        create_sqlite_whole(tracking_uri, _create_mlflow_store)  # a new SQLite file: whole
        store = MlflowClient(tracking_uri)  # MLflow 3 opens (creates) the store right here
        store.search_experiments(max_results=1)  # versions that open lazily open it here
    _OPENED.add(tracking_uri)
    return store


def _create_mlflow_store(temporary_url: str) -> None:
    """Create and migrate MLflow's schema (and its Default experiment) at ``temporary_url``, as
    MlflowClient would with its default artifact root, then close every connection to it."""
    from mlflow.store.tracking import DEFAULT_LOCAL_FILE_AND_ARTIFACT_PATH
    from mlflow.store.tracking.sqlalchemy_store import SqlAlchemyStore

    SqlAlchemyStore(temporary_url, DEFAULT_LOCAL_FILE_AND_ARTIFACT_PATH).engine.dispose()


def open_store(tracking_uri: str | None, timeout_s: float = 10.0) -> MlflowClient:
    """A client of an existing store to read; an unreachable or missing store is a UsageError."""
    from mlflow.exceptions import MlflowException
    from sqlalchemy.exc import SQLAlchemyError

    uri = resolve_tracking_uri(tracking_uri)
    check_tracking_uri(uri, timeout_s, existing=True)
    try:
        store = client(uri)
        store.search_experiments(max_results=1)
    except (MlflowException, SQLAlchemyError, OSError, ImportError) as error:
        first_line = str(error).strip().splitlines()[0][:200] if str(error).strip() else ""
        raise UsageError(
            f"Cannot read the MLflow store at {redact_url(uri)} ({redact_text(first_line)}); "
            "pass a reachable --tracking-uri."
        ) from error
    return store


# ---------------------------------------------------------------------------- experiments
def find_experiment_id(store: MlflowClient, name: str) -> str | None:
    """The id of experiment ``name``, or None when the store has none of that name."""
    found = store.get_experiment_by_name(name)
    return found.experiment_id if found is not None else None


def get_or_create_experiment(store: MlflowClient, name: str) -> str:
    """The id of experiment ``name``, created if missing as a training experiment
    (NEW_EXPERIMENT_TAGS); safe when workers race to create it."""
    from mlflow.exceptions import MlflowException

    found = find_experiment_id(store, name)
    if found is not None:
        return found
    with first_use_lock(store.tracking_uri):  # this machine's workers create it once
        found = find_experiment_id(store, name)
        if found is not None:
            return found
        try:
            return store.create_experiment(name, tags=NEW_EXPERIMENT_TAGS)
        except MlflowException:
            # Another machine's worker created it between our lookup and create.
            return store.get_experiment_by_name(name).experiment_id


def prepare_experiment(tracking_uri: str, name: str) -> None:
    """Create the store (schema migrations) and experiment once, before workers race to."""
    for attempt in range(3):
        try:
            get_or_create_experiment(client(tracking_uri), name)
            return
        except Exception:  # another worker created the schema or experiment first
            if attempt == 2:
                raise
            time.sleep(1.0 + attempt)


def log_inputs(store: MlflowClient, run_id: str, inputs: list) -> None:
    """Log dataset ``inputs`` of ``run_id``; safe when runs log the same dataset together.

    MLflow's SQL store looks a dataset up by (experiment, name, digest) and inserts it when
    absent, so two runs logging the same data at once collide on that unique key
    (``UNIQUE constraint failed: datasets...``). This machine's workers take turns under the
    store's lock; a worker on another machine that loses the race retries and finds the dataset.
    """
    from mlflow.exceptions import MlflowException

    for attempt in range(3):
        try:
            with first_use_lock(store.tracking_uri):
                store.log_inputs(run_id, datasets=inputs)
            return
        except MlflowException as error:
            if attempt == 2 or "unique" not in str(error).lower():
                raise
            time.sleep(0.5 + attempt)


# ---------------------------------------------------------------------------- search
def search_all_runs(store: MlflowClient, experiment_id: str, filter_string: str = "") -> list:
    """Every run of an experiment matching ``filter_string``, page by page."""
    runs: list[Any] = []
    token = None
    while True:
        page = store.search_runs(
            [experiment_id], filter_string=filter_string, max_results=1000, page_token=token
        )
        runs.extend(page)
        token = page.token
        if not token:
            return runs


# ---------------------------------------------------------------------------- repair
def _finish_migration(tracking_uri: str) -> None:
    """Run MLflow's own schema creation and migrations to their head on ``tracking_uri``."""
    from mlflow.store.db.utils import _initialize_tables, create_sqlalchemy_engine

    engine = create_sqlalchemy_engine(tracking_uri)
    try:
        # Creates the initial tables still missing (never touching those there), then upgrades
        # from the recorded version: the path MLflow itself takes on a store's first use.
        _initialize_tables(engine)
    finally:
        engine.dispose()


def repair_tracking_store(tracking_uri: str) -> Repair:
    """Repair a SQLite tracking store left half-migrated (``prunebench store repair``)."""
    return repair_sqlite_store(
        tracking_uri,
        "tracking store",
        "--tracking-uri",
        finish=_finish_migration,
        create=_create_mlflow_store,
        prove=open_store,
    )
