"""What the trainer keeps besides its objects: counters, one epoch's running state, seeds.

The state a checkpoint holds (:class:`Counters`), the state of one epoch between its begin, steps
and end (:class:`EpochState`), and the rules that build a run's loaders and seeds.
"""

from __future__ import annotations

import hashlib
import math
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

import torch

from prunebench.bench.diagnostics import AlignmentMonitor, probe_indices
from prunebench.bench.forward_passes import SelectedBatches
from prunebench.bench.shards import Shard
from prunebench.datasets import build_loader
from prunebench.pruners import EpochPlan

if TYPE_CHECKING:
    from prunebench.bench.config import RunConfig
    from prunebench.bench.distributed import Dist

EVAL_BATCH_SIZE = 512


def derive_seed(seed: int, stream: str) -> int:
    """A seed for one random stream of a run (e.g. "model"), independent of the other streams."""
    digest = hashlib.sha256(f"prunebench:{seed}:{stream}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


@dataclass
class Counters:
    """A run's cumulative counters and per-epoch history (part of every checkpoint)."""

    epoch: int = 0
    """Epochs completed = the index of the next epoch."""
    epochs_run: float = 0.0
    """Completed epochs; a budget-truncated last epoch counts the fraction of its plan trained."""
    samples_trained: int = 0
    scoring_forward_passes: int = 0
    train_seconds: float = 0.0
    eval_seconds: float = 0.0
    diagnostics_seconds: float = 0.0
    """Gradient-alignment measurement time: outside both the training and evaluation clocks."""
    process_cpu_seconds: float = 0.0
    """CPU time of this process (all its threads) over the epochs, training and evaluation:
    beside the wall clock it shows whether the run had the cores it asked for."""
    history: list[dict[str, float]] = field(default_factory=list)


def autocast_dtype(device: torch.device) -> torch.dtype | None:
    """The autocast dtype of training on ``device``: bfloat16 on CUDA only (an MLflow param)."""
    return torch.bfloat16 if device.type == "cuda" else None


class Diverged(Exception):
    """The training loss became NaN or infinite; the message is the failure reason."""


@dataclass
class EpochState:
    """One epoch in progress: its plan and shard (begin), its running totals (steps)."""

    number: int
    start: float
    """Budget progress at the epoch's start."""
    clock_start: float
    cpu_start: float
    scored: int
    plan: EpochPlan
    shard: Shard
    weights: torch.Tensor | None
    observer: Any
    lr_scale: float
    predictions: Any
    points_done: int
    """Evaluation points reached before the epoch (an evaluation is due past them)."""
    lr: float
    momentum: float
    grad_norm_sum: torch.Tensor
    grad_norm_squares: torch.Tensor
    selected: SelectedBatches | None = None
    trained: int = 0
    """Samples trained over all ranks."""
    steps: int = 0
    local: int = 0
    """This rank's position in its part of the plan."""
    evaluation: dict[str, float] = field(default_factory=dict)
    """An evaluation made at a step boundary inside the epoch."""


def build_loaders(cfg: RunConfig, dist: Dist, progress: bool) -> tuple[Any, Any]:
    """The run's training loader (this rank's batch of the plan) and test loader."""
    loader_options = {
        "backend": cfg.loader,
        "device": dist.device,
        "data_dir": cfg.data_dir,
        "progress": progress,
    }
    train = build_loader(
        cfg.dataset,
        "train",
        batch_size=dist.per_rank_batch(cfg.batch_size),
        augment=cfg.augment,
        subset=cfg.subset,
        seed=cfg.seed,
        drop_last=False,
        **loader_options,
    )
    test = build_loader(
        cfg.dataset,
        "test",
        batch_size=EVAL_BATCH_SIZE,
        augment=False,
        subset=None,
        seed=cfg.seed,
        drop_last=False,
        **loader_options,
    )
    return train, test


def nonfinite(value: float) -> str:
    """How a non-finite value is named in a failure reason."""
    return "nan" if math.isnan(value) else "inf"


def alignment_monitor(cfg: RunConfig, n: int, forward: Any) -> AlignmentMonitor | None:
    """The gradient-alignment monitor of a run with ``grad_alignment`` (None without)."""
    if not cfg.grad_alignment:
        return None
    probe = probe_indices(n, cfg.grad_alignment_probe, derive_seed(cfg.seed, "grad_probe"))
    return AlignmentMonitor(cfg.grad_alignment_checkpoints, probe, cfg.label_smoothing, forward)


def epoch_alignment(
    monitor: AlignmentMonitor | None,
    model: torch.nn.Module,
    loader: Any,
    epoch: EpochState,
    progress_after: float,
    counters: Counters,
    device: torch.device,
) -> dict[str, float]:
    """Gradient alignment metrics if this epoch end reaches a checkpoint (diagnostics.py).

    distributed: every rank measures the whole plan and probe on its bare model (the same
    weights everywhere; rank 0's numbers are logged), without collectives. Each rank's loader
    replays the whole plan, so its augmentation draws are the whole plan's, not those of the
    part each rank trained.
    """
    if monitor is None:
        return {}
    shard, weights = epoch.shard, epoch.shard.plan_weights
    measured = monitor.at_epoch_end(
        model,
        loader,
        epoch.number,
        (epoch.start, progress_after),
        (shard.plan, weights.to(device) if weights is not None else None),
        epoch.trained,
    )
    metrics = measured.metrics(progress_after) if measured is not None else {}
    counters.diagnostics_seconds += measured.seconds if measured is not None else 0.0
    return {**metrics, "diagnostics_seconds": counters.diagnostics_seconds}
