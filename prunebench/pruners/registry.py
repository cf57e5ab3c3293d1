"""Name -> pruner class registry, and the single entry point :func:`create_pruner`."""

from __future__ import annotations

import inspect
from collections.abc import Callable

import torch

from prunebench.errors import ConfigError, unknown
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
        raise unknown("pruner", name, available_pruners()) from None


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


_TYPE_WORDS = {"float": "a number", "int": "an integer", "bool": "true or false", "str": "a string"}


def _has_type(value: object, annotation: str) -> bool:
    if annotation == "None":
        return value is None
    if annotation == "bool":
        return isinstance(value, bool)
    if annotation == "int":
        return isinstance(value, int) and not isinstance(value, bool)
    if annotation == "float":
        return isinstance(value, (int, float)) and not isinstance(value, bool)
    return isinstance(value, str) if annotation == "str" else True  # other types: not checked


def check_param_types(name: str, params: dict[str, object]) -> None:
    """ConfigError naming the first of ``params`` that pruner ``name`` does not take, or whose
    value is not of the type its ``__init__`` declares (a number, an integer, true/false, ...)."""
    signature = inspect.signature(pruner_class(name).__init__)
    valid = pruner_parameters(name)
    for key, value in params.items():
        if key not in valid:
            listed = ", ".join(valid) if valid else "none"
            raise ConfigError(
                f"pruner {name!r} has no parameter {key!r}; its parameters are: {listed}"
            )
        annotation = signature.parameters[key].annotation
        if not isinstance(annotation, str):
            annotation = getattr(annotation, "__name__", str(annotation))
        kinds = [part.strip() for part in annotation.split("|")]
        if not any(_has_type(value, kind) for kind in kinds):
            wanted = " or ".join(_TYPE_WORDS.get(kind, kind) for kind in kinds if kind != "None")
            raise ConfigError(f"pruner {name!r} parameter {key!r} must be {wanted}, got {value!r}")


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
