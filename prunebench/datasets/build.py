"""The one entry point: build_loader(dataset, split, backend=..., ...)."""

from __future__ import annotations

import dataclasses
import functools
import os

import torch

from prunebench.datasets.arrays import SplitArrays, stratified_subset
from prunebench.datasets.loader import PlanLoader
from prunebench.datasets.registry import get_spec, locate_source
from prunebench.datasets.sources import ArraySource
from prunebench.datasets.specs import DatasetSpec, canonical_split
from prunebench.datasets.tensor_loader import TensorLoader
from prunebench.errors import ConfigError

BACKENDS = ("tensor", "ffcv")
AUTO = "auto"
"""Preset and config value: the ffcv loader where FFCV imports, the tensor loader otherwise."""


def available_backends() -> list[str]:
    """Loader backends accepted by build_loader."""
    return list(BACKENDS)


@functools.cache
def ffcv_import_error() -> str | None:
    """Why FFCV cannot be imported here (once per process), or None when it can."""
    try:
        import prunebench.datasets.ffcv_loader  # noqa: F401
    except (ImportError, OSError) as error:  # not installed, or its system libraries are gone
        return str(error) or type(error).__name__
    return None


def resolve_loader(loader: str) -> str:
    """``auto`` -> ``ffcv`` where FFCV imports, else ``tensor``; any other name unchanged."""
    if loader != AUTO:
        return loader
    return "ffcv" if ffcv_import_error() is None else "tensor"


def _resolve_spec(
    dataset: str | DatasetSpec, image_size: int | None, max_resolution: int | None
) -> DatasetSpec:
    spec = get_spec(dataset) if isinstance(dataset, str) else dataset
    if image_size is None and max_resolution is None:
        return spec
    if spec.encoding != "jpeg":
        raise ConfigError(
            f"image_size and max_resolution only apply to JPEG datasets (imagenet), "
            f"not {spec.name}; drop them"
        )
    for name, value in (("image_size", image_size), ("max_resolution", max_resolution)):
        if value is not None and value < 8:
            raise ConfigError(f"{name}={value} is too small; use at least 8 pixels")
    if image_size is not None:
        spec = dataclasses.replace(spec, height=image_size, width=image_size)
    if max_resolution is not None:
        options = {**dict(spec.options), "max_resolution": max_resolution}
        spec = dataclasses.replace(spec, options=tuple(options.items()))
    return spec


def build_loader(
    dataset: str | DatasetSpec,
    split: str,
    *,
    backend: str = "tensor",
    batch_size: int = 128,
    device: torch.device | str | None = None,
    augment: bool = False,
    data_dir: str | os.PathLike[str] | None = None,
    subset: int | None = None,
    seed: int = 0,
    drop_last: bool = False,
    subset_seed: int = 0,
    image_size: int | None = None,
    max_resolution: int | None = None,
    num_workers: int | None = None,
    progress: bool = False,
) -> PlanLoader:
    """A plan-following loader of `split` ("train"/"test") of `dataset` (a name or a DatasetSpec).

    `subset=N` keeps N samples of the split, stratified by class and drawn with `subset_seed` (not
    `seed`, so every run and pruner of a comparison sees the same subset). `seed` drives the
    augmentation, with `set_plan(indices, epoch)` choosing the epoch. For JPEG datasets (ImageNet,
    FFCV only), `max_resolution` caps the longer side of the images written to the cache and
    `image_size` is the decoded resolution (random-resized crop when augmenting, centre crop
    otherwise; FFCV draws those crops from its own unseeded RNG, so only flips are reproducible).
    `num_workers` sets FFCV's decoding threads (default: torch's thread count). `progress` shows
    FFCV's bar while it writes a split's cache file (the first time only).
    """
    spec = _resolve_spec(dataset, image_size, max_resolution)
    try:
        split = canonical_split(split)
    except ValueError as error:
        raise ConfigError(str(error)) from None
    if backend not in BACKENDS:
        raise ConfigError(
            f"unknown loader backend {backend!r}; choose one of: {', '.join(BACKENDS)}"
        )
    if subset is not None and subset < 1:
        raise ConfigError(f"subset={subset} must be a positive number of samples")
    device = torch.device(device) if device is not None else torch.device("cpu")
    options = dict(
        batch_size=batch_size, device=device, augment=augment, seed=seed, drop_last=drop_last
    )

    if backend == "ffcv":
        # Imported here: FFCV (numba, OpenCV) is an optional dependency.
        try:
            from prunebench.datasets.ffcv_loader import build_ffcv_loader
        except ImportError as error:
            raise ConfigError(
                f"the ffcv loader needs FFCV, which cannot be imported here ({error}); install "
                "libopencv-dev and libturbojpeg0-dev, then pip install 'prunebench[ffcv]', "
                "or use --loader tensor"
            ) from None

        return build_ffcv_loader(
            spec,
            split,
            data_dir=data_dir,
            subset=subset,
            subset_seed=subset_seed,
            num_workers=num_workers,
            progress=progress,
            **options,
        )

    if spec.encoding != "raw":
        raise ConfigError(
            f"the tensor backend holds a whole split in memory and does not support {spec.name}; "
            "use the ffcv loader (--loader ffcv)"
        )
    source = locate_source(spec, split, data_dir)
    assert isinstance(source, ArraySource)
    arrays = source.read()
    keep = None
    if subset is not None:
        keep = stratified_subset(arrays.labels, subset, subset_seed)
        arrays = SplitArrays(images=arrays.images[keep], labels=arrays.labels[keep])
    arrays.check_shape(spec.height, spec.width, spec.channels, source.description, spec.name)
    loader = TensorLoader(spec, arrays, **options)
    loader.source, loader.subset_indices = source, keep
    return loader
