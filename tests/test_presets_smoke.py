"""Every named preset (package data) end to end on the CPU: suite, then report, on a tiny fixture.

Each preset runs through its own code path (its loader, model, augmentations, optimizer), cut
down only by the documented suite options: --data-dir (a tiny copy of its dataset in the
dataset's own on-disk format), --seeds 0, --budget epochs:1, --pruners full,orderdp,
--prune-ratios 0.5 and --grad-alignment-probe 16 (the paper presets measure gradient alignment;
against every sample it was two thirds of a ResNet-18 cell's CPU time); a preset of several
devices runs one cell (--pruners full) on --nproc 2 processes. The report is then built from
MLflow with the same overrides.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from datasets_fixtures import (
    random_images,
    require_ffcv,
    write_cifar10,
    write_cifar100,
    write_idx,
    write_image_folder,
)

from prunebench import mlflow_store, record
from prunebench.cli.main import main
from prunebench.suite.presets import CONFIG_DIR, load_preset, named_presets

pytestmark = pytest.mark.slow

PRESETS = named_presets()
TRAIN, TEST = 64, 32  # samples: enough for every class of CIFAR-10 / Fashion-MNIST to appear
IMAGENET_TRAIN, IMAGENET_TEST = 16, 8  # 4 classes; ResNet-50 at 224 px costs per image
OVERRIDES = ["--seeds", "0", "--budget", "epochs:1", "--prune-ratios", "0.5",
             "--grad-alignment-probe", "16"]  # fmt: skip


def write_fashion_mnist(root: Path) -> None:
    """The four IDX files (gzipped, the standard names) with TRAIN and TEST random samples."""
    rng = np.random.default_rng(0)
    for prefix, count in (("train", TRAIN), ("t10k", TEST)):
        images = random_images(count, 28, 28, 1, int(rng.integers(1 << 30)))[..., 0]
        labels = np.arange(count) % 10
        write_idx(root / f"{prefix}-images-idx3-ubyte.gz", images)
        write_idx(root / f"{prefix}-labels-idx1-ubyte.gz", labels)


def write_imagenet(root: Path) -> None:
    """ImageFolder train/ and val/ JPEGs over 4 classes (ImageNet's layout)."""
    classes = [f"n0{i}" for i in range(4)]
    train, val = root / "imagenet" / "train", root / "imagenet" / "val"
    write_image_folder(train, dict.fromkeys(classes, IMAGENET_TRAIN // 4), seed=0)
    write_image_folder(val, dict.fromkeys(classes, IMAGENET_TEST // 4), seed=1)


FIXTURES = {
    "imagenet": write_imagenet,
    "fashion_mnist": write_fashion_mnist,
    "cifar10": lambda root: write_cifar10(root, per_batch=TRAIN // 5 + 1, test=TEST),
    "cifar100": lambda root: write_cifar100(root, train=TRAIN, test=TEST),
}


def test_every_preset_is_covered():
    assert PRESETS, f"no presets found in {CONFIG_DIR}"
    datasets = {name for preset in PRESETS for name in load_preset(preset).datasets}
    assert datasets <= set(FIXTURES), f"no tiny fixture for {sorted(datasets - set(FIXTURES))}"


@pytest.mark.parametrize("name", PRESETS)
def test_preset_runs_end_to_end_on_a_tiny_fixture(name, tmp_path, monkeypatch, capsys):
    monkeypatch.chdir(tmp_path)
    data = tmp_path / "data"
    data.mkdir()
    preset = load_preset(name)
    if preset.run_settings["loader"] == "ffcv":
        require_ffcv()
    for dataset in preset.datasets:
        FIXTURES[dataset](data)
    # --subset always: a same-compute cell's passes are a share of the training-set size, which
    # the tiny fixture is not.
    train = IMAGENET_TRAIN if "imagenet" in preset.datasets else TRAIN
    extra = [*OVERRIDES, "--subset", str(train)]
    # Multi-device presets: their code path is one 2-process cell (full data) on the CPU; the
    # pruners under 2 processes are test_distributed's.
    multi_device = preset.run_settings["nproc"] > 1
    pruners = ["full"] if multi_device else ["full", "orderdp"]
    extra += ["--pruners", ",".join(pruners)] + (["--nproc", "2"] if multi_device else [])
    tracking = f"sqlite:///{tmp_path / 'mlflow.db'}"
    code = main(
        ["suite", name, "--tracking-uri", tracking, "--storage", f"sqlite:///{tmp_path / 'o.db'}",
         "--checkpoint-dir", str(tmp_path / "checkpoints"), "--data-dir", str(data), "--quiet",
         *extra]
    )  # fmt: skip
    out = capsys.readouterr().out
    assert code == 0, out
    assert out.splitlines()[0].startswith(
        f"suite {preset.name}: loader {preset.run_settings['loader']}"
    )
    # Per dataset and model: the pruners' cells, the same-compute full run at 0.5 if asked for
    # (orderdp's), full data on twice the budget if asked for (saturation), and the pruners'
    # again per equal-time fraction.
    same_compute = int(preset.same_compute and "orderdp" in pruners)
    per_grid = len(pruners) * (1 + len(preset.equal_time)) + same_compute + int(preset.saturation)
    assert f"all {per_grid * len(preset.datasets) * len(preset.models)} cells finished" in out

    client = mlflow_store.client(tracking)
    experiment_id = mlflow_store.find_experiment_id(client, preset.name)
    every = mlflow_store.search_all_runs(client, experiment_id, record.train_filter())
    assert all(run.info.status == "FINISHED" for run in every)
    runs = [r for r in every if r.data.tags[record.TAG_COMPARISON] == record.COMPARISON_MAIN]
    assert sorted(run.data.params["pruner"] for run in runs) == pruners
    for run in runs:
        # The preset's own code path: its loader and model, on the fixture's samples.
        assert run.data.params["loader"] == preset.run_settings["loader"]
        assert run.data.params["model"] == preset.models[0]
        assert run.data.params["augment"] == str(preset.run_settings["augment"])
        assert run.data.metrics["epochs_run"] == 1
        assert int(run.data.params["train_size"]) in (train, train // 5 * 5 + 5)  # CIFAR-10: 5 x 13
        assert 0.0 <= run.data.metrics["test_accuracy"] <= 1.0
        if preset.run_settings.get("grad_alignment"):
            assert run.data.params["grad_alignment_probe"] == "16"

    report = tmp_path / "report"
    code = main(
        ["report", "--preset", name, "--out", str(report), "--tracking-uri", tracking, *extra]
    )
    assert code == 0, capsys.readouterr().err
    assert (report / "index.html").is_file() and (report / "leaderboard.csv").is_file()
