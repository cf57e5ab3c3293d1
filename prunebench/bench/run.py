"""The lifecycle of one training run: validate, track in MLflow, checkpoint, resume, progress.

The loop itself (one step, one epoch, evaluation) is ``trainer.py``; this module wraps it: each
epoch is logged and checkpointed, so a run resumes per epoch in the same MLflow run.

A run with ``nproc`` N > 1 is N processes (``distributed.py``, ``launch.py``): started here by
torch's elastic launcher, or by torchrun (several machines), each joining the process group. Every
rank runs the read-only checks and the loop; rank 0 alone writes MLflow and the checkpoint, and
tells the others its run id. The config is resolved once per process (``resolve.py``) and that
resolved run is what the trainer, the checkpoint and the MLflow params read.
"""

from __future__ import annotations

import contextlib
import json
import logging
import os
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from tqdm.auto import tqdm

from prunebench import interrupts, mlflow_store, record
from prunebench.bench.checkpoint import (
    check_checkpoint_dir,
    checkpoint_path,
    load_checkpoint,
    save_checkpoint,
)
from prunebench.bench.config import RunConfig
from prunebench.bench.datasets_record import log_data_inputs
from prunebench.bench.devices import check_device
from prunebench.bench.distributed import Dist, RanksOutOfSync
from prunebench.bench.launch import in_process_group, launch, process_group
from prunebench.bench.metrics import save_usage_histogram
from prunebench.bench.resolve import ResolvedRun, resolve
from prunebench.bench.run_params import config_params, run_tags, trainer_params
from prunebench.bench.system_metrics import system_metrics
from prunebench.bench.tracking import (
    RunTracker,
    SilentTracker,
    end_orphaned_runs,
    finish_quietly,
    log_traceback,
)
from prunebench.bench.trainer import Diverged, Trainer
from prunebench.datasets import locate_dataset
from prunebench.errors import ConfigError, UsageError
from prunebench.stores import store_fingerprint

__all__ = ["RunResult", "run_tags", "train_run"]

log = logging.getLogger(__name__)


@dataclass
class RunResult:
    """What :func:`train_run` returns: the MLflow run, its status and summary metrics."""

    run_id: str | None
    status: str
    """FINISHED, FAILED, or RUNNING (stopped early by ``stop_after_epochs``; resumable)."""
    failure_reason: str | None
    metrics: dict[str, float]
    history: list[dict[str, float]]
    config_hash: str
    checkpoint_path: Path


def _log_artifacts(tracker: RunTracker, trainer: Trainer) -> None:
    with tempfile.TemporaryDirectory(prefix="prunebench-") as folder:
        directory = Path(folder)
        counts = trainer.usage.cpu().numpy().astype(np.int64)
        np.savez_compressed(directory / record.ARTIFACT_USAGE, counts=counts)
        save_usage_histogram(
            counts, directory / record.ARTIFACT_USAGE_HISTOGRAM, trainer.run.run_name
        )
        torch.save(trainer.pruner.state_dict(), directory / record.ARTIFACT_SCORES)
        names = (record.ARTIFACT_USAGE, record.ARTIFACT_USAGE_HISTOGRAM, record.ARTIFACT_SCORES)
        for name in names:
            tracker.log_artifact(directory / name)


def _loaders(trainer: Trainer) -> dict[str, Any]:
    return {"train": trainer.train_loader, "test": trainer.test_loader}


def _log_config(tracker: RunTracker, run: ResolvedRun) -> None:
    with tempfile.TemporaryDirectory(prefix="prunebench-") as folder:
        path = Path(folder) / record.ARTIFACT_CONFIG
        path.write_text(json.dumps(run.plain, indent=2, sort_keys=True, default=str))
        tracker.log_artifact(path)


