"""Data-parallel runs: one process per device, joined by torch.distributed (NCCL or gloo).

A run on N processes keeps one invariant: every rank holds the same pruner state, so every rank
plans the same epoch. Each epoch's plan is sharded (:func:`shard_plan`), each rank trains its part
under DistributedDataParallel, buffers its per-sample losses on the device, and at the end of the
epoch the (index, loss) buffers of all ranks are all-gathered once, so every pruner observes the
same values in the same order. One all-gather per epoch, not per step: a per-step collective pays
its latency thousands of times per epoch, the per-epoch one moves 12 bytes a sample once
(``benchmarks/harness.py`` measures both). A cheap fingerprint of the pruner state is compared
across ranks after every epoch; a mismatch fails the run with :class:`RanksOutOfSync`.

:class:`Dist` is the single-process implementation (everything a no-op or the identity), so the
trainer reads the same with or without torch.distributed; :class:`GroupDist` is the N-process one.
BatchNorm normalizes each rank's own batch of batch_size / N samples (no SyncBatchNorm: it needs a
GPU and costs a collective per layer), so an N-process run is not numerically the same as a
1-process run; the running statistics are rank 0's (DDP broadcasts them at every forward, and
evaluation syncs them first), so every rank evaluates the model rank 0 checkpoints.

The shard maths (pure, no process group) is ``shards.py``; starting and joining the processes is
``launch.py``; the device and batch-per-rank rules are ``devices.py``.
"""

from __future__ import annotations

import os
from typing import Any

import torch
import torch.distributed as torch_dist
from torch import nn

from prunebench.bench.devices import check_batch_size
from prunebench.bench.shards import Shard, shard_plan
from prunebench.errors import UsageError


class RanksOutOfSync(RuntimeError):
    """The ranks' pruner states differ; the message is the run's failure reason."""


# ---------------------------------------------------------------------------------- observations
class DirectObserver:
    """One process: hand each step's losses straight to the pruner; sum them on the device."""

    def __init__(self, pruner, device: torch.device):
        self.pruner = pruner
        self.loss_sum = torch.zeros((), dtype=torch.float64, device=device)

    def add(self, indices: torch.Tensor, losses: torch.Tensor, start: int) -> None:
        """Record one step's detached per-sample losses (no host synchronization)."""
        self.pruner.observe(indices, losses)
        self.loss_sum += losses.sum()

    def flush(self) -> torch.Tensor:
        """The epoch's training loss summed over all trained samples (a 0-d device tensor)."""
        return self.loss_sum


