"""Gradient alignment (the OrderDP paper's Table 11): the epoch plan's gradient vs full data's.

At the model's current weights, two gradients of the training loss as training computes it (train
mode, the run's autocast and label smoothing, batches of the training batch size):

- full data: the mean over every training sample (or a fixed seeded probe of them) of the
  per-sample loss gradient, unit weights;
- the plan: the mean over the epoch's plan positions (repeats count) of weight_i * the per-sample
  loss gradient, i.e. the gradient of mean_i(weight_i * loss_i) over the plan.

``grad_cosine`` is their cosine similarity; both norms are kept. The measurement changes nothing:
gradients come from ``torch.autograd.grad`` (no ``.grad`` is touched, no optimizer step), every
buffer (BatchNorm running statistics and ``num_batches_tracked``) and every module's train/eval
mode are restored, and the global RNGs are forked, so a run with the measurement trains exactly as
one without it.

When the trainer measures (:class:`AlignmentMonitor`): at the end of an epoch, after its training
clock stops and before its evaluation, whenever the budget progress at that epoch end reaches a
checkpoint not reached at the previous one (progress_before < c <= progress_after). The plan is
that epoch's plan as trained (a budget-truncated epoch: the part trained), at the weights it left,
so checkpoint 1.0 is the last epoch's plan at the final weights. Several checkpoints crossed at
one epoch end share one measurement; ``grad_alignment_progress`` logs the progress it was taken
at, and a report maps checkpoint c to the first measurement with progress >= c.

Data: both passes go through the training loader's plan-following pass for that epoch, with
training's augmentation. The plan pass replays the epoch's plan with the same (seed, epoch)
augmentation, so its batches are the ones training saw (FFCV JPEG crops are FFCV's own fresh
draws). The full-data pass visits the samples (or the probe) in index order with augmentation
drawn for that order from (seed, epoch): augmented views as training sees them. The loader's plan
is left at the plan pass's; the trainer sets the next epoch's plan before it trains.
"""

from __future__ import annotations

import contextlib
import time
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass

import torch
from torch import nn

from prunebench.bench.losses import sample_losses

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]
"""(images, labels, indices), as every loader yields them."""
PROGRESS_TOLERANCE = 1e-9
"""Budget progress is a float ratio: a checkpoint counts as reached within this."""


@dataclass(frozen=True)
class GradientAlignment:
    """One measurement: cosine of the plan and full-data gradients, their norms, its seconds."""

    grad_cosine: float
    full_grad_norm: float
    plan_grad_norm: float
    seconds: float

    def metrics(self, progress: float) -> dict[str, float]:
        """The per-epoch MLflow metrics of this measurement, taken at budget ``progress``."""
        return {
            "grad_cosine": self.grad_cosine,
            "grad_norm_full": self.full_grad_norm,
            "grad_norm_plan": self.plan_grad_norm,
            "grad_alignment_progress": progress,
        }


@contextlib.contextmanager
def preserved_state(model: nn.Module) -> Iterator[None]:
    """Run a block, then restore the model's buffers, module modes and the global RNG states."""
    buffers = [(buffer, buffer.detach().clone()) for buffer in model.buffers()]
    modes = [(module, module.training) for module in model.modules()]
    cuda = sorted({p.device.index or 0 for p in model.parameters() if p.device.type == "cuda"})
    with torch.random.fork_rng(devices=cuda):
        try:
            yield
        finally:
            with torch.no_grad():
                for buffer, saved in buffers:
                    buffer.copy_(saved)
            for module, mode in modes:
                module.train(mode)


