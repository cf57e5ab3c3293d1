"""Name -> pruner class registry, and the single entry point :func:`create_pruner`."""

from __future__ import annotations

import inspect
from collections.abc import Callable

import torch

from prunebench.errors import ConfigError
from prunebench.pruners.base import Pruner

_REGISTRY: dict[str, type[Pruner]] = {}
_COMMON = ("n", "epochs", "seed", "device")


def register_pruner(cls: type[Pruner]) -> type[Pruner]:
    """Class decorator: make ``cls`` available to :func:`create_pruner` under ``cls.name``."""
    if cls.name in _REGISTRY:
        raise ValueError(f"pruner name {cls.name!r} is registered twice")
    _REGISTRY[cls.name] = cls
    return cls


def available_pruners() -> list[str]:
    """Names accepted by :func:`create_pruner`, sorted."""
    return sorted(_REGISTRY)


def pruner_class(name: str) -> type[Pruner]:
    """The class registered under ``name``; ConfigError listing the valid names otherwise."""
    try:
        return _REGISTRY[name]
    except KeyError:
        valid = ", ".join(available_pruners())
        raise ConfigError(f"unknown pruner {name!r}; choose one of: {valid}") from None


def reference_pruner() -> str:
    """The name of the full-data reference pruner (the one class with ``is_reference``)."""
    (name,) = [name for name, cls in _REGISTRY.items() if cls.is_reference]
    return name


def searchable_pruners() -> list[str]:
    """Names of the pruners with a search space, sorted."""
    return sorted(name for name, cls in _REGISTRY.items() if cls.search_space)


def pruner_parameters(name: str) -> list[str]:
    """The keyword parameters pruner ``name`` takes besides n, epochs, seed and device."""
    signature = inspect.signature(pruner_class(name).__init__)
    return [p for p in signature.parameters if p not in ("self", *_COMMON)]


def create_pruner(
    name: str,
    *,
    n: int,
    epochs: int,
    seed: int,
    device: torch.device | str | None = None,
    **params: object,
) -> Pruner:
    """Build pruner ``name`` for a training set of ``n`` samples over ``epochs`` epochs."""
    cls: Callable[..., Pruner] = pruner_class(name)
    valid = pruner_parameters(name)
    unknown = sorted(set(params) - set(valid))
    if unknown:
        listed = ", ".join(valid) if valid else "none"
        raise ConfigError(
            f"pruner {name!r} has no parameter {unknown[0]!r}; its parameters are: {listed}"
        )
    return cls(n=n, epochs=epochs, seed=seed, device=device, **params)
