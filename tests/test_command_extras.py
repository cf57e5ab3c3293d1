"""Smaller promises of issue 23: system metrics of a single run, a truthful suite plan."""

from __future__ import annotations

import zipfile

import pytest
from mlflow import MlflowClient

from prunebench.bench.checkpoint import checkpoint_path
from prunebench.cli.main import main
from prunebench.suite.presets import load_preset
from prunebench.suite.runner import plan

pytestmark = pytest.mark.usefixtures("one_thread")

RUN = [
    "run", "--dataset", "synthetic", "--model", "small_cnn", "--budget", "epochs:6",
    "--subset", "400", "--batch-size", "50", "--device", "cpu", "--threads", "1", "--quiet",
]  # fmt: skip


@pytest.mark.parametrize(("interval", "sampled"), [("0.2", True), ("0", False)])
def test_a_single_run_records_system_metrics_like_a_suite_cell(
    tmp_path, monkeypatch, mlflow_sqlite, interval, sampled
):
    monkeypatch.chdir(tmp_path)
    argv = [*RUN, "--tracking-uri", mlflow_sqlite, "--system-metrics", interval]
    assert main(argv) == 0
    (run,) = MlflowClient(mlflow_sqlite).search_runs(["1"])
    system = [key for key in run.data.metrics if key.startswith("system/")]
    assert bool(system) == sampled, system


def test_a_negative_system_metrics_interval_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    assert main([*RUN, "--system-metrics", "-1"]) == 2
    assert capsys.readouterr().err.strip() == (
        "prunebench: error: --system-metrics must be >= 0 seconds, got -1.0"
    )
    assert list(tmp_path.iterdir()) == []


def test_a_cut_short_checkpoint_is_not_promised_as_a_resume(tmp_path, monkeypatch):
    """The plan said "resumes from its checkpoint" of a truncated checkpoint, rerun after rerun."""
    monkeypatch.chdir(tmp_path)
    preset_path = tmp_path / "p.toml"
    preset_path.write_text(
        'name = "cut"\ndatasets = ["synthetic"]\nmodels = ["small_cnn"]\nbudget = "epochs:1"\n'
        'seeds = [0, 1]\nprune_ratios = [0.5]\n[[pruners]]\nname = "full"\n'
    )
    preset = load_preset(str(preset_path))
    whole, cut = preset.cells()
    for cfg, content in ((whole, None), (cut, b"PK\x03\x04 cut short")):
        path = checkpoint_path(tmp_path / "ck", cfg.config_hash())
        path.parent.mkdir(exist_ok=True)
        if content is None:
            with zipfile.ZipFile(path, "w") as archive:
                archive.writestr("data.pkl", b"")
        else:
            path.write_bytes(content)
    states = plan(preset, f"sqlite:///{tmp_path / 'none.db'}", tmp_path / "ck")
    assert [state.action for state in states] == ["resume", "blocked"]
    assert states[1].reason == (
        f"checkpoint {checkpoint_path(tmp_path / 'ck', cut.config_hash())} is unreadable (cut "
        "short); delete it to run the cell over"
    )
