"""OrderDP per iteration: Algorithm 1 of the OrderDP paper, a fresh candidate batch every step.

At every step t, draw a candidate batch S^t of s samples uniformly without replacement from the
whole training set, independently of the other steps; score it at the current weights by a
forward-only pass; train its q = floor(b * s) highest-loss members (the ordered-SGD step the
paper's theory analyses: the rank-j sample of S^t enters the step with probability gamma_j / q).
s is the run's batch size (each loader batch of the plan is one S^t), so a step trains q samples.

The public code, and prunebench's ``orderdp``, select once per epoch from a pool by stored
losses instead; this module is the per-iteration form. An "epoch" here is ceil(floor(a * n) / s)
steps: as many candidates as orderdp's pool, so both forms keep a * b of the data per epoch
(with a = exploration, b = exploitation, parameters as orderdp's, same default decomposition
for a bare prune_ratio). Cost: a forward-only pass per candidate (``scoring_forward_passes``)
plus forward+backward per trained sample. One process only (candidates are scored where they are
drawn).
"""

from __future__ import annotations

import math
from typing import Any

import torch

from prunebench.pruners.base import EpochPlan
from prunebench.pruners.orderdp import OrderDP
from prunebench.pruners.registry import register_pruner


def draw_candidate_batches(count: int, size: int, n: int, generator: torch.Generator):
    """``count`` independent uniform draws of ``size`` distinct indices from range(n), as rows.

    Rows start as independent uniform draws; a row's repeated entries are redrawn until the row
    is distinct. The procedure commutes with any relabeling of range(n), so each row is a uniform
    ``size``-subset, in random order. Vectorized over rows (no full permutation per row).
    """
    rows = torch.randint(n, (count, size), generator=generator)
    while True:
        ordered, order = rows.sort(dim=1)
        repeated_sorted = torch.zeros_like(rows, dtype=torch.bool)
        repeated_sorted[:, 1:] = ordered[:, 1:] == ordered[:, :-1]
        redraw = int(repeated_sorted.sum())  # one host read per round; rounds are few
        if redraw == 0:
            return rows
        repeated = torch.zeros_like(repeated_sorted).scatter_(1, order, repeated_sorted)
        rows[repeated] = torch.randint(n, (redraw,), generator=generator)


@register_pruner
class OrderDPIteration(OrderDP):
    """OrderDP's exploration/exploitation per step: top q of a fresh uniform S^t by current loss."""

    name = "orderdp_iteration"
    selects_per_step = True

    @property
    def params(self) -> dict[str, Any]:
        return {
            "exploration": self.exploration,
            "exploitation": self.exploitation,
            "candidates_per_step": self.candidates_per_step,
            "trained_per_step": self.trained_per_step,
        }

    @property
    def candidates_per_step(self) -> int:
        """s: the run's batch size (at most n)."""
        return min(self.batch_size, self.n)

    @property
    def trained_per_step(self) -> int:
        """q = floor(b * s), at least 1."""
        return max(1, math.floor(self.exploitation * self.candidates_per_step + 1e-9))

    def plan_epoch(self, epoch: int, progress: float | None = None) -> EpochPlan:
        steps = max(1, -(-self.pool_size // self.candidates_per_step))
        rows = draw_candidate_batches(steps, self.candidates_per_step, self.n, self.generator)
        return EpochPlan(
            indices=rows.reshape(-1).to(self.device),
            n=self.n,
            per_step=True,
            step_batch_size=self.trained_per_step,
        )

    def select_step(self, indices: torch.Tensor, losses: torch.Tensor) -> torch.Tensor:
        keep = torch.zeros(losses.numel(), dtype=torch.bool, device=losses.device)
        keep[torch.topk(losses, min(self.trained_per_step, losses.numel())).indices] = True
        return keep
