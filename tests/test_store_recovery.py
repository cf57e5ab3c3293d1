"""Stores that cannot be half-created, and checks that do not misdiagnose (issue 23, 1 and 2)."""

from __future__ import annotations

import os
import shutil
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient

from prunebench import interrupts
from prunebench.cli.main import main

pytestmark = pytest.mark.usefixtures("one_thread")

RUN = [
    "run", "--dataset", "synthetic", "--model", "small_cnn", "--budget", "epochs:1",
    "--subset", "100", "--batch-size", "50", "--device", "cpu", "--threads", "1", "--quiet",
]  # fmt: skip

WRITER_DIES_MID_TRANSACTION = """
import os, sqlite3, sys
db = sqlite3.connect(sys.argv[1], isolation_level=None)
db.execute("PRAGMA cache_size = 2")  # pages spill to the file before the commit
db.execute("BEGIN IMMEDIATE")
for i in range(3000):
    db.execute("INSERT INTO experiment_tags VALUES (?, ?, 0)", (f"k{i}", "x" * 400))
os._exit(0)  # no commit, no rollback: the journal stays hot
"""


def _make_journal_hot(path: Path) -> Path:
    """A writer dies mid-transaction on the store at ``path``, leaving its journal hot."""
    subprocess.run([sys.executable, "-c", WRITER_DIES_MID_TRANSACTION, str(path)], check=True)
    journal = path.with_name(path.name + "-journal")
    assert journal.is_file() and journal.stat().st_size > 0
    # What the old read-only check saw (the "attempt to write a readonly database"):
    with pytest.raises(sqlite3.DatabaseError):
        sqlite3.connect(f"{path.as_uri()}?mode=ro", uri=True).execute(
            "SELECT count(*) FROM experiment_tags"
        ).fetchall()
    return path


def _one_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_a_hot_journal_is_rolled_back_for_run_suite_and_report(
    tmp_path, monkeypatch, mlflow_sqlite, capsys
):
    """Class 2: a writer that died mid-transaction left a hot journal; `run`, `suite` and
    `report` said the store "is not a SQLite database ... move the file away"."""
    monkeypatch.chdir(tmp_path)
    template = Path(mlflow_sqlite.removeprefix("sqlite:///"))
    stores = {}
    for command in ("run", "suite", "report"):
        stores[command] = tmp_path / command / "mlflow.db"
        stores[command].parent.mkdir()
        shutil.copyfile(template, stores[command])
    uri = f"sqlite:///{_make_journal_hot(stores['run'])}"
    assert main([*RUN, "--tracking-uri", uri, "--checkpoint-dir", str(tmp_path / "ck")]) == 0
    assert not stores["run"].with_name("mlflow.db-journal").exists()  # rolled back by SQLite
    with sqlite3.connect(stores["run"]) as db:
        assert db.execute("SELECT count(*) FROM experiment_tags").fetchone()[0] < 3000
    (run,) = MlflowClient(uri).search_runs(["1"])
    assert run.info.status == "FINISHED"

    preset = tmp_path / "p.toml"
    preset.write_text(
        'name = "hot"\ndatasets = ["synthetic"]\nmodels = ["small_cnn"]\nbudget = "epochs:1"\n'
        "seeds = [0]\nprune_ratios = [0.5]\nbatch_size = 50\nsubset = 100\nnum_threads = 1\n"
        '[[pruners]]\nname = "full"\n'
    )
    suite = [
        "suite", str(preset), "--tracking-uri", f"sqlite:///{_make_journal_hot(stores['suite'])}",
        "--storage", f"sqlite:///{tmp_path / 'optuna.db'}", "--checkpoint-dir",
        str(tmp_path / "ck"), "--quiet", "--system-metrics", "0",
    ]  # fmt: skip
    assert main(suite) == 0, capsys.readouterr().err

    shutil.copyfile(stores["suite"], stores["report"])  # the suite's runs; a writer dies on it
    report = f"sqlite:///{_make_journal_hot(stores['report'])}"
    argv = ["report", "--experiment", "hot", "--out", str(tmp_path / "out")]
    assert main([*argv, "--tracking-uri", report, "--no-log-run"]) == 0
    assert (tmp_path / "out" / "index.html").is_file()


def test_no_message_advises_moving_a_database_away(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    store = tmp_path / "notes.db"
    store.write_text("not a database\n")
    assert main([*RUN, "--tracking-uri", f"sqlite:///{store}"]) == 2
    line = _one_line(capsys)
    assert "is not a SQLite database" in line and "move" not in line


def test_an_interrupted_store_creation_leaves_no_store(tmp_path, monkeypatch, capsys):
    """Class 1: SIGINT while MLflow migrates a new store (was: `table _alembic_tmp_experiments
    already exists` on every later run). The store is built in a temporary file and appears
    only whole: interrupted, nothing is left; the next run creates it."""
    monkeypatch.chdir(tmp_path)
    store = tmp_path / "new" / "mlflow.db"
    store.parent.mkdir()
    argv = [*RUN, "--tracking-uri", f"sqlite:///{store}", "--checkpoint-dir", str(tmp_path / "ck")]
    monkeypatch.setenv(interrupts.TEST_HOOK_VARIABLE, "store-migrated=SIGTERM")
    assert main(argv) == 143
    assert _one_line(capsys).startswith("prunebench: interrupted by SIGTERM; ")
    assert list(store.parent.iterdir()) == []  # no store, no temporary file, no lock file
    monkeypatch.delenv(interrupts.TEST_HOOK_VARIABLE)
    assert main(argv) == 0
    (run,) = MlflowClient(f"sqlite:///{store}").search_runs(["1"])
    assert run.info.status == "FINISHED"
    assert sorted(p.name for p in store.parent.iterdir()) == ["mlflow.db"]  # no lock file left


def test_an_interrupted_optuna_storage_creation_leaves_no_storage(tmp_path, monkeypatch):
    from prunebench.suite.workqueue import open_storage

    monkeypatch.setenv(interrupts.TEST_HOOK_VARIABLE, "store-migrated=SIGINT")
    url = f"sqlite:///{tmp_path / 'optuna.db'}"
    with interrupts.handling(), pytest.raises(interrupts.Interrupted):
        open_storage(url)
    assert list(tmp_path.iterdir()) == []
    monkeypatch.delenv(interrupts.TEST_HOOK_VARIABLE)
    open_storage(url).get_all_studies()


@pytest.mark.parametrize(
    ("runs", "repair"),
    [
        (0, "it holds no runs: delete {path} and run the command again"),
        (1, "it holds 1 runs: run prunebench store repair --tracking-uri sqlite:///{path} (it "
         "backs the file up first), then run the command again"),
    ],
)  # fmt: skip
def test_a_half_migrated_store_gets_one_line_naming_the_repair(
    tmp_path, monkeypatch, mlflow_sqlite, capsys, runs, repair
):
    """A store left half-migrated by an older prunebench (or by MLflow elsewhere)."""
    monkeypatch.chdir(tmp_path)
    path = Path(mlflow_sqlite.removeprefix("sqlite:///"))
    if runs:
        MlflowClient(mlflow_sqlite).create_run("0")
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE _alembic_tmp_experiments (x INTEGER)")
    assert main([*RUN, "--tracking-uri", mlflow_sqlite]) == 2
    assert _one_line(capsys) == (
        f"prunebench: error: tracking store {mlflow_sqlite} was left half-migrated by an "
        f"interrupted first use (table _alembic_tmp_experiments); {repair.format(path=path)}"
    )
    assert os.path.getsize(path) > 0
