"""Store URLs: passwords never reach an output, new stores survive concurrent first use."""

from __future__ import annotations

import logging
import os
import subprocess
import sys
from pathlib import Path

import pytest
from mlflow import MlflowClient
from postgres_server import postgres_bin, postgres_server

from prunebench.cli.main import main
from prunebench.stores import redact_text, redact_url, store_fingerprint

SECRET = "s3cret"
REPO = Path(__file__).resolve().parents[1]


@pytest.mark.parametrize(
    ("url", "shown"),
    [
        (
            "postgresql+psycopg2://user:s3cret@host:5432/db",
            "postgresql+psycopg2://user:***@host:5432/db",
        ),
        ("mysql://root:s3cret@127.0.0.1/mlflow", "mysql://root:***@127.0.0.1/mlflow"),
        ("https://alice:s3cret@mlflow.example.org/", "https://alice:***@mlflow.example.org/"),
        ("http://alice@host:5000", "http://alice@host:5000"),
        ("http://host:5000/path", "http://host:5000/path"),
        ("sqlite:////tmp/mlflow.db", "sqlite:////tmp/mlflow.db"),
        ("sqlite:///x.db?password=s3cret&mode=ro", "sqlite:///x.db?password=***&mode=ro"),
        ("postgresql://db/x?user=u&PASSWORD=s3cret", "postgresql://db/x?user=u&PASSWORD=***"),
        ("/plain/path/mlruns", "/plain/path/mlruns"),
        ("mlruns", "mlruns"),
        # SQLAlchemy's grammar: the password runs to the first '@' and may hold '/' and ':'.
        ("postgresql://u:s3/cr:et@host/db", "postgresql://u:***@host/db"),
        # urllib's grammar: the user info runs to the last '@' of the authority.
        ("http://u:s3@cret@host/", "http://u:***@host/"),
        ("postgresql://u:s3cret@[::1/db", "postgresql://u:***@[::1/db"),  # malformed IPv6 host
        ("postgresql://u:s3cret@host:notaport/db", "postgresql://u:***@host:notaport/db"),
        ("", ""),
    ],
)
def test_redact_url_masks_the_password_and_keeps_the_rest(url, shown):
    assert redact_url(url) == shown
    assert "cret" not in redact_url(url).replace("secret", "")


def test_redact_url_never_raises():
    class Unprintable:
        def __str__(self):
            raise ValueError(SECRET)

    assert redact_url(Unprintable()) == "<store URL>"
    assert redact_url(None) == "None"
    assert redact_text(Unprintable()) == "<store URL>"


def test_redact_text_masks_every_url_in_a_message():
    message = "could not connect to 'postgresql://u:s3cret@h/db' nor (mysql://v:s3cret@h2/db)"
    assert redact_text(message) == (
        "could not connect to 'postgresql://u:***@h/db' nor (mysql://v:***@h2/db)"
    )


def test_store_fingerprint_is_stable_and_tells_stores_apart():
    url = "postgresql://u:s3cret@h/db"
    assert store_fingerprint(url) == store_fingerprint(url)
    assert store_fingerprint(url) != store_fingerprint(url.replace("/db", "/db2"))
    assert SECRET not in store_fingerprint(url) and len(store_fingerprint(url)) == 16


