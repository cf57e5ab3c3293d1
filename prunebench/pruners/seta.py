"""SeTa (CVPR 2025): a random subset, grouped by loss, trained through an easy-to-hard window.

Follows the public code, mrazhou/SeTa ``seta.py`` (class ``SeTa``, ``random_select_with_ratio``,
``kmeans_group``, ``slide_easy2hard``), with the defaults of its ``scripts/cifar.sh``.
Each epoch e before the annealed tail:

1. keep a uniform random int(k * n) samples, k = 1 - prune_ratio clamped to [0.1, 1] (the
   InfoBatch base class's ``keep_ratio``);
2. split their last training losses into ``groups`` groups by 1-D k-means, ordered by mean loss,
   easy (low) to hard;
3. train the window of w = round(groups * window_scale) groups starting at group
   e' % (groups - w + 1), e' counting the pruning epochs; the first epoch trains every group.

In the annealed tail (e + 1 > delta * epochs, the public sampler's count; under samples and time
budgets the same rule on budget progress) every epoch trains a uniform random int(k * n) subset.
No loss reweighting and no passes beyond training; a sample's score is its last training loss,
3.0 before it is first trained (the InfoBatch base class).

Defaults and their source: prune_ratio 0.1, groups 5, window_scale 0.9 (``scripts/cifar.sh``:
ratio, num_group, window_scale); delta 0.875 (its ``--delta``). Python's round(5 * 0.9) is 4
(round half to even), so the window alternates between groups 0-3 and 1-4.
The public code groups with scikit-learn's KMeans (k-means++ seeding, random_state 0); here 1-D
Lloyd iterations on the device from equal-count initial groups. Both end at a local optimum of
the same objective; well-separated losses give the same groups. All equal losses: equal chunks
in the random order (the public ``torch.chunk`` rule).
"""

from __future__ import annotations

from typing import Any

import torch

from prunebench.errors import ConfigError
from prunebench.pruners.base import PRUNE_RATIO_SEARCH, EpochPlan, check_int, check_range
from prunebench.pruners.last_loss import LastLossPruner
from prunebench.pruners.registry import register_pruner

_EPS = 1e-9
MAX_KMEANS_ITERATIONS = 300


def kmeans_1d(values: torch.Tensor, groups: int) -> torch.Tensor:
    """Group id of each value under 1-D k-means with ``groups`` groups, 0 = lowest mean.

    In one dimension every k-means group is an interval of the sorted values, so Lloyd's
    iteration moves the interval starts to the midpoints between group means until they stay.
    All values equal: ``torch.chunk``'s equal chunks in the given order.
    """
    count = values.numel()
    positions = torch.arange(count, device=values.device)
    if bool(values.max() == values.min()):
        return positions // -(-count // groups)
    ordered, order = torch.sort(values.double())
    sums = torch.cat([ordered.new_zeros(1), ordered.cumsum(0)])
    starts = torch.arange(groups, device=values.device) * count // groups
    end = torch.tensor([count], device=values.device)
    for _ in range(MAX_KMEANS_ITERATIONS):
        stops = torch.cat([starts[1:], end])
        sizes = stops - starts
        means = (sums[stops] - sums[starts]) / sizes.clamp_min(1)
        # An empty group keeps its place at its start value (the means stay ordered).
        means = torch.where(sizes > 0, means, ordered[starts.clamp_max(count - 1)])
        midpoints = (means[:-1] + means[1:]) / 2
        # right=True: a value on a midpoint joins the lower group (the nearer-mean tie rule).
        moved = torch.cat([starts[:1], torch.searchsorted(ordered, midpoints, right=True)])
        if torch.equal(moved, starts):
            break
        starts = moved
    sorted_ids = torch.searchsorted(starts, positions, right=True) - 1
    ids = torch.empty_like(sorted_ids)
    ids[order] = sorted_ids
    return ids


@register_pruner
class SeTa(LastLossPruner):
    """Random keep, k-means loss groups, a sliding easy-to-hard window, a random annealed tail."""

    name = "seta"
    search_space = PRUNE_RATIO_SEARCH

    def __init__(
        self,
        n: int,
        epochs: int,
        seed: int,
        device: torch.device | str | None = None,
        prune_ratio: float = 0.1,
        groups: int = 5,
        window_scale: float = 0.9,
        delta: float = 0.875,
    ):
        super().__init__(n, epochs, seed, device, initial_score=3.0)
        self.prune_ratio = check_range("prune_ratio", prune_ratio, 0.0, 1.0, high_open=True)
        self.groups = check_int("groups", groups, 1)
        self.window_scale = check_range("window_scale", window_scale, 0.0, 1.0, low_open=True)
        self.delta = check_range("delta", delta, 0.0, 1.0)
        self.window = round(self.groups * self.window_scale)
        if self.window < 1:
            raise ConfigError(
                "seta's window round(groups * window_scale) is 0; raise groups or window_scale"
            )
        self.keep_ratio = min(1.0, max(0.1, 1.0 - self.prune_ratio))
        self.kept = int(self.keep_ratio * n)
        if self.kept <= self.groups:
            raise ConfigError(
                f"seta keeps int({self.keep_ratio:g} * {n}) = {self.kept} samples, which must "
                f"exceed groups = {self.groups}; lower groups or prune_ratio"
            )
        self.pruning_epochs = 0
        """Pruning epochs planned so far (the public ``iterations``: the window's position)."""

    @property
    def params(self) -> dict[str, Any]:
        return {
            "prune_ratio": self.prune_ratio,
            "groups": self.groups,
            "window_scale": self.window_scale,
            "window": self.window,
            "delta": self.delta,
        }

    def _extra_state(self) -> dict[str, Any]:
        return {"pruning_epochs": self.pruning_epochs}

    def is_annealed(self, epoch: int, progress: float | None = None) -> bool:
        """Whether ``epoch`` is in the random tail: (epoch + 1) / epochs > delta, on progress."""
        return self.epoch_progress(epoch, progress) + 1.0 / self.epochs > self.delta + _EPS

    def window_groups(self, pruning_epoch: int, present: int) -> range:
        """Groups trained in the ``pruning_epoch``-th pruning epoch (0: all) of ``present``."""
        if pruning_epoch == 0:
            return range(present)
        window = max(1, round(present * self.window_scale))  # public: from the groups found
        start = pruning_epoch % (present - window + 1)
        return range(start, start + window)

    def plan_epoch(self, epoch: int, progress: float | None = None) -> EpochPlan:
        chosen = self._randperm(self.n)[: self.kept]
        if self.is_annealed(epoch, progress):
            return EpochPlan(indices=chosen, n=self.n)
        if self.pruning_epochs > 0:
            group = kmeans_1d(self.scores[chosen], self.groups)
            window = self.window_groups(self.pruning_epochs, int(group.max()) + 1)
            chosen = chosen[(group >= window.start) & (group < window.stop)]
            if chosen.numel() == 0:  # the public code's guard against an empty epoch
                chosen = self._randperm(self.n)[:1]
        self.pruning_epochs += 1
        return EpochPlan(indices=self._shuffled(chosen), n=self.n)
