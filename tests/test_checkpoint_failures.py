"""A checkpoint save that fails on a full disk: one named reason; resume logs each epoch once."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
from mlflow import MlflowClient

from prunebench.bench.budgets import parse_budget
from prunebench.bench.config import RunConfig
from prunebench.bench.run import train_run
from prunebench.errors import UsageError

pytestmark = pytest.mark.usefixtures("one_thread")


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


def test_a_full_disk_fails_in_one_named_line_and_resume_logs_each_epoch_once(
    tmp_path, mlflow_sqlite
):
    cfg = RunConfig(
        dataset="synthetic", model="small_cnn", pruner="full", budget=parse_budget("epochs:2"),
        subset=200, batch_size=64, lr=0.05, device="cpu",
    )  # fmt: skip
    roomy = tmp_path / "roomy"
    first = train_run(cfg, mlflow_sqlite, "disk", roomy, stop_after_epochs=1)
    saved = first.checkpoint_path
    size = saved.stat().st_size
    # Room for one checkpoint but not for the second one written beside it before the rename.
    full = tmp_path / "full"
    _mount_tmpfs(full, (size * 3 // 2 // 4096 + 1) * 4096)
    try:
        shutil.copy(saved, full / saved.name)
        with pytest.raises(UsageError) as raised:
            train_run(cfg, mlflow_sqlite, "disk", full, resume=True)
        assert list(full.iterdir()) == [full / saved.name]  # no temporary file left behind
    finally:
        subprocess.run(["umount", str(full)], check=True)
    message = str(raised.value)
    assert message.startswith(
        f"no space left on device while writing checkpoint {full / saved.name}"
    )
    assert "\n" not in message and "enforce fail" not in message
    client = MlflowClient(mlflow_sqlite)
    failed = client.get_run(first.run_id)
    assert failed.info.status == "FAILED"
    assert "no space left on device" in failed.data.tags["prunebench.failure_reason"]

    # The epoch-0 checkpoint is intact in the roomy folder: resume there and finish.
    done = train_run(cfg, mlflow_sqlite, "disk", roomy, resume=True)
    assert done.status == "FINISHED" and done.run_id == first.run_id
    finished = client.get_run(first.run_id)
    assert finished.info.status == "FINISHED"
    assert "prunebench.failure_reason" not in finished.data.tags
    steps = [m.step for m in client.get_metric_history(first.run_id, "test_accuracy")]
    assert sorted(steps) == [0, 1]
    logged = {m.step: m.value for m in client.get_metric_history(first.run_id, "train_loss")}
    assert logged == {i: entry["train_loss"] for i, entry in enumerate(done.history)}
