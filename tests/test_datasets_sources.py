"""Dataset sources on their own file formats, the FFCV cache files, and the errors users meet."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest
import torch
from datasets_fixtures import (
    collect,
    require_ffcv,
    to_pixels,
    write_cifar10,
    write_cifar100,
    write_idx,
    write_image_folder,
)
from PIL import Image

from prunebench.datasets import build_loader, generate_synthetic, get_spec, synthetic_spec
from prunebench.datasets.cifar import locate_cifar
from prunebench.datasets.fashion_mnist import SYSTEM_DIR, locate_fashion_mnist, read_idx
from prunebench.errors import DataError


def _round_trip(loader) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    images, labels, indices, _ = collect(loader)
    assert torch.equal(indices, torch.arange(loader.num_samples))
    return to_pixels(images, loader.spec), labels, indices


# --- CIFAR-10/100 -------------------------------------------------------------------------------


@pytest.mark.parametrize("backend", ["tensor", "ffcv"])
def test_cifar10_reads_its_pickle_batches_exactly(tmp_path, backend):
    if backend == "ffcv":
        require_ffcv()
    expected = write_cifar10(tmp_path, per_batch=7, test=9)
    for split in ("train", "test"):
        loader = build_loader("cifar10", split, backend=backend, batch_size=8, data_dir=tmp_path)
        pixels, labels, _ = _round_trip(loader)
        images, truth = expected[split]
        assert torch.equal(pixels, torch.from_numpy(images))
        assert torch.equal(labels, torch.from_numpy(truth))


def test_cifar100_uses_the_fine_labels(tmp_path):
    expected = write_cifar100(tmp_path, train=23, test=5)
    for split in ("train", "test"):
        loader = build_loader("cifar100", split, batch_size=10, data_dir=tmp_path)
        pixels, labels, _ = _round_trip(loader)
        assert loader.spec.num_classes == 100
        assert torch.equal(pixels, torch.from_numpy(expected[split][0]))
        assert torch.equal(labels, torch.from_numpy(expected[split][1]))


def test_cifar_offline_download_is_one_clear_sentence(tmp_path):
    data_dir = tmp_path / "fresh"
    # .invalid never resolves (RFC 2606): the same failure as an offline machine, anywhere.
    with pytest.raises(DataError) as caught:
        locate_cifar(get_spec("cifar10"), "train", data_dir, url="http://prunebench.invalid/c.tgz")
    message = str(caught.value)
    assert str(data_dir) in message and "--data-dir" in message and "cifar-10-batches-py" in message
    assert "\n" not in message and message.count(". ") == 0
    assert not data_dir.exists(), "a failed download leaves nothing behind"


def test_a_damaged_cifar_batch_is_a_data_error(tmp_path):
    write_cifar10(tmp_path, per_batch=3, test=3)
    (tmp_path / "cifar-10-batches-py" / "data_batch_2").write_bytes(b"not a pickle")
    with pytest.raises(DataError, match="data_batch_2 is not a readable CIFAR batch"):
        build_loader("cifar10", "train", data_dir=tmp_path)


# --- Fashion-MNIST -------------------------------------------------------------------------------


@pytest.mark.parametrize("compressed", [True, False])
def test_fashion_mnist_reads_idx_files_from_the_data_dir(tmp_path, compressed):
    rng = np.random.default_rng(0)
    suffix = ".gz" if compressed else ""
    expected = {}
    for split, prefix, count in (("train", "train", 30), ("test", "t10k", 12)):
        images = rng.integers(0, 256, (count, 28, 28), dtype=np.uint8)
        labels = rng.integers(0, 10, count).astype(np.uint8)
        write_idx(tmp_path / f"{prefix}-images-idx3-ubyte{suffix}", images)
        write_idx(tmp_path / f"{prefix}-labels-idx1-ubyte{suffix}", labels)
        expected[split] = (images, labels)
    for split, (images, labels) in expected.items():
        loader = build_loader("fashion_mnist", split, batch_size=8, data_dir=tmp_path)
        pixels, got, _ = _round_trip(loader)
        assert torch.equal(pixels[..., 0], torch.from_numpy(images))
        assert torch.equal(got, torch.from_numpy(labels).long())


@pytest.mark.skipif(
    not (SYSTEM_DIR / "train-images-idx3-ubyte.gz").is_file(),
    reason=f"the real Fashion-MNIST files are not in {SYSTEM_DIR} (apt dataset-fashion-mnist)",
)
def test_real_fashion_mnist_is_found_and_parsed(tmp_path):
    spec = get_spec("fashion_mnist")
    train = locate_fashion_mnist(spec, "train", tmp_path).read()
    test = locate_fashion_mnist(spec, "test", tmp_path).read()
    assert train.images.shape == (60_000, 28, 28, 1) and test.images.shape == (10_000, 28, 28, 1)
    assert np.array_equal(np.bincount(train.labels), np.full(10, 6000))
    assert np.array_equal(np.bincount(test.labels), np.full(10, 1000))
    # The published first labels: ankle boot, T-shirt, T-shirt, dress, T-shirt, pullover, ...
    assert train.labels[:10].tolist() == [9, 0, 0, 3, 0, 2, 7, 2, 5, 5]
    assert test.labels[:5].tolist() == [9, 2, 1, 1, 6]
    # The spec's normalization constants are the data's own (to 3 decimals).
    pixels = train.images / 255.0
    assert abs(pixels.mean() - spec.mean[0]) < 1e-3 and abs(pixels.std() - spec.std[0]) < 1e-3
    loader = build_loader("fashion_mnist", "train", batch_size=500, subset=1000, data_dir=tmp_path)
    assert loader.num_samples == 1000 and torch.equal(
        loader.labels.bincount(), torch.full((10,), 100)
    )


def test_a_truncated_idx_file_is_a_data_error(tmp_path):
    path = tmp_path / "t10k-images-idx3-ubyte.gz"
    write_idx(path, np.zeros((5, 28, 28), dtype=np.uint8))
    raw = tmp_path / "plain-idx3-ubyte"
    write_idx(raw, np.zeros((5, 28, 28), dtype=np.uint8))
    raw.write_bytes(raw.read_bytes()[:-10])
    with pytest.raises(DataError, match="header promises 3920"):
        read_idx(raw)
    assert read_idx(path).shape == (5, 28, 28)


# --- ImageNet (ImageFolder -> JPEG .beton) -------------------------------------------------------


@pytest.fixture(scope="module")
def imagenet_dir(tmp_path_factory):
    root = tmp_path_factory.mktemp("imagenet-data")
    classes = {"n01440764": 3, "n01443537": 2, "n01484850": 4}
    train = write_image_folder(root / "imagenet" / "train", classes, seed=0)
    val = write_image_folder(root / "imagenet" / "val", {"n01440764": 2, "n01484850": 2}, seed=1)
    return root, train, val


def test_imagenet_val_is_centre_cropped_from_the_jpeg_folder(imagenet_dir):
    require_ffcv()
    root, _, val = imagenet_dir
    loader = build_loader(
        "imagenet", "val", backend="ffcv", batch_size=3, data_dir=root, image_size=32
    )
    images, labels, indices, sizes = collect(loader)
    assert loader.num_samples == 4 and sizes == [3, 1]
    assert images.shape == (4, 3, 32, 32) and loader.spec.image_shape == (3, 32, 32)
    # val/ lacks the middle class: labels follow the train classes (0 and 2), not val's own.
    assert labels.tolist() == [0, 0, 2, 2] and torch.equal(indices, torch.arange(4))
    pixels = to_pixels(images, loader.spec).double()
    ratio = get_spec("imagenet").option("val_crop_ratio")
    for (path, _), got in zip(val, pixels, strict=True):
        with Image.open(path) as image:
            side = int(min(image.size) * ratio)
            left, top = (image.width - side) // 2, (image.height - side) // 2
            crop = image.crop((left, top, left + side, top + side)).resize((32, 32), Image.BILINEAR)
        reference = torch.from_numpy(np.asarray(crop, dtype=np.float64))
        # JPEG re-encoding and a different resize filter: a few grey levels on average.
        assert (got - reference).abs().mean() < 6


def test_imagenet_train_crops_randomly_and_follows_the_plan(imagenet_dir):
    require_ffcv()
    root, train, _ = imagenet_dir
    loader = build_loader(
        "imagenet",
        "train",
        backend="ffcv",
        batch_size=4,
        augment=True,
        data_dir=root,
        image_size=24,
    )
    truth = torch.tensor([label for _, label in train])
    assert torch.equal(loader.labels, truth)
    plan = torch.tensor([8, 0, 0, 3, 5, 8, 1])
    loader.set_plan(plan, epoch=0)
    images, labels, indices, sizes = collect(loader)
    assert sizes == [4, 3] and images.shape == (7, 3, 24, 24)
    assert torch.equal(indices, plan) and torch.equal(labels, truth[plan])
    assert not torch.equal(images[1], images[2]), "two visits of one image get different crops"


def test_imagenet_max_resolution_caps_the_written_images(imagenet_dir):
    require_ffcv()
    from ffcv.reader import Reader

    root, train, _ = imagenet_dir
    loader = build_loader(
        "imagenet", "train", backend="ffcv", data_dir=root, image_size=16, max_resolution=20
    )
    sizes = Reader(str(loader.path)).metadata["f0"]
    assert len(sizes) == len(train) and loader.spec.option("max_resolution") == 20
    assert max(sizes["height"].max(), sizes["width"].max()) == 20  # originals are 24-63 pixels


def test_imagenet_needs_ffcv_and_a_folder(tmp_path):
    from prunebench.errors import ConfigError

    with pytest.raises(ConfigError, match="--loader ffcv"):
        build_loader("imagenet", "train", backend="tensor", data_dir=tmp_path)
    require_ffcv()
    with pytest.raises(DataError, match=r"ImageNet was not found.*--data-dir"):
        build_loader("imagenet", "train", backend="ffcv", data_dir=tmp_path)


def test_unreadable_jpeg_fails_the_write_and_leaves_no_cache(tmp_path):
    require_ffcv()
    write_image_folder(tmp_path / "train", {"a": 2, "b": 2}, seed=0)
    write_image_folder(tmp_path / "val", {"a": 1}, seed=1)
    (tmp_path / "train" / "b" / "img_001.JPEG").write_bytes(b"\xff\xd8 truncated")
    with pytest.raises(DataError, match=r"1 image\(s\) could not be read, first .*img_001.JPEG"):
        build_loader("imagenet", "train", backend="ffcv", data_dir=tmp_path, image_size=16)
    assert list((tmp_path / "ffcv").iterdir()) == []


# --- FFCV cache files ----------------------------------------------------------------------------


SMALL = synthetic_spec(num_classes=4, height=8, width=8, train_size=50, test_size=10, seed=9)


def test_ffcv_cache_is_written_once_and_named_by_format(tmp_path):
    require_ffcv()
    first = build_loader(SMALL, "test", backend="ffcv", batch_size=4, data_dir=tmp_path)
    (path,) = (tmp_path / "ffcv").glob("*.beton")
    assert (
        path == first.path
        and path.name.startswith("synthetic-test-pb1-")
        and path.suffix == ".beton"
    )
    stamp = path.stat().st_mtime_ns
    second = build_loader(SMALL, "test", backend="ffcv", batch_size=4, data_dir=tmp_path)
    assert second.path == path and path.stat().st_mtime_ns == stamp
    # Another dataset seed is another file; nothing temporary is left behind.
    other = synthetic_spec(num_classes=4, height=8, width=8, train_size=50, test_size=10, seed=10)
    assert build_loader(other, "test", backend="ffcv", data_dir=tmp_path).path != path
    names = sorted(p.name for p in (tmp_path / "ffcv").iterdir())
    assert names == sorted([path.name, f"{path.name}.sha256", *_beton_pair(other, tmp_path)])


def _beton_pair(spec, data_dir) -> list[str]:
    """The file names of the test split's .beton of ``spec`` and of its checksum."""
    path = build_loader(spec, "test", backend="ffcv", data_dir=data_dir).path
    return [path.name, f"{path.name}.sha256"]


