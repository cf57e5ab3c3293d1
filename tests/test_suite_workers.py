"""Suite workers that die, wait or differ in number: real processes, real MLflow and Optuna."""

from __future__ import annotations

import os
import re
import shutil
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from mlflow import MlflowClient
from optuna.trial import TrialState

from prunebench.bench.checkpoint import checkpoint_path
from prunebench.cli.main import main
from prunebench.suite.presets import load_preset
from prunebench.suite.runner import queue_name, run_suite
from prunebench.suite.workqueue import GRACE_SECONDS, CellQueue, open_storage

REPO = Path(__file__).resolve().parents[1]


def _preset(path: Path, name: str, seeds: str, extra: str = "") -> Path:
    path.write_text(
        f'name = "{name}"\ndatasets = ["synthetic"]\nmodels = ["small_cnn"]\n'
        f'budget = "epochs:1"\nseeds = [{seeds}]\nprune_ratios = [0.5]\nbatch_size = 64\n'
        f'lr = 0.05\naccuracy_targets = [0.3]\n{extra}\n[[pruners]]\nname = "full"\n'
    )
    return path


def _train_runs(tracking_uri: str, experiment: str) -> list:
    client = MlflowClient(tracking_uri)
    found = client.get_experiment_by_name(experiment)
    if found is None:
        return []
    return client.search_runs(
        [found.experiment_id], filter_string="tags.`prunebench.kind` = 'train'", max_results=100
    )


def _suite_argv(preset: Path, tmp_path: Path, tracking_uri: str, *extra: str) -> list[str]:
    return [
        "suite", str(preset), "--tracking-uri", tracking_uri,
        "--storage", f"sqlite:///{tmp_path / 'optuna.db'}",
        "--checkpoint-dir", str(tmp_path / "ck"), "--quiet", *extra,
    ]  # fmt: skip


