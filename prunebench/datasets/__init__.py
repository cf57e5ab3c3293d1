"""Datasets and plan-following loaders: ``build_loader(name, split, backend="tensor"|"ffcv", ...)``.

Every loader visits the current plan (``set_plan(indices, epoch)``) exactly, in order, and yields
``(images, labels, indices)``: float32 NCHW normalized images on the device, int64 labels and the
int64 dataset index of every sample.
"""

from prunebench.datasets import (  # noqa: F401  (each module registers the datasets it defines)
    cifar,
    fashion_mnist,
    imagenet,
    synthetic,
    user_files,
)
from prunebench.datasets.arrays import SplitArrays, stratified_subset
from prunebench.datasets.build import available_backends, build_loader
from prunebench.datasets.loader import PlanLoader
from prunebench.datasets.registry import (
    available_datasets,
    get_spec,
    locate_dataset,
    locate_source,
    register_dataset,
)
from prunebench.datasets.specs import DatasetSpec
from prunebench.datasets.synthetic import generate_synthetic, synthetic_spec

__all__ = [
    "DatasetSpec",
    "PlanLoader",
    "SplitArrays",
    "available_backends",
    "available_datasets",
    "build_loader",
    "generate_synthetic",
    "get_spec",
    "locate_dataset",
    "locate_source",
    "register_dataset",
    "stratified_subset",
    "synthetic_spec",
]
