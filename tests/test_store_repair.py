"""`prunebench store repair`: a store left half-migrated is repaired on request (issue 23, 2)."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
from mlflow import MlflowClient

from prunebench.cli.main import main

# The last revision before MLflow's migration that rebuilds `tags` in alembic batch mode
# (7ac759974ad8, "update run tags with larger limit"): a first use stopped inside that step.
BEFORE_TAGS_REBUILD = "df50e92ffc5e"


def _half_migrated_mlflow_store(path: Path, runs: int) -> str:
    """An MLflow store whose first migration stopped inside a batch step, as an interrupted
    first use leaves it: migrated up to BEFORE_TAGS_REBUILD, with ``runs`` runs, and the copy
    of `tags` that alembic's batch mode had created (``_alembic_tmp_tags``, same columns)."""
    from alembic import command
    from mlflow.store.db.utils import _get_alembic_config, create_sqlalchemy_engine
    from mlflow.store.tracking.dbmodels.initial_models import Base as InitialBase

    url = f"sqlite:///{path}"
    engine = create_sqlalchemy_engine(url)
    InitialBase.metadata.create_all(engine)
    config = _get_alembic_config(url)
    with engine.begin() as connection:
        config.attributes["connection"] = connection
        command.upgrade(config, BEFORE_TAGS_REBUILD)
    engine.dispose()
    with sqlite3.connect(path) as db:
        for i in range(runs):  # the schema of that revision, written as MLflow 1.x wrote it
            db.execute(
                "INSERT INTO runs (run_uuid, name, source_type, source_name, entry_point_name, "
                "user_id, status, start_time, source_version, lifecycle_stage, artifact_uri, "
                "experiment_id) VALUES (?, 'old', 'LOCAL', '', '', 'user', 'FINISHED', 0, '', "
                "'active', '', 0)",
                (f"{i:032x}",),
            )
            db.execute("INSERT INTO tags VALUES ('note', 'kept', ?)", (f"{i:032x}",))
        (schema,) = db.execute("SELECT sql FROM sqlite_master WHERE name = 'tags'").fetchone()
        db.execute(schema.replace("tags", "_alembic_tmp_tags", 1))
    return url


def _tables(path: Path) -> set[str]:
    with sqlite3.connect(path) as db:
        return {row[0] for row in db.execute("SELECT name FROM sqlite_master WHERE type='table'")}


def _last_line(capsys) -> str:
    return capsys.readouterr().out.strip().splitlines()[-1]


def test_a_half_migrated_tracking_store_is_repaired_with_its_runs(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    path = tmp_path / "mlflow.db"
    url = _half_migrated_mlflow_store(path, runs=2)
    with pytest.raises(Exception, match="table _alembic_tmp_tags already exists"):
        MlflowClient(url).search_experiments()  # what every later command hit

    assert main(["store", "repair", "--tracking-uri", url]) == 0
    line = _last_line(capsys)
    (backup,) = tmp_path.glob("mlflow.db.backup-*")
    assert line == (
        f"tracking store {url} repaired (DROP TABLE _alembic_tmp_tags; migration finished); "
        f"backup at {backup}"
    )
    with sqlite3.connect(backup) as db:  # the backup is the store as it was, leftover included
        assert db.execute("SELECT count(*) FROM runs").fetchone() == (2,)
        assert "_alembic_tmp_tags" in _tables(backup)
    assert not any(name.startswith("_alembic_tmp_") for name in _tables(path))
    runs = MlflowClient(url).search_runs(["0"])
    assert sorted(run.info.run_id for run in runs) == [f"{i:032x}" for i in range(2)]
    assert {run.data.tags["note"] for run in runs} == {"kept"}

    # A repaired store is complete: asked again, nothing is done and no backup is made.
    assert main(["store", "repair", "--tracking-uri", url]) == 0
    assert _last_line(capsys) == f"tracking store {url} is complete: nothing to repair"
    assert len(list(tmp_path.glob("mlflow.db.backup-*"))) == 1


def test_a_store_without_a_version_and_without_runs_is_made_again(tmp_path, mlflow_sqlite, capsys):
    path = Path(mlflow_sqlite.removeprefix("sqlite:///"))
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM alembic_version")
    assert main(["store", "repair", "--tracking-uri", mlflow_sqlite]) == 0
    assert "it held no runs and was created again whole" in _last_line(capsys)
    with sqlite3.connect(path) as db:
        assert db.execute("SELECT count(*) FROM alembic_version").fetchone() == (1,)
    MlflowClient(mlflow_sqlite).search_experiments()


def test_a_store_without_a_version_that_holds_runs_is_refused_unchanged(
    tmp_path, mlflow_sqlite, capsys
):
    path = Path(mlflow_sqlite.removeprefix("sqlite:///"))
    MlflowClient(mlflow_sqlite).create_run("0")
    with sqlite3.connect(path) as db:
        db.execute("DELETE FROM alembic_version")
    before = path.read_bytes()
    assert main(["store", "repair", "--tracking-uri", mlflow_sqlite]) == 2
    (line,) = capsys.readouterr().err.strip().splitlines()
    assert line == (
        f"prunebench: error: tracking store {mlflow_sqlite} holds 1 runs but no schema version, "
        "so its migrations cannot be finished safely; restore it from a backup"
    )
    assert path.read_bytes() == before
    assert not list(tmp_path.glob("*.backup-*"))


def test_a_half_migrated_optuna_storage_is_repaired_with_its_studies(tmp_path, monkeypatch, capsys):
    import optuna

    from prunebench.suite.workqueue import open_storage

    monkeypatch.chdir(tmp_path)
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    optuna.create_study(study_name="kept", storage=open_storage(url)).enqueue_trial({"x": 1})
    with sqlite3.connect(tmp_path / "optuna.db") as db:
        (schema,) = db.execute("SELECT sql FROM sqlite_master WHERE name = 'trials'").fetchone()
        db.execute(schema.replace("trials", "_alembic_tmp_trials", 1))
    assert main(["suite", "demo-fmnist", "--storage", url, "--dry-run"]) == 2
    assert "half-migrated" in capsys.readouterr().err

    assert main(["store", "repair", "--storage", url]) == 0
    assert _last_line(capsys).startswith(
        f"the Optuna storage {url} repaired (DROP TABLE _alembic_tmp_trials; migration finished)"
    )
    assert "_alembic_tmp_trials" not in _tables(tmp_path / "optuna.db")
    (study,) = open_storage(url).get_all_studies()
    assert study.study_name == "kept"


def test_only_an_existing_sqlite_store_can_be_repaired(tmp_path, capsys):
    missing = f"sqlite:///{tmp_path / 'none.db'}"
    assert main(["store", "repair", "--tracking-uri", missing]) == 2
    assert "does not exist: nothing to repair" in capsys.readouterr().err
    assert main(["store", "repair", "--tracking-uri", "http://127.0.0.1:9"]) == 2
    assert "is not a SQLite file: nothing to repair" in capsys.readouterr().err
    assert list(tmp_path.iterdir()) == []