def test_a_worker_killed_before_its_first_checkpoint_leaves_no_running_run(
    tmp_path, monkeypatch, mlflow_sqlite
):
    """kill -9 during the first epoch, rerun after the heartbeat grace: first run KILLED, one
    FINISHED run for the config hash, none left RUNNING (was: RUNNING forever, plus a second)."""
    monkeypatch.chdir(tmp_path)
    grace = 5  # seconds; the default is 90
    # The full synthetic training set (10,000 samples): the first epoch lasts seconds, so the
    # kill lands between the run's creation and its first checkpoint (checked below).
    preset = _preset(tmp_path / "orphan.toml", "orphan", "0")
    argv = _suite_argv(preset, tmp_path, mlflow_sqlite, "--heartbeat-grace", str(grace))
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    worker = subprocess.Popen(
        [sys.executable, "-m", "prunebench.cli", *argv],
        env=env,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        while not _train_runs(mlflow_sqlite, "orphan"):
            assert worker.poll() is None, worker.stderr.read()[-3000:]
            time.sleep(0.1)
    finally:
        worker.send_signal(signal.SIGKILL)
        worker.wait()
    (cfg,) = load_preset(str(preset)).cells()
    assert not checkpoint_path(tmp_path / "ck", cfg.config_hash()).exists(), (
        "the worker reached its first checkpoint before the kill; the test needs a longer epoch"
    )
    (orphan,) = _train_runs(mlflow_sqlite, "orphan")
    assert orphan.info.status == "RUNNING"

    time.sleep(grace + 1)  # the dead worker's claim lapses; its cell goes back to the queue
    assert main(argv) == 0
    runs = {run.info.run_id: run for run in _train_runs(mlflow_sqlite, "orphan")}
    assert len(runs) == 2
    assert runs[orphan.info.run_id].info.status == "KILLED"
    assert "worker stopped" in runs[orphan.info.run_id].data.tags["prunebench.failure_reason"]
    (finished,) = [run for run in runs.values() if run.info.status == "FINISHED"]
    assert finished.data.tags["prunebench.config_hash"] == cfg.config_hash()


def test_a_worker_with_no_cell_left_exits_0_and_says_how_long_to_wait(
    tmp_path, monkeypatch, mlflow_sqlite, capsys
):
    """Another worker holds one of two cells: this one runs the other, then exits 0 saying the
    held cell is another worker's and when it would be requeued if that worker had died."""
    monkeypatch.chdir(tmp_path)
    preset_path = _preset(tmp_path / "held.toml", "held", "0, 1", "subset = 200")
    preset = load_preset(str(preset_path))
    argv = _suite_argv(preset_path, tmp_path, mlflow_sqlite)
    cells = [cfg.config_hash() for cfg in preset.cells()]
    # "Another worker": a real claim in the real queue, never beaten again nor finished, as a
    # worker killed a moment ago (or one busy elsewhere) leaves it.
    storage = open_storage(f"sqlite:///{tmp_path / 'optuna.db'}")
    queue = CellQueue.open(storage, queue_name(preset), cells)
    claim = queue.claim()
    assert claim is not None

    assert main(argv) == 0
    out = capsys.readouterr().out
    assert "no cell left for this worker; 1 cells held by other workers" in out
    waits = [int(s) for s in re.findall(r"requeued in about (\d+) s: rerun then", out)]
    assert len(waits) == 2  # in the plan and in the final summary
    assert all(0 < wait <= GRACE_SECONDS for wait in waits)
    runs = _train_runs(mlflow_sqlite, "held")
    assert [run.data.tags["prunebench.config_hash"] for run in runs] == [
        cell for cell in cells if cell != claim.cell
    ]
    assert runs[0].info.status == "FINISHED"


HISTORY = ("train_loss", "test_accuracy", "test_loss", "grad_norm")


def test_a_configs_results_do_not_depend_on_the_worker_count(tmp_path, monkeypatch, mlflow_sqlite):
    """The same two cells with --workers 1 and --workers 2 give bit-identical histories: each
    run pins its thread count (default 2 on CPU), whatever its worker process had."""
    monkeypatch.chdir(tmp_path)
    preset = load_preset(str(_preset(tmp_path / "w.toml", "w", "0, 1", "subset = 300")))
    results = {}
    for workers in (1, 2):
        store = tmp_path / f"workers{workers}.db"
        shutil.copyfile(mlflow_sqlite.removeprefix("sqlite:///"), store)
        uri = f"sqlite:///{store}"
        final = run_suite(
            preset,
            tracking_uri=uri,
            storage_url=f"sqlite:///{tmp_path / f'optuna{workers}.db'}",
            checkpoint_dir=tmp_path / f"ck{workers}",
            workers=workers,
        )
        assert [state.action for state in final] == ["done", "done"]
        client = MlflowClient(uri)
        results[workers] = {
            run.data.tags["prunebench.config_hash"]: (
                run.data.params["num_threads"],
                {
                    key: [m.value for m in client.get_metric_history(run.info.run_id, key)]
                    for key in HISTORY
                },
            )
            for run in _train_runs(uri, "w")
        }
    assert len(results[1]) == 2
    assert results[1] == results[2]  # exact equality, not a tolerance
    assert {threads for threads, _ in results[1].values()} == {"2"}


@pytest.mark.filterwarnings("error::pytest.PytestUnhandledThreadExceptionWarning")
def test_a_cell_finished_inside_its_hold_ends_the_heartbeat_quietly(tmp_path):
    """The runner finishes a cell inside its hold; a heartbeat due after that crashed its thread
    with UpdateFinishedTrialError, a traceback in the middle of an equal-time suite's output."""
    storage = open_storage(f"sqlite:///{tmp_path / 'optuna.db'}", grace_seconds=2)
    assert storage.get_heartbeat_interval() == 1
    queue = CellQueue.open(storage, "beats", ["cell-a"])
    claim = queue.claim()
    with queue.hold(claim):
        queue.finish(claim, "FINISHED")
        time.sleep(2.5)  # two heartbeats fall due after the cell is finished
    (trial,) = queue.study.get_trials(deepcopy=False)
    assert trial.state == TrialState.COMPLETE and trial.user_attrs["status"] == "FINISHED"
