"""User-caused errors found by probing: each is one line and exit 2 (Ctrl-C: one line, 130)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import sys
from pathlib import Path

from mlflow import MlflowClient

from prunebench.cli.main import main

REPO = Path(__file__).resolve().parents[1]
RUN = [
    "run", "--dataset", "synthetic", "--model", "small_cnn", "--budget", "epochs:1",
    "--subset", "100", "--batch-size", "50", "--device", "cpu", "--threads", "1", "--quiet",
]  # fmt: skip


def _one_line_error(argv: list[str], capsys) -> str:
    code = main(argv)
    captured = capsys.readouterr()
    assert code == 2, captured.err[-2000:]
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1 and lines[0].startswith("prunebench: error: "), captured.err[-2000:]
    return lines[0]


def test_a_tracking_file_that_is_not_a_database_is_one_line(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    store = tmp_path / "notes.db"
    store.write_text("not a database\n")
    line = _one_line_error([*RUN, "--tracking-uri", f"sqlite:///{store}"], capsys)
    assert f"tracking store sqlite:///{store} is not a SQLite database" in line
    assert store.read_text() == "not a database\n"
    assert sorted(p.name for p in tmp_path.iterdir()) == ["notes.db"]  # nothing else written


def test_an_unwritable_checkpoint_dir_fails_before_anything_is_written(
    tmp_path, monkeypatch, capsys
):
    """/proc passes root's permission check but takes no files: only a write probe sees it."""
    monkeypatch.chdir(tmp_path)
    store = f"sqlite:///{tmp_path / 'mlflow.db'}"
    argv = [*RUN, "--tracking-uri", store, "--checkpoint-dir", "/proc/prunebench-checkpoints"]
    line = _one_line_error(argv, capsys)
    assert "checkpoint directory /proc/prunebench-checkpoints cannot be written" in line
    assert list(tmp_path.iterdir()) == []  # no store, no config, no checkpoint


def _ctrl_c_one_run(folder: Path, tracking_uri: str) -> None:
    """Start a long run in a child process, SIGINT it after its first epoch: exit 130, one line."""
    env = {**os.environ, "PYTHONPATH": f"{REPO}{os.pathsep}{os.environ.get('PYTHONPATH', '')}"}
    argv = [a for a in RUN if a != "--quiet"]  # per-epoch lines show that training started
    argv[argv.index("epochs:1")] = "epochs:1000"
    process = subprocess.Popen(
        [sys.executable, "-m", "prunebench.cli", *argv, "--tracking-uri", tracking_uri,
         "--checkpoint-dir", str(folder / "ck")],
        cwd=folder, env=env, stderr=subprocess.PIPE, text=True,
    )  # fmt: skip
    assert process.stderr is not None
    before = []
    for line in process.stderr:  # wait until an epoch has finished
        before.append(line)
        if line.startswith("epoch 0:"):
            break
    process.send_signal(signal.SIGINT)
    after = process.stderr.read().strip().splitlines()
    assert process.wait(timeout=120) == 130, "".join(before) + "\n".join(after)
    assert after[-1] == (
        "prunebench: interrupted by SIGINT; the run is recorded KILLED; rerun the same command "
        "with --resume to continue from its last checkpoint"
    )
    assert not [line for line in after if "Traceback" in line or "KeyboardInterrupt" in line]
    assert all(line.startswith("epoch ") for line in after[:-1]), after
    client = MlflowClient(tracking_uri)
    runs = client.search_runs([e.experiment_id for e in client.search_experiments()])
    assert [run.info.status for run in runs] == ["KILLED"]


def test_ctrl_c_ends_a_run_with_one_line(tmp_path):
    _ctrl_c_one_run(tmp_path, f"sqlite:///{tmp_path / 'mlflow.db'}")  # a new store, created here


# A Ctrl-C test once lost its SIGINT inside a whole test run on a loaded machine: every full run
# repeats it this many times in a row beside a CPU-bound process (both cores busy).
CTRL_C_REPEATS = int(os.environ.get("PRUNEBENCH_CTRL_C_REPEATS", "20"))


def test_ctrl_c_holds_many_times_in_a_row_beside_a_cpu_bound_process(tmp_path, _mlflow_template):
    burner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        for index in range(CTRL_C_REPEATS):
            folder = tmp_path / f"try-{index}"
            folder.mkdir()
            shutil.copyfile(_mlflow_template, folder / "mlflow.db")  # migrated: skips seconds
            _ctrl_c_one_run(folder, f"sqlite:///{folder / 'mlflow.db'}")
        assert burner.poll() is None, "the CPU-bound process ended early: nothing loaded the CPU"
    finally:
        burner.kill()
        burner.wait()


def test_a_missing_data_dir_is_created_and_quiet_hides_ffcvs_bars(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    data_dir = tmp_path / "new" / "data"
    argv = [*RUN, "--loader", "ffcv", "--data-dir", str(data_dir)]
    assert main([*argv, "--tracking-uri", f"sqlite:///{tmp_path / 'mlflow.db'}"]) == 0
    captured = capsys.readouterr()
    assert captured.err == ""  # no writer bars (and no log lines) with --quiet
    assert len(list((data_dir / "ffcv").glob("*.beton"))) == 2  # train and test splits


def test_a_data_dir_that_is_a_file_is_not_a_directory(tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    data_file = tmp_path / "data"
    data_file.write_text("")
    line = _one_line_error([*RUN, "--data-dir", str(data_file)], capsys)
    assert line.endswith(f"{data_file} is not a directory; pass a folder as --data-dir")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["data"]
