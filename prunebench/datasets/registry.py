"""Dataset name -> (spec, source locator) registry."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from prunebench.datasets import specs
from prunebench.datasets.cifar import locate_cifar
from prunebench.datasets.fashion_mnist import locate_fashion_mnist
from prunebench.datasets.imagenet import locate_imagenet
from prunebench.datasets.sources import ArraySource, Source
from prunebench.datasets.specs import DatasetSpec
from prunebench.datasets.synthetic import SYNTHETIC, generate_synthetic
from prunebench.errors import ConfigError

Locator = Callable[[DatasetSpec, str, "Path | str | None"], Source]


@dataclass(frozen=True)
class DatasetEntry:
    """A registered dataset: its default spec and how to find (or make) a split's data."""

    spec: DatasetSpec
    locate: Locator


_REGISTRY: dict[str, DatasetEntry] = {}


def register_dataset(spec: DatasetSpec, locate: Locator) -> None:
    """Make `spec.name` available to get_spec and build_loader."""
    if spec.name in _REGISTRY:
        raise ValueError(f"dataset name {spec.name!r} is registered twice")
    _REGISTRY[spec.name] = DatasetEntry(spec, locate)


def available_datasets() -> list[str]:
    """Names accepted by get_spec and build_loader, sorted."""
    return sorted(_REGISTRY)


def _entry(name: str) -> DatasetEntry:
    try:
        return _REGISTRY[name]
    except KeyError:
        valid = ", ".join(available_datasets())
        raise ConfigError(f"unknown dataset {name!r}; choose one of: {valid}") from None


def get_spec(name: str) -> DatasetSpec:
    """The DatasetSpec registered under `name`; ConfigError listing the valid names otherwise."""
    return _entry(name).spec


def locate_source(spec: DatasetSpec, split: str, data_dir: Path | str | None) -> Source:
    """Find (download, or generate) `split` of `spec`; DataError with the fix if it is missing."""
    return _entry(spec.name).locate(spec, split, data_dir)


def locate_dataset(name: str, data_dir: Path | str | None) -> None:
    """Find (or download) both splits of dataset ``name``; DataError with the fix if one is missing.

    Locating reads no samples, so a file that is present but corrupt is found only when read.
    """
    spec = get_spec(name)
    for split in ("train", "test"):
        locate_source(spec, split, data_dir)


def _locate_synthetic(spec: DatasetSpec, split: str, data_dir: Path | str | None) -> ArraySource:
    # The spec (its seed included) fully determines the data, so its fingerprint is the stamp.
    del data_dir
    return ArraySource(
        stamp=spec.fingerprint(),
        read=lambda: generate_synthetic(spec, split),
        description=f"synthetic (seed {spec.option('seed')})",
    )


register_dataset(specs.CIFAR10, locate_cifar)
register_dataset(specs.CIFAR100, locate_cifar)
register_dataset(specs.FASHION_MNIST, locate_fashion_mnist)
register_dataset(specs.IMAGENET, locate_imagenet)
register_dataset(SYNTHETIC, _locate_synthetic)
