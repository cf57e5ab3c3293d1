"""The loader contract on both backends: exact round trip, plan following, augmentation, subset."""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from datasets_fixtures import collect, require_ffcv, to_pixels

from prunebench.datasets import (
    available_datasets,
    build_loader,
    generate_synthetic,
    get_spec,
    stratified_subset,
    synthetic_spec,
)
from prunebench.errors import ConfigError

BACKENDS = ["tensor", "ffcv"]
# Non-square, odd sizes (a transposed H/W shows), flips enabled to exercise both augmentations.
SPEC = dataclasses.replace(
    synthetic_spec(num_classes=5, height=12, width=10, train_size=203, test_size=50, seed=3),
    flip=True,
)
GREY = synthetic_spec(num_classes=3, channels=1, height=9, width=7, train_size=40, test_size=11)
BATCH = 16


@pytest.fixture(scope="module")
def data_dir(tmp_path_factory: pytest.TempPathFactory):
    return tmp_path_factory.mktemp("loader-data")


@pytest.fixture(scope="module")
def source() -> tuple[np.ndarray, np.ndarray]:
    arrays = generate_synthetic(SPEC, "train")
    return arrays.images, arrays.labels


@pytest.fixture(scope="module")
def loaders(data_dir):
    """Loaders shared by the module: each FFCV Loader compiles its pipeline (about a second)."""
    cache = {}

    def get(backend: str, *, augment: bool = False, spec=SPEC, split="train", **options):
        key = (backend, augment, spec, split, tuple(sorted(options.items())))
        if key not in cache:
            if backend == "ffcv":
                require_ffcv()
            cache[key] = build_loader(
                spec,
                split,
                backend=backend,
                batch_size=BATCH,
                augment=augment,
                data_dir=data_dir,
                **options,
            )
        return cache[key]

    return get


def _all_variants(images: torch.Tensor, pad: int, fill: torch.Tensor) -> torch.Tensor:
    """Every flip x translation of uint8 NHWC images: [N, 2 * (2p+1)^2, H, W, C]."""
    n, height, width, channels = images.shape
    padded = fill.view(1, 1, 1, channels).repeat(n, height + 2 * pad, width + 2 * pad, 1)
    padded[:, pad : pad + height, pad : pad + width] = images
    variants = []
    for flip in (False, True):
        for dy in range(2 * pad + 1):
            for dx in range(2 * pad + 1):
                crop = padded[:, dy : dy + height, dx : dx + width]
                variants.append(crop.flip(2) if flip else crop)
    return torch.stack(variants, 1)