def run_together(script: str, *args: str, processes: int = 4) -> None:
    """Start ``processes`` Python processes running ``script`` at once; each must exit 0."""
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    started = [
        subprocess.Popen(
            [sys.executable, "-c", script, *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for _ in range(processes)
    ]
    outputs = [process.communicate(timeout=600) for process in started]
    for process, (_, stderr) in zip(started, outputs, strict=True):
        assert process.returncode == 0, stderr[-2000:]


START_RUN = """
import sys
from prunebench.bench.tracking import RunTracker
tracker = RunTracker.start(sys.argv[1], "concurrent", "run", {})
tracker.finish("FINISHED")
"""


def test_runs_starting_together_on_a_new_sqlite_store_all_succeed(tmp_path):
    """4 real processes create the same new store and experiment at once (was: 3 of 4 crashed)."""
    uri = f"sqlite:///{tmp_path / 'new.db'}"
    run_together(START_RUN, uri)
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name("concurrent")
    runs = client.search_runs([experiment.experiment_id])
    assert len(runs) == 4 and {run.info.status for run in runs} == {"FINISHED"}


LOG_INPUTS = """
import os, sys, time
from pathlib import Path
from mlflow.data.code_dataset_source import CodeDatasetSource
from mlflow.data.meta_dataset import MetaDataset
from mlflow.entities import DatasetInput
from prunebench.mlflow_store import log_inputs
from prunebench.bench.tracking import RunTracker
uri, ready = sys.argv[1], Path(sys.argv[2])
tracker = RunTracker.start(uri, "concurrent", "run", {})
(ready / str(os.getpid())).touch()
while len(list(ready.iterdir())) < 4:  # every process logs the same datasets at once
    pass  # spin: a sleep here lets the processes drift apart and the race hide
for i in range(20):
    data = MetaDataset(CodeDatasetSource({}), name=f"data-{i}", digest=f"{i:016x}")
    log_inputs(tracker.client, tracker.run_id, [DatasetInput(data._to_mlflow_entity())])
tracker.finish("FINISHED")
"""


def test_runs_logging_the_same_dataset_together_all_record_it(tmp_path):
    """4 processes log the same 20 datasets at the same moment (was: UNIQUE constraint failed
    on MLflow's datasets table, which failed a suite cell); each run holds all 20 inputs."""
    uri = f"sqlite:///{tmp_path / 'store.db'}"
    MlflowClient(uri).create_experiment("concurrent")
    ready = tmp_path / "ready"  # a process is ready once it has imported MLflow
    ready.mkdir()
    run_together(LOG_INPUTS, uri, str(ready))
    client = MlflowClient(uri)
    runs = client.search_runs([client.get_experiment_by_name("concurrent").experiment_id])
    assert len(runs) == 4
    for run in runs:
        assert sorted(d.dataset.name for d in run.inputs.dataset_inputs) == sorted(
            f"data-{i}" for i in range(20)
        )


UNREACHABLE = f"postgresql+psycopg2://user:{SECRET}@127.0.0.1:1/db"


def _tiny_preset(path: Path) -> Path:
    path.write_text(
        'name = "tiny"\ndatasets = ["synthetic"]\nmodels = ["small_cnn"]\nbudget = "epochs:1"\n'
        "seeds = [0]\nprune_ratios = [0.5]\nsubset = 200\nbatch_size = 64\nlr = 0.05\n"
        'accuracy_targets = [0.3]\n\n[[pruners]]\nname = "full"\n'
    )
    return path


RUN = [
    "run", "--dataset", "synthetic", "--model", "small_cnn", "--budget", "epochs:1",
    "--subset", "200", "--batch-size", "64", "--device", "cpu", "--quiet",
]  # fmt: skip


def test_an_unreachable_store_never_shows_its_password(tmp_path, monkeypatch, capsys, caplog):
    monkeypatch.chdir(tmp_path)
    caplog.set_level(logging.DEBUG)
    preset = str(_tiny_preset(tmp_path / "tiny.toml"))
    commands = [
        ["suite", preset, "--storage", UNREACHABLE],
        ["suite", preset, "--tracking-uri", UNREACHABLE],
        ["search", preset, "--pruner", "orderdp", "--storage", UNREACHABLE],
        [*RUN, "--tracking-uri", UNREACHABLE],
        ["report", "--experiment", "tiny", "--out", "report", "--tracking-uri", UNREACHABLE],
    ]
    for argv in commands:
        code = main(argv)
        captured = capsys.readouterr()
        assert code == 2, (argv, captured.err[-2000:])
        assert "user:***@127.0.0.1:1" in captured.err or "127.0.0.1" in captured.err
        assert SECRET not in captured.out + captured.err
        assert len(captured.err.strip().splitlines()) == 1, captured.err[-2000:]
    assert SECRET not in caplog.text
    _assert_no_file_holds_the_secret(tmp_path)


def _assert_no_file_holds_the_secret(root: Path) -> None:
    for path in root.rglob("*"):
        if path.is_file():
            assert SECRET.encode() not in path.read_bytes(), path


@pytest.mark.skipif(postgres_bin() is None, reason="PostgreSQL server not installed")
def test_a_store_with_a_password_never_shows_it(tmp_path, monkeypatch, capsys, caplog):
    """Run, resume elsewhere, suite and report on PostgreSQL URLs with a password; grep it all."""
    monkeypatch.chdir(tmp_path)
    caplog.set_level(logging.DEBUG)
    preset = str(_tiny_preset(tmp_path / "tiny.toml"))
    with postgres_server() as urls:
        # The test server trusts loopback, so any password is accepted (and must never show).
        mlflow_url, optuna_url = (
            url.replace("postgres@", f"postgres:{SECRET}@") for url in urls.values()
        )
        store = ["--tracking-uri", mlflow_url, "--checkpoint-dir", "ck"]
        assert main([*RUN, *store]) == 0
        # The same config in another store: the checkpoint's origin is compared and logged.
        other = f"sqlite:///{tmp_path / 'other.db'}"
        loud = [arg for arg in RUN if arg != "--quiet"]  # logs the origin comparison
        assert main([*loud, "--tracking-uri", other, "--checkpoint-dir", "ck", "--resume"]) == 0
        resumed = capsys.readouterr()
        assert "logged to another store" in resumed.err
        assert SECRET not in resumed.out + resumed.err
        assert main(["suite", preset, *store, "--storage", optuna_url]) == 0
        assert (
            main(["report", "--preset", preset, "--out", "report", "--tracking-uri", mlflow_url])
            == 0
        )
        captured = capsys.readouterr()
        assert "postgres:***@127.0.0.1" in captured.out  # the suite's final line
        assert SECRET not in captured.out + captured.err
        assert SECRET not in caplog.text
        client = MlflowClient(mlflow_url)
        runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
        assert {run.data.tags.get("prunebench.kind") for run in runs} >= {"train", "report"}
        for run in runs:
            assert SECRET not in repr(run.data.params) + repr(run.data.tags)
            artifacts = Path(client.download_artifacts(run.info.run_id, "", str(tmp_path / "dl")))
            assert any(artifacts.rglob("*")) or run.data.tags.get("prunebench.kind") != "report"
    assert (tmp_path / "report" / "index.html").is_file()
    assert any((tmp_path / "ck").glob("*.pt"))
    _assert_no_file_holds_the_secret(tmp_path)
