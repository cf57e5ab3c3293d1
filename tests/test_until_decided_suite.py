"""`prunebench suite --until-decided` for real: two workers, and a Ctrl-C then a rerun, reach the
same rounds, seeds and accuracies as one uninterrupted worker."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow import MlflowClient
from mlflow.entities import RunStatus

from prunebench import interrupts
from prunebench.cli.main import main

pytestmark = pytest.mark.usefixtures("one_thread")

# Random pruning of 2% of the data at a margin of 0: the two cells train almost alike, so their
# comparison stays undecided and rounds of seeds are added until --max-seeds (a margin of 0 can
# only be cleared by a pruned run that is better on every seed).
PRESET = """
name = "rounds-real"
datasets = ["synthetic"]
models = ["mlp"]
budget = "epochs:1"
seeds = [0, 1]
prune_ratios = [0.02]
subset = 300
batch_size = 50
lr = 0.05
margin = 0.0
[[pruners]]
name = "full"
[[pruners]]
name = "random"
"""
ROUNDS = ["--until-decided", "--max-seeds", "4", "--round-seeds", "1"]


def _suite(tmp_path: Path, store: str, *extra: str) -> int:
    preset = tmp_path / "rounds.toml"
    preset.write_text(PRESET)
    argv = [
        "suite", str(preset), "--tracking-uri", store,
        "--storage", f"sqlite:///{tmp_path / 'optuna.db'}",
        "--checkpoint-dir", str(tmp_path / "ck"), "--quiet", *ROUNDS, *extra,
    ]  # fmt: skip
    return main(argv)


def _results(store: str) -> tuple[dict[tuple[str, int], float], list[str]]:
    """(pruner, seed) -> final accuracy of the finished training runs, and every run's status."""
    client = MlflowClient(store)
    experiment = client.get_experiment_by_name("rounds-real")
    runs = client.search_runs(
        [experiment.experiment_id], "tags.`prunebench.kind` = 'train'", max_results=1000
    )
    finished = {
        (run.data.params["pruner"], int(run.data.params["seed"])): run.data.metrics[
            "final_test_accuracy"
        ]
        for run in runs
        if run.info.status == RunStatus.to_string(RunStatus.FINISHED)
    }
    return finished, [run.info.status for run in runs]


def test_two_workers_and_an_interrupted_rerun_reach_the_same_rounds(
    tmp_path, monkeypatch, mlflow_sqlite
):
    monkeypatch.chdir(tmp_path)
    one = tmp_path / "one"
    one.mkdir()
    assert _suite(one, mlflow_sqlite) == 0
    reference, _ = _results(mlflow_sqlite)
    seeds = {pruner: sorted(s for p, s in reference if p == pruner) for pruner, _ in reference}
    # The comparison stayed undecided: both cells got rounds of seeds up to --max-seeds.
    assert seeds == {"full": [0, 1, 2, 3], "random": [0, 1, 2, 3]}

    two = tmp_path / "two"
    two.mkdir()
    two_store = f"sqlite:///{two / 'mlflow.db'}"
    assert _suite(two, two_store, "--workers", "2") == 0
    assert _results(two_store)[0] == reference  # same seeds, same accuracies

    again = tmp_path / "again"
    again.mkdir()
    again_store = f"sqlite:///{again / 'mlflow.db'}"
    monkeypatch.setenv(interrupts.TEST_HOOK_VARIABLE, "epoch-end=SIGINT")
    assert _suite(again, again_store) == 130  # Ctrl-C at the end of the first run's epoch
    monkeypatch.delenv(interrupts.TEST_HOOK_VARIABLE)
    partial, _ = _results(again_store)
    assert len(partial) < len(reference)
    assert _suite(again, again_store) == 0  # the rerun recomputes the rounds from MLflow
    resumed, statuses = _results(again_store)
    assert resumed == reference
    assert "RUNNING" not in statuses
