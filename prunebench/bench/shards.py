"""The pure maths of a data-parallel epoch: which part of the plan each rank trains.

No process group here: :func:`shard_plan` is a function of the plan, the rank and the world size,
so it is tested without processes and every rank computes the same layout.
"""

from __future__ import annotations

from dataclasses import dataclass

import torch

from prunebench.bench.devices import check_batch_size


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


__all__ = ["Shard", "shard_plan"]
