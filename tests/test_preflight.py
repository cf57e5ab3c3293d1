"""A suite, search or report that cannot start says why in one line, exits 2 and writes nothing.

Real CLI, real stores: a migrated MLflow SQLite store (whose runs are counted) and an Optuna
SQLite storage path (which must not appear), or a PostgreSQL URL nobody listens on.
"""

from __future__ import annotations

import gzip
from pathlib import Path

import numpy as np
import pytest
from datasets_fixtures import random_images, write_idx

from prunebench import mlflow_store, record
from prunebench.cli.main import main
from prunebench.errors import UsageError
from prunebench.stores import probe_writable

TINY = """
name = "tiny"
datasets = ["synthetic"]
models = ["small_cnn"]
budget = "epochs:1"
seeds = [0]
prune_ratios = [0.5]
subset = 200
batch_size = 64
lr = 0.05
accuracy_targets = [0.3]

[[pruners]]
name = "full"

[[pruners]]
name = "orderdp"
"""

# ImageNet is never downloaded: an empty --data-dir is a dataset that is missing for good.
MISSING_DATA = TINY.replace('["synthetic"]', '["imagenet"]').replace("subset = 200\n", "")

# Present (so the preflight finds it) but unreadable: found only when a cell reads it.
CORRUPT_DATA = TINY.replace('["synthetic"]', '["fashion_mnist"]').replace("subset = 200\n", "")

UNREACHABLE = "postgresql+psycopg2://nobody@127.0.0.1:1/prunebench"  # port 1: nothing listens


@pytest.fixture
def work(tmp_path, monkeypatch, mlflow_sqlite):
    monkeypatch.chdir(tmp_path)
    (tmp_path / "data").mkdir()
    return {
        "root": tmp_path,
        "preset": tmp_path / "tiny.toml",
        "tracking": mlflow_sqlite,
        "storage": tmp_path / "optuna.db",
        "checkpoints": tmp_path / "checkpoints",
    }


def suite_args(work, *extra: str, command: str = "suite") -> list[str]:
    return [
        command, str(work["preset"]), "--tracking-uri", work["tracking"],
        "--storage", f"sqlite:///{work['storage']}", "--checkpoint-dir", str(work["checkpoints"]),
        "--data-dir", str(work["root"] / "data"), *extra,
    ]  # fmt: skip


def assert_nothing_written(work) -> None:
    client = mlflow_store.client(work["tracking"])
    experiments = client.search_experiments()
    assert [e.name for e in experiments] == ["Default"]  # no experiment created
    assert client.search_runs([e.experiment_id for e in experiments]) == []  # no run
    assert not work["storage"].exists()  # no Optuna storage, so no study
    assert not work["checkpoints"].exists()


def one_error_line(capsys) -> str:
    captured = capsys.readouterr()
    err = captured.err.strip()
    assert err.startswith("prunebench: error: ") and "\n" not in err, err
    return err


@pytest.mark.parametrize("command", ["suite", "search"])
def test_missing_dataset_stops_before_the_first_cell(work, capsys, command):
    work["preset"].write_text(MISSING_DATA.replace('"small_cnn"', '"resnet18"'))
    assert main(suite_args(work, command=command)) == 2
    assert "ImageNet was not found" in one_error_line(capsys)
    assert_nothing_written(work)


def test_unreachable_tracking_store_stops_before_the_first_cell(work, capsys):
    work["preset"].write_text(TINY)
    args = suite_args(work)
    args[args.index("--tracking-uri") + 1] = UNREACHABLE
    assert main(args) == 2
    assert "unreachable" in one_error_line(capsys)
    assert_nothing_written(work)


def test_tracking_store_in_a_missing_folder_stops_before_the_first_cell(work, capsys):
    work["preset"].write_text(TINY)
    args = suite_args(work)
    args[args.index("--tracking-uri") + 1] = f"sqlite:///{work['root'] / 'nowhere' / 'm.db'}"
    assert main(args) == 2
    assert "does not exist" in one_error_line(capsys)
    assert not (work["root"] / "nowhere").exists()
    assert_nothing_written(work)


@pytest.mark.parametrize("command", ["suite", "search"])
def test_unreachable_optuna_storage_stops_before_the_first_cell(work, capsys, command):
    work["preset"].write_text(TINY)
    args = suite_args(work, command=command)
    args[args.index("--storage") + 1] = UNREACHABLE
    assert main(args) == 2
    # The URL as redact_url shows it: scheme, user and host kept, any password masked.
    assert "Optuna storage postgresql+psycopg2://nobody@127.0.0.1:1/prunebench is unreachable" in (
        one_error_line(capsys)
    )
    assert_nothing_written(work)


def test_unwritable_checkpoint_folder_stops_before_the_first_cell(work, capsys):
    work["preset"].write_text(TINY)
    blocker = work["root"] / "a-file"
    blocker.write_text("not a folder")
    args = suite_args(work)
    args[args.index("--checkpoint-dir") + 1] = str(blocker / "checkpoints")
    assert main(args) == 2
    assert "checkpoint folder" in one_error_line(capsys)
    assert_nothing_written(work)


def test_the_write_probe_sees_what_permission_bits_do_not():
    # /sys is read-only for everyone, root included, though its bits may say otherwise.
    target = Path("/sys/prunebench-checkpoints")
    try:
        with open(Path("/sys") / ".prunebench-test", "x"):
            pass
    except OSError:
        pass
    else:  # pragma: no cover - a writable /sys
        pytest.skip("/sys is writable on this machine, so it cannot stand for a read-only folder")
    with pytest.raises(UsageError, match=r"checkpoint folder /sys/prunebench-checkpoints cannot"):
        probe_writable(target, "checkpoint folder", "a writable --checkpoint-dir")


