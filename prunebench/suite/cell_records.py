"""What MLflow records of a suite's cells: each config hash's status, the amount a symbolic
budget (equal time, same compute) is resolved from once the runs it rests on have finished, and
the orphaned runs of a cell a worker has just claimed."""

from __future__ import annotations

import dataclasses

from prunebench import mlflow_store, record
from prunebench.bench.budgets import SAME_COMPUTE
from prunebench.bench.config import RunConfig
from prunebench.suite.preset_cells import Preset

ORPHAN_REASON = (
    "its worker stopped without recording an end (e.g. kill -9) and its cell went to another worker"
)


def recorded_runs(tracking_uri: str, experiment: str) -> dict[str, tuple[str, str | None]]:
    """config hash -> (status, failure reason) of the experiment's training runs, FINISHED first."""
    client = mlflow_store.client(tracking_uri)
    experiment_id = mlflow_store.find_experiment_id(client, experiment)
    if experiment_id is None:
        return {}
    records: dict[str, tuple[str, str | None]] = {}
    for run in mlflow_store.search_all_runs(client, experiment_id, record.train_filter()):
        key = run.data.tags.get(record.TAG_CONFIG_HASH)
        status = run.info.status
        if key and records.get(key, ("",))[0] != "FINISHED":
            records[key] = (status, run.data.tags.get(record.TAG_FAILURE_REASON))
    return records


def reference_amount(preset: Preset, cfg: RunConfig, tracking_uri: str) -> float | None:
    """What a symbolic budget is resolved from (None while no run it rests on has finished):
    for an equal-time cell the mean training seconds of the finished full-data main runs, for a
    same-compute cell the mean sample passes of the finished pruned main runs it matches."""
    metric = (
        record.METRIC_SAMPLES_TRAINED_TOTAL
        if cfg.budget.kind == SAME_COMPUTE
        else record.METRIC_TRAIN_SECONDS_TOTAL
    )
    client = mlflow_store.client(tracking_uri)
    experiment_id = mlflow_store.find_experiment_id(client, preset.name)
    if experiment_id is None:
        return None
    values = []
    for reference in preset.reference_cells(cfg):
        finished = client.search_runs(
            [experiment_id],
            filter_string=record.train_filter(reference.config_hash(), finished=True),
            max_results=1,
        )
        if finished and metric in finished[0].data.metrics:
            values.append(finished[0].data.metrics[metric])
    return sum(values) / len(values) if values else None


def resolve_cell(preset: Preset, cfg: RunConfig, tracking_uri: str) -> RunConfig | None:
    """``cfg`` ready to train: a cell with a symbolic budget resolved (None while the runs it
    rests on have not finished); any other cell as it is."""
    if not cfg.budget.is_symbolic:
        return cfg
    reference = reference_amount(preset, cfg, tracking_uri)
    if reference is None:
        return None
    resolved = cfg.budget.resolve(reference).amount
    if cfg.budget.kind == SAME_COMPUTE:
        return dataclasses.replace(cfg, same_compute_samples=int(resolved))
    return dataclasses.replace(cfg, time_budget_seconds=resolved)


def end_orphaned_runs(tracking_uri: str, experiment: str, config_hash: str) -> list[str]:
    """Mark KILLED the RUNNING runs of a cell whose claim this worker now holds; their ids.

    A live run of the cell would hold its claim, so these are runs whose process died before
    recording an end (kill -9, power loss) and that would otherwise stay RUNNING forever. A run
    that left a checkpoint is resumed next, and resuming sets it RUNNING again: one config hash
    has at most one live run.
    """
    store = mlflow_store.client(tracking_uri)
    experiment_id = mlflow_store.find_experiment_id(store, experiment)
    if experiment_id is None:
        return []
    running = record.train_filter(config_hash, status="RUNNING")
    orphans = [
        run.info.run_id for run in mlflow_store.search_all_runs(store, experiment_id, running)
    ]
    for run_id in orphans:
        mlflow_store.set_tags(store, run_id, record.end_tags("KILLED", ORPHAN_REASON))
        store.set_terminated(run_id, status="KILLED")
    return orphans
