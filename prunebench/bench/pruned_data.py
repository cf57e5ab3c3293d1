"""Any registered pruner inside a plain PyTorch loop: :class:`PrunedData`, no monkeypatching.

```python
data = PrunedData(train_set, pruner="orderdp", prune_ratio=0.5, epochs=E, seed=0)
loader = DataLoader(data, batch_sampler=data.batch_sampler(batch_size=128), num_workers=4)
for epoch in range(E):
    data.set_epoch(epoch)                    # the pruner plans this epoch
    for idx, x, y in loader:
        per_sample = F.cross_entropy(model(x), y, reduction="none")
        loss = data.loss(idx, per_sample)    # the plan's weights applied, the losses observed
        loss.backward(); opt.step(); opt.zero_grad()
```

It follows the trainer (trainer.py) step for step: the pruner is created with the same ``n``,
``epochs`` and ``seed``, the batch sampler visits the plan in its order, ``loss`` is the weighted
per-sample losses' sum over the step's divisor, and the pruner observes every trained sample's
loss. So the same data, model, optimizer and seed train the same samples as ``prunebench run``.

Under torch.distributed (DistributedSampler semantics) each rank's sampler yields its shard of
the plan, cut by :func:`~prunebench.bench.distributed.shard_plan` exactly as a multi-process run
cuts it (``batch_size`` is the per-rank batch), and the losses of every rank are all-gathered
once per epoch, when the next ``set_epoch`` (or :meth:`PrunedData.end_epoch`) is called on every
rank, so that every rank's pruner plans the same next epoch.

Pruners that select per step (``selective_backprop``, ``orderdp_iteration``) plan candidates:
each loader batch is scored by a forward-only pass and only the samples the pruner keeps are
trained, queued into full batches, as the trainer does (forward_passes.py). The loop wraps its
loader in :meth:`PrunedData.steps`, which does that and, for every other plan, yields the
loader's batches unchanged, so one loop serves every pruner (one process only)::

    def score(x, y):                         # the forward-only pass: eval mode, no gradients
        model.eval(); losses = F.cross_entropy(model(x), y, reduction="none"); model.train()
        return losses
    for epoch in range(E):
        data.set_epoch(epoch, score=score)   # score: for pruners that ask (see below)
        for idx, x, y in data.steps(loader, score):
            loss = data.loss(idx, F.cross_entropy(model(x), y, reduction="none"))
            loss.backward(); opt.step(); opt.zero_grad()

Pruners that ask to score samples by a forward-only pass before planning (IES's excluded
samples, the bandits' ``rescore``) get it from ``set_epoch(epoch, score=score)``. Every such pass
is counted in ``scoring_forward_passes``, apart from the samples trained (pruned_passes.py).
Pruners that read every pass's predictions (KAKURENBO, EL2N, GraNd, forgetting) are refused.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from typing import Any

import torch
import torch.distributed as torch_dist
from torch.utils.data import Dataset

from prunebench import record
from prunebench.bench.distributed import (
    DirectObserver,
    Dist,
    GatherObserver,
    GroupDist,
    Shard,
    shard_plan,
)
from prunebench.bench.forward_passes import SelectedBatches
from prunebench.bench.metrics import jaccard, subset_mask
from prunebench.bench.pruned_passes import Score, answer_request, moved, selected_batches
from prunebench.errors import ConfigError
from prunebench.pruners import EpochPlan, Pruner, create_pruner


class PlanBatches:
    """The batch sampler of a :class:`PrunedData`: this rank's batches of the current plan."""

    def __init__(self, data: PrunedData, batch_size: int):
        if isinstance(batch_size, bool) or not isinstance(batch_size, int) or batch_size < 1:
            raise ValueError(f"batch_size must be a positive integer, got {batch_size!r}")
        self.data = data
        self.batch_size = batch_size

    def _indices(self) -> list[int]:
        return self.data._shard_for(self.batch_size).indices.tolist()

    def __iter__(self) -> Iterator[list[int]]:
        indices = self._indices()  # one host copy per epoch
        for start in range(0, len(indices), self.batch_size):
            yield indices[start : start + self.batch_size]

    def __len__(self) -> int:
        return -(-len(self.data._shard_for(self.batch_size).indices) // self.batch_size)


class _Epoch:
    """What one planned epoch holds while it trains: the plan, this rank's shard, a cursor."""

    def __init__(self, epoch: int, plan: EpochPlan):
        self.epoch = epoch
        self.plan = plan
        self.shard: Shard | None = None
        self.observer: Any = None
        self.position = 0  # samples of this rank's shard trained so far
        self.selected: SelectedBatches | None = None  # a per-step plan's chosen batches
        self.steps = 0
        self.ended = False
        self._weights: dict[torch.device, torch.Tensor] = {}

    def weights_on(self, device: torch.device) -> torch.Tensor | None:
        """This rank's loss weights on ``device`` (copied once per epoch and device)."""
        assert self.shard is not None
        if self.shard.weights is None:
            return None
        if device not in self._weights:
            self._weights[device] = self.shard.weights.to(device)
        return self._weights[device]


class PrunedData(Dataset):
    """A dataset whose epochs follow a registered pruner's plans; yields ``(index, x, y)``.

    ``dataset[i]`` must return ``(x, y)``. ``pruner``, ``epochs``, ``seed`` and the pruner's own
    parameters (``prune_ratio=``, ``exploration=``, ...) are those of
    :func:`prunebench.pruners.create_pruner`. The rank and world size are those of the
    initialized torch.distributed group (else 0 and 1). ``device`` holds the pruner's scores
    (default: where the first losses arrive).
    """

    def __init__(
        self,
        dataset: Any,
        pruner: str = "orderdp",
        *,
        epochs: int,
        seed: int = 0,
        device: torch.device | str | None = None,
        **pruner_params: Any,
    ):
        self.dataset = dataset
        self.n = len(dataset)
        self.pruner: Pruner = create_pruner(
            pruner, n=self.n, epochs=epochs, seed=seed, device=device, **pruner_params
        )
        grouped = torch_dist.is_available() and torch_dist.is_initialized()
        if self.pruner.observes_predictions:
            raise ConfigError(
                f"pruner {pruner!r} reads every pass's predictions (logits), which PrunedData "
                "does not carry; train it with prunebench run"
            )
        if grouped and torch_dist.get_world_size() > 1 and self.pruner.selects_per_step:
            raise ConfigError(
                f"pruner {pruner!r} selects per step and runs on one process; train it without "
                "torch.distributed"
            )
        score_device = torch.device(device) if device is not None else torch.device("cpu")
        # distributed: the same sharding and per-epoch all-gather as a multi-process run.
        self._dist: Dist = (
            GroupDist(score_device, owns_group=False) if grouped else Dist(score_device)
        )
        self.usage = torch.zeros(self.n, dtype=torch.int64)
        """Times each sample was trained (over every rank), counted when an epoch ends."""
        self.samples_trained = 0
        """Samples trained over every rank (the passes the plans cost), counted per epoch."""
        self.epochs_run = 0.0
        """Epochs ended; an epoch ended early counts the fraction of its plan trained (per-step
        plans: of its candidates scored)."""
        self.scoring_forward_passes = 0
        """Forward-only passes that trained nothing (per-step candidates), counted per epoch."""
        self.history: list[dict[str, float]] = []
        """Per ended epoch: train_loss, kept_fraction, samples_trained (cumulative),
        scoring_forward_passes (cumulative), train_steps and subset_jaccard (from the second
        epoch), as a run logs them."""
        self._previous_subset: torch.Tensor | None = None
        self._current: _Epoch | None = None

    # ------------------------------------------------------------------ Dataset
    def __len__(self) -> int:
        return self.n

    def __getitem__(self, index: int) -> tuple[int, Any, Any]:
        x, y = self.dataset[index]
        return index, x, y

    def __getstate__(self) -> dict[str, Any]:
        # DataLoader workers started by spawn need the samples only, never the pruner state
        # (which stays in the main process: checkpoint it with state_dict()).
        return {"dataset": self.dataset, "n": self.n}

    # ------------------------------------------------------------------ the loop's calls
    @property
    def rank(self) -> int:
        """This process's rank (0 without torch.distributed)."""
        return self._dist.rank

    @property
    def world_size(self) -> int:
        """The number of processes sharing each epoch's plan."""
        return self._dist.world_size

    def batch_sampler(self, batch_size: int) -> PlanBatches:
        """A batch sampler for ``DataLoader(data, batch_sampler=...)``: this rank's batches of
        ``batch_size`` samples of the current plan, in the plan's order (global batch:
        batch_size x world_size). Per-step plans: each batch is one candidate batch (OrderDP
        per iteration draws them of this size, so create the sampler before ``set_epoch``)."""
        self.pruner.follow_batch_size(batch_size)
        return PlanBatches(self, batch_size)

    def set_epoch(
        self, epoch: int, progress: float | None = None, score: Score | None = None
    ) -> EpochPlan:
        """End the previous epoch (its losses reach the pruner) and plan ``epoch``; call it on
        every rank. ``progress``: budget progress in [0, 1] (default epoch / epochs).

        ``score(x, y)``: the loop's forward-only pass, for pruners that ask to score samples
        before planning (IES, the bandits' ``rescore``); needed only when they ask.
        distributed: every rank scores the whole request (the same weights: the same losses).
        """
        self.end_epoch()
        request = self.pruner.scoring_request(epoch)
        if request is not None and request.numel():
            if score is None:
                raise RuntimeError(
                    f"pruner {self.pruner.name!r} asks for a forward-only pass over "
                    f"{request.numel()} samples before epoch {epoch}; pass "
                    "set_epoch(epoch, score=score)"
                )
            batch = self.pruner.batch_size  # the sampler's (set by batch_sampler)
            passes = answer_request(self.dataset, request, score, self.pruner, batch)
            self.scoring_forward_passes += passes * self.world_size
        plan = self.pruner.plan_epoch(epoch, progress=progress)
        self._current = _Epoch(epoch, plan)
        return plan

    def steps(
        self, batches: Iterable, score: Score, device: torch.device | str | None = None
    ) -> Iterator[tuple[torch.Tensor, torch.Tensor, torch.Tensor]]:
        """The epoch's training batches ``(idx, x, y)`` from ``batches`` (the DataLoader).

        A per-step plan's batches are candidates: ``score(x, y)`` (run under no_grad) gives
        their losses, the pruner keeps some, and the kept ones are yielded in batches of the
        plan's step size (default: the sampler's batch size). Other plans pass through.
        ``device``: move each batch there first (the model's device; the losses must be there).
        """
        current = self._epoch()
        if not current.plan.per_step:
            yield from (moved(batch, device) for batch in batches)
            return
        if current.shard is None:
            self._shard_for(self.pruner.batch_size)
        step_size = current.plan.step_batch_size or current.shard.batch_size
        current.selected = selected_batches(batches, score, device, self.pruner, step_size)
        for x, y, idx in current.selected:
            yield idx, x, y

    @property
    def plan(self) -> EpochPlan:
        """The current epoch's whole plan (every rank's samples)."""
        return self._epoch().plan

    def loss(self, idx: torch.Tensor, per_sample: torch.Tensor) -> torch.Tensor:
        """The step's loss from its per-sample losses: weighted by the plan, summed, divided as
        the trainer divides (the batch mean on one process); the pruner observes the losses.

        Call it once per batch, in the sampler's order (as a DataLoader delivers them).
        """
        current = self._epoch()
        if current.shard is None:
            raise RuntimeError("no batch sampler has served this epoch; iterate the DataLoader")
        size = per_sample.numel()
        if per_sample.ndim != 1 or idx.numel() != size:
            raise ValueError(
                f"loss() takes the batch's indices and one loss per sample, got "
                f"{tuple(idx.shape)} indices and losses of shape {tuple(per_sample.shape)}"
            )
        if current.ended:
            raise RuntimeError(f"epoch {current.epoch} has ended; call set_epoch() first")
        if current.plan.per_step and current.selected is None:
            raise RuntimeError(
                f"pruner {self.pruner.name!r} selects epoch {current.epoch}'s samples per step; "
                "iterate data.steps(loader, score) instead of the loader"
            )
        start, shard = current.position, current.shard
        if start + size > shard.indices.numel():
            raise RuntimeError(
                f"this epoch's shard has {shard.indices.numel()} samples but loss() has been "
                f"given {start + size}; call set_epoch() before each epoch"
            )
        if current.observer is None:  # where the losses live, known at the first step
            current.observer = (
                GatherObserver(self.pruner, shard, per_sample.device)
                if self.world_size > 1
                else DirectObserver(self.pruner, per_sample.device)
            )
        weights = current.weights_on(per_sample.device)
        weighted = per_sample * weights[start : start + size] if weights is not None else per_sample
        # Per-step batches are the kept samples, queued: each step's mean, as the trainer's.
        divisor = size if current.selected is not None else shard.loss_divisor(current.steps)
        loss = weighted.sum() / divisor
        # The same call the trainer makes (distributed: buffered, all-gathered at epoch end).
        current.observer.add(idx.to(per_sample.device), per_sample.detach(), start)
        current.position += size
        current.steps += 1
        return loss

    def end_epoch(self) -> None:
        """Hand the epoch's losses to the pruner and count its samples (set_epoch calls it).

        distributed: a collective, so every rank calls it (or the next set_epoch) together.
        """
        current = self._current
        if current is None or current.observer is None or current.ended:
            return
        current.ended = True
        loss_sum = current.observer.flush()  # distributed: every rank's losses observed here
        shard, selected = current.shard, current.selected
        if selected is None:
            trained = shard.trained_after(current.steps)
            trained_indices, consumed, scored = shard.plan[:trained], trained, 0
            kept_fraction = current.plan.kept_fraction
        else:  # per step: the samples handed to loss(), out of the candidates scored
            trained = current.position
            trained_indices = selected.trained_indices()[:trained]
            consumed = scored = selected.scored
            kept_fraction = trained / self.n
        trained_indices = trained_indices.cpu()
        self.usage.index_add_(0, trained_indices, torch.ones(trained, dtype=torch.int64))
        self.samples_trained += trained
        self.scoring_forward_passes += current.plan.scoring_forward_passes + scored
        if shard.planned:
            self.epochs_run += consumed / shard.planned
        self._dist.check_in_sync(self.pruner, current.epoch)
        # The epoch's metrics under a run's names (record.EPOCH_METRICS); one host read.
        subset = subset_mask(trained_indices if selected is not None else shard.plan, self.n)
        entry = {
            "train_loss": float(loss_sum) / max(trained, 1),
            "kept_fraction": kept_fraction,
            "samples_trained": float(self.samples_trained),
            "scoring_forward_passes": float(self.scoring_forward_passes),
            "train_steps": float(current.steps),
        }
        if self._previous_subset is not None:
            entry["subset_jaccard"] = float(jaccard(self._previous_subset, subset))
        self._previous_subset = subset
        self.history.append(entry)

    # ------------------------------------------------------------------ what it realized
    @property
    def realized_prune_ratio(self) -> float:
        """1 - samples trained / (epochs run x n), as a run's summary computes it (metrics.py)."""
        self._settle()
        if not self.epochs_run:
            return 0.0
        return 1.0 - self.samples_trained / (self.epochs_run * self.n)

    def usage_counts(self) -> torch.Tensor:
        """Times each sample was trained so far (int64, CPU), as a run's usage.npz."""
        self._settle()
        return self.usage.clone()

    def coreset(self, k: int) -> torch.Tensor:
        """The ``k`` indices with the highest current score (a static coreset), highest first.

        The score is the pruner's own ``scores`` (last-loss pruners, InfoBatch) or its EMA loss
        ``loss_mean`` (bandits); a pruner without scores (full, random, rs2) has none to rank.
        """
        if isinstance(k, bool) or not isinstance(k, int) or not 1 <= k <= self.n:
            raise ValueError(f"k must be an integer in [1, {self.n}], got {k!r}")
        self._settle()
        state = self.pruner._tensor_state()
        scores = state.get("scores", state.get("loss_mean"))
        if scores is None:
            raise ValueError(
                f"pruner {self.pruner.name!r} keeps no per-sample scores to rank; use a "
                "scoring pruner (e.g. orderdp, infobatch, ucb)"
            )
        return torch.topk(scores.detach().float().cpu(), k, sorted=True).indices

    def summary(self) -> dict[str, float]:
        """A run's data summary metrics: realized_prune_ratio, samples_trained_total,
        scoring_forward_passes_total, epochs_run, zero_usage_samples."""
        self._settle()
        return {
            record.METRIC_REALIZED_RATIO: self.realized_prune_ratio,
            record.METRIC_SAMPLES_TRAINED_TOTAL: float(self.samples_trained),
            record.METRIC_SCORING_PASSES_TOTAL: float(self.scoring_forward_passes),
            record.METRIC_EPOCHS_RUN: float(self.epochs_run),
            record.METRIC_ZERO_USAGE: float((self.usage == 0).sum()),
        }

    # ------------------------------------------------------------------ checkpoints
    def state_dict(self) -> dict[str, Any]:
        """The pruner's state (RNG included), usage counts and counters, at an epoch boundary."""
        self._settle()
        return {
            "pruner": self.pruner.state_dict(),
            "usage": self.usage.clone(),
            "samples_trained": self.samples_trained,
            "epochs_run": self.epochs_run,
            "scoring_forward_passes": self.scoring_forward_passes,
            "history": [dict(entry) for entry in self.history],
            "previous_subset": self._previous_subset,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`; continue with ``set_epoch(next epoch)``."""
        self.pruner.load_state_dict(state["pruner"])
        self.usage = state["usage"].clone()
        self.samples_trained = int(state["samples_trained"])
        self.epochs_run = float(state["epochs_run"])
        self.scoring_forward_passes = int(state.get("scoring_forward_passes", 0))
        self.history = [dict(entry) for entry in state["history"]]
        self._previous_subset = state["previous_subset"]
        self._current = None

    # ------------------------------------------------------------------ internals
    def _epoch(self) -> _Epoch:
        if self._current is None:
            raise RuntimeError("call set_epoch(epoch) before training an epoch")
        return self._current

    def _shard_for(self, batch_size: int) -> Shard:
        """This rank's shard of the current plan for per-rank batches of ``batch_size``."""
        current = self._epoch()
        global_batch = batch_size * self.world_size
        if current.shard is None or current.shard.batch_size != global_batch:
            if current.observer is not None:
                raise RuntimeError("the batch size changed in the middle of an epoch")
            plan = current.plan
            current.shard = shard_plan(
                plan.indices.cpu(),
                plan.weights.cpu() if plan.weights is not None else None,
                self.rank,
                self.world_size,
                global_batch,
            )
        return current.shard

    def _settle(self) -> None:
        """End a trained epoch before reading its results (one process only: under
        torch.distributed ending an epoch is a collective, so every rank must call end_epoch)."""
        current = self._current
        if current is None or current.observer is None or current.ended:
            return
        if self.world_size > 1:
            raise RuntimeError(
                "this epoch's losses are not yet shared among the ranks; call end_epoch() on "
                "every rank first"
            )
        self.end_epoch()


__all__ = ["PlanBatches", "PrunedData"]
