"""MLflow -> pandas: open a tracking store; read an experiment's runs, histories and usage."""

from __future__ import annotations

import contextlib
import os
import tempfile
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd
from mlflow import MlflowClient
from mlflow.entities import ViewType
from mlflow.exceptions import MlflowException

from prunebench import mlflow_store, record
from prunebench.errors import UsageError
from prunebench.reports.frame import FINAL_ACCURACY
from prunebench.reports.mlflow_ui import run_utilization

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
    """Per-epoch metrics of usable training runs: ``run_id``, ``step`` and record.EPOCH_METRICS."""
    usage: dict[str, np.ndarray] = field(default_factory=dict)
    """Per-sample usage counts (``usage.npz``) of usable training runs, by run id."""
    utilization: pd.DataFrame = field(default_factory=pd.DataFrame)
    """Mean system-metrics utilization of usable training runs (mlflow_ui.run_utilization)."""


def find_experiment(client: MlflowClient, name: str) -> str:
    """The id of experiment ``name``, or UsageError listing the experiments that exist."""
    experiment_id = mlflow_store.find_experiment_id(client, name)
    if experiment_id is not None:
        return experiment_id
    names = sorted(e.name for e in client.search_experiments(view_type=ViewType.ACTIVE_ONLY))
    listed = ", ".join(names[:20]) + (", ..." if len(names) > 20 else "")
    raise UsageError(
        f"No MLflow experiment named {name!r} in this store (it has: {listed or 'none'}); "
        f"pass one of those to --experiment or the right --tracking-uri."
    )


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
    cell_parts = (tags.get(record.TAG_CELL, "").split("/") + [""] * 4)[:4]
    status = _status(tags.get(record.TAG_STATUS), run.info.status)
    reason = tags.get(record.TAG_FAILURE_REASON) or (
        _DEFAULT_REASON.get(status, "") if status != "FINISHED" else ""
    )
    label = params.get("pruner_label") or cell_parts[2] or params.get("pruner", "")
    row = {
        "run_id": run.info.run_id,
        "run_name": tags.get(record.TAG_RUN_NAME, run.info.run_name or ""),
        "kind": tags.get(record.TAG_KIND, ""),
        "status": status,
        "failure_reason": reason,
        "start_time": int(run.info.start_time or 0),
        "parent_run_id": tags.get(record.TAG_PARENT_RUN, ""),
        "cell": tags.get(record.TAG_CELL, ""),
        "dataset": params.get("dataset") or cell_parts[0],
        "model": params.get("model") or cell_parts[1],
        "pruner": params.get("pruner") or label,
        "pruner_label": label,
        # Rounded so "0.3" from a param and 1 - 0.7 from a preset name the same cell.
        "target_prune_ratio": round(_float(params.get("target_prune_ratio", cell_parts[3])), 9),
        "seed": _float(params.get("seed")),
        "budget": params.get("budget", ""),
        "train_size": _float(params.get("train_size")),
        "expected_seeds": _float(tags.get(record.TAG_EXPECTED_SEEDS)),
        # Untagged runs (written before comparisons existed) are the preset's ordinary cells.
        "comparison": tags.get(record.TAG_COMPARISON) or record.COMPARISON_MAIN,
        "matched_prune_ratio": _float(params.get(record.PARAM_MATCHED_PRUNE_RATIO)),
        "budget_multiple": _float(params.get(record.PARAM_BUDGET_MULTIPLE)),
        "time_budget_fraction": _float(params.get(record.PARAM_TIME_BUDGET_FRACTION)),
        "time_budget_seconds": _float(params.get(record.PARAM_TIME_BUDGET_SECONDS)),
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
    if FINAL_ACCURACY not in frame:
        frame[FINAL_ACCURACY] = np.nan
    broken = (
        (frame["kind"] == record.KIND_TRAIN)
        & (frame["status"] == "FINISHED")
        & frame[FINAL_ACCURACY].isna()
    )
    frame.loc[broken, "status"] = "INCOMPLETE"
    frame.loc[broken, "failure_reason"] = "finished without a final_test_accuracy summary metric"
    return frame


def training_runs(runs: pd.DataFrame) -> pd.DataFrame:
    """Benchmark training runs: kind "train", excluding those nested under a search's trials."""
    if runs.empty:
        return runs
    search_ids = set(runs.loc[runs["kind"].isin(record.SEARCH_KINDS), "run_id"])
    keep = (runs["kind"] == record.KIND_TRAIN) & ~runs["parent_run_id"].isin(search_ids)
    return runs[keep]


def _step_then_time(metric) -> tuple[int, int]:
    return metric.step, metric.timestamp


def _histories(client: MlflowClient, run_ids: Iterable[str]) -> pd.DataFrame:
    frames = []
    for run_id in run_ids:
        columns = {}
        for key in record.EPOCH_METRICS:
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
        return pd.DataFrame(columns=["run_id", "step", *record.EPOCH_METRICS])
    out = pd.concat(frames, ignore_index=True)
    for key in record.EPOCH_METRICS:
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
    runs = runs_frame(mlflow_store.search_all_runs(client, experiment_id))
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
