"""The training loop of one run: one step, one epoch, evaluation (reads in one sitting).

Per epoch: ask the pruner for its plan (the epoch's visiting order and loss weights), hand the plan
to the loader, train on it with per-sample cross-entropy times the plan's weights, and after each
step give the pruner the detached per-sample losses. Then, when due (every epoch, or at the
``eval_points`` points of budget progress and at the end), evaluate on the test split, outside the
training clock. Inside the step nothing reads a value back to the host: loss sums, gradient norms
and usage counts accumulate on the device and are read once per epoch, when the clock stops (a NaN
or inf loss shows there as a non-finite loss sum and fails the run). Budgets and the LR and
momentum rule: budgets.py and schedule.py. With ``grad_alignment`` the gradient alignment is
measured at progress checkpoints, after the clock stops and before the evaluation, and its seconds
are kept apart (diagnostics.py). The run lifecycle around it (MLflow, resume, checkpoints): run.py.
A pruner may also ask for forward-only passes, counted in ``scoring_forward_passes`` apart from
the forward+backward passes a samples budget counts: a scoring request before its plan, or a
per-step plan whose candidates are scored and selected step by step (forward_passes.py); and it
may scale the scheduled learning rate (``lr_scale``).

On N processes (``dist``, distributed.py; the identity on one) each rank trains its shard of the
plan under DDP with equal step counts, and the pruner observes every rank's losses at the epoch's
end; the lines that differ say "distributed:".
"""

from __future__ import annotations

import contextlib
import math
import time
from dataclasses import asdict
from typing import Any

import torch
import torch.nn.functional as F
from torch import nn
from tqdm.auto import tqdm

from prunebench.bench.budgets import eval_interval, eval_points_reached
from prunebench.bench.config import RunConfig
from prunebench.bench.distributed import Dist
from prunebench.bench.forward_passes import SelectedBatches, predictions_observer, score_samples
from prunebench.bench.losses import sample_losses
from prunebench.bench.metrics import jaccard, mean_and_std, subset_mask, summarize
from prunebench.bench.models import build_model
from prunebench.bench.resolve import ResolvedRun, resolve
from prunebench.bench.schedule import OneCycle
from prunebench.bench.shards import Shard
from prunebench.bench.trainer_state import (
    Counters,
    Diverged,
    EpochState,
    alignment_monitor,
    autocast_dtype,
    build_loaders,
    derive_seed,
    epoch_alignment,
    nonfinite,
)
from prunebench.pruners import EpochPlan


