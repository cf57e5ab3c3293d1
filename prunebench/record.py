"""The one MLflow record schema: what a prunebench run writes and how it is found again.

Tag keys, run kinds, per-epoch and summary metric names, shared parameter names, the tracking URI
rules and store checks, experiment get-or-create and paged run search live here, once. Training
(``bench``), the suite layer (``suite``) and the reports read and write MLflow through these
names and helpers. Every MLflow client is an explicit ``MlflowClient(tracking_uri)`` made by
:func:`client`; the global MLflow state (``mlflow.set_tracking_uri``, active runs) is never used.
"""

from __future__ import annotations

import contextlib
import os
import socket
import sqlite3
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prunebench.errors import UsageError
from prunebench.stores import (
    check_sqlite_file,
    create_sqlite_whole,
    first_use_lock,
    redact_text,
    redact_url,
)

if TYPE_CHECKING:
    from mlflow import MlflowClient

# ---------------------------------------------------------------------------- where
DEFAULT_TRACKING_URI = "sqlite:///mlflow.db"
"""MLflow's embedded default: a SQLite file in the working directory."""
DEFAULT_EXPERIMENT = "prunebench"

# ---------------------------------------------------------------------------- tags
TAG_KIND = "prunebench.kind"
"""What the run is: one of the KIND_* values below."""
TAG_STATUS = "prunebench.status"
"""prunebench's own status (RUNNING until the run records its end; see :func:`end_tags`)."""
TAG_FAILURE_REASON = "prunebench.failure_reason"
TAG_CELL = "prunebench.cell"
"""``<dataset>/<model>/<pruner_label>/<target ratio>``: the cell a training run belongs to."""
TAG_CONFIG_HASH = "prunebench.config_hash"
"""The run config's hash: a suite's record of which cell is done."""
TAG_PRESET = "prunebench.preset"
TAG_SUITE = "prunebench.suite"
"""A suite generation (its work-queue root): group the runs table by it to compare one suite."""
TAG_EXPECTED_SEEDS = "prunebench.expected_seeds"
TAG_COMPARISON = "prunebench.comparison"
"""Which comparison a suite's training run serves: one of the COMPARISON_* values below."""
TAG_SEARCH = "prunebench.search"
"""The Optuna study name of a search run and of its trials and their training runs."""
TAG_VARIANT = "prunebench.variant"
"""The preset label of the pruner variant a search (and its trials and training runs) explores."""
TAG_LOOKS = "prunebench.looks"
"""On an experiment run with --until-decided: the design's number of looks L (its verdicts
test at level / L)."""
TAG_ROUNDS = "prunebench.rounds"
"""On an experiment run with --until-decided: "INITIAL+ROUND", its seeds before the first look
and the seeds each round adds (a verdict on N seeds rests on 1 + ceil((N - INITIAL) / ROUND)
rounds)."""
TAG_MARGIN = "prunebench.margin"
"""On an experiment run with --until-decided: the margin its rounds decided at."""
TAG_CONFIRMATION = "prunebench.confirmation"
"""On a search's training runs on fresh seeds that confirm (or not) its answer: "true"."""
TAG_PARENT_RUN = "mlflow.parentRunId"
TAG_RUN_NAME = "mlflow.runName"
TAG_TRIAL_NUMBER = "optuna.trial_number"
TAG_BEST_PREFIX = "best."
"""A search's best parameters, as tags ``best.<param>`` (a later trial may improve them)."""
TAG_DATA_SOURCE = "prunebench.source"
"""On a generated (synthetic) dataset input: the generator that made it."""
TAG_PROCESS = "prunebench.process"
"""``<host>:<pid>:<process start time>`` of the process training a run (set at each start or
resume): a RUNNING run whose process is gone from this host is an orphan."""

