"""Dataset name -> (spec, source locator) registry.

Each dataset registers itself in the module that defines it (cifar.py, fashion_mnist.py, ...);
the package's ``__init__`` imports those modules, so a new dataset is one module and one import.
"""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from prunebench.datasets.sources import Source
from prunebench.datasets.specs import DatasetSpec
from prunebench.errors import unknown

Locator = Callable[[DatasetSpec, str, "Path | str | None"], Source]


@dataclass
class DatasetEntry:
    """A registered dataset: how to describe it (its spec) and find (or make) a split's data.

    ``describe`` is called once, on first use: a dataset registered from data (a plugin's, a
    folder, an npz file) learns its sizes and statistics by reading it.
    """

    describe: Callable[[], DatasetSpec]
    locate: Locator
    _spec: DatasetSpec | None = None

    @property
    def spec(self) -> DatasetSpec:
        """The dataset's spec (described on first use)."""
        if self._spec is None:
            self._spec = self.describe()
        return self._spec


Family = Callable[[str], DatasetEntry]
"""Makes the entry of a dataset named ``<prefix>:<argument>`` from its argument (e.g. a path)."""

_REGISTRY: dict[str, DatasetEntry] = {}
_FAMILIES: dict[str, tuple[Family, str]] = {}
_MADE: dict[tuple[str, str], DatasetEntry] = {}
"""Entries made by a family, per full name and working directory (made once per process)."""


def register_dataset(spec: DatasetSpec, locate: Locator) -> None:
    """Make `spec.name` available to get_spec and build_loader."""
    register_described_dataset(spec.name, lambda: spec, locate)


def register_described_dataset(
    name: str, describe: Callable[[], DatasetSpec], locate: Locator
) -> None:
    """Make `name` available, its spec computed by ``describe()`` on first use (from the data)."""
    if name in _REGISTRY or ":" in name:
        problem = "is registered twice" if name in _REGISTRY else "may not contain ':'"
        raise ValueError(f"dataset name {name!r} {problem}")
    _REGISTRY[name] = DatasetEntry(describe, locate)


def register_dataset_family(prefix: str, make: Family, usage: str) -> None:
    """Make datasets named ``<prefix>:<argument>`` available (``usage``: e.g. "folder:PATH")."""
    if prefix in _FAMILIES:
        raise ValueError(f"dataset prefix {prefix!r} is registered twice")
    _FAMILIES[prefix] = (make, usage)


def available_datasets() -> list[str]:
    """Names registered for get_spec and build_loader, sorted (see also dataset_forms)."""
    return sorted(_REGISTRY)


def dataset_forms() -> list[str]:
    """The registered families' name forms, e.g. ``npz:PATH``."""
    return [usage for _, usage in _FAMILIES.values()]


def _entry(name: str) -> DatasetEntry:
    if name in _REGISTRY:
        return _REGISTRY[name]
    # A relative path names other data in another working directory.
    made = (name, os.getcwd())
    if made in _MADE:
        return _MADE[made]
    prefix, colon, argument = name.partition(":")
    if colon and prefix in _FAMILIES:
        entry = _FAMILIES[prefix][0](argument)  # DataError (one line) when the data is wrong
        _MADE[made] = entry
        return entry
    raise unknown("dataset", name, available_datasets() + dataset_forms())


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