class Trainer:
    """The objects of one run (loaders, pruner, model, optimizer) and its epoch loop."""

    def __init__(
        self,
        cfg: RunConfig,
        dist: Dist,
        *,
        progress: bool = False,
        run: ResolvedRun | None = None,
    ):
        """Build loaders, model, optimizer (``progress``: a bar while FFCV caches data); ``run``:
        the config resolved once (resolve.py), whose pruner is taken over (resolved if None)."""
        self.run = run = run if run is not None else resolve(cfg, dist.device)
        self.cfg = cfg
        # distributed: one process per device; `dist` is the identity on one process.
        self.dist = dist
        self.device = device = dist.device
        self.budget = run.budget  # a time-fraction cell trains its resolved seconds
        self.train_loader, self.test_loader = build_loaders(cfg, dist, progress)
        # distributed: each rank evaluates every world_size-th test sample; sums are reduced.
        self.test_loader.set_plan(dist.eval_indices(self.test_loader.num_samples))
        self.n = self.train_loader.num_samples
        if self.n != run.n:  # the pruner was built for the resolved size
            raise RuntimeError(f"the loader has {self.n} samples, the run resolved {run.n}")
        self.pruner_epochs = run.pruner_epochs
        self.pruner = run.pruner
        self.pruner.follow_budget(self.budget.kind)  # progress-driven schedules (annealing)
        self.pruner.follow_batch_size(cfg.batch_size)  # per-step plans' candidate batches
        # Evaluate at the same sample passes (seconds under time budgets) for every pruner.
        self.eval_interval = eval_interval(self.budget, self.n, cfg.eval_points)
        model = build_model(cfg.model, self.train_loader.spec, derive_seed(cfg.seed, "model"))
        self.on_cuda = device.type == "cuda"
        self.autocast_dtype = autocast_dtype(device)
        self.memory_format = torch.channels_last if self.on_cuda else torch.contiguous_format
        self.model = model.to(device=device, memory_format=self.memory_format)
        self.parameters = [p for p in self.model.parameters() if p.requires_grad]
        self.train_model = dist.wrap(self.model)  # distributed: DDP all-reduces the gradients
        self.optimizer = torch.optim.SGD(
            self.parameters, lr=cfg.lr, momentum=cfg.momentum, weight_decay=cfg.weight_decay
        )
        self.usage = torch.zeros(self.n, dtype=torch.int64, device=device)
        self.previous_subset: torch.Tensor | None = None
        self.counters = Counters()
        self.schedule = OneCycle.from_config(cfg)
        self.alignment = alignment_monitor(cfg, self.n, self._forward)  # None: not asked

    # ------------------------------------------------------------------ one step
    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.autocast_dtype is not None:
            return torch.autocast(self.device.type, dtype=self.autocast_dtype)
        return contextlib.nullcontext()

    def _forward(self, images: torch.Tensor, module: nn.Module | None = None) -> torch.Tensor:
        """The logits as training computes them (memory format, autocast), by ``module``: the
        bare model by default; the training step passes its DDP wrapper (gradient all-reduce)."""
        images = images.contiguous(memory_format=self.memory_format)
        with self._autocast():
            return (module or self.model)(images)

    def _step(
        self,
        images: torch.Tensor,
        labels: torch.Tensor,
        weights: torch.Tensor | None,
        divisor: float,
    ) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
        """One SGD step on a batch; returns detached per-sample losses, the global grad norm and
        the detached logits.

        The loss is the (weighted) per-sample losses' sum over ``divisor``: the batch size on one
        process (the batch mean); under DDP the global batch's size / world_size, so that DDP's
        averaging of the ranks' gradients gives the gradient of the global batch's mean.
        """
        logits = self._forward(images, self.train_model)
        losses = sample_losses(logits, labels, self.cfg.label_smoothing)
        loss = (losses * weights if weights is not None else losses).sum() / divisor
        self.optimizer.zero_grad(set_to_none=True)
        loss.backward()
        grads = [p.grad for p in self.parameters if p.grad is not None]
        grad_norm = torch.nn.utils.get_total_norm(grads)
        self.optimizer.step()
        return losses.detach(), grad_norm, logits.detach()

    # ------------------------------------------------------------------ one epoch
    def train_epoch(self, show_progress: bool) -> dict[str, float]:
        """Train one epoch and evaluate when due; returns its logged entry (Diverged on a
        NaN/inf loss). The epoch is begin (plan, shard), steps, end (one host read)."""
        epoch = self._begin_epoch()
        batches = _progress_bar(self.train_loader, show_progress, f"epoch {epoch.number}")
        # Per-step pruners: the plan holds candidates; each step trains the ones kept from them.
        epoch.selected = self._per_step(batches, epoch.plan) if epoch.plan.per_step else None
        self._train_steps(epoch, epoch.selected or batches)
        metrics = self._end_epoch(epoch)
        counters = self.counters
        # distributed: every rank decides alike (the same counters, the slowest rank's clock),
        # so all ranks evaluate together: evaluate() ends in a collective.
        points = self._points_reached(counters.samples_trained, counters.train_seconds)
        last = self.budget.exhausted(
            counters.epoch, counters.samples_trained, counters.train_seconds
        )
        evaluation = epoch.evaluation
        if last or (not evaluation and points > epoch.points_done):  # always after the last
            evaluation = self._evaluate_at(counters.samples_trained, counters.train_seconds)
            evaluation.pop("_seconds")
        counters.process_cpu_seconds += time.process_time() - epoch.cpu_start  # eval included
        entry = {
            **evaluation,
            **metrics,
            "eval_seconds": counters.eval_seconds,  # this epoch's evaluation included
            "process_cpu_seconds": counters.process_cpu_seconds,
        }
        counters.history.append(entry)
        return entry

    def _begin_epoch(self) -> EpochState:
        """Plan the epoch (after any scoring pass the pruner asks for) and shard the plan."""
        counters, device = self.counters, self.device
        clock_start = time.perf_counter()  # planning is training time (selection cost counts)
        cpu_start = time.process_time()
        number = counters.epoch
        # distributed: the same on every rank (train_seconds is the slowest rank's clock).
        start = self._progress()
        scored = self._score_requested(number)  # forward-only passes the pruner asks for
        plan = self.pruner.plan_epoch(number, progress=start)
        shard = self._start_plan(plan, number)
        return EpochState(
            number=number,
            start=start,
            clock_start=clock_start,
            cpu_start=cpu_start,
            scored=scored,
            plan=plan,
            shard=shard,
            weights=shard.weights.to(device) if shard.weights is not None else None,
            observer=self.dist.observer(self.pruner, shard),  # distributed: gathers per epoch
            lr_scale=self.pruner.lr_scale(),  # e.g. KAKURENBO's 1 / (1 - hidden fraction)
            predictions=predictions_observer(self.dist, self.pruner, shard),  # None: unwanted
            points_done=self._points_reached(counters.samples_trained, counters.train_seconds),
            lr=self.cfg.lr,
            momentum=self.cfg.momentum,
            # Device accumulators; a NaN or inf loss makes the loss sum non-finite (losses >= 0).
            grad_norm_sum=torch.zeros((), dtype=torch.float64, device=device),
            grad_norm_squares=torch.zeros((), dtype=torch.float64, device=device),
        )

    def _train_steps(self, epoch: EpochState, batches) -> None:
        """The epoch's steps: schedule, one SGD step, the pruner observes (no host reads)."""
        counters, budget, shard, selected = self.counters, self.budget, epoch.shard, epoch.selected
        self.model.train()
        for images, labels, batch_indices in batches:
            size = batch_indices.numel()
            seconds = counters.train_seconds + time.perf_counter() - epoch.clock_start
            if budget.kind == "time":
                # distributed: the slowest rank's clock, so all ranks follow one LR and stop
                # at the same step (a host collective per step, only under time budgets).
                seconds = self.dist.max(seconds)
                if epoch.steps and seconds >= budget.amount:
                    break  # host clock: no device sync inside the epoch (see budgets.py)
            consumed = selected.scored if selected is not None else epoch.trained
            done = counters.samples_trained + epoch.trained
            if (
                epoch.steps
                and not epoch.evaluation
                and self._points_reached(done, seconds) > epoch.points_done
            ):
                # An evaluation point inside the epoch: evaluate at this step boundary, off
                # the training clock (distributed: all ranks decide alike, as at epoch end).
                epoch.evaluation = self._evaluate_at(done, seconds)
                epoch.clock_start += epoch.evaluation.pop("_seconds")
            progress = budget.progress(
                epoch.number, consumed / epoch.plan.num_samples, done, seconds
            )
            epoch.lr = epoch.lr_scale * self.schedule.lr(progress)
            epoch.momentum = self.schedule.momentum_at(progress)
            for group in self.optimizer.param_groups:
                group["lr"], group["momentum"] = epoch.lr, epoch.momentum
            local = epoch.local
            weights = epoch.weights[local : local + size] if epoch.weights is not None else None
            divisor = size if selected is not None else shard.loss_divisor(epoch.steps)
            losses, grad_norm, logits = self._step(images, labels, weights, divisor)
            epoch.observer.add(batch_indices, losses, local)  # the pruner observes the losses
            if epoch.predictions is not None:
                statistic = self.pruner.prediction_statistic(logits, labels)
                epoch.predictions.add(batch_indices, statistic, local)
            epoch.grad_norm_sum += grad_norm
            epoch.grad_norm_squares += grad_norm.double().square()
            epoch.local += size
            epoch.steps += 1
            epoch.trained = (
                epoch.trained + size if selected is not None else shard.trained_after(epoch.steps)
            )

    def _end_epoch(self, epoch: EpochState) -> dict[str, float]:
        """Flush the observations, stop the clock, read the device accumulators once, check
        for divergence and count; returns the epoch's training metrics."""
        counters, device, plan, trained = self.counters, self.device, epoch.plan, epoch.trained
        loss_sum = epoch.observer.flush()  # distributed: the pruner observes every rank's here
        if epoch.predictions is not None:
            epoch.predictions.flush()
        scored = epoch.scored
        if epoch.selected is not None:
            trained_indices, consumed = epoch.selected.trained_indices(), epoch.selected.scored
            scored += consumed
        else:
            trained_indices, consumed = epoch.shard.plan[:trained], trained
        self.usage.index_add_(
            0, trained_indices.to(device), torch.ones(trained, dtype=torch.int64, device=device)
        )
        overlap = self._subset_overlap(plan.indices if epoch.selected is None else trained_indices)
        if self.on_cuda:
            torch.cuda.synchronize(device)
        # distributed: the slowest rank's clock, so every rank sees the same budget left.
        counters.train_seconds += self.dist.max(time.perf_counter() - epoch.clock_start)
        self.dist.check_in_sync(self.pruner, epoch.number)  # distributed: same pruner state

        # The one host read of the epoch's device accumulators.
        loss_total, grad_norm_total, grad_norm_square_total = torch.stack(
            [loss_sum, epoch.grad_norm_sum, epoch.grad_norm_squares]
        ).tolist()
        if not math.isfinite(loss_total):
            raise Diverged(f"training loss became {nonfinite(loss_total)} at epoch {epoch.number}")
        if not math.isfinite(grad_norm_total):
            raise Diverged(
                f"gradient norm became {nonfinite(grad_norm_total)} at epoch {epoch.number}"
            )

        counters.epoch += 1
        counters.epochs_run += consumed / plan.num_samples
        counters.samples_trained += trained
        counters.scoring_forward_passes += plan.scoring_forward_passes + scored
        alignment = epoch_alignment(  # distributed: every rank measures (diagnostics.py)
            self.alignment, self.model, self.train_loader, epoch, self._progress(), counters, device
        )
        metrics = {
            "train_loss": loss_total / trained,
            "lr": epoch.lr,
            "momentum": epoch.momentum,
            "kept_fraction": plan.kept_fraction if epoch.selected is None else trained / self.n,
            "train_seconds": counters.train_seconds,
            "samples_trained": float(counters.samples_trained),
            "scoring_forward_passes": float(counters.scoring_forward_passes),
            "train_steps": float(epoch.steps),
        }
        metrics["grad_norm"], metrics["grad_norm_std"] = mean_and_std(
            grad_norm_total, grad_norm_square_total, epoch.steps
        )
        metrics.update(alignment)
        if overlap is not None:
            metrics["subset_jaccard"] = float(overlap)
        return metrics

    def _progress(self) -> float:
        """Budget progress at the end of the epochs completed so far."""
        counters = self.counters
        return self.budget.progress(
            counters.epoch, 0.0, counters.samples_trained, counters.train_seconds
        )

    def _points_reached(self, samples: int, seconds: float) -> int:
        return eval_points_reached(self.budget, self.eval_interval, samples, seconds)

    def _evaluate_at(self, samples: int, seconds: float) -> dict[str, float]:
        """Evaluate now, after ``samples`` passes and ``seconds`` of training: the epoch's
        evaluation metrics, plus "_seconds" (the evaluation's duration, for the caller's clock)."""
        accuracy, test_loss, eval_seconds = self.evaluate()
        self.counters.eval_seconds += eval_seconds
        return {
            "test_accuracy": accuracy,
            "test_loss": test_loss,
            "eval_samples_trained": float(samples),
            "eval_train_seconds": float(seconds),
            "_seconds": eval_seconds,
        }

    def _subset_overlap(self, trained: torch.Tensor) -> torch.Tensor | None:
        """Jaccard similarity of this epoch's subset with the previous one's (None at first)."""
        current = subset_mask(trained.to(self.device), self.n)
        previous, self.previous_subset = self.previous_subset, current
        return jaccard(previous, current) if previous is not None else None

    def _forward_only(
        self, images: torch.Tensor, labels: torch.Tensor
    ) -> tuple[torch.Tensor, torch.Tensor]:
        """Per-sample losses and logits of a forward-only pass at the current weights (eval
        mode: no BatchNorm statistics move; no gradients)."""
        self.model.eval()
        with torch.no_grad():
            logits = self._forward(images)
            losses = sample_losses(logits, labels, self.cfg.label_smoothing)
        self.model.train()
        return losses, logits

    def _score_requested(self, epoch: int) -> int:
        """The forward-only pass the pruner requests before planning ``epoch``
        (forward_passes.py); returns the passes made over all ranks."""
        request = self.pruner.scoring_request(epoch)
        if request is None or request.numel() == 0:
            return 0
        return score_samples(
            request,
            epoch,
            self.train_loader,
            self.dist,
            self.pruner,
            self._forward_only,
            self.cfg.batch_size,
        )

    def _per_step(self, candidates, plan: EpochPlan) -> SelectedBatches:
        """Training batches chosen step by step from the scored candidates of the plan."""
        limit = None
        if self.budget.kind == "samples":
            limit = int(self.budget.amount) - self.counters.samples_trained
        batch_size = plan.step_batch_size or self.cfg.batch_size
        score = lambda images, labels: self._forward_only(images, labels)[0]  # noqa: E731
        return SelectedBatches(candidates, score, self.pruner, batch_size, limit)

    def _start_plan(self, plan: EpochPlan, epoch: int) -> Shard:
        """Hand this rank's part of the epoch's plan (cut to a samples budget) to the loader."""
        indices, weights = plan.indices, plan.weights
        if self.budget.kind == "samples" and not plan.per_step:  # per step: SelectedBatches
            # Cut the last plan so that the run trains exactly the budgeted number of samples.
            left = int(self.budget.amount) - self.counters.samples_trained
            indices = indices[:left]
            weights = weights[:left] if weights is not None else None
        shard = self.dist.shard(indices, weights, self.cfg.batch_size)
        self.train_loader.set_plan(shard.indices, epoch)
        return shard

    def evaluate(self) -> tuple[float, float, float]:
        """Test accuracy, mean test loss and the seconds evaluation took (synchronized)."""
        start = time.perf_counter()
        # distributed: every rank evaluates rank 0's BatchNorm statistics (the checkpointed ones).
        self.dist.sync_buffers(self.model)
        self.model.eval()
        correct = torch.zeros((), dtype=torch.int64, device=self.device)
        loss_sum = torch.zeros((), dtype=torch.float64, device=self.device)
        count = 0
        with torch.inference_mode():
            for images, labels, _ in self.test_loader:  # distributed: this rank's test samples
                logits = self._forward(images)
                loss_sum += F.cross_entropy(logits.float(), labels, reduction="sum")
                correct += (logits.argmax(dim=1) == labels).sum()
                count += labels.numel()
        self.model.train()
        sums = torch.stack([correct.double(), loss_sum, loss_sum.new_tensor(count)])
        correct_total, loss_total, count_total = self.dist.sum(sums).tolist()  # over ranks
        return correct_total / count_total, loss_total / count_total, time.perf_counter() - start

    def summary(self) -> dict[str, float]:
        """Summary metrics of the epochs run so far."""
        return summarize(
            self.counters.history,
            self.usage,
            self.n,
            self.counters.epochs_run,
            self.cfg.accuracy_targets,
            self.dist.world_size,  # device-hours count every process's device
        )

    # ------------------------------------------------------------------ state
    def state_dict(self) -> dict[str, Any]:
        """Everything needed to continue bit for bit (the loader's randomness is f(seed, epoch))."""
        return {
            "model": self.model.state_dict(),
            "optimizer": self.optimizer.state_dict(),
            "pruner": self.pruner.state_dict(),
            "usage": self.usage,
            "previous_subset": self.previous_subset,
            "counters": asdict(self.counters),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore a :meth:`state_dict`."""
        self.model.load_state_dict(state["model"])
        self.optimizer.load_state_dict(state["optimizer"])
        self.pruner.load_state_dict(state["pruner"])
        self.usage = state["usage"].to(self.device)
        previous = state["previous_subset"]
        self.previous_subset = previous.to(self.device) if previous is not None else None
        self.counters = Counters(**state["counters"])


def _progress_bar(iterable, enabled: bool, description: str):
    if not enabled:
        return iterable  # not even a disabled tqdm inside the epoch loop
    return tqdm(iterable, desc=description, leave=False, dynamic_ncols=True)