class GatherObserver:
    """N processes: buffer this rank's (index, loss) pairs on the device, all-gather per epoch."""

    def __init__(self, pruner, shard: Shard, device: torch.device, group: Any = None):
        self.pruner = pruner
        self.group = group
        capacity = shard.steps * (shard.batch_size // shard.world_size)  # equal on every rank
        self.indices = torch.full((capacity,), -1, dtype=torch.int64, device=device)
        self.losses = torch.zeros(capacity, dtype=torch.float32, device=device)
        self.counted = shard.counted.to(device) if shard.counted is not None else None

    def add(self, indices: torch.Tensor, losses: torch.Tensor, start: int) -> None:
        """Copy one step's losses into the buffer at this rank's position ``start``."""
        stop = start + indices.numel()
        if self.counted is not None:
            indices = torch.where(self.counted[start:stop], indices, -1)  # padding: not observed
        self.indices[start:stop] = indices
        self.losses[start:stop] = losses.float()

    def flush(self) -> torch.Tensor:
        """All-gather every rank's buffer for the pruner to observe; returns the global loss sum."""
        world = torch_dist.get_world_size(self.group)
        indices = torch.empty(
            world * self.indices.numel(), dtype=torch.int64, device=self.indices.device
        )
        losses = torch.empty(
            world * self.losses.numel(), dtype=torch.float32, device=self.losses.device
        )
        torch_dist.all_gather_single(indices, self.indices, group=self.group)
        torch_dist.all_gather_single(losses, self.losses, group=self.group)
        keep = torch.nonzero(indices >= 0).squeeze(1)  # drops padding and untrained slots
        indices, losses = indices[keep], losses[keep]
        self.pruner.observe(indices, losses)
        return losses.double().sum()


# ---------------------------------------------------------------------------------- fingerprint
_INDEX_MODULUS = 65521  # prime: position weights 1..65521 catch permuted as well as changed values


def state_fingerprint(state: dict[str, Any]) -> torch.Tensor:
    """A float64 vector summarizing a pruner ``state_dict``: equal states give equal vectors.

    Per tensor: its size, its sum and a position-weighted sum (so a permutation shows); the RNG
    state and the plain-Python extras likewise. Not a cryptographic hash: it catches ranks that
    observed different values or drew different numbers, which is what can go wrong.
    """
    parts: list[torch.Tensor] = []

    def add(tensor: torch.Tensor) -> None:
        values = torch.nan_to_num(
            tensor.detach().double().flatten(), nan=-7.0, posinf=1e30, neginf=-1e30
        )
        weights = torch.arange(values.numel(), dtype=torch.float64, device=values.device)
        weights = weights % _INDEX_MODULUS + 1
        parts.append(
            torch.stack(
                [values.new_tensor(values.numel()), values.sum(), (values * weights).sum()]
            ).cpu()
        )

    for key in sorted(state.get("tensors", {})):
        add(state["tensors"][key])
    add(state["generator"])
    extras = [
        float(value)
        for _, value in sorted(state.get("extra", {}).items())
        if isinstance(value, (int, float))
    ]
    if extras:
        add(torch.tensor(extras, dtype=torch.float64))
    return torch.cat(parts)


# ---------------------------------------------------------------------------------- contexts
class Dist:
    """One process on one device: the identity everywhere (the trainer needs no branches)."""

    rank = 0
    world_size = 1
    local_rank = 0

    def __init__(self, device: torch.device):
        self.device = device

    @property
    def is_main(self) -> bool:
        """Whether this process writes MLflow records and checkpoints (rank 0)."""
        return self.rank == 0

    def per_rank_batch(self, batch_size: int) -> int:
        """The loader batch size of this rank (ConfigError unless batch_size divides evenly)."""
        return check_batch_size(batch_size, self.world_size)

    def wrap(self, model: nn.Module) -> nn.Module:
        """The module to train: ``model`` itself, or its DistributedDataParallel wrapper."""
        return model

    def shard(self, indices: torch.Tensor, weights: torch.Tensor | None, batch_size: int) -> Shard:
        """This rank's part of the plan (see :func:`shard_plan`)."""
        return shard_plan(indices, weights, self.rank, self.world_size, batch_size)

    def eval_indices(self, count: int) -> torch.Tensor:
        """This rank's test samples: every world_size-th, from its rank on."""
        return torch.arange(self.rank, count, self.world_size)

    def observer(self, pruner, shard: Shard) -> DirectObserver | GatherObserver:
        """Where the trainer puts each step's per-sample losses."""
        return DirectObserver(pruner, self.device)

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        """``tensor`` summed over ranks (in place)."""
        return tensor

    def max(self, value: float) -> float:
        """The largest ``value`` over ranks (e.g. the slowest rank's clock)."""
        return value

    def sync_buffers(self, model: nn.Module) -> None:
        """Copy rank 0's buffers (BatchNorm running statistics) into every rank's ``model``."""

    def check_same(self, values: list[float], what: str) -> None:
        """UsageError naming ``what`` unless every rank passes the same ``values``."""

    def check_in_sync(self, pruner, epoch: int) -> None:
        """RanksOutOfSync unless every rank's pruner state has the same fingerprint."""

    def broadcast(self, value: Any) -> Any:
        """Rank 0's ``value`` (a picklable object) on every rank."""
        return value

    def barrier(self) -> None:
        """Wait until every rank gets here (e.g. rank 0's checkpoint is written)."""

    def close(self) -> None:
        """Leave the process group (if this object joined it)."""


class GroupDist(Dist):
    """One of world_size processes joined in the default torch.distributed process group."""

    def __init__(self, device: torch.device, owns_group: bool):
        super().__init__(device)
        self.rank = torch_dist.get_rank()
        self.world_size = torch_dist.get_world_size()
        self.local_rank = int(os.environ.get("LOCAL_RANK", self.rank))
        self.owns_group = owns_group
        # Host-side decisions (clock, resume checks) go through gloo, so NCCL never syncs a flag.
        nccl = torch_dist.get_backend() == "nccl"
        self.cpu_group = torch_dist.new_group(backend="gloo") if nccl else None

    def wrap(self, model: nn.Module) -> nn.Module:
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        return nn.parallel.DistributedDataParallel(
            model, device_ids=device_ids, gradient_as_bucket_view=True
        )

    def observer(self, pruner, shard: Shard) -> GatherObserver:
        return GatherObserver(pruner, shard, self.device)

    def sum(self, tensor: torch.Tensor) -> torch.Tensor:
        torch_dist.all_reduce(tensor, op=torch_dist.ReduceOp.SUM)
        return tensor

    def max(self, value: float) -> float:
        device = torch.device("cpu") if self.cpu_group is not None else self.device
        tensor = torch.tensor([value], dtype=torch.float64, device=device)
        torch_dist.all_reduce(tensor, op=torch_dist.ReduceOp.MAX, group=self.cpu_group)
        return float(tensor.item())

    def sync_buffers(self, model: nn.Module) -> None:
        with torch.no_grad():
            for buffer in model.buffers():
                torch_dist.broadcast(buffer, src=0)

    def _spread(self, values: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """Element-wise minimum and maximum of ``values`` (float64, CPU) over ranks."""
        device = torch.device("cpu") if self.cpu_group is not None else self.device
        low = values.to(device=device, dtype=torch.float64).clone()
        high = low.clone()
        torch_dist.all_reduce(low, op=torch_dist.ReduceOp.MIN, group=self.cpu_group)
        torch_dist.all_reduce(high, op=torch_dist.ReduceOp.MAX, group=self.cpu_group)
        return low.cpu(), high.cpu()

    def check_same(self, values: list[float], what: str) -> None:
        low, high = self._spread(torch.tensor(values, dtype=torch.float64))
        if not torch.equal(low, high):
            raise UsageError(
                f"the {self.world_size} processes disagree about {what}; make sure every "
                "process sees the same files (a shared --checkpoint-dir) and arguments"
            )

    def check_in_sync(self, pruner, epoch: int) -> None:
        low, high = self._spread(state_fingerprint(pruner.state_dict()))
        if not torch.equal(low, high):
            raise RanksOutOfSync(
                f"pruner state differs across the {self.world_size} processes after epoch "
                f"{epoch} (fingerprint spread {float((high - low).abs().max()):.3g}); the "
                "ranks observed different losses or drew different random numbers"
            )

    def barrier(self) -> None:
        torch_dist.barrier(group=self.cpu_group)

    def broadcast(self, value: Any) -> Any:
        box = [value]
        torch_dist.broadcast_object_list(box, src=0, group=self.cpu_group)
        return box[0]

    def close(self) -> None:
        if self.owns_group and torch_dist.is_initialized():
            torch_dist.destroy_process_group()


__all__ = [
    "DirectObserver",
    "Dist",
    "GatherObserver",
    "GroupDist",
    "RanksOutOfSync",
    "Shard",
    "shard_plan",
    "state_fingerprint",
]
