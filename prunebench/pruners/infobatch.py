"""InfoBatch (ICLR 2024): prune a share of below-mean-loss samples and rescale the rest.

Each pruning epoch, samples whose stored score (last training loss, 3.0 before the first) is at
least the mean of all scores are kept; of the ``m`` below-mean samples a fixed count is kept,
drawn uniformly without replacement, and weighted 1 / (1 - r) in the loss, r being the share of
them pruned that epoch. The kept share 1 - r is at least MIN_KEEP_FRACTION (0.1, the public
code's clamp), so no weight exceeds 10 and every epoch's weighted loss is an unbiased estimate of
the full-data loss. Epoch 0 trains on the full data (scores carry no information yet).

Annealing (``anneal``), as the public code schedules it: under an ``epochs:E`` budget epoch e
(0-based) prunes while e + 1 <= delta * E, i.e. until its END reaches progress delta, so the
first full-data epoch is floor(delta * E) (E = 10, delta = 0.875: epochs 1-7 prune, 8 and 9 are
full). Under samples and time budgets, where epochs have no fixed length, an epoch prunes while
the budget progress at its start is below delta. Annealed epochs train on all data, weight 1.
The OrderDP paper compares against InfoBatch with annealing off.

Two meanings of ``prune_ratio``:

- ``ratio_mode="nominal"`` (default, the public code's semantics): r = prune_ratio every pruning
  epoch, keeping floor((1 - r) * m) with 1 - r clamped to [0.1, 1]. The realized prune ratio is
  data dependent and well below r: read it from each plan, never from r.
- ``ratio_mode="realized"``: prune_ratio is the run's target REALIZED ratio, full epochs (epoch 0
  and the annealed tail) included. Each pruning epoch a controller chooses how many below-mean
  samples c to prune so that the cumulative pruned count meets target * epochs * n by the last
  pruning epoch: c = (target * E * n - pruned so far) / (pruning epochs left), rounded, and at
  most the public cap (c <= m - ceil(0.1 * m)); then r_e = c / m exactly, so the 1 / (1 - r_e)
  rescaling is exact for the r_e used and at most 10. An epoch that wants more than the cap is
  counted in ``capped_epochs`` and prunes the cap: the controller stays inside InfoBatch's own
  semantics, so a target InfoBatch cannot reach on the data is NOT met: the run ends at its true
  realized ratio and the trainer logs the signed ``ratio_shortfall`` (realized minus target).
  Under samples and time budgets the epoch count is not known ahead; the controller reads it off
  progress: the pace so far (samples trained per unit of progress) extrapolates the run's total
  samples S (exact under a samples budget; under a time budget it assumes seconds grow with
  samples), so the run spans E = S / ((1 - target) * n) epochs of which (1 - delta) * S / n are
  the annealed tail. The kept samples of the round(E - tail - epoch) pruning epochs left are set
  so that training reaches delta * S (S without annealing) when they run out; if the plan has
  under half a pruning epoch left, the epoch is already annealed. Whole pruning epochs quantize
  the ratio by up to about (1 - target) / (2 * E) under these budgets; the report flags a miss
  beyond RATIO_TOLERANCE.
"""

from __future__ import annotations

import math
from typing import Any

import torch

from prunebench.errors import ConfigError
from prunebench.pruners.base import PRUNE_RATIO_SEARCH, EpochPlan, check_range
from prunebench.pruners.last_loss import LastLossPruner
from prunebench.pruners.registry import register_pruner

MIN_KEEP_FRACTION = 0.1
"""The public code's clamp on the kept share of below-mean samples: weights are at most 10."""
RATIO_TOLERANCE = 0.005
"""A realized-mode run whose realized ratio misses its target by more than this is reported."""
INITIAL_SCORE = 3.0
RATIO_MODES = ("nominal", "realized")
_EPS = 1e-9  # float slack when comparing progress with delta (7 / 8 must reach 0.875)