# ---------------------------------------------------------------------------- experiment tags
EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
"""MLflow 3's experiment kind; its UI shows training runs for TRAINING_KIND."""
TRAINING_KIND = "custom_model_development"
"""MLflow 3's experiment kind for model training (vs ``genai_development``)."""
DESCRIPTION_TAG = "mlflow.note.content"
"""The experiment description shown above its runs in the MLflow UI."""
EXPERIMENT_DESCRIPTION = (
    f"prunebench training runs. Compare a cell's seeds by grouping the runs table by the tag "
    f"{TAG_CELL} (one suite generation: {TAG_SUITE}); nested runs under a search are its Optuna "
    "trials."
)
NEW_EXPERIMENT_TAGS = {EXPERIMENT_KIND_TAG: TRAINING_KIND, DESCRIPTION_TAG: EXPERIMENT_DESCRIPTION}
"""Tags of an experiment prunebench creates (an existing experiment's tags are never changed)."""

# ---------------------------------------------------------------------------- run kinds
KIND_TRAIN = "train"
KIND_SEARCH = "search"
KIND_TRIAL = "trial"
KIND_SEARCH_TRAIN = "search_train"
KIND_REPORT = "report"
SEARCH_KINDS = (KIND_SEARCH, KIND_TRIAL)
"""Kinds whose nested training runs are a search's, not the benchmark grid's."""

# ---------------------------------------------------------------------------- comparisons
COMPARISON_MAIN = "main"
"""The preset's ordinary cells (full data on the full budget included); untagged runs too."""
COMPARISON_SAME_COMPUTE = "same_compute"
"""Full data given the sample passes of the pruned runs at one prune ratio."""
COMPARISON_EQUAL_TIME = "equal_time"
"""Every pruner given the same wall-clock training seconds."""
COMPARISON_SATURATION = "saturation"
"""Full data on a multiple of the budget: how much more training would still gain."""
COMPARISONS = (
    COMPARISON_MAIN,
    COMPARISON_SAME_COMPUTE,
    COMPARISON_EQUAL_TIME,
    COMPARISON_SATURATION,
)

# ---------------------------------------------------------------------------- metrics
PROGRESS_CHECKPOINTS = (0.2, 0.4, 0.6, 0.8, 1.0)
"""Training-progress checkpoints of the paper's Tables 8 and 11: where gradient alignment is
measured by default and where the report reads coreset Jaccard and ``grad_cosine``."""
ALIGNMENT_METRICS = (
    "grad_cosine",
    "grad_norm_full",
    "grad_norm_plan",
    "grad_alignment_progress",
    "diagnostics_seconds",
)
"""Per-epoch metrics of runs with ``grad_alignment`` on (bench/diagnostics.py): the first four at
the epochs that reached a progress checkpoint, ``diagnostics_seconds`` (cumulative) every epoch."""
EPOCH_METRICS = (
    "test_accuracy",
    "test_loss",
    "eval_samples_trained",
    "eval_train_seconds",
    "train_loss",
    "lr",
    "momentum",
    "kept_fraction",
    "train_seconds",
    "eval_seconds",
    "process_cpu_seconds",
    "samples_trained",
    "scoring_forward_passes",
    "train_steps",
    "grad_norm",
    "grad_norm_std",
    "subset_jaccard",
    *ALIGNMENT_METRICS,
)
"""Per-epoch metrics of a training run (step = epoch; ``subset_jaccard`` absent at epoch 0;
``test_accuracy`` and ``test_loss`` only at the epochs that evaluated, see ``eval_points``, with
``eval_samples_trained`` and ``eval_train_seconds``: the sample passes and training seconds at
that evaluation, which happens where the run's clock reached an evaluation point common to every
pruner of the cell (budgets.eval_interval), within the epoch when the point fell inside it).

``grad_norm`` and ``grad_norm_std`` are the mean and population std (ddof=0) of the epoch's
per-step gradient norms over its ``train_steps`` optimizer steps, so the epochs of a training
phase pool exactly into the phase's mean and std (Table 9's within-run fluctuation).

The trainer logs exactly these (:func:`check_epoch_metrics`) and the report reads these
histories: a new per-epoch metric is one name here and the trainer line that computes it."""
SUMMARY_METRICS = (
    "final_test_accuracy",
    "best_test_accuracy",
    "realized_prune_ratio",
    "train_seconds_total",
    "eval_seconds_total",
    "train_device_hours",
    "total_device_hours",
    "samples_trained_total",
    "train_samples_per_second",
    "process_cpu_seconds_total",
    "scoring_forward_passes_total",
    "epochs_run",
    "evaluations",
    "zero_usage_samples",
)
"""Summary metrics logged once at the end of a training run (plus ``tta_*`` per target).

``train_samples_per_second`` (samples trained / training seconds) and ``process_cpu_seconds_total``
(the process's CPU time over its epochs, evaluation included) say whether the wall clock can be
trusted: the report flags the time figures of a run whose throughput deviates from its suite's
runs of the same dataset, model and device.

``evaluations`` is the number of test evaluations the accuracies and ``tta_*`` rest on (param
``eval_points`` says how they were scheduled): time-to-accuracy is known to that resolution.
``diagnostics_seconds_total`` is logged as well when gradient alignment was measured."""
DIAGNOSTICS_SECONDS_TOTAL = "diagnostics_seconds_total"
"""Gradient-alignment measurement seconds of a run: outside the training and evaluation clocks."""
METRIC_RATIO_SHORTFALL = "ratio_shortfall"
"""Of a run whose pruner steers to a target realized ratio (InfoBatch's realized mode): the run's
realized prune ratio minus that target, signed (negative: the target was not reached)."""
METRIC_PRUNER_PREFIX = "pruner."
"""A pruner's own end-of-run summary (:attr:`Pruner.run_summary`) is logged as ``pruner.<name>``
metrics (e.g. InfoBatch's largest loss weight, ``pruner.max_weight``)."""


