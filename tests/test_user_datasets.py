"""``--dataset npz:PATH`` and ``--dataset folder:PATH``: a user's arrays and image tree, no code.

The data is written here in the users' formats (numpy.savez, PNG files in ImageFolder layout),
then loaded by both loaders and trained on by real runs; the FFCV tests skip only where FFCV
cannot be imported.
"""

from __future__ import annotations

import numpy as np
import pytest
import torch
from datasets_fixtures import require_ffcv
from mlflow import MlflowClient
from PIL import Image

from prunebench.bench.budgets import parse_budget
from prunebench.bench.config import RunConfig
from prunebench.bench.run import train_run
from prunebench.cli.main import main
from prunebench.datasets import build_loader, get_spec

pytestmark = pytest.mark.usefixtures("one_thread")

COLOURS = {"cat": (200, 30, 30), "dog": (20, 40, 220)}  # one solid colour per class


def write_tree(root, splits=("train", "test"), per_class: int = 6) -> None:
    """PNG files of 10x12 pixels, one solid colour per class (resizing keeps the colour)."""
    for split in splits:
        for label, colour in COLOURS.items():
            folder = root / split / label
            folder.mkdir(parents=True)
            for i in range(per_class):
                shade = tuple(max(0, c - 3 * i) for c in colour)
                Image.new("RGB", (12, 10), shade).save(folder / f"{i}.png")


def write_npz(path, flat: bool = False, seed: int = 0) -> None:
    rng = np.random.default_rng(seed)
    if flat:  # features in [0, 1]
        x_train, x_test = rng.random((40, 6)), rng.random((20, 6))
    else:  # grey 8x8 images
        x_train = rng.integers(0, 256, (40, 8, 8), dtype=np.uint8)
        x_test = rng.integers(0, 256, (20, 8, 8), dtype=np.uint8)
    y_train, y_test = np.arange(40) % 3, np.arange(20) % 3
    np.savez(path, x_train=x_train, y_train=y_train, x_test=x_test, y_test=y_test)


def served(dataset: str, split: str, backend: str, data_dir) -> tuple[torch.Tensor, torch.Tensor]:
    """Every sample of ``split`` as the loader serves it, in index order (no augmentation)."""
    loader = build_loader(
        dataset, split, backend=backend, batch_size=16, data_dir=data_dir, num_workers=1
    )
    images, labels = zip(*[(x, y) for x, y, _ in loader], strict=True)
    return torch.cat(images), torch.cat(labels)


@pytest.fixture
def workdir(tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)  # decoded folders are kept under ./prunebench-data
    return tmp_path


@pytest.mark.parametrize("backend", ["tensor", "ffcv"])
def test_npz_images_and_features_load_as_written(workdir, backend):
    if backend == "ffcv":
        require_ffcv()
    write_npz(workdir / "images.npz")
    write_npz(workdir / "features.npz", flat=True)
    spec = get_spec("npz:images.npz")
    assert (spec.channels, spec.height, spec.width, spec.num_classes) == (1, 8, 8, 3)
    assert (spec.train_size, spec.test_size) == (40, 20)
    with np.load(workdir / "images.npz") as stored:
        x_test, y_test = stored["x_test"], stored["y_test"]
    images, labels = served("npz:images.npz", "test", backend, workdir / "data")
    mean, std = spec.mean[0] * 255, spec.std[0] * 255
    assert torch.equal(labels, torch.from_numpy(y_test))
    expected = (torch.from_numpy(x_test).float()[:, None] - mean) / std
    assert torch.allclose(images, expected, atol=1e-4)
    # Flat features: 1x1 images with one channel per feature, standardized per feature.
    features = get_spec("npz:features.npz")
    assert (features.channels, features.height, features.width) == (6, 1, 1)
    images, _ = served("npz:features.npz", "train", backend, workdir / "data")
    assert images.shape == (40, 6, 1, 1)
    assert images.mean(dim=0).abs().max() < 0.05  # mean/std from the training split


