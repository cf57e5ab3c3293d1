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
"""

from __future__ import annotations

import contextlib
import datetime
import os
import signal
import uuid
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as torch_dist
from torch import nn

from prunebench.errors import ConfigError, UsageError

ENV_KEYS = ("RANK", "WORLD_SIZE", "LOCAL_RANK", "MASTER_ADDR", "MASTER_PORT")
"""What torchrun (and ``prunebench run --nproc``) sets in each process's environment."""
_TIMEOUT = datetime.timedelta(minutes=30)


class RanksOutOfSync(RuntimeError):
    """The ranks' pruner states differ; the message is the run's failure reason."""


def environment_world_size() -> int:
    """WORLD_SIZE from the environment (1 when not started by torchrun or ``--nproc``)."""
    text = os.environ.get("WORLD_SIZE", "1")
    try:
        return int(text)
    except ValueError:
        raise UsageError(f"WORLD_SIZE={text!r} is not an integer; unset it or fix it") from None


def in_process_group() -> bool:
    """Whether this process is one of several: started by torchrun or a launcher, or joined."""
    joined = torch_dist.is_available() and torch_dist.is_initialized()
    return joined or environment_world_size() > 1


def check_batch_size(batch_size: int, world_size: int) -> int:
    """The per-rank batch size batch_size / world_size; ConfigError unless it divides evenly."""
    if world_size < 1:
        raise ConfigError(f"the number of processes must be at least 1, got {world_size}")
    if batch_size % world_size:
        raise ConfigError(
            f"batch size {batch_size} does not divide among {world_size} processes; pass a "
            f"batch size that is a multiple of {world_size}, or another --nproc"
        )
    return batch_size // world_size