METRIC_TTA_SECONDS = "tta_seconds"
"""Prefix of the summary metric: training seconds to the first evaluation at an accuracy target."""
METRIC_TTA_SAMPLES = "tta_samples"
"""Prefix of the summary metric: sample passes to the first evaluation at an accuracy target."""


def target_key(prefix: str, target: float) -> str:
    """Metric name for an accuracy target, e.g. ``tta_seconds_0.90``."""
    return f"{prefix}_{target:.2f}"


def check_epoch_metrics(entry: dict[str, float]) -> dict[str, float]:
    """``entry`` unchanged if every key is in EPOCH_METRICS; ValueError names the stray key."""
    unknown = sorted(set(entry) - set(EPOCH_METRICS))
    if unknown:
        raise ValueError(f"per-epoch metric {unknown[0]!r} is not in record.EPOCH_METRICS")
    return entry


# ---------------------------------------------------------------------------- params
PARAM_PRUNER_PREFIX = "pruner."
"""A pruner's own parameters are logged as ``pruner.<name>``."""
PARAM_CONFIG_HASH = "config_hash"
PARAM_VERSION = "prunebench_version"
PARAM_DEVICE_COUNT = "device_count"
"""Devices the run trained on (its processes, one device each); device-hours count them all."""
PARAM_BATCH_PER_DEVICE = "batch_size_per_device"
"""The per-process batch: the global ``batch_size`` divided among ``nproc`` processes."""
PARAM_TARGET_PRUNE_RATIO = "target_prune_ratio"
PARAM_MATCHED_PRUNE_RATIO = "matched_prune_ratio"
PARAM_BUDGET_MULTIPLE = "budget_multiple"
"""Of a same-compute full run: the target realized prune ratio whose sample passes it matches."""
PARAM_TIME_BUDGET_FRACTION = "time_budget_fraction"
"""Of an equal-time run: its training seconds as a fraction of the full-data run's."""
PARAM_TIME_BUDGET_SECONDS = "time_budget_seconds"
PARAM_NVML_INDEX = "nvml_index"
"""Of a GPU run: its GPU's index as NVML numbers it, hence MLflow's ``system/gpu_<i>_*`` metrics.
It differs from torch's ``cuda:<i>`` when CUDA_VISIBLE_DEVICES reorders or hides GPUs."""

