"""Forward-only passes a pruner asks for: a scoring request, and per-step candidate selection.

A scoring request (``Pruner.scoring_request``) names samples to score before an epoch is planned:
:func:`score_samples` runs them through the model without gradients, each rank its shard, and the
pruner observes every rank's losses (and prediction statistics, if it wants them).

Per-step selection: Selective Backprop and OrderDP per iteration choose every step's samples from
a freshly scored candidate batch. Each loader batch of the plan is one candidate batch: the
trainer scores it by a forward-only pass, the pruner returns a keep mask, and the kept samples
join a queue that training takes in full batches of ``batch_size`` (the last one of an epoch may
be short). How many were kept is known only on the device: the count is copied to the host
without blocking and read one candidate batch later, when the device has long computed it, so
the host never waits for the device to drain its work at a step.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Iterator

import torch

from prunebench.bench.distributed import Dist, Shard
from prunebench.pruners import Pruner

Batch = tuple[torch.Tensor, torch.Tensor, torch.Tensor]
ForwardOnly = Callable[[torch.Tensor, torch.Tensor], tuple[torch.Tensor, torch.Tensor]]
"""(images, labels) -> (per-sample losses, logits) of a forward-only pass."""


class Sink:
    """Stands in for the pruner in an observer, routing its values to another method than
    ``observe`` (a scoring pass's losses, prediction statistics)."""

    def __init__(self, observe: Callable[[torch.Tensor, torch.Tensor], None]):
        self.observe = observe


def predictions_observer(dist: Dist, pruner: Pruner, shard: Shard):
    """An observer carrying prediction statistics to the pruner, if it observes them."""
    if not pruner.observes_predictions:
        return None
    return dist.observer(Sink(pruner.observe_predictions), shard)


def score_samples(
    request: torch.Tensor,
    epoch: int,
    loader,
    dist: Dist,
    pruner: Pruner,
    forward_only: ForwardOnly,
    batch_size: int,
) -> int:
    """Score the requested samples (with the epoch's augmentation) for the pruner; returns the
    forward-only passes made over all ranks. distributed: each rank scores its shard."""
    shard = dist.shard(request, None, batch_size)
    loader.set_plan(shard.indices, epoch)
    observer = dist.observer(Sink(pruner.observe_scoring), shard)
    predictions = predictions_observer(dist, pruner, shard)
    local = 0
    for images, labels, batch_indices in loader:
        losses, logits = forward_only(images, labels)
        observer.add(batch_indices, losses, local)
        if predictions is not None:
            predictions.add(batch_indices, pruner.prediction_statistic(logits, labels), local)
        local += batch_indices.numel()
    observer.flush()
    if predictions is not None:
        predictions.flush()
    return shard.planned


class _DeferredCount:
    """A device count copied to the host asynchronously; :meth:`read` waits only for it."""

    def __init__(self, mask: torch.Tensor):
        count = mask.sum()
        self.event = None
        if count.is_cuda:
            self.host = torch.empty((), dtype=count.dtype, pin_memory=True)
            self.host.copy_(count, non_blocking=True)
            self.event = torch.cuda.Event()
            self.event.record()
        else:
            self.host = count

    def read(self) -> int:
        if self.event is not None:
            self.event.synchronize()
        return int(self.host)


class SelectedBatches:
    """Iterate training batches chosen per step from ``candidates`` (one epoch's plan)."""

    def __init__(
        self,
        candidates: Iterable[Batch],
        score: Callable[[torch.Tensor, torch.Tensor], torch.Tensor],
        pruner: Pruner,
        batch_size: int,
        limit: int | None = None,
    ):
        self.candidates = candidates
        self.score = score
        self.pruner = pruner
        self.batch_size = batch_size
        self.limit = limit
        """Stop after this many trained samples (a samples budget's remainder); None: no limit."""
        self.scored = 0
        """Candidates scored by a forward-only pass so far (host count, no sync)."""
        self.trained = 0
        self._trained_indices: list[torch.Tensor] = []

    def trained_indices(self) -> torch.Tensor:
        """Indices of the samples handed to training so far, in order (on the device)."""
        if not self._trained_indices:
            return torch.zeros(0, dtype=torch.int64)
        return torch.cat(self._trained_indices)

    def __iter__(self) -> Iterator[Batch]:
        queue: list[Batch] = []
        queued = 0
        pending: tuple[Batch, _DeferredCount] | None = None
        for images, labels, indices in self.candidates:
            keep = self.pruner.select_step(indices, self.score(images, labels))
            self.scored += int(indices.numel())
            # Kept candidates first, in candidate order: the first `count` rows are the kept ones.
            order = torch.argsort((~keep).to(torch.int8), stable=True)
            entry = (images[order], labels[order], indices[order])
            arrived, pending = pending, (entry, _DeferredCount(keep))
            if arrived is not None:
                queued += self._enqueue(queue, *arrived)
                while queued >= self.batch_size and not self._done():
                    batch, queue, queued = self._take(queue, queued)
                    yield batch
            if self._done():
                return
        if pending is not None:
            queued += self._enqueue(queue, *pending)
        while queued and not self._done():
            batch, queue, queued = self._take(queue, queued)
            yield batch

    def _done(self) -> bool:
        return self.limit is not None and self.trained >= self.limit

    @staticmethod
    def _enqueue(queue: list[Batch], entry: Batch, count: _DeferredCount) -> int:
        kept = count.read()
        if kept:
            queue.append(tuple(part[:kept] for part in entry))  # type: ignore[arg-type]
        return kept

    def _take(self, queue: list[Batch], queued: int) -> tuple[Batch, list[Batch], int]:
        size = min(self.batch_size, queued)
        if self.limit is not None:
            size = min(size, self.limit - self.trained)
        joined = [torch.cat(parts) for parts in zip(*queue, strict=True)]
        batch = tuple(part[:size] for part in joined)
        rest = [tuple(part[size:] for part in joined)] if queued > size else []
        self.trained += size
        self._trained_indices.append(batch[2])
        return batch, rest, queued - size  # type: ignore[return-value]
