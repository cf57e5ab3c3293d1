"""The MLflow writer of one training run, on the record schema of ``prunebench.record``.

Every call goes through an explicit client from ``mlflow_store.client``; the global MLflow state
(``mlflow.set_tracking_uri``, active runs) is never touched.
"""

from __future__ import annotations

import logging
import os
import socket
import traceback
from pathlib import Path
from typing import Any

from prunebench import interrupts, mlflow_store, record
from prunebench.errors import UsageError
from prunebench.stores import redact_url

log = logging.getLogger(__name__)


class RunTracker:
    """Writes one training run: params and tags once, one metrics batch per epoch, artifacts."""

    def __init__(self, tracking_uri: str, experiment: str, run_id: str):
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self.client = mlflow_store.client(tracking_uri)
        self.run_id = run_id

    @classmethod
    def start(
        cls, tracking_uri: str, experiment: str, run_name: str, tags: dict[str, str]
    ) -> RunTracker:
        """Create a new run in ``experiment`` (created if missing)."""
        client = mlflow_store.client(tracking_uri)
        experiment_id = mlflow_store.get_or_create_experiment(client, experiment)
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
                f"the checkpoint's MLflow run {run_id} is not in {redact_url(tracking_uri)}; "
                "pass the --tracking-uri it was logged to, or run without --resume"
            ) from None
        tracker.client.update_run(run_id, status="RUNNING")
        tracker.set_tags({record.TAG_PROCESS: process_tag()})
        return tracker

    def log_params(self, params: dict[str, Any]) -> None:
        """Log params (stringified), in batches of MLflow's limit."""
        mlflow_store.log_values(self.client, self.run_id, params=params)

    def set_tags(self, tags: dict[str, str]) -> None:
        """Set (or overwrite) tags."""
        mlflow_store.set_tags(self.client, self.run_id, tags)

    def log_epoch(self, entry: dict[str, float], epoch: int) -> None:
        """Log one epoch's metrics (names from ``record.EPOCH_METRICS``) at step ``epoch``."""
        self.log_metrics(record.check_epoch_metrics(entry), step=epoch)

    def log_metrics(self, metrics: dict[str, float], step: int = 0) -> None:
        """Log metrics at ``step`` in one batch."""
        mlflow_store.log_values(self.client, self.run_id, metrics=metrics, step=step)

    def log_history(self, history: list[dict[str, float]], key: str = "train_loss") -> None:
        """Log the epochs of ``history`` (entry i at step i) whose ``key`` is not logged yet.

        ``key`` is a metric every epoch logs (test accuracy is only logged at evaluations)."""
        logged = {metric.step for metric in self.client.get_metric_history(self.run_id, key)}
        for step, entry in enumerate(history):
            if step not in logged:
                self.log_epoch(entry, step)

    def log_artifact(self, path: Path) -> None:
        """Upload one local file to the run's artifact root."""
        self.client.log_artifact(self.run_id, str(path))

    def log_text(self, text: str, name: str) -> None:
        """Store ``text`` as the artifact file ``name`` of the run."""
        self.client.log_text(self.run_id, text, name)

    def _tags(self) -> dict[str, str]:
        return self.client.get_run(self.run_id).data.tags

    def finish(self, status: str, failure_reason: str | None = None) -> None:
        """Set the prunebench status tags and MLflow's own run status (FINISHED/FAILED/KILLED)."""
        self.set_tags(record.end_tags(status, failure_reason))
        if not failure_reason and record.TAG_FAILURE_REASON in self._tags():
            # A resumed run that failed before: its old reason no longer describes it.
            self.client.delete_tag(self.run_id, record.TAG_FAILURE_REASON)
        self.client.set_terminated(self.run_id, status=status)


def log_traceback(tracker: RunTracker | SilentTracker) -> None:
    """Keep the failing traceback with the run: the terminal gets one line per failed cell."""
    try:
        tracker.log_text(traceback.format_exc(), record.ARTIFACT_TRACEBACK)
    except Exception:  # the store itself may be what failed; the reason tag still says why
        log.debug("could not log the traceback of run %s", tracker.run_id, exc_info=True)


def finish_quietly(tracker: RunTracker | SilentTracker, status: str, reason: str | None) -> None:
    """Record how a run ended without masking the exception that ended it (shielded: a signal
    arriving meanwhile is noted, not raised)."""
    with interrupts.shielded():
        interrupts.point("closing")
        try:
            tracker.finish(status, reason)
        except Exception:  # the store itself may be what failed
            # One line reaches the terminal (the error's); a run left RUNNING here is marked
            # KILLED by the next run of its config (end_orphaned_runs).
            log.debug("could not record %s for run %s", status, tracker.run_id, exc_info=True)


ORPHAN_REASON = "its process ended without recording an end (e.g. kill -9 or a full disk)"


def process_tag() -> str:
    """This process as ``record.TAG_PROCESS`` names it (the start time tells a reused pid)."""
    import psutil

    pid = os.getpid()
    return f"{socket.gethostname()}:{pid}:{psutil.Process(pid).create_time():.2f}"


def process_gone(tag: str | None) -> bool:
    """Whether the process a ``record.TAG_PROCESS`` value names has ended (False when it may
    live: another host's, or an untagged run)."""
    import psutil

    host, _, rest = (tag or "").partition(":")
    pid, _, started = rest.partition(":")
    if host != socket.gethostname() or not pid.isdigit():
        return False
    try:
        return f"{psutil.Process(int(pid)).create_time():.2f}" != started
    except psutil.NoSuchProcess:
        return True


def end_orphaned_runs(tracker: RunTracker, config_hash: str) -> list[str]:
    """Mark KILLED the RUNNING runs of ``config_hash`` in the tracker's experiment whose process
    has ended (other than the tracker's own run); their ids."""
    client = tracker.client
    experiment_id = mlflow_store.find_experiment_id(client, tracker.experiment)
    if experiment_id is None:
        return []
    running = record.train_filter(config_hash, status="RUNNING")
    orphans = [
        run.info.run_id
        for run in mlflow_store.search_all_runs(client, experiment_id, running)
        if run.info.run_id != tracker.run_id and process_gone(run.data.tags.get(record.TAG_PROCESS))
    ]
    for run_id in orphans:
        mlflow_store.set_tags(client, run_id, record.end_tags("KILLED", ORPHAN_REASON))
        client.set_terminated(run_id, status="KILLED")
    return orphans


class SilentTracker:
    """The tracker of a distributed run's ranks other than 0: RunTracker's interface, no writes.

    A separate class, not a RunTracker subclass: a write method added to RunTracker and not
    here fails loudly on those ranks instead of writing from every process.
    """

    def __init__(self, tracking_uri: str, experiment: str, run_id: str):
        self.tracking_uri = tracking_uri
        self.experiment = experiment
        self.run_id = run_id

    def log_params(self, params: dict[str, Any]) -> None:
        """Write nothing."""

    def set_tags(self, tags: dict[str, str]) -> None:
        """Write nothing."""

    def log_epoch(self, entry: dict[str, float], epoch: int) -> None:
        """Write nothing."""

    def log_metrics(self, metrics: dict[str, float], step: int = 0) -> None:
        """Write nothing."""

    def log_history(self, history: list[dict[str, float]], key: str = "train_loss") -> None:
        """Write nothing."""

    def log_artifact(self, path: Path) -> None:
        """Write nothing."""

    def log_text(self, text: str, name: str) -> None:
        """Write nothing."""

    def finish(self, status: str, failure_reason: str | None = None) -> None:
        """Write nothing."""