@pytest.mark.parametrize("backend", BACKENDS)
@pytest.mark.parametrize("spec", [SPEC, GREY], ids=["rgb", "grey"])
def test_round_trip_is_exact(loaders, backend, spec):
    loader = loaders(backend, spec=spec)
    source = generate_synthetic(spec, "train")
    n = len(source)
    assert loader.num_samples == n and loader.spec == spec and loader.backend == backend
    assert torch.equal(loader.labels, torch.from_numpy(source.labels))
    loader.set_plan(torch.arange(n), epoch=0)
    images, labels, indices, sizes = collect(loader)

    assert images.dtype == torch.float32 and images.shape == (n, *spec.image_shape)
    assert labels.dtype == torch.int64 and indices.dtype == torch.int64
    assert torch.equal(indices, torch.arange(n))
    assert torch.equal(labels, torch.from_numpy(source.labels))
    assert torch.equal(to_pixels(images, spec), torch.from_numpy(source.images))
    # Normalization is (pixel / 255 - mean) / std per channel (float32 rounding only).
    expected = (
        torch.from_numpy(source.images).double().permute(0, 3, 1, 2) / 255
        - torch.tensor(spec.mean).view(1, -1, 1, 1)
    ) / torch.tensor(spec.std).view(1, -1, 1, 1)
    assert torch.allclose(images.double(), expected, atol=1e-5)
    assert sizes == [BATCH] * (n // BATCH) + ([n % BATCH] if n % BATCH else [])


@pytest.mark.parametrize("backend", BACKENDS)
def test_without_a_plan_the_split_is_visited_in_order(loaders, backend):
    loader = loaders(backend, split="test")
    _, labels, indices, _ = collect(loader)
    assert len(loader) == -(-SPEC.test_size // BATCH)
    assert torch.equal(indices, torch.arange(SPEC.test_size))
    assert torch.equal(labels, torch.from_numpy(generate_synthetic(SPEC, "test").labels))


def _plans(n: int) -> list[torch.Tensor]:
    generator = torch.Generator().manual_seed(7)
    return [
        torch.randperm(n, generator=generator)[:37],  # a pruned epoch
        torch.randperm(n, generator=generator),  # grows to the full split
        torch.cat(
            [
                torch.randperm(n, generator=generator),
                torch.randint(0, n, (150,), generator=generator),
            ]
        ),
        torch.tensor([5, 5, 5, 0, n - 1]),  # shrinks, with repeats
        torch.empty(0, dtype=torch.int64),  # nothing to train on this epoch
        torch.arange(n - 1, -1, -1)[: BATCH * 2],  # exactly two full batches, reversed
    ]


@pytest.mark.parametrize("backend", BACKENDS)
def test_batches_follow_each_plan_exactly(loaders, source, backend):
    loader = loaders(backend)
    images_src, labels_src = (torch.from_numpy(a) for a in source)
    for epoch, plan in enumerate(_plans(loader.num_samples)):
        loader.set_plan(plan, epoch=epoch)
        assert len(loader) == -(-len(plan) // BATCH)
        images, labels, indices, sizes = collect(loader)
        assert len(sizes) == len(loader)
        assert all(size == BATCH for size in sizes[:-1]) and sum(sizes) == len(plan)
        assert torch.equal(indices, plan)
        assert torch.equal(labels, labels_src[plan])
        if len(plan):
            assert torch.equal(to_pixels(images, SPEC), images_src[plan])


@pytest.mark.parametrize("backend", BACKENDS)
def test_drop_last_drops_only_the_partial_batch(loaders, backend):
    loader = loaders(backend, drop_last=True)
    plan = torch.randperm(loader.num_samples, generator=torch.Generator().manual_seed(1))[:37]
    loader.set_plan(plan, epoch=0)
    _, _, indices, sizes = collect(loader)
    assert len(loader) == 2 and sizes == [BATCH, BATCH]
    assert torch.equal(indices, plan[: 2 * BATCH])


@pytest.mark.parametrize("backend", BACKENDS)
def test_augmentation_flips_and_translates_but_keeps_labels(loaders, source, backend):
    loader = loaders(backend, augment=True)
    n = loader.num_samples
    plan = torch.cat([torch.arange(n), torch.arange(n)])  # 406 positions, each image twice
    loader.set_plan(plan, epoch=3)
    images, labels, indices, _ = collect(loader)
    assert torch.equal(indices, plan)
    assert torch.equal(labels, torch.from_numpy(source[1])[plan])

    pixels = to_pixels(images, SPEC)
    originals = torch.from_numpy(source[0])[plan]
    fill = (torch.tensor(SPEC.mean) * 255).round().to(torch.uint8)
    variants = _all_variants(originals, SPEC.translate, fill)
    matches = (variants == pixels[:, None]).flatten(2).all(2)  # [406, 50]
    assert matches.any(1).all(), "every augmented image is a flip/translation of its source"
    choice = matches.int().argmax(1)
    flipped = (choice >= (2 * SPEC.translate + 1) ** 2).double().mean()
    centred = (choice % (2 * SPEC.translate + 1) ** 2 == 12).double().mean()
    # Flip probability 0.5: with 406 draws the sd is 0.025; 0.12 is about 5 sd.
    assert abs(flipped - 0.5) < 0.12
    # Uniform offsets on a 5x5 grid: the unshifted window has probability 1/25.
    assert centred < 0.15
    assert len(set(choice.tolist())) > 40, "nearly all 50 flip/offset combinations occur"
    assert (pixels != originals).flatten(1).any(1).double().mean() > 0.8


@pytest.mark.parametrize("backend", BACKENDS)
def test_augmentation_is_a_pure_function_of_seed_and_epoch(loaders, backend):
    loader = loaders(backend, augment=True)
    plan = torch.randperm(loader.num_samples, generator=torch.Generator().manual_seed(2))[:100]
    loader.set_plan(plan, epoch=5)
    first = collect(loader)[0]
    assert torch.equal(collect(loader)[0], first), "iterating twice repeats the epoch"
    loader.set_plan(plan, epoch=6)
    assert not torch.equal(collect(loader)[0], first), "another epoch draws new augmentation"
    loader.set_plan(plan, epoch=5)
    assert torch.equal(collect(loader)[0], first), "returning to an epoch reproduces it (resume)"

    # A fresh loader (a resumed run) with the same seed reproduces epoch 5; another seed does not.
    fresh = build_loader(SPEC, "train", backend="tensor", batch_size=7, augment=True, seed=0)
    fresh.set_plan(plan, epoch=5)
    assert torch.equal(collect(fresh)[0], first), "independent of backend and batch size"
    other = build_loader(SPEC, "train", backend="tensor", batch_size=BATCH, augment=True, seed=1)
    other.set_plan(plan, epoch=5)
    assert not torch.equal(collect(other)[0], first)


@pytest.mark.parametrize("augment", [False, True])
def test_backends_return_identical_batches(loaders, augment):
    tensor, ffcv = loaders("tensor", augment=augment), loaders("ffcv", augment=augment)
    plan = torch.randint(0, tensor.num_samples, (300,), generator=torch.Generator().manual_seed(4))
    for loader in (tensor, ffcv):
        loader.set_plan(plan, epoch=9)
    for from_tensor, from_ffcv in zip(collect(tensor)[:3], collect(ffcv)[:3], strict=True):
        assert torch.equal(from_tensor, from_ffcv)


def test_ffcv_follows_new_plans_without_a_new_loader(loaders):
    loader = loaders("ffcv")
    pipeline = loader._loader  # the one ffcv.Loader of this split
    for epoch, plan in enumerate(_plans(loader.num_samples)):
        loader.set_plan(plan, epoch)
        assert torch.equal(collect(loader)[2], plan)
    assert loader._loader is pipeline


@pytest.mark.parametrize("backend", BACKENDS)
def test_subset_is_stratified_seeded_and_reindexed(loaders, source, backend):
    loader = loaders(backend, subset=60)
    keep = stratified_subset(source[1], 60, seed=0)
    assert loader.num_samples == 60
    assert torch.equal(loader.labels, torch.from_numpy(source[1][keep]))
    plan = torch.randperm(60, generator=torch.Generator().manual_seed(5))
    loader.set_plan(plan, epoch=1)
    images, labels, indices, _ = collect(loader)
    assert torch.equal(indices, plan)
    assert torch.equal(labels, loader.labels[plan])
    assert torch.equal(to_pixels(images, SPEC), torch.from_numpy(source[0][keep])[plan])


def test_stratified_subset_keeps_class_shares():
    labels = np.random.default_rng(0).choice(7, size=1000, p=[0.4, 0.2, 0.1, 0.1, 0.1, 0.05, 0.05])
    keep = stratified_subset(labels, 101, seed=3)
    assert len(keep) == 101 and len(np.unique(keep)) == 101 and np.all(np.diff(keep) > 0)
    counts = np.bincount(labels[keep], minlength=7)
    exact = np.bincount(labels, minlength=7) * 101 / 1000
    assert np.all(np.abs(counts - exact) < 1)  # largest-remainder rounding
    assert np.array_equal(keep, stratified_subset(labels, 101, seed=3))
    assert not np.array_equal(keep, stratified_subset(labels, 101, seed=4))
    assert np.array_equal(stratified_subset(labels, 1000, seed=0), np.arange(1000))


def test_invalid_plans_are_rejected(loaders):
    loader = loaders("tensor")
    n = loader.num_samples
    for bad in (torch.tensor([0, n]), torch.tensor([-1]), torch.zeros(2, 2, dtype=torch.int64)):
        with pytest.raises(ValueError, match="plan"):
            loader.set_plan(bad, epoch=0)
    with pytest.raises(ValueError, match="integer"):
        loader.set_plan(torch.tensor([0.0, 1.0]), epoch=0)


def test_user_errors_name_the_fix(data_dir):
    with pytest.raises(ConfigError, match="choose one of: cifar10, cifar100, fashion_mnist"):
        build_loader("mnist", "train")
    with pytest.raises(ConfigError, match="choose one of: tensor, ffcv"):
        build_loader(SPEC, "train", backend="dali")
    with pytest.raises(ConfigError, match="'train' or 'test'"):
        build_loader(SPEC, "holdout")
    with pytest.raises(ConfigError, match="--loader ffcv"):
        build_loader("imagenet", "train", backend="tensor", data_dir=data_dir)
    with pytest.raises(ConfigError, match="between 1 and 203"):
        build_loader(SPEC, "train", subset=500)
    with pytest.raises(ConfigError, match="positive"):
        build_loader(SPEC, "train", subset=0)
    with pytest.raises(ConfigError, match="image_size and max_resolution only apply"):
        build_loader(SPEC, "train", image_size=64)
    with pytest.raises(ConfigError, match="max_resolution=4 is too small"):
        build_loader("imagenet", "train", backend="ffcv", max_resolution=4)


@pytest.mark.parametrize("progress", [False, True])
def test_ffcv_shows_its_cache_writing_bar_only_when_asked(tmp_path, capfd, progress):
    require_ffcv()
    build_loader(
        GREY, "test", backend="ffcv", batch_size=BATCH, data_dir=tmp_path, progress=progress
    )
    assert list(tmp_path.rglob("*.beton")), "the cache file was written"
    bar = f"{GREY.test_size}/{GREY.test_size}"  # tqdm's final "11/11" count
    assert (bar in capfd.readouterr().err) == progress


def test_registry_lists_every_dataset_with_its_facts():
    assert available_datasets() == ["cifar10", "cifar100", "fashion_mnist", "imagenet", "synthetic"]
    facts = {
        "cifar10": (10, (3, 32, 32), 50_000, 10_000),
        "cifar100": (100, (3, 32, 32), 50_000, 10_000),
        "fashion_mnist": (10, (1, 28, 28), 60_000, 10_000),
        "imagenet": (1000, (3, 224, 224), 1_281_167, 50_000),
    }
    for name, (classes, shape, train, test) in facts.items():
        spec = get_spec(name)
        assert (spec.num_classes, spec.image_shape, spec.train_size, spec.test_size) == (
            classes,
            shape,
            train,
            test,
        )
        assert len(spec.mean) == len(spec.std) == spec.channels
        assert all(0 < s < 1 for s in spec.std) and all(0 < m < 1 for m in spec.mean)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device on this machine")
@pytest.mark.parametrize("backend", BACKENDS)
def test_batches_arrive_on_the_gpu(data_dir, source, backend):
    if backend == "ffcv":
        require_ffcv()
    device = torch.device("cuda")
    loader = build_loader(
        SPEC,
        "train",
        backend=backend,
        batch_size=BATCH,
        device=device,
        augment=True,
        data_dir=data_dir,
    )
    cpu = build_loader(SPEC, "train", backend="tensor", batch_size=BATCH, augment=True)
    plan = torch.randint(0, SPEC.train_size, (100,), generator=torch.Generator().manual_seed(6))
    loader.set_plan(plan.to(device), epoch=2)
    cpu.set_plan(plan, epoch=2)
    for batch in loader:
        assert all(t.device.type == "cuda" for t in batch)
    for on_gpu, on_cpu in zip(collect(loader)[:3], collect(cpu)[:3], strict=True):
        assert torch.equal(on_gpu, on_cpu)