@pytest.mark.parametrize("backend", ["tensor", "ffcv"])
def test_image_folder_is_decoded_resized_and_labelled_by_class_folder(workdir, backend):
    if backend == "ffcv":
        require_ffcv()
    write_tree(workdir / "pets")
    spec = get_spec("folder:pets@8")
    assert (spec.channels, spec.height, spec.width, spec.num_classes) == (3, 8, 8, 2)
    assert (spec.train_size, spec.test_size) == (12, 12)
    images, labels = served("folder:pets@8", "train", backend, workdir / "data")
    assert labels.tolist() == [0] * 6 + [1] * 6  # cat, dog: sorted class folder names
    mean = torch.tensor(spec.mean).view(1, 3, 1, 1) * 255
    std = torch.tensor(spec.std).view(1, 3, 1, 1) * 255
    pixels = (images * std + mean).round()
    assert pixels.shape == (12, 3, 8, 8)
    assert pixels[0, :, 3, 3].tolist() == list(COLOURS["cat"])  # a solid colour stays itself
    assert pixels[6, :, 3, 3].tolist() == list(COLOURS["dog"])
    assert len(list((workdir / "prunebench-data" / "decoded").glob("*.npz"))) == 2  # decoded once


@pytest.mark.parametrize("backend", ["tensor", "ffcv"])
def test_runs_train_on_both_and_record_a_content_digest(workdir, mlflow_sqlite, backend):
    if backend == "ffcv":
        require_ffcv()
    write_tree(workdir / "pets")
    write_npz(workdir / "a.npz", seed=0)
    write_npz(workdir / "b.npz", seed=1)
    digests = {}
    for dataset in ("folder:pets@8", "npz:a.npz", "npz:b.npz"):
        cfg = RunConfig(
            dataset=dataset,
            model="small_cnn",
            pruner="orderdp",
            pruner_params={"prune_ratio": 0.5},
            budget=parse_budget("epochs:2"),
            batch_size=8,
            lr=0.05,
            device="cpu",
            loader=backend,
            eval_points=1,
            data_dir=str(workdir / "data"),
        )
        result = train_run(cfg, tracking_uri=mlflow_sqlite, checkpoint_dir=workdir / "ck")
        assert result.status == "FINISHED", result.failure_reason
        run = MlflowClient(mlflow_sqlite).get_run(result.run_id)
        (train,) = [d for d in run.inputs.dataset_inputs if d.dataset.name.endswith("-train")]
        digests[dataset] = train.dataset.digest
    assert len(set(digests.values())) == 3  # different samples never share a digest


@pytest.mark.parametrize(
    ("make", "dataset", "words"),
    [
        (lambda root: write_tree(root / "pets", splits=("train",)), "folder:pets", "no test/"),
        (lambda root: write_tree(root / "pets", splits=("test",)), "folder:pets", "no train/"),
        (lambda root: None, "folder:nowhere", "no folder"),
        (
            lambda root: np.savez(root / "x.npz", x_train=np.zeros((4, 3)), y_train=np.zeros(4)),
            "npz:x.npz",
            "lacks x_test, y_test",
        ),
    ],
)
def test_a_wrong_layout_is_one_line_naming_what_is_missing(workdir, capsys, make, dataset, words):
    make(workdir)
    code = main(["run", "--dataset", dataset, "--model", "small_cnn", "--budget", "epochs:1"])
    lines = capsys.readouterr().err.strip().splitlines()
    assert code == 2
    assert len(lines) == 1 and words in lines[0], lines
    assert not (workdir / "mlflow.db").exists()


def test_torchvision_style_datasets_become_arrays():
    """What a three-line torchvision plugin returns: a dataset with .data/.targets (MNIST,
    CIFAR), or one that decodes (PIL image, label) pairs (here torchvision's FakeData)."""
    from torchvision.datasets import FakeData

    from prunebench.datasets.generic import dataset_arrays

    class Stored:  # MNIST's attributes: a uint8 tensor [N, H, W] and a label tensor
        data = torch.arange(4 * 5 * 5, dtype=torch.uint8).reshape(4, 5, 5)
        targets = torch.tensor([0, 1, 1, 0])

    stored = dataset_arrays(Stored(), "stored")
    assert stored.images.shape == (4, 5, 5, 1) and stored.labels.tolist() == [0, 1, 1, 0]
    assert np.array_equal(stored.images[..., 0], Stored.data.numpy())
    fake = FakeData(size=6, image_size=(3, 7, 9), num_classes=4, random_offset=0)
    decoded = dataset_arrays(fake, "fake")
    assert decoded.images.shape == (6, 7, 9, 3) and decoded.images.dtype == np.uint8
    assert decoded.labels.tolist() == [int(fake[i][1]) for i in range(6)]
    assert np.array_equal(decoded.images[2], np.asarray(fake[2][0]))
