"""An optional MLflow callback for :class:`~prunebench.bench.pruned_data.PrunedData` loops.

It logs, under a prunebench run's names (record.py), what the data side of a run logs: the
pruner and its parameters, the training-set size and the package version as params; per epoch
``train_loss``, ``kept_fraction``, ``samples_trained``, ``train_steps`` and ``subset_jaccard``;
at the end ``realized_prune_ratio``, ``samples_trained_total``, ``epochs_run`` and
``zero_usage_samples``, the usage counts (``usage.npz``) and the pruner state (``scores.pt``).
Your loop logs its own accuracy, LR and timings beside them. Under torch.distributed only rank 0
writes.

```python
callback = MlflowCallback(data)        # the active MLflow run, or run_id=...
for epoch in range(E):
    data.set_epoch(epoch)
    ...
    data.end_epoch()
    callback.on_epoch_end(epoch)
callback.on_train_end()
```
"""

from __future__ import annotations

import tempfile
from pathlib import Path

import numpy as np
import torch

import prunebench
from prunebench import mlflow_store, record
from prunebench.bench.pruned_data import PrunedData


class MlflowCallback:
    """Logs a :class:`PrunedData` loop's data metrics to an MLflow run (see the module)."""

    def __init__(
        self, data: PrunedData, run_id: str | None = None, tracking_uri: str | None = None
    ):
        import mlflow
        from mlflow import MlflowClient

        self.data = data
        self.enabled = data.rank == 0  # distributed: one writer
        self.client = MlflowClient(tracking_uri)
        if run_id is None:
            active = mlflow.active_run()
            if active is None and self.enabled:
                raise RuntimeError("no active MLflow run: start one, or pass run_id=")
            run_id = active.info.run_id if active is not None else None
        self.run_id = run_id
        pruner = data.pruner
        params = {
            "pruner": pruner.name,
            "train_size": data.n,
            "pruner_epochs": pruner.epochs,
            "seed": pruner.seed,
            record.PARAM_VERSION: prunebench.__version__,
            **{f"{record.PARAM_PRUNER_PREFIX}{k}": v for k, v in pruner.params.items()},
        }
        if self.enabled:
            mlflow_store.log_values(self.client, self.run_id, params=params)

    def on_epoch_end(self, epoch: int) -> None:
        """Log the last ended epoch's metrics at step ``epoch`` (after ``data.end_epoch()``)."""
        if self.enabled and self.data.history:
            entry = record.check_epoch_metrics(self.data.history[-1])
            mlflow_store.log_values(self.client, self.run_id, metrics=entry, step=epoch)

    def on_train_end(self) -> None:
        """Log the summary metrics, the usage counts and the pruner state."""
        if not self.enabled:
            return
        mlflow_store.log_values(self.client, self.run_id, metrics=self.data.summary())
        with tempfile.TemporaryDirectory(prefix="prunebench-") as folder:
            directory = Path(folder)
            counts = self.data.usage_counts().numpy().astype(np.int64)
            np.savez_compressed(directory / record.ARTIFACT_USAGE, counts=counts)
            torch.save(self.data.pruner.state_dict(), directory / record.ARTIFACT_SCORES)
            for name in (record.ARTIFACT_USAGE, record.ARTIFACT_SCORES):
                self.client.log_artifact(self.run_id, str(directory / name))


__all__ = ["MlflowCallback"]
