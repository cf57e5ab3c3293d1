"""Training budgets (epochs, samples, time) and the progress in [0, 1] the LR schedule follows.

Every pruner gets the same budget; the learning rate is a function of budget progress, so a pruned
run anneals fully whatever its number of steps:

- ``epochs:N``: progress = (epoch + fraction of this epoch's plan trained) / N.
- ``samples:N``: progress = per-sample forward+backward passes so far / N. The last epoch's plan is
  cut so that the run trains exactly N samples.
- ``time:S``: progress = training seconds so far / S (evaluation excluded). The run stops at the
  first step boundary where training seconds >= S; the recorded seconds are the actual ones.

A suite's equal-time cells carry the symbolic budget ``time-fraction:F`` (F times the measured
training seconds of the suite's full-data runs): it names the cell (its config hash is stable
across reruns) and :meth:`Budget.resolve` turns it into ``time:S`` once those runs are finished.

Sample passes (one definition, used by presets, the suite, the search and the report): a plan at
prune ratio p keeps :func:`~prunebench.pruners.base.kept_count` samples an epoch, so a pruned run
trains :func:`plan_sample_passes` passes: kept * E under ``epochs:E``, exactly S under
``samples:S`` (every run is cut at S, pruned or not), and under ``time:`` a count only known once
the runs have trained. Full data "on the same compute" trains those passes
(:func:`same_compute_budget`): ``samples:P`` when P is known ahead, else the symbolic
``same-compute:p``, which the suite resolves to the mean ``samples_trained_total`` of its
finished pruned runs at target ratio p (same dataset and model) before training the cell.
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from prunebench.errors import ConfigError

BUDGET_KINDS = ("epochs", "samples", "time")
TIME_FRACTION = "time-fraction"
"""The symbolic kind of an equal-time cell's budget (never trained as such; see the docstring)."""
SAME_COMPUTE = "same-compute"
"""The symbolic kind of a same-compute cell's budget under a time budget: ``same-compute:p`` is
full data on the mean sample passes of the suite's pruned runs at target ratio p."""
SYMBOLIC_KINDS = (TIME_FRACTION, SAME_COMPUTE)

TIME_BUDGET_PRUNER_EPOCHS = 1_000_000
"""Epoch count handed to pruners under a time budget, where no count is known ahead. Pruner
schedules do not rely on it: the trainer passes budget progress at plan time, and InfoBatch
anneals at progress delta under every budget kind."""


@dataclass(frozen=True)
class Budget:
    """How long every pruner trains: ``kind`` in BUDGET_KINDS and a positive ``amount``."""

    kind: str
    amount: float

    def __str__(self) -> str:
        amount = int(self.amount) if float(self.amount).is_integer() else self.amount
        return f"{self.kind}:{amount}"

    def validate(self) -> None:
        """ConfigError unless the kind is known and the amount is positive (integral if counted)."""
        if self.kind not in (*BUDGET_KINDS, *SYMBOLIC_KINDS):
            raise ConfigError(
                f"unknown budget kind {self.kind!r}; use epochs:N, samples:N or time:SECONDS"
            )
        amount = self.amount
        if isinstance(amount, bool) or not isinstance(amount, (int, float)):
            raise ConfigError(f"budget amount must be a number, got {amount!r}")
        if not math.isfinite(amount) or amount <= 0:
            raise ConfigError(f"budget {self.kind}:{amount} must be positive and finite")
        if self.kind in ("epochs", "samples") and not float(amount).is_integer():
            raise ConfigError(f"budget {self.kind}:{amount} must be a whole number")

    @property
    def is_symbolic(self) -> bool:
        """Whether this is a ``time-fraction`` or ``same-compute`` budget, resolved before
        training from the suite's finished runs."""
        return self.kind in SYMBOLIC_KINDS

    def resolve(self, reference: float) -> Budget:
        """The concrete budget: ``time:`` this fraction of ``reference`` seconds, or
        ``samples:round(reference)`` for same-compute (a concrete budget: itself)."""
        if self.kind == TIME_FRACTION:
            return Budget("time", float(self.amount) * float(reference))
        if self.kind == SAME_COMPUTE:
            return Budget("samples", max(1, round(float(reference))))
        return self

    def progress(self, epoch: int, epoch_fraction: float, samples: int, seconds: float) -> float:
        """Budget progress in [0, 1] after ``samples`` passes and ``seconds`` of training."""
        if self.kind == "epochs":
            done = (epoch + epoch_fraction) / self.amount
        elif self.kind == "samples":
            done = samples / self.amount
        else:
            done = seconds / self.amount
        return min(max(done, 0.0), 1.0)

    def exhausted(self, epochs_done: int, samples: int, seconds: float) -> bool:
        """Whether a run that has done this much must stop."""
        if self.kind == "epochs":
            return epochs_done >= self.amount
        if self.kind == "samples":
            return samples >= self.amount
        return seconds >= self.amount

    def pruner_epochs(self, n: int, target_prune_ratio: float) -> int:
        """The ``epochs`` handed to a pruner: exact for epochs, an estimate otherwise.

        Samples: ceil(N / round((1 - p) * n)), the epochs a pruner realizing the target ratio
        p needs (the caller passes the targeted realized ratio; pruners that steer to it meet
        it). Time: TIME_BUDGET_PRUNER_EPOCHS (unknown ahead).
        """
        if self.kind == "epochs":
            return int(self.amount)
        if self.kind == "samples":
            from prunebench.pruners.base import kept_count  # torch: not at the schema's import

            return max(1, math.ceil(self.amount / kept_count(n, target_prune_ratio)))
        return TIME_BUDGET_PRUNER_EPOCHS


