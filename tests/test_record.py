"""Record names checked where they are logged; the one write path; the one store checks."""

from __future__ import annotations

from pathlib import Path

import pytest
from mlflow import MlflowClient

from prunebench import mlflow_store, record
from prunebench.errors import UsageError
from prunebench.stores import can_write, probe_writable, sqlite_path, store_exists


def test_summary_metrics_are_checked_like_epoch_metrics():
    summary = {name: 1.0 for name in record.SUMMARY_METRICS}
    summary[record.target_key(record.TTA_SECONDS, 0.9)] = 2.0
    summary[record.target_key(record.TTA_SAMPLES, 0.9)] = 3.0
    summary[f"{record.METRIC_PRUNER_PREFIX}max_weight"] = 4.0
    summary[record.METRIC_RATIO_SHORTFALL] = -0.01
    summary[record.DIAGNOSTICS_SECONDS_TOTAL] = 5.0
    assert record.check_summary_metrics(summary) is summary
    for stray in ("final_accuracy", "tta_seconds_0.9", "tta_minutes_0.90"):
        with pytest.raises(ValueError, match=f"summary metric '{stray}' is not in record"):
            record.check_summary_metrics({**summary, stray: 1.0})


def test_the_tta_key_has_one_format():
    assert record.target_key(record.TTA_SECONDS, 0.9) == "tta_seconds_0.90"
    assert record.target_key(record.TTA_SAMPLES, 0.855) == "tta_samples_0.85"


def test_one_write_path_splits_batches_at_mlflows_limits(mlflow_sqlite):
    client = mlflow_store.client(mlflow_sqlite)
    run_id = client.create_run("0").info.run_id
    params = {f"p{i}": i for i in range(250)}  # MLflow takes at most 100 params per batch
    metrics = {f"m{i}": float(i) for i in range(1500)}  # and 1000 metrics
    mlflow_store.log_values(client, run_id, metrics=metrics, params=params, tags={"t": 1}, step=3)
    data = MlflowClient(mlflow_sqlite).get_run(run_id).data
    assert data.params == {key: str(value) for key, value in params.items()}
    assert data.metrics == metrics
    assert data.tags["t"] == "1"
    assert {m.step for m in MlflowClient(mlflow_sqlite).get_metric_history(run_id, "m7")} == {3}


def test_a_sqlite_url_names_one_file_whatever_its_query(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert sqlite_path("sqlite:///m.db?mode=ro") == tmp_path / "m.db"
    assert sqlite_path(f"sqlite:///{tmp_path}/m.db") == tmp_path / "m.db"
    assert sqlite_path("sqlite:///:memory:") is None
    assert sqlite_path("postgresql://host/db") is None


def test_store_exists_is_one_rule(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    assert not store_exists("sqlite:///m.db?mode=rwc")
    (tmp_path / "m.db").write_bytes(b"")
    assert store_exists("sqlite:///m.db?mode=rwc")
    assert not store_exists("mlruns") and not store_exists(f"file://{tmp_path}/mlruns")
    (tmp_path / "mlruns").mkdir()
    assert store_exists("mlruns") and store_exists(f"file://{tmp_path}/mlruns")
    assert store_exists("sqlite:///:memory:") and store_exists("http://host:5000")


def test_the_write_probe_writes_and_leaves_nothing(tmp_path):
    assert can_write(tmp_path) and list(tmp_path.iterdir()) == []
    probe_writable(tmp_path / "new" / "folder", "checkpoint folder", "a writable --dir")
    assert list(tmp_path.iterdir()) == []
    proc = Path("/proc")
    assert not can_write(proc)  # root passes os.access here, a real write does not
    with pytest.raises(UsageError, match=r"checkpoint folder /proc/x cannot be written"):
        probe_writable(proc / "x", "checkpoint folder", "a writable --dir")
    blocker = tmp_path / "file"
    blocker.write_text("")
    with pytest.raises(UsageError, match=f"cannot be created: {blocker} is a file; pass a"):
        probe_writable(blocker / "sub", "checkpoint folder", "a writable --dir")