def test_report_to_an_unwritable_folder_stops_in_one_line(work, capsys):
    blocker = work["root"] / "a-file"
    blocker.write_text("not a folder")
    code = main(
        ["report", "--experiment", "Default", "--out", str(blocker / "report"),
         "--tracking-uri", work["tracking"], "--no-log-run"]
    )  # fmt: skip
    assert code == 2
    assert "report folder" in one_error_line(capsys)


def test_suite_names_its_loader_first_and_failed_cells_take_one_line_each(work, capsys):
    diverging = TINY.replace("lr = 0.05", "lr = 1e9").replace("epochs:1", "epochs:2")
    work["preset"].write_text(diverging)  # every cell diverges
    assert main(suite_args(work, "--quiet")) == 1
    captured = capsys.readouterr()
    assert captured.out.splitlines()[0] == "suite tiny: loader tensor"
    lines = captured.err.strip().splitlines()
    assert len(lines) == 2, captured.err  # one line per failed cell, no traceback
    assert all(line.startswith("cell synthetic/small_cnn/") for line in lines)
    assert all("FAILED: training loss became nan" in line for line in lines)


def test_auto_loader_is_resolved_once_and_named(work, capsys):
    from prunebench.datasets.build import ffcv_import_error

    work["preset"].write_text(TINY.replace("lr = 0.05", 'lr = 0.05\nloader = "auto"'))
    assert main(suite_args(work, "--dry-run")) == 0
    first = capsys.readouterr().out.splitlines()[0]
    expected = (
        "ffcv (auto: FFCV is installed)"
        if ffcv_import_error() is None
        else ("tensor (auto: FFCV is not installed here)")
    )
    assert first == f"suite tiny: loader {expected}"


@pytest.mark.parametrize(
    "extra,message",
    [
        (["--pruners", "full,oracle"], "no pruner labelled 'oracle'; choose from full, orderdp"),
        (["--seeds", "zero"], "--seeds expects comma-separated numbers"),
        (["--budget", "weeks:1"], "budget"),
        (["--prune-ratios", "1.5"], "prune ratio must be in"),
    ],
)
def test_invalid_overrides_are_an_invalid_preset(work, capsys, extra, message):
    work["preset"].write_text(TINY)
    assert main(suite_args(work, *extra)) == 2
    assert message in one_error_line(capsys)
    assert_nothing_written(work)


def test_overrides_cut_the_grid_without_editing_the_preset(work):
    from prunebench.suite.presets import load_preset

    work["preset"].write_text(TINY.replace("seeds = [0]", "seeds = [0, 1, 2]"))
    preset = load_preset(
        str(work["preset"]), seeds=[1], budget="epochs:3", pruners=["orderdp"], prune_ratios=[0.3]
    )
    cells = preset.cells()
    assert [(c.pruner, c.seed, str(c.budget), c.target_prune_ratio()) for c in cells] == [
        ("orderdp", 1, "epochs:3", 0.3)
    ]


def write_cut_short_fashion_mnist(root: Path) -> None:
    """The four Fashion-MNIST files, the train images cut 100 bytes short (as by a broken copy)."""
    images = random_images(20, 28, 28, 1, seed=0)[..., 0]
    labels = np.arange(20) % 10
    for prefix in ("train", "t10k"):
        write_idx(root / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(root / f"{prefix}-labels-idx1-ubyte.gz", labels)
    path = root / "train-images-idx3-ubyte.gz"
    path.write_bytes(gzip.compress(gzip.decompress(path.read_bytes())[:-100]))


def test_a_cell_whose_data_cannot_be_read_is_failed_with_its_traceback(work, capsys):
    work["preset"].write_text(CORRUPT_DATA)
    write_cut_short_fashion_mnist(work["root"] / "data")
    assert main(suite_args(work, "--quiet")) == 1  # the preflight passed; both cells failed
    captured = capsys.readouterr()
    lines = captured.err.strip().splitlines()
    assert len(lines) == 2, captured.err  # one line per failed cell, no traceback
    assert all("FAILED: DataError: " in line and "header promises" in line for line in lines)

    client = mlflow_store.client(work["tracking"])
    experiment_id = mlflow_store.find_experiment_id(client, "tiny")
    runs = mlflow_store.search_all_runs(client, experiment_id, record.train_filter())
    assert sorted(run.data.params["pruner"] for run in runs) == ["full", "orderdp"]
    for run in runs:  # created before the data was read, so the failure is on record
        assert run.info.status == "FAILED"
        assert run.data.tags[record.TAG_STATUS] == "FAILED"
        reason = run.data.tags[record.TAG_FAILURE_REASON]
        assert reason.startswith("DataError: ") and "replace it with an intact copy" in reason
        assert run.data.params["dataset"] == "fashion_mnist"
        folder = work["root"] / "artifacts" / run.info.run_id
        folder.mkdir(parents=True)
        local = client.download_artifacts(run.info.run_id, record.ARTIFACT_TRACEBACK, str(folder))
        text = Path(local).read_text()
        assert text.startswith("Traceback (most recent call last)")
        assert "read_idx" in text and text.rstrip().endswith(reason)

    # Run again with --verbose: the cells are retried, fail alike, and print their tracebacks.
    assert main(suite_args(work, "--quiet", "--verbose")) == 1
    err = capsys.readouterr().err
    assert err.count("Traceback (most recent call last)") == 2, err
    assert err.count("FAILED: DataError: ") == 2
