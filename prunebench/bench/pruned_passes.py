"""PrunedData's forward-only passes: a pruner's scoring request, and per-step selection.

The user's loop hands in ``score(x, y)``, its forward-only pass (per-sample losses at the current
weights). A scoring request (``Pruner.scoring_request``: IES's excluded samples, the bandits'
``rescore``) is answered before the epoch is planned, from the dataset's own samples in batches;
a per-step plan's loader batches are scored and filtered by the trainer's own
:class:`~prunebench.bench.forward_passes.SelectedBatches`. Both run under ``torch.no_grad``.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator
from typing import Any

import torch
from torch.utils.data import default_collate

from prunebench.bench.forward_passes import SelectedBatches
from prunebench.pruners import Pruner

Score = Callable[[torch.Tensor, torch.Tensor], torch.Tensor]
"""(x, y) -> per-sample losses of a forward-only pass at the current weights."""
Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]


def no_grad(score: Score) -> Score:
    """``score`` without gradients, its losses detached."""

    def scored(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
        with torch.no_grad():
            return score(x, y).detach()

    return scored


def moved(batch: Iterable[torch.Tensor], device: torch.device | str | None) -> Batch:
    """A loader batch ``(idx, x, y)``, on ``device`` if one is given (no host wait)."""
    idx, x, y = batch
    if device is None:
        return idx, x, y
    return idx.to(device, non_blocking=True), x.to(device, non_blocking=True), y.to(device)


def answer_request(
    dataset: Any, request: torch.Tensor, score: Score, pruner: Pruner, batch_size: int
) -> int:
    """Score the requested samples of ``dataset`` (``dataset[i]`` is ``(x, y)``) for the
    pruner, ``batch_size`` at a time; returns the forward-only passes made."""
    scored = no_grad(score)
    for chunk in request.cpu().split(batch_size):
        # The samples themselves are fetched one by one, as a DataLoader's collation does.
        x, y = default_collate([dataset[i] for i in chunk.tolist()])
        losses = scored(x, y)
        pruner.observe_scoring(chunk.to(losses.device), losses)
    return int(request.numel())


def selected_batches(
    batches: Iterable, score: Score, device: torch.device | str | None, pruner: Pruner, size: int
) -> SelectedBatches:
    """The kept samples of a per-step plan's candidate batches, queued into batches of ``size``
    (iterating it yields ``(x, y, idx)``, as the trainer's loader order)."""

    def candidates() -> Iterator[Batch]:
        for batch in batches:
            idx, x, y = moved(batch, device)
            yield x, y, idx

    return SelectedBatches(candidates(), no_grad(score), pruner, size)
