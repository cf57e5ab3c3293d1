"""One rule for the tracking store of every command: --tracking-uri, else $MLFLOW_TRACKING_URI,
else sqlite:///mlflow.db in the working directory, resolved once when the command starts."""

from __future__ import annotations

import pytest
from mlflow import MlflowClient

from prunebench.cli.main import main
from prunebench.mlflow_store import TRACKING_URI_VARIABLE, resolve_tracking_uri

pytestmark = pytest.mark.usefixtures("one_thread")

ONE_CELL = """
name = "one-cell"
datasets = ["synthetic"]
models = ["small_cnn"]
budget = "epochs:1"
seeds = [0]
prune_ratios = [0.5]
subset = 100
batch_size = 50
device = "cpu"

[[pruners]]
name = "full"
"""


def test_the_flag_wins_then_the_environment_then_the_default(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv(TRACKING_URI_VARIABLE, raising=False)
    assert resolve_tracking_uri(None) == f"sqlite:///{tmp_path / 'mlflow.db'}"
    monkeypatch.setenv(TRACKING_URI_VARIABLE, "sqlite:///env.db")
    assert resolve_tracking_uri(None) == f"sqlite:///{tmp_path / 'env.db'}"
    assert resolve_tracking_uri("sqlite:///flag.db") == f"sqlite:///{tmp_path / 'flag.db'}"
    assert resolve_tracking_uri("http://host:5000") == "http://host:5000"
    resolved = resolve_tracking_uri(None)
    assert resolve_tracking_uri(resolved) == resolved  # once resolved, it stays one string


@pytest.mark.parametrize("command", ["run", "suite", "search", "report"])
def test_every_command_reads_the_environment(tmp_path, monkeypatch, capsys, command):
    """A store in a folder that does not exist, named only by the environment: each command
    stops in one line naming that store (run, suite and search used to ignore it)."""
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv(TRACKING_URI_VARIABLE, "sqlite:///nowhere/mlflow.db")
    (tmp_path / "one.toml").write_text(ONE_CELL)
    argv = {
        "run": ["run", "--dataset", "synthetic", "--model", "small_cnn", "--budget", "epochs:1"],
        "suite": ["suite", "one.toml", "--dry-run"],
        "search": ["search", "one.toml", "--trials", "1"],
        "report": ["report", "--experiment", "one-cell", "--out", "out", "--no-log-run"],
    }[command]
    assert main(argv) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert str(tmp_path / "nowhere") in line, line
    assert sorted(path.name for path in tmp_path.iterdir()) == ["one.toml"]


def test_a_suite_and_a_report_on_the_environments_store(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "env").mkdir()
    monkeypatch.setenv(TRACKING_URI_VARIABLE, "sqlite:///env/mlflow.db")
    (tmp_path / "one.toml").write_text(ONE_CELL)
    store = f"sqlite:///{tmp_path / 'env' / 'mlflow.db'}"
    suite = ["suite", "one.toml", "--storage", f"sqlite:///{tmp_path / 'optuna.db'}", "--quiet"]
    assert main([*suite, "--system-metrics", "0"]) == 0
    # Resolved once: the suite names (and MLflow keeps) the absolute URI of the store.
    assert f"MLflow experiment 'one-cell' at {store})" in capsys.readouterr().out
    assert not (tmp_path / "mlflow.db").exists()
    (experiment,) = [e for e in MlflowClient(store).search_experiments() if e.name == "one-cell"]
    assert len(MlflowClient(store).search_runs([experiment.experiment_id])) == 1

    assert main([*suite, "--dry-run"]) == 0  # the plan reads the same store: the cell is done
    assert "1 cells (1 finished, skipped)" in capsys.readouterr().out
    assert main(["report", "--experiment", "one-cell", "--out", "report", "--no-log-run"]) == 0
    assert (tmp_path / "report" / "index.html").is_file()
    assert not (tmp_path / "mlflow.db").exists()