# ---------------------------------------------------------------------------------- sharding
@dataclass(frozen=True)
class Shard:
    """One rank's part of an epoch plan, laid out so that every rank runs the same steps."""

    plan: torch.Tensor
    """The whole (budget-cut) plan, identical on every rank."""
    plan_weights: torch.Tensor | None
    """The whole plan's loss weights (aligned with ``plan``)."""
    indices: torch.Tensor
    """This rank's sample indices in visiting order (what its loader gets)."""
    weights: torch.Tensor | None
    """Loss weights aligned with ``indices``; 0 on a padding entry."""
    counted: torch.Tensor | None
    """None, or a bool mask over ``indices``: False on the padding entry (see shard_plan)."""
    batch_size: int
    """The global batch size; each rank's loader batch is batch_size / world_size."""
    world_size: int

    @property
    def planned(self) -> int:
        """Samples in the whole plan."""
        return int(self.plan.numel())

    @property
    def steps(self) -> int:
        """Optimizer steps of the epoch, the same on every rank."""
        return -(-self.planned // self.batch_size)

    def trained_after(self, steps: int) -> int:
        """Samples of the plan trained, over all ranks, after ``steps`` steps."""
        return min(steps * self.batch_size, self.planned)

    def loss_divisor(self, step: int) -> float:
        """Divisor of a rank's weighted loss sum making DDP's averaged gradient the global batch
        mean: the global batch's size / world_size (one process: the batch size, a mean)."""
        global_count = self.trained_after(step + 1) - self.trained_after(step)
        return global_count / self.world_size


def shard_plan(
    indices: torch.Tensor,
    weights: torch.Tensor | None,
    rank: int,
    world_size: int,
    batch_size: int,
) -> Shard:
    """Rank ``rank``'s part of a plan: disjoint from the others', all parts together the plan.

    Step s trains global batch s, the plan's positions [s*B, (s+1)*B), split into world_size
    contiguous chunks that differ in size by at most one (earlier ranks take the larger ones), so
    a full global batch gives every rank exactly B / world_size samples and each rank's loader,
    slicing its list by B / world_size, sees the same step boundaries. When the last global
    batch holds fewer samples than there are ranks, the ranks left without a sample get one
    padding entry (the plan's last index, weight 0, not counted): every rank still runs the same
    number of steps, which DDP's collectives need. A padding entry costs one forward/backward
    pass, adds nothing to the gradient, is not observed by the pruner and is not counted in
    ``samples_trained``, which is the number of plan samples actually trained over all ranks.
    """
    check_batch_size(batch_size, world_size)
    if not 0 <= rank < world_size:
        raise ValueError(f"rank {rank} is outside [0, {world_size})")
    planned = int(indices.numel())
    steps = -(-planned // batch_size)
    last = planned - (steps - 1) * batch_size if planned else 0  # the last global batch's size
    positions = torch.arange(planned, device=indices.device)
    step_sizes = torch.where(positions // batch_size == steps - 1, last, batch_size)
    offset = positions % batch_size
    # Chunk k of a global batch of size m holds q = m // W samples, plus one for k < m % W.
    quotient, remainder = step_sizes // world_size, step_sizes % world_size
    large = remainder * (quotient + 1)
    owner = torch.where(
        offset < large,
        offset // (quotient + 1),
        remainder + (offset - large) // quotient.clamp_min(1),
    )
    mine = torch.nonzero(owner == rank).squeeze(1)
    local_indices = indices[mine]
    local_weights = weights[mine] if weights is not None else None
    counted = None
    if planned and rank >= last:  # no sample of the last global batch is ours
        local_indices = torch.cat([local_indices, indices[-1:]])
        base = (
            local_weights
            if local_weights is not None
            else torch.ones(mine.numel(), dtype=torch.float32, device=indices.device)
        )
        local_weights = torch.cat([base, base.new_zeros(1)])
        counted = torch.ones(local_indices.numel(), dtype=torch.bool, device=indices.device)
        counted[-1] = False
    return Shard(
        plan=indices,
        plan_weights=weights,
        indices=local_indices,
        weights=local_weights,
        counted=counted,
        batch_size=batch_size,
        world_size=world_size,
    )


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


def _device_for_rank(device_name: str, local_rank: int) -> torch.device:
    """The device of one process: cuda:LOCAL_RANK on GPUs (one device per process), else cpu."""
    wants_cuda = device_name.startswith("cuda") or (
        device_name == "auto" and torch.cuda.is_available()
    )
    if not wants_cuda:
        return torch.device("cpu")
    if local_rank >= torch.cuda.device_count():
        raise UsageError(
            f"local rank {local_rank} has no GPU ({torch.cuda.device_count()} visible); start "
            "at most one process per GPU"
        )
    return torch.device("cuda", local_rank)


@contextlib.contextmanager
def process_group(device_name: str) -> Iterator[Dist]:
    """The run's :class:`Dist`: joins torchrun's process group when WORLD_SIZE > 1.

    An already initialized default group (a caller's) is used and left open; a group joined here
    (NCCL on CUDA, gloo on CPU, rendezvous from MASTER_ADDR/MASTER_PORT) is left on exit.
    """
    if torch_dist.is_available() and torch_dist.is_initialized():
        local_rank = int(os.environ.get("LOCAL_RANK", torch_dist.get_rank()))
        dist: Dist = GroupDist(_device_for_rank(device_name, local_rank), owns_group=False)
    elif environment_world_size() > 1:
        missing = [key for key in ENV_KEYS if key not in os.environ]
        if missing:
            raise UsageError(
                f"WORLD_SIZE is set but {', '.join(missing)} is not; start the run with torchrun "
                "or prunebench run --nproc N"
            )
        device = _device_for_rank(device_name, int(os.environ["LOCAL_RANK"]))
        if device.type == "cuda":
            torch.cuda.set_device(device)
        torch_dist.init_process_group(
            backend="nccl" if device.type == "cuda" else "gloo",
            init_method="env://",
            timeout=_TIMEOUT,
            device_id=device if device.type == "cuda" else None,
        )
        dist = GroupDist(device, owns_group=True)
    else:
        from prunebench.bench.config import resolve_device

        dist = Dist(resolve_device(device_name))
    try:
        yield dist
    finally:
        dist.close()


def _launched(function: Callable[..., Any], args: tuple) -> tuple[str, Any]:
    """One launched process: run ``function``; a user error comes back as a value, not a crash."""
    # As torchrun: share the CPUs among the processes (a CPU run then pins its own count per
    # process, RunConfig.num_threads; a CUDA run keeps this one for its host work).
    if "OMP_NUM_THREADS" not in os.environ:
        local_world = int(os.environ.get("LOCAL_WORLD_SIZE", "1"))
        torch.set_num_threads(max(1, (os.cpu_count() or 1) // local_world))
    try:
        from prunebench.bench.plugins import load_inherited_plugins

        load_inherited_plugins()  # the parent's plugins: the run may name their pruner or model
        return "ok", function(*args)
    except UsageError as error:
        return "usage", str(error)


def launch(nproc: int, function: Callable[..., Any], *args: Any) -> list[Any]:
    """Run ``function(*args)`` in ``nproc`` local processes joined as one torchrun job.

    torch's elastic launcher (what torchrun runs) starts the processes with RANK, WORLD_SIZE,
    LOCAL_RANK, MASTER_ADDR and MASTER_PORT set, on a free local port, and stops the others when
    one fails. Returns every rank's return value, rank 0 first; a UsageError raised in a process
    is raised here.
    """
    from torch.distributed.launcher.api import LaunchConfig, elastic_launch

    if nproc < 1:
        raise ConfigError(f"--nproc must be at least 1, got {nproc}")
    config = LaunchConfig(
        min_nodes=1,
        max_nodes=1,
        nproc_per_node=nproc,
        run_id=f"prunebench-{uuid.uuid4().hex[:12]}",
        rdzv_backend="c10d",
        rdzv_endpoint="localhost:0",
        max_restarts=0,
        start_method="spawn",
    )
    # The launcher installs SIGTERM/SIGINT/SIGHUP/SIGQUIT handlers in this process and leaves
    # them; put the caller's back (a suite worker launches many runs).
    signals = [signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGQUIT]
    handlers = {number: signal.getsignal(number) for number in signals}
    try:
        outcomes = elastic_launch(config, _launched)(function, args)
    finally:
        for number, handler in handlers.items():
            if handler is not None:
                signal.signal(number, handler)
    results = [outcomes[rank] for rank in sorted(outcomes)]
    for kind, value in results:
        if kind == "usage":
            raise UsageError(value)
    return [value for _, value in results]


__all__ = [
    "Dist",
    "GroupDist",
    "RanksOutOfSync",
    "Shard",
    "check_batch_size",
    "environment_world_size",
    "in_process_group",
    "launch",
    "process_group",
    "shard_plan",
    "state_fingerprint",
]
