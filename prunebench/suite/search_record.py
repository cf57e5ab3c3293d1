"""A search's MLflow record: the study's run (one, shared by every worker), its result and
the tags of its confirmation runs. Names come from ``prunebench.record``; writes go through
``mlflow_store.log_values``."""

from __future__ import annotations

import json
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import optuna
from optuna.trial import TrialState

from prunebench import mlflow_store, record
from prunebench.stats import DEFAULT_LEVEL
from prunebench.stores import first_use_lock
from prunebench.suite.confirm import Confirmation
from prunebench.suite.preset_cells import Preset


@dataclass(frozen=True)
class SearchResult:
    """The search's answer and everything it explored."""

    study_name: str
    run_id: str
    full_accuracy_mean: float
    full_accuracy_std: float
    tolerance: float
    best: dict[str, Any] | None  # params, prune_ratio, accuracy_mean of the largest lossless
    frontier: list[dict[str, Any]]  # every finished trial, by prune ratio
    variant: str = ""  # the preset label of the pruner variant searched
    confirmation: Confirmation | None = None  # the answer retrained on fresh seeds
    training_runs: int = 0  # runs the trials and the confirmation asked for


def confirm_tags(search_run_id, study_name, preset: Preset, variant) -> dict[str, str]:
    """The tags of a search's training runs on fresh seeds that confirm its answer."""
    return {
        record.TAG_KIND: record.KIND_SEARCH_TRAIN,
        record.TAG_PARENT_RUN: search_run_id,
        record.TAG_SEARCH: study_name,
        record.TAG_PRESET: preset.name,
        record.TAG_VARIANT: variant,
        record.TAG_CONFIRMATION: "true",
    }


def search_run(
    client, storage_url, storage, preset, study, pruner, variant, dataset, model, seeds, margin
) -> str:
    """The study's MLflow run: created once, shared by every worker through a study attr.

    This machine's workers look it up and create it in turn, under the Optuna store's lock (a
    look-up outside the lock let two workers each create one). Workers on two machines may still
    both create one: each then adopts the id the study kept and deletes its own.
    """
    experiment_id = mlflow_store.get_or_create_experiment(client, preset.name)  # takes its own lock
    with first_use_lock(storage_url):
        kept = optuna.load_study(study_name=study.study_name, storage=storage).user_attrs
        if kept.get("mlflow_run_id"):
            return kept["mlflow_run_id"]
        run = client.create_run(
            experiment_id,
            run_name=f"search-{pruner}",
            tags={
                record.TAG_KIND: record.KIND_SEARCH,
                record.TAG_SEARCH: study.study_name,
                record.TAG_PRESET: preset.name,
                record.TAG_VARIANT: variant,
            },
        )
        mlflow_store.log_values(
            client,
            run.info.run_id,
            params={
                "search_pruner": pruner,
                "search_variant": variant,
                "search_dataset": dataset,
                "search_model": model,
                "search_seeds": seeds,
                "tolerance": margin,
                "lossless_rule": (
                    f"welch non-inferiority, margin {margin:g}, level {DEFAULT_LEVEL:g}"
                ),
                "budget": preset.budget,
            },
        )
        study.set_user_attr("mlflow_run_id", run.info.run_id)
    kept = optuna.load_study(study_name=study.study_name, storage=storage).user_attrs
    if kept["mlflow_run_id"] != run.info.run_id:
        client.delete_run(run.info.run_id)
    return kept["mlflow_run_id"]


def summarize(study, study_name, run_id, full_mean, full_std, margin, variant) -> SearchResult:
    """The study's answer: every finished trial by prune ratio, and the largest lossless."""
    frontier = []
    for trial in study.get_trials(deepcopy=False, states=(TrialState.COMPLETE,)):
        frontier.append(
            {
                "trial": trial.number,
                "prune_ratio": trial.value,
                "accuracy_mean": trial.user_attrs["accuracy_mean"],
                "accuracy_std": trial.user_attrs["accuracy_std"],
                "lossless": trial.user_attrs["lossless"],
                "params": trial.user_attrs["params"],
            }
        )
    frontier.sort(key=lambda row: row["prune_ratio"])
    lossless = [row for row in frontier if row["lossless"]]
    best = max(lossless, key=lambda row: row["prune_ratio"]) if lossless else None
    return SearchResult(study_name, run_id, full_mean, full_std, margin, best, frontier, variant)


def log_result(client, run_id: str, result: SearchResult) -> None:
    """Log the answer, its frontier and confirmation on the study's run, and finish it."""
    metrics = {}
    confirmation = result.confirmation
    if confirmation is not None:  # the worker that confirmed logs the whole search's cost
        metrics["search_training_runs"] = result.training_runs
        metrics["confirm_seeds"] = len(confirmation.seeds)
        metrics["confirm_attempts"] = len(confirmation.attempts)
        metrics["confirm_looks"] = sum(attempt.looks for attempt in confirmation.attempts)
        confirmed = confirmation.confirmed
        if confirmed is not None:
            metrics["confirmed_lossless_ratio"] = confirmed.prune_ratio
            metrics["confirmed_searched_ratio"] = confirmed.searched_ratio
            metrics["confirmed_lower_bound"] = confirmed.verdict.lower_bound
            metrics["confirmed_seeds"] = confirmed.seeds
    mlflow_store.log_values(client, run_id, metrics=metrics)
    if result.best is not None:
        # Tags, not params: a later trial (or worker) may find a larger lossless ratio.
        mlflow_store.log_values(
            client,
            run_id,
            metrics={"largest_lossless_ratio": result.best["prune_ratio"]},
            tags={f"{record.TAG_BEST_PREFIX}{k}": v for k, v in result.best["params"].items()},
        )
    with tempfile.TemporaryDirectory(prefix="prunebench-") as folder:
        path = Path(folder) / record.ARTIFACT_FRONTIER
        path.write_text(json.dumps(result.frontier, indent=2))
        client.log_artifact(run_id, str(path))
        if confirmation is not None:
            path = Path(folder) / record.ARTIFACT_CONFIRMATION
            attempts = [attempt.as_dict() for attempt in confirmation.attempts]
            summary = {"seeds": confirmation.seeds, "rule": confirmation.rule}
            path.write_text(json.dumps({**summary, "attempts": attempts}))
            client.log_artifact(run_id, str(path))
    client.set_terminated(run_id, "FINISHED")
