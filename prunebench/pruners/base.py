"""The pruner contract: every dynamic data pruner plans an epoch and observes per-sample losses."""

from __future__ import annotations

import inspect
from abc import ABC, abstractmethod
from dataclasses import dataclass
from typing import Any, ClassVar

import torch

from prunebench.errors import ConfigError


@dataclass(frozen=True)
class EpochPlan:
    """What to train on in one epoch: sample indices in visiting order and optional loss weights."""

    indices: torch.Tensor
    """1-D int64 tensor of dataset indices, in the order the loader must visit them."""
    n: int
    """Size of the full training set the indices refer to."""
    weights: torch.Tensor | None = None
    """None (every weight 1), or float32 per-sample loss weights aligned with ``indices``."""
    scoring_forward_passes: int = 0
    """Extra per-sample forward passes the pruner spent to score samples for this plan."""
    per_step: bool = False
    """True when ``indices`` are candidates: each loader batch of them is scored by a forward-only
    pass and only the samples :meth:`Pruner.select_step` keeps are trained."""
    step_batch_size: int | None = None
    """Per-step plans: samples trained per step (None: the run's batch size)."""

    @property
    def num_samples(self) -> int:
        """Number of per-sample forward+backward passes this plan trains."""
        return int(self.indices.numel())

    @property
    def kept_fraction(self) -> float:
        """Trained samples as a fraction of the full training set."""
        return self.num_samples / self.n

    @property
    def realized_prune_ratio(self) -> float:
        """1 - kept fraction: the share of a full epoch's passes this plan saves."""
        return 1.0 - self.kept_fraction