@register_pruner
class InfoBatch(LastLossPruner):
    """Mean-threshold soft pruning with loss rescaling and optional annealing."""

    name = "infobatch"
    search_space = PRUNE_RATIO_SEARCH

    def __init__(
        self,
        n: int,
        epochs: int,
        seed: int,
        device: torch.device | str | None = None,
        prune_ratio: float = 0.5,
        anneal: bool = True,
        delta: float = 0.875,
        ratio_mode: str = "nominal",
    ):
        super().__init__(n, epochs, seed, device, INITIAL_SCORE)
        self.prune_ratio = check_range("prune_ratio", prune_ratio, 0.0, 1.0, high_open=True)
        if not isinstance(anneal, bool):
            raise ConfigError(f"anneal must be true or false, got {anneal!r}")
        self.anneal = anneal
        self.delta = check_range("delta", delta, 0.0, 1.0)
        if ratio_mode not in RATIO_MODES:
            raise ConfigError(
                f"ratio_mode must be one of {', '.join(RATIO_MODES)}, got {ratio_mode!r}"
            )
        self.ratio_mode = ratio_mode
        self.keep_fraction = max(1.0 - self.prune_ratio, MIN_KEEP_FRACTION)
        # Controller state (realized mode), part of the checkpoint: see _extra_state.
        self.epochs_planned = 0
        self.pruned_total = 0
        self.capped_epochs = 0
        self.max_weight = 1.0
        self.last_rate = 0.0
        self._last_plan: tuple[int, int, int] | None = None

    @property
    def params(self) -> dict[str, Any]:
        return {
            "prune_ratio": self.prune_ratio,
            "ratio_mode": self.ratio_mode,
            "anneal": self.anneal,
            "delta": self.delta,
        }

    @property
    def target_realized_ratio(self) -> float | None:
        """The target realized ratio in realized mode (the trainer logs the signed shortfall)."""
        return self.prune_ratio if self.ratio_mode == "realized" else None

    @property
    def run_summary(self) -> dict[str, float]:
        """Prune ratio planned so far and the largest loss weight used; in realized mode also
        the epochs whose wanted count the public cap (keep >= 0.1) cut."""
        planned = self.pruned_total / (self.epochs_planned * self.n) if self.epochs_planned else 0.0
        summary = {"planned_prune_ratio": planned, "max_weight": float(self.max_weight)}
        if self.ratio_mode == "realized":
            summary["capped_epochs"] = float(self.capped_epochs)
        return summary

    def _extra_state(self) -> dict[str, Any]:
        return {
            "epochs_planned": self.epochs_planned,
            "pruned_total": self.pruned_total,
            "capped_epochs": self.capped_epochs,
            "max_weight": self.max_weight,
            "last_rate": self.last_rate,
            "_last_plan": self._last_plan,
        }

    def is_pruning_epoch(self, epoch: int, progress: float | None = None) -> bool:
        """Whether ``epoch`` prunes: not the first epoch and, with annealing, before the tail
        (epochs pace: e + 1 <= delta * E as the public code; else start progress < delta)."""
        if epoch == 0:
            return False
        if not self.anneal:
            return True
        start = self.epoch_progress(epoch, progress)
        if self.progress_pace == "epochs":
            return start + 1.0 / self.epochs <= self.delta + _EPS
        return start < self.delta - _EPS

    def first_annealed_epoch(self) -> int:
        """Under an epochs budget: the first full-data epoch of the tail, floor(delta * E)."""
        return math.floor(self.delta * self.epochs + _EPS) if self.anneal else self.epochs

    def wanted_prune(self, epoch: int, progress: float | None) -> int | None:
        """How many samples the realized-ratio controller wants pruned in pruning epoch ``epoch``.

        None when, under a samples or time budget, its own plan has no pruning epoch left before
        the annealed tail (the epoch then trains on the full data). The rule is in the module
        docstring; under samples and time budgets the kept samples are steered so that the
        samples trained reach delta * S exactly when the planned pruning epochs run out.
        """
        progress = self.epoch_progress(epoch, progress)
        trained = self.epochs_planned * self.n - self.pruned_total  # samples of earlier epochs
        target = self.prune_ratio
        if self.progress_pace == "samples" and progress > 0:
            total = trained / progress  # the budget's samples, at the pace so far
            total_epochs = total / ((1.0 - target) * self.n)
            tail = (1.0 - self.delta) * total / self.n if self.anneal else 0.0
            left = total_epochs - tail - epoch  # pruning epochs left, this one included
            if self.anneal and left < 0.5:
                return None
            kept_left = (self.delta if self.anneal else 1.0) * total - trained
            # ceil: the last pruning epoch lands at (not just below) progress delta.
            kept = math.ceil(kept_left / max(1, round(left)) - _EPS)
            return min(self.n, max(0, self.n - kept))
        left = max(1, self.first_annealed_epoch() - epoch)
        return max(0, round((target * self.epochs * self.n - self.pruned_total) / left))

    def plan_epoch(self, epoch: int, progress: float | None = None) -> EpochPlan:
        if self._last_plan is not None and self._last_plan[0] == epoch:
            # Planning the same epoch again replaces its earlier plan in the controller's count.
            _, pruned, capped = self._last_plan
            self.epochs_planned -= 1
            self.pruned_total -= pruned
            self.capped_epochs -= capped
        pruning = self.is_pruning_epoch(epoch, progress)
        realized = self.ratio_mode == "realized"
        wanted = self.wanted_prune(epoch, progress) if pruning and realized else None
        if not pruning or (realized and wanted is None):
            self.last_rate = 0.0
            self._record(epoch, 0, False)
            return EpochPlan(indices=self._randperm(self.n), n=self.n)
        well_learned = self.scores < self.scores.mean()
        below = torch.nonzero(well_learned).squeeze(1)
        above = torch.nonzero(~well_learned).squeeze(1)
        count = below.numel()
        if wanted is None:  # nominal: the public code's fixed share
            keep_below = math.floor(self.keep_fraction * count)
            weight = 1.0 / self.keep_fraction
            self.last_rate = 1.0 - self.keep_fraction
            self._record(epoch, count - keep_below, False)
        else:
            # The public cap: keep at least a tenth of the below-mean samples (weight <= 10).
            cap = count - math.ceil(MIN_KEEP_FRACTION * count - _EPS)
            pruned = min(wanted, cap)
            keep_below = count - pruned
            self.last_rate = pruned / count if count else 0.0
            # 1 / (1 - r_e) with r_e = pruned / count, exactly; unused when nothing is kept.
            weight = count / keep_below if keep_below else 1.0
            self._record(epoch, pruned, wanted > cap)
        if keep_below:
            self.max_weight = max(self.max_weight, weight)
        kept_below = below[self._randperm(count)[:keep_below]]
        indices = torch.cat([above, kept_below])
        weights = torch.cat(
            [
                torch.ones(above.numel(), dtype=torch.float32, device=self.device),
                torch.full((keep_below,), weight, dtype=torch.float32, device=self.device),
            ]
        )
        order = self._randperm(indices.numel())
        return EpochPlan(indices=indices[order], weights=weights[order], n=self.n)

    def _record(self, epoch: int, pruned: int, capped: bool) -> None:
        """Count one planned epoch; ``capped``: it wanted more than the public cap allows."""
        self.epochs_planned += 1
        self.pruned_total += pruned
        self.capped_epochs += int(capped)
        self._last_plan = (epoch, pruned, int(capped))
