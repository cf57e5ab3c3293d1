"""Config hashes pinned as main computed them: existing stores resume and skip runs by hash.

The values were computed before the hash policy moved into the schema's setting() metadata; a
change here would retrain (and duplicate) every recorded run.
"""

from __future__ import annotations

import pytest

from prunebench.bench.budgets import Budget, parse_budget
from prunebench.bench.config import RunConfig

B = parse_budget
CASES = {
    "default": dict(dataset="synthetic", model="mlp", pruner="full", budget=B("epochs:2")),
    "orderdp": dict(
        dataset="cifar10",
        model="resnet18",
        pruner="orderdp",
        budget=B("epochs:200"),
        pruner_params={"prune_ratio": 0.3},
        seed=3,
    ),
    "int_ratio_threads_dir": dict(
        dataset="synthetic",
        model="mlp",
        pruner="rs2",
        budget=B("samples:1000"),
        pruner_params={"prune_ratio": 0},
        num_threads=4,
        data_dir="/x",
    ),
    "when_set": dict(
        dataset="synthetic",
        model="mlp",
        pruner="infobatch",
        budget=B("time:30"),
        pruner_params={"prune_ratio": 0.5},
        eval_points=4,
        lr_pct_start=1,
        cycle_momentum=True,
        grad_alignment=True,
        grad_alignment_checkpoints=(0.5, 1.0),
        nproc=2,
        accuracy_targets=(0.5, 1),
    ),
    "time_fraction": dict(
        dataset="synthetic",
        model="mlp",
        pruner="full",
        budget=Budget("time-fraction", 0.5),
        time_budget_seconds=12.5,
        label_smoothing=0.1,
    ),
    "same_compute": dict(
        dataset="synthetic",
        model="mlp",
        pruner="full",
        budget=Budget("same-compute", 0.3),
        matched_prune_ratio=0.3,
        same_compute_samples=700,
        pruner_label="full-sc",
    ),
    "saturation": dict(
        dataset="synthetic",
        model="mlp",
        pruner="full",
        budget=B("epochs:4"),
        budget_multiple=2,
        subset=100,
        augment=False,
        loader="tensor",
        device="cpu",
    ),
}
PINNED = {
    "default": "499a53b56f9064cb",
    "orderdp": "c380dbde6082c3e0",
    "int_ratio_threads_dir": "7f3dd752185e3d23",
    "when_set": "2143f9cf138a8892",
    "time_fraction": "61e55009bb5d55ec",
    "same_compute": "cf1cd8b7bf1e382f",
    "saturation": "91e1694c9434873d",
}


@pytest.mark.parametrize("name", list(CASES))
def test_config_hash_is_pinned(name):
    assert RunConfig(**CASES[name]).config_hash() == PINNED[name]
