"""torch's OneCycleLR (cosine, two phases) as a pure function of budget progress in [0, 1].

torch's OneCycleLR needs the total step count ahead; a pruned run or a time budget does not know
it, so the learning rate and SGD momentum are computed from progress every step, with torch's
semantics (``anneal_strategy="cos"``, ``three_phase=False``): over the first ``pct_start`` of the
budget the LR rises from max_lr / div_factor to max_lr by a cosine and (``cycle_momentum``) the
momentum falls from max_momentum to base_momentum; then the LR falls to
max_lr / (div_factor * final_div_factor) while the momentum rises back to max_momentum. Without
momentum cycling the momentum stays at the run's fixed value. torch's step s of T is progress
s / T here (equal up to O(1 / T), which tests/test_diagnostics.py bounds).

The public code of OrderDP and InfoBatch rebuilds torch's OneCycleLR every epoch with
steps_per_epoch = len(loader), so a pruned run follows the same curve in fewer steps: the same as
following budget progress. Its recipe (REFERENCE.md section 6): pct_start 0.3, momentum cycled
0.85-0.95, torch's divisors; :data:`PUBLIC_RECIPE`. prunebench's own short recipe (the RunConfig
defaults): pct_start 0.25, fixed momentum.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Any

SCHEDULE_NAME = "onecycle_cosine"
WARMUP_FRACTION = 0.25
"""prunebench's own warm-up share (RunConfig.lr_pct_start's default)."""
DIV_FACTOR = 25.0
"""torch's default: initial LR = max_lr / div_factor."""
FINAL_DIV_FACTOR = 1e4
"""torch's default: minimum LR = initial LR / final_div_factor."""
BASE_MOMENTUM = 0.85
"""torch's default lower momentum of the cycle (reached at the LR peak)."""
MAX_MOMENTUM = 0.95
"""torch's default upper momentum of the cycle (at the start and the end)."""

PUBLIC_RECIPE: dict[str, Any] = {
    "label_smoothing": 0.1,
    "lr_pct_start": 0.3,
    "lr_div_factor": DIV_FACTOR,
    "lr_final_div_factor": FINAL_DIV_FACTOR,
    "cycle_momentum": True,
    "base_momentum": BASE_MOMENTUM,
    "max_momentum": MAX_MOMENTUM,
}
"""The public CIFAR scripts' recipe as RunConfig values (the paper presets set these)."""


def _cosine(start: float, end: float, fraction: float) -> float:
    # torch's _annealing_cos
    return end + (start - end) * (1.0 + math.cos(math.pi * fraction)) / 2.0


def _phase(progress: float, pct_start: float) -> tuple[bool, float]:
    """(in warm-up, fraction of that phase done) at a progress clamped to [0, 1]."""
    progress = min(max(progress, 0.0), 1.0)
    if progress < pct_start:
        return True, progress / pct_start
    return False, (progress - pct_start) / (1.0 - pct_start)


def one_cycle_lr(
    progress: float,
    max_lr: float,
    warmup_fraction: float = WARMUP_FRACTION,
    div_factor: float = DIV_FACTOR,
    final_div_factor: float = FINAL_DIV_FACTOR,
) -> float:
    """The learning rate at budget ``progress`` (clamped to [0, 1]); warmup_fraction = pct_start."""
    initial_lr = max_lr / div_factor
    final_lr = initial_lr / final_div_factor
    warming, fraction = _phase(progress, warmup_fraction)
    if warming:
        return _cosine(initial_lr, max_lr, fraction)
    return _cosine(max_lr, final_lr, fraction)


def one_cycle_momentum(
    progress: float,
    warmup_fraction: float = WARMUP_FRACTION,
    base_momentum: float = BASE_MOMENTUM,
    max_momentum: float = MAX_MOMENTUM,
) -> float:
    """The cycled SGD momentum at budget ``progress``: inverse to the LR, as torch cycles it."""
    warming, fraction = _phase(progress, warmup_fraction)
    if warming:
        return _cosine(max_momentum, base_momentum, fraction)
    return _cosine(base_momentum, max_momentum, fraction)


@dataclass(frozen=True)
class OneCycle:
    """A run's LR and momentum schedule (built from its RunConfig by :meth:`from_config`)."""

    max_lr: float
    pct_start: float = WARMUP_FRACTION
    div_factor: float = DIV_FACTOR
    final_div_factor: float = FINAL_DIV_FACTOR
    cycle_momentum: bool = False
    base_momentum: float = BASE_MOMENTUM
    max_momentum: float = MAX_MOMENTUM
    momentum: float = 0.9
    """The fixed momentum when ``cycle_momentum`` is off (unused when it is on)."""

    @classmethod
    def from_config(cls, cfg: Any) -> OneCycle:
        """The schedule a RunConfig asks for."""
        return cls(
            max_lr=cfg.lr,
            pct_start=cfg.lr_pct_start,
            div_factor=cfg.lr_div_factor,
            final_div_factor=cfg.lr_final_div_factor,
            cycle_momentum=cfg.cycle_momentum,
            base_momentum=cfg.base_momentum,
            max_momentum=cfg.max_momentum,
            momentum=cfg.momentum,
        )

    def lr(self, progress: float) -> float:
        """The learning rate at budget progress."""
        return one_cycle_lr(
            progress, self.max_lr, self.pct_start, self.div_factor, self.final_div_factor
        )

    def momentum_at(self, progress: float) -> float:
        """The SGD momentum at budget progress (fixed unless cycled)."""
        if not self.cycle_momentum:
            return self.momentum
        return one_cycle_momentum(progress, self.pct_start, self.base_momentum, self.max_momentum)


def schedule_params() -> dict[str, object]:
    """The schedule's fixed choices as MLflow params (its settings are logged RunConfig fields)."""
    return {"lr_schedule": SCHEDULE_NAME, "lr_anneal_strategy": "cos"}