def check_range(
    name: str,
    value: float,
    low: float,
    high: float,
    *,
    low_open: bool = False,
    high_open: bool = False,
) -> float:
    """Validate ``low <(=) value <(=) high`` and return ``value`` as a float, else ConfigError."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    value = float(value)
    ok_low = value > low if low_open else value >= low
    ok_high = value < high if high_open else value <= high
    if not (ok_low and ok_high):
        interval = f"{'(' if low_open else '['}{low:g}, {high:g}{')' if high_open else ']'}"
        raise ConfigError(f"{name} must be in {interval}, got {value:g}")
    return value


def check_int(name: str, value: int, minimum: int) -> int:
    """Validate an integer ``>= minimum`` and return it, else ConfigError."""
    if isinstance(value, bool) or not isinstance(value, int) or value < minimum:
        raise ConfigError(f"{name} must be an integer >= {minimum}, got {value!r}")
    return value


MAX_SEARCH_RATIO = 0.95
"""The largest prune ratio a search tries."""
PRUNE_RATIO_SEARCH: dict[str, tuple[float, float]] = {"prune_ratio": (0.0, MAX_SEARCH_RATIO)}
"""The search space of a pruner with one knob, its prune ratio."""


def kept_count(n: int, prune_ratio: float) -> int:
    """Samples kept per epoch for a nominal prune ratio: round((1 - p) * n), at least 1."""
    return max(1, round((1.0 - prune_ratio) * n))


class Pruner(ABC):
    """Base class: a seeded, stateful selector of each epoch's training subset.

    Subclasses implement :meth:`plan_epoch` and, if they score samples, :meth:`observe` and
    :meth:`_tensor_state` (named tensors that make up their state besides the RNG).
    """

    name: ClassVar[str]
    is_reference: ClassVar[bool] = False
    """True for the full-data reference the others are compared against (trains on all data)."""
    search_space: ClassVar[dict[str, tuple[float, float]]] = {}
    """Searchable values and their [low, high] ranges, suggested in this order (empty: the
    search cannot tune this pruner); :meth:`params_from_search` maps them to parameters."""
    ratio_params: ClassVar[tuple[str, ...]] = ("prune_ratio",)
    """Parameters that set the target prune ratio (a preset varies prune_ratio otherwise)."""
    observes_predictions: ClassVar[bool] = False
    """True for pruners that also want :meth:`prediction_statistic` of every forward pass's
    logits (training and scoring passes alike), handed to :meth:`observe_predictions`."""
    selects_per_step: ClassVar[bool] = False
    """True for pruners whose plans may be ``per_step``: each step's samples picked from freshly
    scored candidates by :meth:`select_step` (then queued into full batches); one process only."""

    progress_pace: str = "epochs"
    """What budget progress grows with: "epochs" (an epochs budget, or no budget given) or
    "samples" (samples and time budgets: time is taken to grow with samples trained). Set by the
    trainer through :meth:`follow_budget`; pruners whose schedule depends on progress read it."""
    batch_size: int = 128
    """The run's batch size: the candidate batch of a per-step plan (set by the trainer through
    :meth:`follow_batch_size`)."""

    # ----------------------------------------------------------------- facts about the class
    @classmethod
    def params_from_search(cls, values: dict[str, float]) -> dict[str, Any]:
        """The pruner parameters a point of :attr:`search_space` stands for (default: itself)."""
        return dict(values)

    @classmethod
    def target_prune_ratio(cls, params: dict[str, Any]) -> float:
        """The nominal prune ratio ``params`` ask for: prune_ratio, else its default, else 0."""
        if cls.is_reference:
            return 0.0
        if "prune_ratio" in params:
            return float(params["prune_ratio"])
        default = inspect.signature(cls.__init__).parameters.get("prune_ratio")
        if default is None or not isinstance(default.default, (int, float)):
            return 0.0
        return float(default.default)

    def __init__(self, n: int, epochs: int, seed: int, device: torch.device | str | None = None):
        self.n = check_int("n", n, 1)
        self.epochs = check_int("epochs", epochs, 1)
        self.seed = check_int("seed", seed, 0)
        self.device = torch.device(device) if device is not None else torch.device("cpu")
        # All randomness comes from this private generator; global RNGs are never touched.
        self.generator = torch.Generator(device="cpu")
        self.generator.manual_seed(seed)

    @property
    def params(self) -> dict[str, Any]:
        """The pruner's own parameters (for logging), as passed or resolved."""
        return {}

    @property
    def run_summary(self) -> dict[str, float]:
        """Numbers the pruner reports about its run so far (logged as metrics at the end)."""
        return {}

    @property
    def target_realized_ratio(self) -> float | None:
        """The realized prune ratio this pruner steers to, if any (the run then logs its signed
        ``ratio_shortfall``: realized minus this); None for a nominal or exact ratio."""
        return None

    def follow_budget(self, kind: str) -> None:
        """Say which budget kind drives progress: "epochs", "samples" or "time"."""
        if kind not in ("epochs", "samples", "time"):
            raise ValueError(f"unknown budget kind {kind!r}")
        self.progress_pace = "epochs" if kind == "epochs" else "samples"

    def follow_batch_size(self, batch_size: int) -> None:
        """Say the run's batch size (the size of each candidate batch of a per-step plan)."""
        self.batch_size = check_int("batch_size", batch_size, 1)

    def epoch_progress(self, epoch: int, progress: float | None) -> float:
        """Budget progress at the start of ``epoch``: as given, else epoch / epochs."""
        return epoch / self.epochs if progress is None else float(progress)

    @abstractmethod
    def plan_epoch(self, epoch: int, progress: float | None = None) -> EpochPlan:
        """Return the plan for ``epoch``; deterministic for a given state.

        ``progress`` is the run's budget progress in [0, 1] when the epoch starts (the same
        progress the LR schedule follows); None means epoch / epochs (an epochs budget).
        """

    def observe(self, indices: torch.Tensor, losses: torch.Tensor) -> None:  # noqa: B027
        """Record detached per-sample training losses of one batch (no host synchronization)."""

    # --------------------------------------------- optional: scoring passes, steps, LR scale
    def scoring_request(self, epoch: int) -> torch.Tensor | None:
        """Indices to score by a forward-only pass before planning ``epoch`` (None: none).

        The trainer runs the pass on the training device inside the training clock, hands the
        losses to :meth:`observe_scoring` and counts every index in ``scoring_forward_passes``.
        """
        return None

    def observe_scoring(self, indices: torch.Tensor, losses: torch.Tensor) -> None:
        """Record per-sample losses of a forward-only scoring pass (default: as training's)."""
        self.observe(indices, losses)

    def prediction_statistic(self, logits: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
        """One float per sample computed from a batch's detached logits (observes_predictions)."""
        raise NotImplementedError(f"pruner {self.name!r} observes no predictions")

    def observe_predictions(self, indices: torch.Tensor, values: torch.Tensor) -> None:  # noqa: B027
        """Record :meth:`prediction_statistic` values of samples (no host synchronization)."""

    def select_step(self, indices: torch.Tensor, losses: torch.Tensor) -> torch.Tensor:
        """Bool mask over one candidate batch: which to train (pruners with selects_per_step).

        ``losses`` come from a forward-only pass at the current weights; the mask stays on the
        device (the trainer reads its count without stalling the device).
        """
        raise NotImplementedError(f"pruner {self.name!r} does not select per step")

    def lr_scale(self) -> float:
        """Factor on the scheduled learning rate in the epoch planned last (1: as scheduled)."""
        return 1.0

    # ----------------------------------------------------------------- helpers for subclasses
    def _randperm(self, n: int) -> torch.Tensor:
        """A uniform random permutation of range(n) on the pruner's device."""
        return torch.randperm(n, generator=self.generator).to(self.device, non_blocking=True)

    def _shuffled(self, indices: torch.Tensor) -> torch.Tensor:
        """``indices`` in a uniformly random visiting order."""
        return indices[self._randperm(indices.numel())]

    def _follow_device(self, losses: torch.Tensor) -> None:
        """Move the score state to the device the losses live on (once, at the first observe)."""
        if losses.device != self.device:
            self.device = losses.device
            for key, tensor in self._tensor_state().items():
                setattr(self, key, tensor.to(self.device))

    def _tensor_state(self) -> dict[str, torch.Tensor]:
        """Named tensor attributes that, with the RNG and :meth:`_extra_state`, are the state."""
        return {}

    def _extra_state(self) -> dict[str, Any]:
        """Plain-Python state besides tensors (e.g. cursors); restored by setattr."""
        return {}

    # ------------------------------------------------------------------------- state
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to resume exactly: RNG state, score tensors (on the CPU), cursors."""
        return {
            "name": self.name,
            "n": self.n,
            "generator": self.generator.get_state(),
            "tensors": {k: v.detach().cpu().clone() for k, v in self._tensor_state().items()},
            "extra": dict(self._extra_state()),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`; tensors go to this pruner's current device."""
        if state.get("name") != self.name or state.get("n") != self.n:
            raise ValueError(
                f"state is for pruner {state.get('name')!r} with n={state.get('n')}, "
                f"not {self.name!r} with n={self.n}"
            )
        self.generator.set_state(state["generator"])
        for key, tensor in state["tensors"].items():
            setattr(self, key, tensor.to(self.device))
        for key, value in state["extra"].items():
            setattr(self, key, value)