# ---------------------------------------------------------------------------- artifacts
ARTIFACT_TRACEBACK = "traceback.txt"
"""A failed run's traceback (the terminal gets one line per failed cell, the run keeps this)."""


# ---------------------------------------------------------------------------- tags per event
def new_run_tags(kind: str, **extra: str) -> dict[str, str]:
    """Tags of a run being created: its kind and RUNNING status, plus ``extra``."""
    return {TAG_KIND: kind, TAG_STATUS: "RUNNING", **extra}


def end_tags(status: str, failure_reason: str | None = None) -> dict[str, str]:
    """Tags recording how a run ended (an interrupted run stays RUNNING, hence resumable)."""
    tags = {TAG_STATUS: status if status != "KILLED" else "RUNNING"}
    if failure_reason:
        tags[TAG_FAILURE_REASON] = failure_reason
    return tags


def set_tags(store: MlflowClient, run_id: str, tags: dict[str, str]) -> None:
    """Set (or overwrite) ``tags`` of run ``run_id`` in one call."""
    from mlflow.entities import RunTag

    store.log_batch(run_id, tags=[RunTag(key, str(value)) for key, value in tags.items()])


def train_filter(
    config_hash: str | None = None, finished: bool = False, status: str | None = None
) -> str:
    """An MLflow filter string for training runs (of one config; FINISHED only; of a status)."""
    parts = [f"tags.`{TAG_KIND}` = '{KIND_TRAIN}'"]
    if config_hash is not None:
        parts.append(f"tags.`{TAG_CONFIG_HASH}` = '{config_hash}'")
    status = "FINISHED" if finished else status
    if status is not None:
        parts.append(f"attributes.status = '{status}'")
    return " and ".join(parts)


# ---------------------------------------------------------------------------- tracking URI
def resolve_tracking_uri(uri: str | None = None) -> str:
    """The given URI, else $MLFLOW_TRACKING_URI, else DEFAULT_TRACKING_URI; a relative SQLite
    path made absolute against the current directory.

    MLflow caches one store per URI string for the life of the process, so a relative path
    would keep pointing at the directory of the first use.
    """
    uri = uri or os.environ.get("MLFLOW_TRACKING_URI") or DEFAULT_TRACKING_URI
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
    if not os.access(parent, os.W_OK) or (path.exists() and not os.access(path, os.W_OK)):
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


def _check_database_connects(uri: str, timeout_s: float) -> None:
    parsed = urllib.parse.urlparse(uri)
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
            f"({redact_text(first_line)[:160]}); start it or pass another --tracking-uri"
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
    path = Path(uri[len("sqlite:///") :])
    if not path.is_file():
        raise UsageError(
            f"No MLflow database at {redact_url(path)}; pass the store your runs were logged to "
            f"with --tracking-uri (e.g. sqlite:///path/to/mlflow.db)."
        )
    _check_sqlite_database(uri)  # a hot journal rolled back, a half-migrated store named
    try:
        with contextlib.closing(sqlite3.connect(path.resolve().as_uri(), uri=True)) as connection:
            tables = {
                row[0]
                for row in connection.execute("SELECT name FROM sqlite_master WHERE type='table'")
            }
    except sqlite3.DatabaseError as error:
        raise UsageError(
            f"{redact_url(path)} is not a readable sqlite database ({error})."
        ) from error
    if not {"experiments", "runs"} <= tables:
        raise UsageError(
            f"{redact_url(path)} is not an MLflow tracking database; pass the right --tracking-uri."
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
        location = uri[len("sqlite:///") :]
        if existing:
            _check_sqlite_store(uri)
        elif location and location != ":memory:":
            _check_writable_parent(Path(location), uri)
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
            _check_database_connects(uri, timeout_s)


def store_exists(tracking_uri: str) -> bool:
    """False for a local store not created yet (a dry run must not create it)."""
    if tracking_uri.startswith("sqlite:///"):
        return Path(tracking_uri.removeprefix("sqlite:///")).is_file()
    if "://" not in tracking_uri or tracking_uri.startswith("file:"):
        return Path(tracking_uri.removeprefix("file://")).exists()
    return True


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