def train_run(
    cfg: RunConfig,
    tracking_uri: str = record.DEFAULT_TRACKING_URI,
    experiment: str = record.DEFAULT_EXPERIMENT,
    checkpoint_dir: str | Path = record.DEFAULT_CHECKPOINT_DIR,
    resume: bool = False,
    tags: dict[str, str] | None = None,
    quiet: bool = True,
    stop_after_epochs: int | None = None,
    system_metrics_s: float | None = None,
) -> RunResult:
    """Train one run to its budget, tracked in MLflow and checkpointed every epoch.

    Everything a user can get wrong (config, data missing, tracking store, checkpoint directory)
    is checked before anything is written; a failure after that (data that cannot be read, a
    crash in training) is recorded as the run's FAILED status, reason and ``traceback.txt``.
    With ``resume`` and a checkpoint of the same config, the run continues in the same MLflow
    run. ``stop_after_epochs`` ends this call after that many epochs, leaving the run RUNNING
    and resumable, as an interrupted process would. ``system_metrics_s`` samples MLflow's system
    metrics (CPU, memory, GPU) at that interval, from rank 0.

    With ``cfg.nproc`` N > 1 the run is N processes: called in a plain process, this starts them
    (one device each) and returns rank 0's result; called in a process of a torchrun job or an
    initialized process group of N processes, this process trains its share.
    """
    options = {
        "tracking_uri": tracking_uri,
        "experiment": experiment,
        "checkpoint_dir": checkpoint_dir,
        "resume": resume,
        "tags": tags,
        "quiet": quiet,
        "stop_after_epochs": stop_after_epochs,
        "system_metrics_s": system_metrics_s,
    }
    if cfg.nproc > 1 and not in_process_group():
        resolve(cfg)  # validated here: a user error stops before any process starts
        level = logging.getLogger("prunebench").getEffectiveLevel()
        return launch(cfg.nproc, _launched_run, cfg, options, level)[0]
    check_device(cfg.device)  # the process group below needs a device it can name
    # distributed: joins torchrun's process group when WORLD_SIZE > 1, else one process.
    with process_group(cfg.device) as dist:
        # Validated, and every derived value computed, once: shared by all that follows.
        run = resolve(cfg, dist.device)
        if dist.world_size != cfg.nproc:
            raise ConfigError(
                f"this process is one of {dist.world_size} but the run asks for nproc "
                f"{cfg.nproc}; pass --nproc {dist.world_size} (or leave it out under torchrun)"
            )
        result = _train_run(run, dist, **options)
        # distributed: no rank returns before rank 0 has written the run's checkpoint, so a
        # resume in the same processes (a caller's own process group) finds it on every rank.
        dist.barrier()
        return result


def _launched_run(cfg: RunConfig, options: dict[str, Any], level: int) -> RunResult:
    """One process of a run started by :func:`train_run`: rank 0 logs as its parent did."""
    logger = logging.getLogger("prunebench")
    if not logger.handlers:  # a spawned process starts without its parent's handlers
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
    rank = int(os.environ.get("RANK", "0"))
    logger.setLevel(level if rank == 0 else logging.WARNING)  # one process reports
    return train_run(cfg, **options)


