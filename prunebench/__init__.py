"""prunebench: a benchmark harness for dynamic data pruning.

Public names (imported on first use, so ``import prunebench`` stays light):

- :class:`PrunedData`: any registered pruner in your own PyTorch loop (and
  :class:`MlflowCallback`, logging what a prunebench run logs about its data).

      data = prunebench.PrunedData(train_set, pruner="orderdp", prune_ratio=0.5, epochs=E)

- :func:`register_pruner`: a class decorator; the class subclasses
  ``prunebench.pruners.Pruner``, sets ``name`` and implements ``plan_epoch`` (and ``observe``).

      @prunebench.register_pruner
      class Hardest(Pruner):
          name = "hardest"
          ...

- :func:`register_model`: a decorator by name; the builder takes (channels, num_classes,
  height) and returns an ``nn.Module`` of Conv2d, Linear and BatchNorm2d layers (prunebench
  initializes them from the run's seed) and parameter-free modules.

      @prunebench.register_model("tiny_mlp")
      def tiny_mlp(channels, num_classes, height):
          return nn.Sequential(nn.Flatten(), nn.Linear(channels * height * height, num_classes))

- :func:`register_dataset`: a name and ``load(split, data_dir)`` returning (images, labels)
  arrays or a torchvision-style dataset; the spec (shape, classes, statistics) comes from the
  data.

      prunebench.register_dataset(
          "mnist", lambda split, root: MNIST(root, train=split == "train", download=True)
      )

A module or file doing these is a plugin: ``prunebench run|suite|search|report --plugin FILE``,
a preset's ``plugins = [...]``, or the entry-point group ``prunebench.plugins``.
"""

from __future__ import annotations

import importlib
from typing import Any

__version__ = "0.1.0"

_PUBLIC = {
    "PrunedData": ("prunebench.bench.pruned_data", "PrunedData"),
    "MlflowCallback": ("prunebench.bench.pruned_data_mlflow", "MlflowCallback"),
    "register_pruner": ("prunebench.pruners.registry", "register_pruner"),
    "register_model": ("prunebench.bench.models", "register_model"),
    "register_dataset": ("prunebench.datasets.generic", "register_arrays_dataset"),
}


def __getattr__(name: str) -> Any:
    if name not in _PUBLIC:
        raise AttributeError(f"module 'prunebench' has no attribute {name!r}")
    module, attribute = _PUBLIC[name]
    return getattr(importlib.import_module(module), attribute)


def __dir__() -> list[str]:
    return sorted([*globals(), *_PUBLIC])


__all__ = [
    "MlflowCallback",
    "PrunedData",
    "__version__",
    "register_dataset",
    "register_model",
    "register_pruner",
]