def mean_gradient(
    model: nn.Module,
    batches: Iterable[Batch],
    weights: torch.Tensor | None = None,
    *,
    label_smoothing: float,
    forward: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> torch.Tensor:
    """Flattened float64 gradient of mean_i(weight_i * loss_i) over every sample ``batches`` yield.

    ``weights`` (None: unit) is per sample in the order the batches yield them. The sum is kept
    on the model's device as one flat vector and divided once at the end (no host reads).
    """
    parameters = [p for p in model.parameters() if p.requires_grad]
    total = torch.zeros(
        sum(p.numel() for p in parameters), dtype=torch.float64, device=parameters[0].device
    )
    forward = forward or model
    count = 0
    for images, labels, _ in batches:
        size = labels.numel()
        losses = sample_losses(forward(images), labels, label_smoothing)
        if weights is not None:
            losses = losses * weights[count : count + size]
        grads = torch.autograd.grad(losses.sum(), parameters, allow_unused=True)
        total += torch.cat(
            [
                (g if g is not None else torch.zeros_like(p)).reshape(-1)
                for g, p in zip(grads, parameters, strict=True)
            ]
        )
        count += size
    if count == 0:
        raise ValueError("a gradient over no samples is undefined")
    return total / count


def gradient_alignment(
    model: nn.Module,
    full_batches: Iterable[Batch],
    plan_batches: Iterable[Batch],
    plan_weights: torch.Tensor | None,
    *,
    label_smoothing: float,
    forward: Callable[[torch.Tensor], torch.Tensor] | None = None,
) -> GradientAlignment:
    """Cosine and norms of the plan's and the full data's gradient, in train mode, changing nothing.

    The two batch sources are consumed one after the other (full data first), so both may be
    passes of the same loader (see :func:`loader_batches`).
    """
    start = time.perf_counter()
    with preserved_state(model):
        model.train()
        full = mean_gradient(
            model, full_batches, None, label_smoothing=label_smoothing, forward=forward
        )
        plan = mean_gradient(
            model, plan_batches, plan_weights, label_smoothing=label_smoothing, forward=forward
        )
    full_norm, plan_norm = full.norm(), plan.norm()
    cosine = torch.dot(full, plan) / (full_norm * plan_norm).clamp_min(1e-300)
    # The one host read (it waits for the device, so the seconds below are complete).
    values = torch.stack([cosine, full_norm, plan_norm]).tolist()
    return GradientAlignment(*values, seconds=time.perf_counter() - start)


def loader_batches(
    loader, indices: torch.Tensor, epoch: int, limit: int | None = None
) -> Iterator[Batch]:
    """The batches a PlanLoader serves for plan ``indices`` at ``epoch``, up to ``limit`` samples.

    The plan is set when iteration starts (lazily), so two such passes may share a loader when
    consumed one after the other. ``limit`` stops where training stopped in a truncated epoch,
    keeping the augmentation of the whole plan (which depends on the plan's length).
    """
    loader.set_plan(indices, epoch)
    served = 0
    for images, labels, batch_indices in loader:
        if limit is not None and served >= limit:
            break
        served += batch_indices.numel()
        yield images, labels, batch_indices


def tensor_batches(images: torch.Tensor, labels: torch.Tensor, batch_size: int) -> Iterator[Batch]:
    """Batches of in-memory tensors in order (a batch source without a loader)."""
    for start in range(0, len(labels), batch_size):
        stop = min(start + batch_size, len(labels))
        yield images[start:stop], labels[start:stop], torch.arange(start, stop)


def probe_indices(n: int, size: int | None, seed: int) -> torch.Tensor:
    """The full-data samples: all n (size None or >= n) or a fixed seeded probe, sorted."""
    if size is None or size >= n:
        return torch.arange(n)
    generator = torch.Generator().manual_seed(seed)
    return torch.randperm(n, generator=generator)[:size].sort().values


def checkpoints_reached(checkpoints: Sequence[float], before: float, after: float) -> list[float]:
    """The checkpoints an epoch end reaches first: before < c <= after (budget progress)."""
    return [c for c in checkpoints if before + PROGRESS_TOLERANCE < c <= after + PROGRESS_TOLERANCE]


class AlignmentMonitor:
    """The trainer's gradient-alignment measurement at its progress checkpoints."""

    def __init__(
        self,
        checkpoints: Sequence[float],
        probe: torch.Tensor,
        label_smoothing: float,
        forward: Callable[[torch.Tensor], torch.Tensor],
    ) -> None:
        self.checkpoints = tuple(checkpoints)
        self.probe = probe
        self.label_smoothing = label_smoothing
        self.forward = forward

    def at_epoch_end(
        self,
        model: nn.Module,
        loader,
        epoch: int,
        progress: tuple[float, float],
        plan: tuple[torch.Tensor, torch.Tensor | None],
        trained: int,
    ) -> GradientAlignment | None:
        """Measure if the epoch's (progress before, after) reaches a checkpoint, else None.

        ``plan`` is the epoch's (indices, weights) as handed to the loader; ``trained`` how many
        of its positions were trained.
        """
        if not checkpoints_reached(self.checkpoints, *progress):
            return None
        indices, weights = plan
        return gradient_alignment(
            model,
            loader_batches(loader, self.probe, epoch),
            loader_batches(loader, indices, epoch, limit=trained),
            weights,
            label_smoothing=self.label_smoothing,
            forward=self.forward,
        )