def _train_run(
    run: ResolvedRun,
    dist: Dist,
    tracking_uri: str,
    experiment: str,
    checkpoint_dir: str | Path,
    resume: bool,
    tags: dict[str, str] | None,
    quiet: bool,
    stop_after_epochs: int | None,
    system_metrics_s: float | None,
) -> RunResult:
    cfg, device = run.cfg, dist.device
    # Pinned before the loaders exist: FFCV's decoding threads follow torch's count.
    torch.set_num_threads(run.threads)
    quiet = quiet or not dist.is_main  # one progress bar
    # Every rank runs the read-only checks, so a user error stops all of them alike.
    tracking_uri = mlflow_store.resolve_tracking_uri(tracking_uri)
    mlflow_store.check_tracking_uri(tracking_uri)
    check_checkpoint_dir(checkpoint_dir)
    config_hash = run.config_hash  # includes nproc: no other process count shares the path
    path = checkpoint_path(checkpoint_dir, config_hash)
    checkpoint = load_checkpoint(path, device) if resume and path.is_file() else None
    if checkpoint is not None and checkpoint.get("config_hash") != config_hash:
        raise UsageError(f"checkpoint {path} belongs to another config; delete it to start over")
    if checkpoint is not None and checkpoint["origin"] != _origin(tracking_uri, experiment):
        # The same config logged elsewhere: its checkpoint is not this run's to continue.
        log.info("checkpoint %s was logged to another store or experiment; new run", path)
        checkpoint = None
    # distributed: every rank read the same checkpoint (a shared --checkpoint-dir), or none.
    epoch_found = -1 if checkpoint is None else checkpoint["trainer"]["counters"]["epoch"]
    dist.check_same([float(epoch_found)], "the checkpoint to resume")
    show_progress = not quiet and sys.stderr.isatty()
    if checkpoint is not None and checkpoint["finished"]:
        log.info("run %s already finished; nothing to resume", checkpoint["run_id"])
        trainer = Trainer(cfg, dist, progress=show_progress, run=run)
        trainer.load_state_dict(checkpoint["trainer"])
        return _result(trainer, checkpoint["run_id"], "FINISHED", None, path)
    # Missing data is the user's to fix before anything is written; data that is present but
    # unreadable, like any later failure, fails the run below (recorded, with its traceback).
    locate_dataset(cfg.dataset, cfg.data_dir)

    # The run exists before its loaders and model are built, so a failure there is recorded too.
    if not dist.is_main:  # distributed: only rank 0 writes; the others learn its run id
        tracker = SilentTracker(tracking_uri, experiment, dist.broadcast(None))
    elif checkpoint is not None:
        tracker = RunTracker.attach(tracking_uri, experiment, checkpoint["run_id"])
        dist.broadcast(tracker.run_id)
    else:
        tracker = RunTracker.start(tracking_uri, experiment, run.run_name, run_tags(run, tags))
        dist.broadcast(tracker.run_id)
    try:
        interrupts.point("run-started")
        if dist.is_main:  # a run of this config whose process died unrecorded: KILLED now
            for run_id in end_orphaned_runs(tracker, config_hash):
                log.info("run %s of this config: KILLED, its process had ended", run_id)
        if checkpoint is None:
            tracker.log_params(config_params(run, device))
            _log_config(tracker, run)
        trainer = Trainer(cfg, dist, progress=show_progress, run=run)
        if checkpoint is not None:
            trainer.load_state_dict(checkpoint["trainer"])
            log.info("resuming run %s at epoch %d", tracker.run_id, trainer.counters.epoch)
            # Epochs checkpointed but not logged (the process died between the two): logged now.
            tracker.log_history(trainer.counters.history)
        else:
            tracker.log_params(trainer_params(trainer))
            if dist.is_main:
                log_data_inputs(tracker.client, tracker.run_id, _loaders(trainer))
        sampling_s = system_metrics_s if dist.is_main else None  # rank 0 samples its machine
        # Once training is complete, closing the record is shielded from signals until the
        # sampler has stopped too: a signal then ends the command after a FINISHED record.
        sampler = system_metrics(tracking_uri, tracker.run_id, sampling_s, checkpoint is not None)
        with contextlib.ExitStack() as closing, sampler:
            return _train(trainer, tracker, path, show_progress, stop_after_epochs, closing)
    except KeyboardInterrupt as error:
        interrupts.acknowledge()  # a second signal from here on is noted, not raised
        reason = f"interrupted by {interrupts.signal_name(interrupts.exit_code(error))}"
        finish_quietly(tracker, "KILLED", reason)
        raise
    except BaseException as error:
        log_traceback(tracker)
        finish_quietly(tracker, "FAILED", f"{type(error).__name__}: {error}")
        raise


def _train(
    trainer: Trainer,
    tracker: RunTracker,
    path: Path,
    show_progress: bool,
    stop_after_epochs: int | None,
    closing: contextlib.ExitStack,
) -> RunResult:
    counters, budget = trainer.counters, trainer.budget
    epochs_this_call = 0
    with _budget_bar(trainer, show_progress) as bar:
        while not budget.exhausted(
            counters.epoch, counters.samples_trained, counters.train_seconds
        ):
            interrupts.check()  # a signal Python discarded (e.g. during gc) stops here
            before = _budget_used(trainer)
            try:
                entry = trainer.train_epoch(show_progress)
            except (Diverged, RanksOutOfSync) as diverged:
                reason = str(diverged)
                closing.enter_context(interrupts.shielded())
                log.info("run %s failed: %s", tracker.run_id, reason)
                _log_final(tracker, trainer)
                tracker.finish("FAILED", reason)
                return _result(trainer, tracker.run_id, "FAILED", reason, path)
            epoch = counters.epoch - 1
            # Checkpoint first, then log: a failed save leaves epoch `epoch` unlogged, so the
            # resumed run (which retrains it) logs it exactly once.
            _save_checkpoint(path, trainer, tracker, finished=False)
            tracker.log_epoch(entry, epoch)
            _report_epoch(bar, entry, epoch, _budget_used(trainer) - before)
            interrupts.point("epoch-end")
            epochs_this_call += 1
            stopping = stop_after_epochs is not None and epochs_this_call >= stop_after_epochs
            if stopping and not budget.exhausted(
                counters.epoch, counters.samples_trained, counters.train_seconds
            ):
                return _result(trainer, tracker.run_id, "RUNNING", None, path)
    interrupts.check()
    closing.enter_context(interrupts.shielded())  # training is complete: the record closes whole
    interrupts.point("training-done")
    _log_final(tracker, trainer)
    tracker.finish("FINISHED")
    _save_checkpoint(path, trainer, tracker, finished=True)
    return _result(trainer, tracker.run_id, "FINISHED", None, path)


