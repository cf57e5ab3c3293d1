"""MLflow as its own UI expects it: training experiments, and MLflow's system-metrics sampling.

MLflow 3 defines an experiment's kind by its tag ``mlflow.experimentKind``:
``custom_model_development`` for model training (vs ``genai_development``). Experiments prunebench
creates get that kind at creation; an existing experiment's tags are never changed. The 3.17 UI
itself picks its pages by a workflow switch (top left, "GenAI" / "Model training", remembered by
the browser, GenAI by default) that the URL parameter ``workflowType=machine_learning`` sets, so
links prunebench prints or writes carry that parameter (``UI_TRAINING_VIEW``).

System metrics are MLflow's own (``mlflow.system_metrics``: CPU and memory through psutil, disk,
network, and per-GPU utilization, memory and power through NVML from nvidia-ml-py), logged by
its ``SystemMetricsMonitor`` for one explicit run id and tracking URI, so no global MLflow state
(active run, ``mlflow.enable_system_metrics_logging``) is involved.
"""

from __future__ import annotations

import contextlib
import logging
from collections.abc import Iterator

log = logging.getLogger(__name__)

EXPERIMENT_KIND_TAG = "mlflow.experimentKind"
TRAINING_KIND = "custom_model_development"
"""MLflow 3's experiment kind for model training (vs ``genai_development``)."""
DESCRIPTION_TAG = "mlflow.note.content"
"""The experiment description shown above its runs in the MLflow UI."""
DESCRIPTION = (
    "prunebench training runs. Compare a cell's seeds by grouping the runs table by the tag "
    "prunebench.cell; nested runs under a search are its Optuna trials."
)
UI_TRAINING_VIEW = "?workflowType=machine_learning"
"""URL query that opens MLflow 3.17's UI on its model-training pages (runs table, run page)."""
DEFAULT_UI_URL = "http://127.0.0.1:5000"
"""Where `nox -s ui` serves MLflow's UI (the report's run links point there by default)."""
SUITE_SYSTEM_METRICS_INTERVAL_S = 10.0
"""Suite runs' sampling interval (MLflow's default). Measured on a loaded 2-core CPU with SQLite
(benchmarks/system_metrics.py): one sample ~70 ms wall, mostly the store's write, and epochs
sampled every 0.25 s ran 19% longer, i.e. ~0.5% at 10 s: under the 1% target."""


def get_or_create_experiment(client, name: str) -> str:
    """The id of experiment ``name``; created as a training experiment if it does not exist."""
    from mlflow.exceptions import MlflowException

    found = client.get_experiment_by_name(name)
    if found is not None:
        return found.experiment_id
    try:
        return client.create_experiment(
            name, tags={EXPERIMENT_KIND_TAG: TRAINING_KIND, DESCRIPTION_TAG: DESCRIPTION}
        )
    except MlflowException:
        found = client.get_experiment_by_name(name)  # another worker created it meanwhile
        if found is None:
            raise
        return found.experiment_id


def experiment_url(ui_url: str, experiment_id: str) -> str:
    """The MLflow UI's runs table of one experiment."""
    return f"{ui_url.rstrip('/')}/#/experiments/{experiment_id}{UI_TRAINING_VIEW}"


def run_url(ui_url: str, experiment_id: str, run_id: str) -> str:
    """The MLflow UI's page of one run."""
    return f"{ui_url.rstrip('/')}/#/experiments/{experiment_id}/runs/{run_id}{UI_TRAINING_VIEW}"


@contextlib.contextmanager
def system_metrics(
    tracking_uri: str, run_id: str, interval_s: float | None, resume: bool = False
) -> Iterator[None]:
    """Log MLflow's ``system/*`` metrics to ``run_id`` every ``interval_s`` s (None or 0: off).

    The environment variable MLFLOW_SYSTEM_METRICS_SAMPLING_INTERVAL, when set, overrides the
    interval (MLflow's rule). A resumed run continues the metrics' steps. Samples are taken while
    the body runs; the last, incomplete interval is not logged.
    """
    if not interval_s:
        yield
        return
    import psutil
    from mlflow.system_metrics.system_metrics_monitor import SystemMetricsMonitor

    # psutil measures CPU use since its previous call; without this the first sample reads 0.
    psutil.cpu_percent()
    monitor = SystemMetricsMonitor(
        run_id, sampling_interval=interval_s, resume_logging=resume, tracking_uri=tracking_uri
    )
    monitor.start()
    try:
        yield
    finally:
        monitor.finish()


def redact_url(url: str) -> str:
    """``url`` with the password of its user info replaced by ``***`` (for people to read).

    A local stand-in until ``prunebench.stores.redact_url`` lands; it is used when present.
    """
    try:
        from prunebench.stores import redact_url as shared_redact_url
    except ImportError:
        return _redact(url)
    return shared_redact_url(url)


def _redact(url: str) -> str:
    import urllib.parse

    parts = urllib.parse.urlsplit(url)
    if parts.password is None:
        return url
    user_info, _, host = parts.netloc.rpartition("@")
    user = user_info.split(":", 1)[0]
    return urllib.parse.urlunsplit(parts._replace(netloc=f"{user}:***@{host}"))
