"""Report writes are atomic end to end (issue 23, class 8): one line, nothing half-done."""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from mlflow import MlflowClient
from reports_fixtures import EXPERIMENT, fill_store

from prunebench.cli.main import main


@pytest.fixture(scope="module")
def store(tmp_path_factory) -> str:
    return fill_store(tmp_path_factory.mktemp("store"))[0]


def _report_runs(uri: str) -> list:
    client = MlflowClient(uri)
    experiment = client.get_experiment_by_name(EXPERIMENT)
    return client.search_runs(
        [experiment.experiment_id], "tags.`prunebench.kind` = 'report'", max_results=100
    )


def _one_line(capsys) -> str:
    lines = capsys.readouterr().err.strip().splitlines()
    assert len(lines) == 1, lines
    return lines[0]


def test_out_dot_is_one_line_and_leaves_nothing(tmp_path, monkeypatch, store, capsys):
    """`--out .` was 15 lines of `Device or resource busy`, an empty `..old-*` folder that made
    the retry refuse the folder, and a FINISHED report run for a report never written."""
    monkeypatch.chdir(tmp_path)
    before = len(_report_runs(store))
    argv = ["report", "--experiment", EXPERIMENT, "--tracking-uri", store, "--out", "."]
    assert main(argv) == 2
    assert _one_line(capsys) == (
        "prunebench: error: --out . is the current directory or holds it, and a report replaces "
        "its folder whole; pass a folder of its own, e.g. --out report"
    )
    assert list(tmp_path.iterdir()) == []
    assert len(_report_runs(store)) == before


def test_a_full_disk_under_out_is_one_line_and_leaves_the_old_report(
    tmp_path, monkeypatch, store, capsys
):
    """`--out` on a full disk was 18 lines of `OSError: [Errno 28]`."""
    monkeypatch.chdir(tmp_path)
    disk = tmp_path / "disk"
    disk.mkdir()
    mounted = subprocess.run(
        ["mount", "-t", "tmpfs", "-o", "size=64k", "tmpfs", str(disk)],
        capture_output=True,
        text=True,
    )
    if mounted.returncode != 0:
        pytest.skip(f"cannot mount a small tmpfs to fill up (needs root): {mounted.stderr.strip()}")
    try:
        out = disk / "report"
        out.mkdir()
        (out / "index.html").write_text("the previous report\n")
        before = len(_report_runs(store))
        argv = ["report", "--experiment", EXPERIMENT, "--tracking-uri", store, "--out", str(out)]
        assert main(argv) == 2
        line = _one_line(capsys)
        assert line.startswith(
            f"prunebench: error: no space left on device while writing report {out} ("
        )
        assert line.endswith("free there); free space there or pass another --out, then run the "
                             "command again")  # fmt: skip
        assert sorted(p.name for p in disk.iterdir()) == ["report"]  # no .tmp- or .old- folder
        assert (out / "index.html").read_text() == "the previous report\n"
        assert len(_report_runs(store)) == before  # no report run for an unwritten report
    finally:
        subprocess.run(["umount", "--lazy", str(disk)], check=True)


def test_the_report_run_is_logged_after_the_folder_is_in_place(tmp_path, monkeypatch, store):
    monkeypatch.chdir(tmp_path)
    argv = ["report", "--experiment", EXPERIMENT, "--tracking-uri", store, "--out", "report"]
    before = len(_report_runs(store))
    assert main(argv) == 0
    assert main(argv) == 0  # replaces the first one whole
    runs = _report_runs(store)
    assert len(runs) == before + 2
    assert sorted(p.name for p in tmp_path.iterdir()) == ["report"]  # no .old- folder left
    artifacts = MlflowClient(store).list_artifacts(runs[0].info.run_id)
    assert "index.html" in {Path(a.path).name for a in artifacts}
