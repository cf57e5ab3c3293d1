"""The training side of a search: one seed of a trial trained for real, or a finished run of
the same config hash (a suite cell, an earlier trial) reused; the full-data reference."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any

from prunebench import mlflow_store, record
from prunebench.pruners import pruner_class, reference_pruner
from prunebench.suite.preset_cells import Preset

Evaluate = Callable[[str, dict[str, Any], int, dict[str, str]], tuple[float, float]]
"""(pruner, params, seed, mlflow tags) -> (test accuracy, realized prune ratio) of one run."""


def training_evaluator(
    preset: Preset,
    dataset: str,
    model: str,
    tracking_uri: str,
    checkpoint_dir: str | Path,
    label: str | None = None,
) -> Evaluate:
    """Evaluate by training the preset's configuration for real (one MLflow run per seed); a
    config hash MLflow already holds FINISHED (a suite cell, an earlier trial) is reused."""
    from prunebench.bench.run import train_run

    client = mlflow_store.client(tracking_uri)

    def evaluate(pruner: str, params: dict[str, Any], seed: int, tags: dict[str, str]):
        if pruner_class(pruner).is_reference:
            cfg = preset.reference_config(dataset, model, seed)  # the suite's own full cell
        else:
            cfg = preset.cell_config(dataset, model, label or pruner, dict(params), seed)
        cfg.validate()
        finished = client.search_runs(
            [mlflow_store.get_or_create_experiment(client, preset.name)],
            filter_string=f"tags.`{record.TAG_CONFIG_HASH}` = '{cfg.config_hash()}' "
            "and attributes.status = 'FINISHED'",
            max_results=1,
        )
        if finished:
            metrics = finished[0].data.metrics
            return metrics[record.METRIC_FINAL_ACCURACY], metrics[record.METRIC_REALIZED_RATIO]
        result = train_run(
            cfg,
            tracking_uri=tracking_uri,
            experiment=preset.name,
            checkpoint_dir=Path(checkpoint_dir) / "search",
            resume=True,
            tags=tags,
            quiet=True,
        )
        if result.status != "FINISHED":
            return float("nan"), float("nan")
        metrics = result.metrics
        return metrics[record.METRIC_FINAL_ACCURACY], metrics[record.METRIC_REALIZED_RATIO]

    return evaluate


def full_reference(
    preset: Preset,
    dataset: str,
    model: str,
    seeds: list[int],
    tracking_uri: str,
    evaluate: Evaluate,
) -> list[float]:
    """Full-data accuracies for ``seeds``: the suite's full-data cells when MLflow holds them
    finished, else those cells trained now (so the suite later finds them done)."""
    client = mlflow_store.client(tracking_uri)
    experiment_id = mlflow_store.get_or_create_experiment(client, preset.name)
    accuracies = []
    for seed in seeds:
        cfg = preset.reference_config(dataset, model, seed)
        finished = client.search_runs(
            [experiment_id],
            filter_string=record.train_filter(cfg.config_hash(), finished=True),
            max_results=1,
        )
        if finished:
            accuracies.append(finished[0].data.metrics[record.METRIC_FINAL_ACCURACY])
        else:
            tags = {
                record.TAG_PRESET: preset.name,
                record.TAG_EXPECTED_SEEDS: str(len(preset.seeds)),
            }
            accuracy, _ = evaluate(reference_pruner(), {}, seed, tags)
            accuracies.append(accuracy)
    return accuracies
