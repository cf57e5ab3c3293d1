"""Presets that ask for ``nproc``: the paper's ImageNet preset, GPU slices per worker, a real
2-process cell run by the suite (CPU, gloo)."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow import MlflowClient

from prunebench.cli.main import main
from prunebench.errors import ConfigError
from prunebench.pruners import create_pruner
from prunebench.suite.presets import load_preset
from prunebench.suite.runner import device_slices, run_suite

TWO_PROCESS = """
name = "two-process"
datasets = ["synthetic"]
models = ["small_cnn"]
budget = "epochs:1"
seeds = [0]
prune_ratios = [0.5]
subset = 128
batch_size = 32
nproc = 2
device = "cpu"
num_threads = 1
lr = 0.05
accuracy_targets = [0.3]

[[pruners]]
name = "orderdp"
"""


def test_paper_imagenet_preset_lists_its_cells_on_8_devices(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main(["suite", "paper-imagenet-r50", "--dry-run"]) == 0
    out = capsys.readouterr().out
    # 1 full-data cell + 7 pruner entries x 3 ratios, less annealed InfoBatch's 70% (out of its
    # reach), times 3 seeds.
    assert "suite paper-imagenet-r50: 63 cells (63 runs)" in out
    assert "each cell: one run on 8 processes, one device each" in out
    assert not Path("mlflow.db").exists()  # a dry run writes nothing
    preset = load_preset("paper-imagenet-r50")
    cells = preset.cells()
    assert {(c.dataset, c.model, c.loader, str(c.budget)) for c in cells} == {
        ("imagenet", "resnet50", "ffcv", "epochs:90")
    }
    assert {(c.nproc, c.batch_size) for c in cells} == {(8, 1024)}  # 128 per device
    assert {c.target_prune_ratio() for c in cells} == {0.0, 0.3, 0.5, 0.7}


def test_workers_get_disjoint_gpu_slices():
    gpus = [str(i) for i in range(8)]
    assert device_slices(1, 8, gpus) == ["0,1,2,3,4,5,6,7"]
    assert device_slices(2, 4, gpus) == ["0,1,2,3", "4,5,6,7"]
    assert device_slices(3, 2, gpus) == ["0,1", "2,3", "4,5"]
    assert device_slices(3, 1, ["0", "1"]) == ["0", "1", "0"]  # 1-process cells may share
    assert device_slices(2, 2, []) == [None, None]  # no GPUs: nothing to split
    with pytest.raises(ConfigError, match="need 16 GPUs but 8 are visible; pass --workers 1"):
        device_slices(2, 8, gpus)


@pytest.mark.parametrize(
    ("old", "new", "message"),
    [
        ("nproc = 2", 'nproc = "2"', "'nproc' has the wrong type"),
        ("nproc = 2", "nproc = 0", "number of processes must be a positive integer"),
        ("nproc = 2", "nproc = 3", "batch size 32 does not divide among 3 processes"),
    ],
)
def test_bad_nproc_in_a_preset_fails_in_one_line(tmp_path, monkeypatch, capsys, old, new, message):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "p.toml"
    path.write_text(TWO_PROCESS.replace(old, new))
    assert main(["suite", str(path), "--dry-run"]) == 2
    err = capsys.readouterr().err.strip()
    assert err.startswith("prunebench: error: ") and "\n" not in err and message in err


@pytest.mark.slow
def test_suite_runs_a_cell_on_two_processes(tmp_path, monkeypatch, mlflow_sqlite):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "two.toml"
    path.write_text(TWO_PROCESS)
    preset = load_preset(str(path))
    final = run_suite(
        preset,
        tracking_uri=mlflow_sqlite,
        storage_url=f"sqlite:///{tmp_path / 'optuna.db'}",
        checkpoint_dir=tmp_path / "checkpoints",
    )
    assert [state.action for state in final] == ["done"]
    client = MlflowClient(mlflow_sqlite)
    experiment = client.get_experiment_by_name("two-process")
    (run,) = client.search_runs([experiment.experiment_id])  # rank 0 alone wrote one run
    params = run.data.params
    assert params["nproc"] == "2" and params["device_count"] == "2"
    assert params["batch_size_per_device"] == "16"
    # Samples trained are counted over both ranks: OrderDP's one plan, as one process makes it.
    plan = create_pruner("orderdp", n=128, epochs=1, seed=0, prune_ratio=0.5).plan_epoch(0)
    metrics = run.data.metrics
    assert metrics["samples_trained_total"] == plan.num_samples
    assert metrics["realized_prune_ratio"] == pytest.approx(1 - plan.num_samples / 128)
    assert run.data.tags["prunebench.config_hash"] == preset.cells()[0].config_hash()