def test_bytes_damaged_inside_a_beton_are_a_clear_error(tmp_path):
    """Same size, header intact, bytes flipped in the middle: the checksum catches it."""
    require_ffcv()
    path = build_loader(SMALL, "train", backend="ffcv", data_dir=tmp_path).path
    assert (path.parent / f"{path.name}.sha256").read_text().split()[1] == path.name
    size = path.stat().st_size
    with open(path, "r+b") as handle:
        handle.seek(size // 2)
        middle = handle.read(16)
        handle.seek(size // 2)
        handle.write(bytes(255 - b for b in middle))
    assert path.stat().st_size == size
    with pytest.raises(DataError) as raised:
        build_loader(SMALL, "train", backend="ffcv", data_dir=tmp_path)
    assert str(raised.value) == (
        f"the FFCV cache {path} is damaged (its content does not match {path.name}.sha256); "
        "delete it and rerun to rebuild it"
    )
    path.unlink()  # the hint works: the next run rebuilds the file, which then loads
    loader = build_loader(SMALL, "train", backend="ffcv", data_dir=tmp_path)
    assert loader.num_samples == 50
    _, labels, _ = _round_trip(loader)  # every sample read back, indices 0..n-1
    assert len(labels) == 50


@pytest.mark.parametrize("keep", [0.5, 0.99, 0.01])
def test_a_truncated_beton_is_a_clear_error_with_a_rebuild_hint(tmp_path, keep):
    require_ffcv()
    from prunebench.datasets.ffcv_files import check_beton

    path = build_loader(SMALL, "train", backend="ffcv", data_dir=tmp_path).path
    size = path.stat().st_size
    os.truncate(path, int(size * keep))
    with pytest.raises(
        DataError, match=r"truncated or corrupt .*delete it and rerun to rebuild it"
    ):
        check_beton(path, SMALL)
    with pytest.raises(DataError, match=str(path)):
        build_loader(SMALL, "train", backend="ffcv", data_dir=tmp_path)
    path.unlink()  # the hint works: the next run rebuilds the file
    assert build_loader(SMALL, "train", backend="ffcv", data_dir=tmp_path).num_samples == 50


# --- synthetic -----------------------------------------------------------------------------------


def test_synthetic_is_seeded_balanced_and_learnable_but_not_trivial():
    spec = synthetic_spec(train_size=2000, test_size=1000, seed=0)
    train, test = generate_synthetic(spec, "train"), generate_synthetic(spec, "test")
    again = generate_synthetic(spec, "train")
    assert np.array_equal(train.images, again.images) and np.array_equal(train.labels, again.labels)
    other = generate_synthetic(synthetic_spec(train_size=2000, test_size=1000, seed=1), "train")
    assert not np.array_equal(train.images, other.images)
    assert train.images.shape == (2000, 32, 32, 3) and test.images.shape == (1000, 32, 32, 3)
    counts = np.bincount(train.labels, minlength=10)
    assert counts.min() >= 180 and counts.max() <= 220  # balanced up to 2% label noise

    # Nearest class mean (fit on train, scored on test): learnable structure, yet not separable.
    flat_train = train.images.reshape(2000, -1).astype(np.float64)
    flat_test = test.images.reshape(1000, -1).astype(np.float64)
    means = np.stack([flat_train[train.labels == k].mean(0) for k in range(10)])
    distances = (flat_test**2).sum(1)[:, None] - 2 * flat_test @ means.T + (means**2).sum(1)
    accuracy = (distances.argmin(1) == test.labels).mean()
    assert 0.6 < accuracy < 0.97, accuracy  # measured 0.92 for seeds 0-2
    # The spec's normalization matches the data (mean 0.5, std from the blend and noise).
    pixels = train.images / 255.0
    assert abs(pixels.mean() - spec.mean[0]) < 0.01 and abs(pixels.std() - spec.std[0]) < 0.01


def test_synthetic_takes_any_shape():
    spec = synthetic_spec(num_classes=3, channels=2, height=5, width=17, train_size=7, test_size=2)
    loader = build_loader(spec, "train", batch_size=4, augment=True)
    images, labels, indices, sizes = collect(loader)
    assert images.shape == (7, 2, 5, 17) and sizes == [4, 3] and labels.max() < 3
    assert torch.equal(indices, torch.arange(7))


def test_the_default_data_directory_is_under_the_working_directory():
    from prunebench.datasets.download import resolve_data_dir

    assert resolve_data_dir(None) == Path.cwd() / "prunebench-data"
    assert resolve_data_dir("elsewhere") == Path("elsewhere")
