"""Concurrent search workers share the work (issue 23, class 10): different trials, each
full-data reference trained once."""

from __future__ import annotations

import fcntl
import json
import multiprocessing
from pathlib import Path

import optuna
from mlflow import MlflowClient

from prunebench import mlflow_store, record
from prunebench.suite.presets import load_preset
from prunebench.suite.search import run_search, search_worker_seed

PRESET = """
name = "workers"
datasets = ["synthetic"]
models = ["small_cnn"]
budget = "epochs:2"
seeds = [0, 1]
prune_ratios = [0.5]
subset = 400

[[pruners]]
name = "full"

[[pruners]]
name = "random"
"""
TRIALS = 12


class Recording:
    """An evaluator that trains nothing: it logs a FINISHED training run for each full-data
    reference (as training would, so other workers find it) and appends every call to a file."""

    def __init__(self, preset_path: str, tracking_uri: str, calls: Path):
        self.preset = load_preset(preset_path)
        self.tracking_uri, self.calls = tracking_uri, calls

    def __call__(self, pruner: str, params: dict, seed: int, tags: dict) -> tuple[float, float]:
        with open(self.calls, "a") as log:
            fcntl.flock(log, fcntl.LOCK_EX)
            log.write(json.dumps([pruner, params, seed]) + "\n")
        ratio = float(params.get("prune_ratio", 0.0))
        accuracy = (0.9 if ratio <= 0.6 else 0.8) + 0.0002 * seed
        if pruner == "full":
            cfg = self.preset.reference_config("synthetic", "small_cnn", seed)
            client = mlflow_store.client(self.tracking_uri)
            run = client.create_run(
                mlflow_store.find_experiment_id(client, "workers"),
                tags={**record.new_run_tags(record.KIND_TRAIN), **tags,
                      record.TAG_CONFIG_HASH: cfg.config_hash()},
            )  # fmt: skip
            client.log_metric(run.info.run_id, "final_test_accuracy", accuracy)
            client.set_terminated(run.info.run_id, "FINISHED")
        return accuracy, ratio


def _worker(preset_path: str, tracking_uri: str, storage_url: str, calls: str) -> None:
    run_search(
        load_preset(preset_path), "random", trials=TRIALS, seeds=2, tracking_uri=tracking_uri,
        storage_url=storage_url, evaluate=Recording(preset_path, tracking_uri, Path(calls)),
    )  # fmt: skip


def test_two_search_workers_draw_different_trials_and_train_each_reference_once(
    tmp_path, monkeypatch, mlflow_sqlite
):
    monkeypatch.chdir(tmp_path)
    preset = tmp_path / "workers.toml"
    preset.write_text(PRESET)
    storage = f"sqlite:///{tmp_path / 'optuna.db'}"
    calls = tmp_path / "calls.jsonl"
    context = multiprocessing.get_context("fork")
    workers = [
        context.Process(target=_worker, args=(str(preset), mlflow_sqlite, storage, str(calls)))
        for _ in range(2)
    ]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join(timeout=300)
    assert [worker.exitcode for worker in workers] == [0, 0]

    evaluated = [json.loads(line) for line in calls.read_text().splitlines()]
    references = [seed for pruner, _, seed in evaluated if pruner == "full"]
    # Each reference once, not once per worker: the search's seeds and, once per study, the
    # fresh seeds its answer is confirmed on.
    assert sorted(references) == [0, 1, 1000, 1001]
    trained = [json.dumps([params, seed], sort_keys=True) for p, params, seed in evaluated
               if p != "full"]  # fmt: skip
    assert len(trained) == len(set(trained))  # no (parameters, seed) trained twice

    (summary,) = optuna.get_all_study_summaries(storage)
    study = optuna.load_study(study_name=summary.study_name, storage=storage)
    assert study.user_attrs["workers"] == 2
    client = MlflowClient(mlflow_sqlite)
    experiment = client.get_experiment_by_name("workers").experiment_id
    trials = client.search_runs([experiment], "tags.`prunebench.kind` = 'trial'")
    assert len(trials) >= TRIALS
    seeds = {run.data.params["search_worker"]: run.data.params["sampler_seed"] for run in trials}
    assert seeds == {
        str(worker): str(search_worker_seed(summary.study_name, 0, worker)) for worker in (0, 1)
    }
    drawn = [json.dumps(t.params, sort_keys=True) for t in study.trials]
    assert len(drawn) == len(set(drawn))  # the two workers drew different parameters
