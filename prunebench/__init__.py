"""prunebench: a benchmark harness for dynamic data pruning.

The public names below are imported on first use, so ``import prunebench`` stays light (the
command line imports torch only when a command needs it):

- :class:`PrunedData`: any registered pruner in your own PyTorch loop (bench/pruned_data.py).
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_PUBLIC = {
    "PrunedData": "prunebench.bench.pruned_data",
}


def __getattr__(name: str) -> Any:
    module = _PUBLIC.get(name)
    if module is None:
        raise AttributeError(f"module 'prunebench' has no attribute {name!r}")
    return getattr(importlib.import_module(module), name)


def __dir__() -> list[str]:
    return sorted([*globals(), *_PUBLIC])


__all__ = ["PrunedData", "__version__"]
