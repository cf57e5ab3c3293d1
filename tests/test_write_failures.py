"""A full disk at any write, and runs whose process died: one line, and nothing left RUNNING."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from mlflow import MlflowClient

from prunebench import record
from prunebench.cli.main import main

pytestmark = pytest.mark.usefixtures("one_thread")

RUN = [
    "run", "--dataset", "synthetic", "--model", "small_cnn", "--budget", "epochs:3",
    "--subset", "100", "--batch-size", "50", "--device", "cpu", "--threads", "1", "--quiet",
]  # fmt: skip


LONG = [*RUN[: RUN.index("epochs:3")], "epochs:25", *RUN[RUN.index("epochs:3") + 1 :]]
"""Epochs enough that their metrics fill the small disk mid-run."""


def _mount_tmpfs(folder: Path, size_bytes: int) -> None:
    """A real filesystem of ``size_bytes`` (tmpfs), or a skip that says why there is none."""
    folder.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", f"size={size_bytes}", "tmpfs", str(folder)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill up (needs root): {mounted.stderr.strip()}")


def _runs(uri: str) -> list:
    return MlflowClient(uri).search_runs(["1"])


def test_a_full_tracking_store_is_one_line_and_a_resume_elsewhere_gives_the_same_result(
    tmp_path, monkeypatch, mlflow_sqlite, capsys
):
    """Class 7: a full disk under the tracking store mid-run was a 214-455 line traceback."""
    monkeypatch.chdir(tmp_path)
    template = Path(mlflow_sqlite.removeprefix("sqlite:///"))
    full = tmp_path / "full"
    _mount_tmpfs(full, (template.stat().st_size // 4096 + 12) * 4096)  # 48 KB to spare
    try:
        shutil.copyfile(template, full / "mlflow.db")
        argv = [*LONG, "--checkpoint-dir", str(tmp_path / "ck"), "--resume"]
        code = main([*argv, "--tracking-uri", f"sqlite:///{full / 'mlflow.db'}"])
        lines = capsys.readouterr().err.strip().splitlines()
        shutil.copyfile(full / "mlflow.db", tmp_path / "good.db")  # to a disk with room
    finally:
        # MLflow keeps its connection to the store open in this process: detach lazily.
        subprocess.run(["umount", "--lazy", str(full)], check=True)
    assert code == 2
    assert len(lines) == 1, lines
    assert lines[0].startswith(
        f"prunebench: error: no space left on device while writing {full / 'mlflow.db'} ("
    )
    assert (
        " free there); free space there, then run the same command again with --resume"
        in (lines[0])
    )
    good = f"sqlite:///{tmp_path / 'good.db'}"
    assert main([*argv, "--tracking-uri", good]) == 0
    assert not [run for run in _runs(good) if run.info.status == "RUNNING"]
    (finished,) = [run for run in _runs(good) if run.info.status == "FINISHED"]
    reference = f"sqlite:///{tmp_path / 'reference.db'}"
    shutil.copyfile(template, tmp_path / "reference.db")
    elsewhere = ["--checkpoint-dir", str(tmp_path / "ck2"), "--tracking-uri", reference]
    assert main([*LONG, *elsewhere]) == 0
    (uninterrupted,) = _runs(reference)
    assert (
        finished.data.metrics["final_test_accuracy"]
        == (uninterrupted.data.metrics["final_test_accuracy"])
    )
    assert finished.data.metrics["train_loss"] == uninterrupted.data.metrics["train_loss"]


def test_a_standalone_runs_orphan_is_marked_killed_when_its_config_runs_again(
    tmp_path, monkeypatch, mlflow_sqlite, capsys
):
    """Class 6: a RUNNING run of the same config whose process is gone was never marked."""
    from prunebench.bench.tracking import process_tag

    monkeypatch.chdir(tmp_path)
    argv = [*RUN, "--checkpoint-dir", str(tmp_path / "ck"), "--tracking-uri", mlflow_sqlite]
    assert main(argv) == 0
    (first,) = _runs(mlflow_sqlite)
    client = MlflowClient(mlflow_sqlite)
    ended = subprocess.Popen(["true"])
    ended.wait()
    host, _, _ = process_tag().split(":")
    dead = f"{host}:{ended.pid}:0.00"
    alive = process_tag()  # this process: its run is not an orphan
    orphans = {}
    for tag in (dead, alive):
        run = client.create_run("1", tags={**first.data.tags, record.TAG_PROCESS: tag})
        orphans[tag] = run.info.run_id
    assert main([*argv, "--seed", "0"]) == 0  # the same config again
    assert client.get_run(orphans[dead]).info.status == "KILLED"
    assert "process ended" in client.get_run(orphans[dead]).data.tags[record.TAG_FAILURE_REASON]
    assert client.get_run(orphans[alive]).info.status == "RUNNING"