def plan_sample_passes(budget: Budget, n: int, prune_ratio: float) -> int | None:
    """Sample passes a run realizing ``prune_ratio`` on ``n`` samples trains under ``budget``:
    kept_count(n, p) * E for ``epochs:E``, S for ``samples:S`` (pruned or not, the run is cut at
    S), None for a time budget (known only after the runs trained)."""
    if budget.kind == "epochs":
        from prunebench.pruners.base import kept_count  # torch: not at the schema's import

        return kept_count(n, prune_ratio) * int(budget.amount)
    if budget.kind == "samples":
        return int(budget.amount)
    return None


def same_compute_budget(budget: Budget, n: int, prune_ratio: float) -> Budget:
    """The budget of full data on the sample passes of the pruned runs at ``prune_ratio``:
    ``samples:`` :func:`plan_sample_passes` when known ahead, else ``same-compute:p`` (resolved
    by the suite from the pruned runs' mean ``samples_trained_total``)."""
    passes = plan_sample_passes(budget, n, prune_ratio)
    if passes is None:
        return Budget(SAME_COMPUTE, float(prune_ratio))
    return Budget("samples", passes)


DEFAULT_TIME_EVAL_POINTS = 20
"""Evaluations of a time-budget run with ``eval_points`` 0 (no epoch length is common to all
pruners there): one every budget / 20 training seconds."""


def eval_interval(budget: Budget, n: int, points: int) -> float:
    """The budget clock between evaluations, the same for every pruner of a cell (so time to
    accuracy has one resolution): sample passes under epochs and samples budgets, one full-data
    epoch (n) for ``points`` 0, else the budget's full-data passes / points but never under n
    (an epoch records one evaluation); training seconds under a time budget, budget / points
    (DEFAULT_TIME_EVAL_POINTS for 0)."""
    if budget.kind == "time":
        return float(budget.amount) / (points or DEFAULT_TIME_EVAL_POINTS)
    if points == 0:
        return float(n)
    full_passes = n * budget.amount if budget.kind == "epochs" else budget.amount
    return max(float(n), float(full_passes) / points)


def eval_points_reached(budget: Budget, interval: float, samples: int, seconds: float) -> int:
    """How many evaluation points (multiples of ``interval`` on the budget's clock: seconds
    under a time budget, else sample passes) a run with this much training has reached."""
    clock = seconds if budget.kind == "time" else float(samples)
    return math.floor(clock / interval + 1e-9)  # slack: 3 / 10 * 10 need not be exactly 3.0


def parse_budget(text: str) -> Budget:
    """Parse ``epochs:N``, ``samples:N`` or ``time:SECONDS`` into a validated Budget."""
    kind, sep, value = str(text).strip().partition(":")
    if not sep or kind not in BUDGET_KINDS:
        raise ConfigError(
            f"budget {text!r} is not epochs:N, samples:N or time:SECONDS (e.g. epochs:200)"
        )
    try:
        amount: float = float(value)
    except ValueError:
        raise ConfigError(f"budget {text!r} needs a number after '{kind}:'") from None
    if kind != "time" and math.isfinite(amount) and amount.is_integer():
        amount = int(amount)
    budget = Budget(kind, amount)
    budget.validate()
    return budget
