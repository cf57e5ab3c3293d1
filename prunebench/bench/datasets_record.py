"""A run's training and test data as MLflow dataset inputs (the runs table's Dataset column).

Each split is logged once, at run start, with a name (``<dataset>-<split>``), the context tag
``mlflow.data.context`` (train/test), a schema, a profile (rows held, rows in the whole split, the
source's stamp) and a content digest: sha256 over the dataset spec's fingerprint, the split, the
source files' stamp (name, size, mtime; the generator spec for synthetic data) and the positions of
the exact samples held. Two runs on different files or different subsets never share a digest.
"""

from __future__ import annotations

import hashlib
import json
import warnings
from pathlib import Path
from typing import Any

import numpy as np
from mlflow.data.meta_dataset import MetaDataset

from prunebench import mlflow_store, record
from prunebench.datasets import PlanLoader
from prunebench.datasets.specs import DatasetSpec

DIGEST_LENGTH = 16
"""Hex digits kept (MLflow stores at most 36; 64 bits make an accidental match negligible)."""
SUBSET_SEED = 0
"""The subset seed of training runs: build_loader's default (see datasets/build.py)."""


def data_digest(
    spec: DatasetSpec, split: str, source_stamp: str, num_rows: int, indices: np.ndarray | None
) -> str:
    """Content digest of the samples ``indices`` (None: all ``num_rows``) of a located split."""
    digest = hashlib.sha256()
    header = {"spec": spec.fingerprint(), "split": split, "stamp": source_stamp, "rows": num_rows}
    digest.update(json.dumps(header, sort_keys=True).encode())
    if indices is not None:
        digest.update(np.ascontiguousarray(indices, dtype="<i8").tobytes())
    return digest.hexdigest()[:DIGEST_LENGTH]


class SplitDataset(MetaDataset):
    """A split as MLflow sees it: metadata only (the data stays where it is), with a profile."""

    def __init__(self, source, name: str, digest: str, schema, profile: dict[str, Any]):
        self._profile = profile
        super().__init__(source=source, name=name, digest=digest, schema=schema)

    @property
    def profile(self) -> dict[str, Any]:
        """Rows held and in the whole split, classes, and the source's stamp."""
        return self._profile

    def to_dict(self) -> dict[str, str]:
        """MLflow's dataset record: name, digest, source, tensor schema and profile as JSON."""
        config = super().to_dict()
        config["schema"] = json.dumps(self.schema.to_dict())
        config["profile"] = json.dumps(self.profile)
        return config


def _mlflow_source(description: str):
    from mlflow.data.code_dataset_source import CodeDatasetSource
    from mlflow.data.dataset_source_registry import resolve_dataset_source

    folder = Path(description)
    if folder.is_dir():
        with warnings.catch_warnings():
            # MLflow registers its local source class twice and warns that it picked one.
            warnings.filterwarnings("ignore", "The specified dataset source can be interpreted")
            return resolve_dataset_source(str(folder.resolve()))
    return CodeDatasetSource(tags={record.TAG_DATA_SOURCE: description})  # generated (synthetic)


def _schema(spec: DatasetSpec):
    from mlflow.data.schema import TensorDatasetSchema
    from mlflow.types import Schema, TensorSpec

    image_shape = (-1, spec.height, spec.width, spec.channels)  # uint8, as read from the source
    return TensorDatasetSchema(
        features=Schema([TensorSpec(np.dtype(np.uint8), image_shape, "image")]),
        targets=Schema([TensorSpec(np.dtype(np.int64), (-1,), "label")]),
    )


def split_dataset(loader: PlanLoader, split: str) -> SplitDataset:
    """The MLflow dataset of the samples ``loader`` holds (built by ``build_loader``)."""
    spec, source = loader.spec, loader.source
    if source is None:
        raise ValueError("the loader does not record its source; build it with build_loader")
    rows = loader.num_samples
    profile = {
        "num_rows": rows,
        "split_rows": spec.split_size(split),
        "num_classes": spec.num_classes,
        "subset": "all" if loader.subset_indices is None else f"stratified, seed {SUBSET_SEED}",
        "source_stamp": source.stamp,
    }
    return SplitDataset(
        source=_mlflow_source(source.description),
        name=f"{spec.name}-{split}",
        digest=data_digest(spec, split, source.stamp, rows, loader.subset_indices),
        schema=_schema(spec),
        profile=profile,
    )


def log_data_inputs(client, run_id: str, loaders: dict[str, PlanLoader]) -> None:
    """Log each split's dataset as an input of ``run_id``, tagged with its context (the split)."""
    from mlflow.entities import DatasetInput, InputTag
    from mlflow.utils.mlflow_tags import MLFLOW_DATASET_CONTEXT

    inputs = [
        DatasetInput(
            split_dataset(loader, split)._to_mlflow_entity(),
            tags=[InputTag(MLFLOW_DATASET_CONTEXT, split)],
        )
        for split, loader in loaders.items()
    ]
    mlflow_store.log_inputs(client, run_id, inputs)
