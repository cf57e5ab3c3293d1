"""OneCycle learning rate with cosine phases, as a function of budget progress in [0, 1].

torch's OneCycleLR needs the total step count ahead; a pruned run or a time budget does not know
it, so the rate is computed from progress every step (same shape as torch's ``anneal_strategy=
"cos"``): cosine warm-up from max_lr / DIV_FACTOR to max_lr over the first WARMUP_FRACTION of the
budget, then cosine decay to max_lr / (DIV_FACTOR * FINAL_DIV_FACTOR). Momentum is not cycled
(the paper's SGD momentum 0.9 stays fixed).
"""

from __future__ import annotations

import math

WARMUP_FRACTION = 0.25
DIV_FACTOR = 25.0
FINAL_DIV_FACTOR = 1e4
SCHEDULE_NAME = "onecycle_cosine"


def _cosine(start: float, end: float, fraction: float) -> float:
    return end + (start - end) * (1.0 + math.cos(math.pi * fraction)) / 2.0


def one_cycle_lr(
    progress: float,
    max_lr: float,
    warmup_fraction: float = WARMUP_FRACTION,
    div_factor: float = DIV_FACTOR,
    final_div_factor: float = FINAL_DIV_FACTOR,
) -> float:
    """The learning rate at budget ``progress`` (clamped to [0, 1])."""
    progress = min(max(progress, 0.0), 1.0)
    initial_lr = max_lr / div_factor
    final_lr = initial_lr / final_div_factor
    if progress < warmup_fraction:
        return _cosine(initial_lr, max_lr, progress / warmup_fraction)
    return _cosine(max_lr, final_lr, (progress - warmup_fraction) / (1.0 - warmup_fraction))


def schedule_params() -> dict[str, object]:
    """The schedule's constants, for logging as MLflow params."""
    return {
        "lr_schedule": SCHEDULE_NAME,
        "lr_warmup_fraction": WARMUP_FRACTION,
        "lr_div_factor": DIV_FACTOR,
        "lr_final_div_factor": FINAL_DIV_FACTOR,
    }