def _budget_used(trainer: Trainer) -> float:
    counters, kind = trainer.counters, trainer.budget.kind
    if kind == "epochs":
        return counters.epoch
    return counters.samples_trained if kind == "samples" else counters.train_seconds


def _budget_bar(trainer: Trainer, enabled: bool) -> tqdm:
    """A bar over the budget in its own unit (a no-op object when disabled)."""
    budget = trainer.budget
    return tqdm(
        total=budget.amount,
        initial=_budget_used(trainer),
        unit={"epochs": "epoch", "samples": "sample", "time": "s"}[budget.kind],
        desc=trainer.run.run_name,
        dynamic_ncols=True,
        disable=not enabled,
    )


def _report_epoch(bar: tqdm, entry: dict[str, float], epoch: int, used: float) -> None:
    accuracy = f"{entry['test_accuracy']:.4f}" if "test_accuracy" in entry else "-"
    if not bar.disable:
        bar.update(min(used, bar.total - bar.n))
        if "test_accuracy" in entry:  # the last evaluation's accuracy stays shown until the next
            bar.set_postfix(acc=accuracy, refresh=False)
        return
    log.info(
        "epoch %d: test_accuracy=%s train_loss=%.4f kept=%.3f train_seconds=%.1f",
        epoch,
        accuracy,
        entry["train_loss"],
        entry["kept_fraction"],
        entry["train_seconds"],
    )


def _log_final(tracker: RunTracker, trainer: Trainer) -> None:
    if not trainer.dist.is_main:
        return  # distributed: rank 0 writes the summary and artifacts
    summary = trainer.summary()
    target = trainer.pruner.target_realized_ratio
    if target is not None and record.METRIC_REALIZED_RATIO in summary:
        summary[record.METRIC_RATIO_SHORTFALL] = summary[record.METRIC_REALIZED_RATIO] - target
    pruner_summary = trainer.pruner.run_summary.items()
    summary.update({f"{record.METRIC_PRUNER_PREFIX}{k}": v for k, v in pruner_summary})
    if summary:
        tracker.log_metrics(record.check_summary_metrics(summary))
    _log_artifacts(tracker, trainer)


def _save_checkpoint(path: Path, trainer: Trainer, tracker: RunTracker, finished: bool) -> None:
    if trainer.dist.is_main:  # distributed: one file, written by rank 0
        save_checkpoint(path, _checkpoint(trainer, tracker, finished))


def _origin(tracking_uri: str, experiment: str) -> list[str]:
    """Where a checkpoint's run is logged: the store fingerprint (never its URL), experiment."""
    return [store_fingerprint(tracking_uri), experiment]


def _checkpoint(trainer: Trainer, tracker: RunTracker, finished: bool) -> dict[str, Any]:
    return {
        "config": trainer.run.plain,
        "config_hash": trainer.run.config_hash,
        "origin": _origin(tracker.tracking_uri, tracker.experiment),
        "run_id": tracker.run_id,
        "finished": finished,
        "trainer": trainer.state_dict(),
    }


def _result(
    trainer: Trainer, run_id: str, status: str, reason: str | None, path: Path
) -> RunResult:
    return RunResult(
        run_id=run_id,
        status=status,
        failure_reason=reason,
        metrics=trainer.summary(),
        history=list(trainer.counters.history),
        config_hash=trainer.run.config_hash,
        checkpoint_path=path,
    )
