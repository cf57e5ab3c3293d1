"""Run a suite preset: every cell exactly once, across any number of workers and machines.

MLflow is the record of what is done (a FINISHED run with the cell's config hash); the Optuna
work queue (``workqueue``) decides who runs what. Finished cells are skipped, interrupted ones
resume from their checkpoints, failed ones are recorded and the suite carries on; running the
suite again retries them.

Cells with a symbolic budget are a second phase: an equal-time cell's ``time-fraction`` budget
is resolved to seconds from the finished full-data main runs of the same dataset and model, and
a same-compute cell's ``same-compute:p`` budget (under a time budget) to the mean sample passes
of the finished pruned main runs at target ratio p; a worker claims one only when none of those
runs is waiting or running in the queue; a worker left with nothing else waits (one log line)
until they end.

A cell's ``nproc`` N makes it one run on N processes, one device each: the worker that claims the
cell starts them (``train_run``). Local workers on GPUs get disjoint slices of the visible GPUs
through CUDA_VISIBLE_DEVICES (worker i: GPUs i*N .. i*N+N-1, N the largest nproc of the preset's
cells), so two cells never share a device; on a cluster, each worker is one job step given N GPUs
by the scheduler.
"""

from __future__ import annotations

import contextlib
import dataclasses
import logging
import multiprocessing
import os
import sys
import time
import zipfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

from prunebench import interrupts, mlflow_store, record
from prunebench.bench.budgets import TIME_FRACTION
from prunebench.bench.checkpoint import checkpoint_path
from prunebench.bench.config import RunConfig
from prunebench.bench.plugins import load_inherited_plugins
from prunebench.bench.system_metrics import SUITE_SYSTEM_METRICS_INTERVAL_S
from prunebench.errors import ConfigError
from prunebench.stores import store_exists
from prunebench.suite.cell_records import (
    ORPHAN_REASON,
    end_orphaned_runs,
    recorded_runs,
    resolve_cell,
)
from prunebench.suite.preset_cells import Preset
from prunebench.suite.presets import load_preset
from prunebench.suite.stopping import logger_levels, sigint_ignored, stop_workers
from prunebench.suite.workqueue import GRACE_SECONDS, CellQueue, Held, held_cells, open_storage

log = logging.getLogger(__name__)

DEFAULT_STORAGE = "sqlite:///optuna.db"
WAIT_POLL_SECONDS = 2.0
"""How often a worker left with only equal-time cells looks again at the runs they wait for."""
WAITS_FOR_FULL_DATA = "waits for full data"
WAITS_FOR_PRUNED = "waits for the pruned runs it matches"


@dataclass(frozen=True)
class CellState:
    """What the suite knows of one cell before running it."""

    config: RunConfig
    action: str  # "done", "resume", "run", "retry", "held" (by another worker), "blocked"
    reason: str | None = None


def queue_name(preset: Preset) -> str:
    """The work queue (Optuna root study) of a preset's suite; a new grid gets a new queue."""
    return f"prunebench-suite/{preset.name}/{preset.digest()}"


def held_by_workers(
    preset: Preset, storage_url: str, grace_seconds: int = GRACE_SECONDS
) -> dict[str, Held]:
    """The preset's cells other workers hold now (config hash -> heartbeat); creates nothing."""
    if not store_exists(storage_url):
        return {}
    return held_cells(open_storage(storage_url, grace_seconds=grace_seconds), queue_name(preset))


def _held_reason(held: Held) -> str:
    return (
        f"last heartbeat {held.heartbeat_age:.0f} s ago; if that worker has stopped, the cell "
        f"is requeued in about {max(1, round(held.lapses_in))} s: rerun then"
    )


def _unreadable_checkpoint(checkpoint_dir: str | Path, cfg: RunConfig) -> str | None:
    """Why the cell's checkpoint cannot be resumed (cut short: not a whole zip archive, as
    torch writes them), or None (no checkpoint, or a whole one)."""
    path = checkpoint_path(checkpoint_dir, cfg.config_hash())
    if not path.is_file() or zipfile.is_zipfile(path):
        return None
    return f"checkpoint {path} is unreadable (cut short); delete it to run the cell over"


def plan(
    preset: Preset,
    tracking_uri: str,
    checkpoint_dir: str | Path,
    held: dict[str, Held] | None = None,
) -> list[CellState]:
    """Each cell with what running the suite now would do to it (equal-time cells resolved
    when their full-data runs are finished, else marked as waiting for them; ``held``: cells
    other workers hold, see :func:`held_by_workers`)."""
    held = held or {}
    exists = store_exists(tracking_uri)
    records = recorded_runs(tracking_uri, preset.name) if exists else {}
    states = []
    for cfg in preset.cells():
        status, reason = records.get(cfg.config_hash(), (None, None))
        if status != "FINISHED" and cfg.budget.is_symbolic:
            resolved = resolve_cell(preset, cfg, tracking_uri) if exists else None
            if resolved is None:
                reason = (
                    WAITS_FOR_FULL_DATA if cfg.budget.kind == TIME_FRACTION else WAITS_FOR_PRUNED
                )
            else:
                cfg = resolved
                reason = reason or _resolved_text(resolved)
        if status == "FINISHED":
            states.append(CellState(cfg, "done"))
        elif cfg.config_hash() in held:
            states.append(CellState(cfg, "held", _held_reason(held[cfg.config_hash()])))
        elif (unreadable := _unreadable_checkpoint(checkpoint_dir, cfg)) is not None:
            states.append(CellState(cfg, "blocked", unreadable))
        elif status == "FAILED":  # retried from its last checkpoint, if it has one
            states.append(CellState(cfg, "retry", reason))
        elif checkpoint_path(checkpoint_dir, cfg.config_hash()).is_file():
            states.append(CellState(cfg, "resume", reason))
        else:
            states.append(CellState(cfg, "run", reason))
    return states


def _resolved_text(cfg: RunConfig) -> str:
    budget = cfg.training_budget()
    return f"time:{budget.amount:.3g}s" if budget.kind == "time" else str(budget)


def run_worker(
    preset: Preset,
    tracking_uri: str,
    storage_url: str,
    checkpoint_dir: str | Path,
    quiet: bool = True,
    system_metrics_s: float | None = SUITE_SYSTEM_METRICS_INTERVAL_S,
    grace_seconds: int = GRACE_SECONDS,
    states: list[CellState] | None = None,
) -> list[tuple[str, str]]:
    """Claim and run cells until the queue is drained; returns (config hash, status) run here.

    ``states``: the plan the caller already made of this preset (None: plan here)."""
    from prunebench.bench.run import train_run

    by_hash = {cfg.config_hash(): cfg for cfg in preset.cells()}
    states = plan(preset, tracking_uri, checkpoint_dir) if states is None else states
    pending = [s.config.config_hash() for s in states if s.action != "done"]
    root = queue_name(preset)
    queue = CellQueue.open(open_storage(storage_url, grace_seconds=grace_seconds), root, pending)
    references = {
        key: {ref.config_hash() for ref in preset.reference_cells(cfg)}
        for key, cfg in by_hash.items()
        if cfg.budget.is_symbolic
    }

    def ready(cell: str, unfinished: set[str]) -> bool:
        # A symbolic-budget cell waits until no run it is resolved from may still finish.
        return not references.get(cell, set()) & unfinished

    done: list[tuple[str, str]] = []
    waiting = False
    while queue is not None:
        interrupts.check()  # a signal noted while a cell's record closed: claim nothing more
        claim = queue.claim(ready)
        if claim is None:
            if not queue.has_waiting():
                break
            if not waiting:
                log.info(
                    "worker %d: second-phase cells wait for main runs of other workers",
                    os.getpid(),
                )
            waiting = True
            time.sleep(WAIT_POLL_SECONDS)
            continue
        waiting = False
        cfg = by_hash[claim.cell]
        with queue.hold(claim):
            if recorded_runs(tracking_uri, preset.name).get(claim.cell, ("",))[0] == "FINISHED":
                queue.finish(claim, "FINISHED")  # finished by an earlier generation meanwhile
                continue
            resolved = resolve_cell(preset, cfg, tracking_uri)
            if resolved is None:  # every run it is resolved from failed
                reason = "no finished main run to take its budget from"
                print(failed_cell_line(cfg, reason), file=sys.stderr, flush=True)
                queue.finish(claim, "FAILED")
                done.append((claim.cell, f"FAILED ({reason})"))
                continue
            cfg = resolved
            for run_id in end_orphaned_runs(tracking_uri, preset.name, claim.cell):
                log.info("run %s of cell %s: KILLED, %s", run_id, cfg.cell(), ORPHAN_REASON)
            if cfg.budget.is_symbolic:
                log.info(
                    "worker %d: %s seed %d: %s = %s",
                    os.getpid(), cfg.cell(), cfg.seed, cfg.budget, cfg.training_budget(),
                )  # fmt: skip
            log.info("worker %d: %s seed %d", os.getpid(), cfg.cell(), cfg.seed)
            try:
                result = train_run(
                    cfg,
                    tracking_uri=tracking_uri,
                    experiment=preset.name,
                    checkpoint_dir=checkpoint_dir,
                    resume=True,
                    tags={
                        record.TAG_PRESET: preset.name,
                        record.TAG_SUITE: root,  # one suite generation, to group by in the UI
                        record.TAG_EXPECTED_SEEDS: str(len(preset.seeds)),
                    },
                    quiet=quiet,
                    system_metrics_s=system_metrics_s,
                )
                status = result.status
                reason = result.failure_reason
            except Exception as error:  # a broken cell must not stop the suite: record it
                log.debug("cell %s seed %d crashed", cfg.cell(), cfg.seed, exc_info=True)
                reason = f"{type(error).__name__}: {error}"
                status = f"FAILED ({reason})"
            if status != "FINISHED":  # one line per failed cell; the traceback is in its run
                print(failed_cell_line(cfg, reason), file=sys.stderr, flush=True)
            queue.finish(claim, "FINISHED" if status == "FINISHED" else "FAILED")
            done.append((claim.cell, status))
    return done


def visible_gpus() -> list[str]:
    """The GPUs this process may use, as CUDA_VISIBLE_DEVICES entries (ids or UUIDs)."""
    text = os.environ.get("CUDA_VISIBLE_DEVICES")
    if text is not None:
        return [entry.strip() for entry in text.split(",") if entry.strip()]
    import torch

    return [str(index) for index in range(torch.cuda.device_count())]


def device_slices(workers: int, nproc: int, gpus: list[str]) -> list[str | None]:
    """Each local worker's CUDA_VISIBLE_DEVICES: its own ``nproc`` of ``gpus`` (None: no GPUs).

    Worker i gets gpus[i*nproc : (i+1)*nproc]. One-process cells on more workers than GPUs share
    them round-robin (as several small runs can); multi-process cells need their own devices.
    """
    if not gpus:
        return [None] * workers
    if nproc == 1 and workers > len(gpus):
        return [gpus[i % len(gpus)] for i in range(workers)]
    if workers * nproc > len(gpus):
        raise ConfigError(
            f"{workers} workers running {nproc}-process cells need {workers * nproc} GPUs but "
            f"{len(gpus)} are visible; pass --workers {max(1, len(gpus) // nproc)}"
            + ("" if nproc <= len(gpus) else " on a machine with more GPUs")
        )
    return [",".join(gpus[i * nproc : (i + 1) * nproc]) for i in range(workers)]


def _uses_gpus(preset: Preset) -> bool:
    device = preset.run_settings.get("device") or "auto"
    return device != "cpu"


@contextlib.contextmanager
def _environment(updates: dict[str, str]) -> Iterator[None]:
    """``os.environ`` with ``updates`` while a spawned process starts (it copies it)."""
    saved = {key: os.environ.get(key) for key in updates}
    os.environ.update(updates)
    try:
        yield
    finally:
        for key, value in saved.items():
            if value is None:
                os.environ.pop(key, None)
            else:
                os.environ[key] = value


def failed_cell_line(cfg: RunConfig, reason: str | None) -> str:
    """The one terminal line of a failed cell (its first line of reason, at most 200 characters)."""
    first = (reason or "unknown reason").strip().splitlines()
    return f"cell {cfg.cell()} seed {cfg.seed} FAILED: {(first[0] if first else '')[:200]}"


def _worker_process(
    preset_path: str, overrides: dict, kwargs: dict, levels: dict, extra_seeds: tuple
) -> None:
    # A spawned worker starts with no logging setup: its parent's levels, so a worker's Optuna
    # and MLflow log as little as the parent's do.
    for name, level in levels.items():
        logging.getLogger(name).setLevel(level)
    load_inherited_plugins()  # the parent's plugins, before their names are read
    preset = dataclasses.replace(load_preset(preset_path, **overrides), extra_seeds=extra_seeds)
    # No per-worker thread count: each run pins its own (RunConfig.num_threads), so a config's
    # results do not depend on how many workers share the machine.
    with interrupts.handling(restore=False):
        try:
            run_worker(preset, **kwargs)
        except KeyboardInterrupt as error:  # the parent prints the one line
            sys.exit(interrupts.exit_code(error))


def run_suite(
    preset: Preset,
    tracking_uri: str,
    storage_url: str = DEFAULT_STORAGE,
    checkpoint_dir: str | Path = record.DEFAULT_CHECKPOINT_DIR,
    workers: int = 1,
    quiet: bool = True,
    overrides: dict | None = None,
    system_metrics_s: float | None = SUITE_SYSTEM_METRICS_INTERVAL_S,
    grace_seconds: int = GRACE_SECONDS,
    states: list[CellState] | None = None,
) -> list[CellState]:
    """Run the suite with ``workers`` local processes; returns every cell's final state.

    ``states``: the plan the caller made of this preset just before (a single worker then
    claims from it instead of planning again; spawned workers plan in their own processes).

    Every run samples MLflow's system metrics every ``system_metrics_s`` seconds (None: off).
    A worker's cell goes back to the queue after ``grace_seconds`` without a heartbeat; a cell
    still ``held`` at the end is another worker's (running, or abandoned under that grace).
    """
    # Called as a library too: one absolute URI string for MLflow, the workers and train_run.
    tracking_uri = mlflow_store.resolve_tracking_uri(tracking_uri)
    nproc = max(cfg.nproc for cfg in preset.cells())  # a [[pruners]] entry may set its own
    gpus = visible_gpus() if _uses_gpus(preset) else []
    slices = device_slices(workers, nproc, gpus)  # checked before anything is written
    mlflow_store.check_tracking_uri(tracking_uri)
    open_storage(storage_url, grace_seconds=grace_seconds)
    mlflow_store.prepare_experiment(tracking_uri, preset.name)
    kwargs = {
        "tracking_uri": tracking_uri,
        "storage_url": storage_url,
        "checkpoint_dir": str(checkpoint_dir),
        "quiet": quiet,
        "system_metrics_s": system_metrics_s,
        "grace_seconds": grace_seconds,
    }
    if workers == 1:
        run_worker(preset, **kwargs, states=states)
    else:
        context = multiprocessing.get_context("spawn")
        processes = []
        for i, devices in enumerate(slices):
            process = context.Process(
                target=_worker_process,
                args=(
                    str(preset.path),
                    overrides or {},
                    kwargs,
                    logger_levels(),
                    preset.extra_seeds,
                ),
                name=f"prunebench-worker-{i}",
            )
            # No thread count either: each run pins its own, per process (RunConfig.num_threads).
            environment = {"CUDA_VISIBLE_DEVICES": devices} if devices is not None else {}
            # Started whole and known (shielded), with SIGINT ignored until the worker handles
            # signals: a terminal's Ctrl-C reaches every process of the group, and a worker
            # still importing would print a KeyboardInterrupt traceback; the parent stops it.
            with interrupts.shielded(), _environment(environment), sigint_ignored():
                process.start()
                processes.append(process)
        try:
            interrupts.point("workers-started")
            interrupts.check()
            for process in processes:
                process.join()
        except KeyboardInterrupt:
            interrupts.acknowledge()
            with interrupts.shielded():
                stop_workers(processes)
            raise
    held = held_by_workers(preset, storage_url, grace_seconds)
    return plan(preset, tracking_uri, checkpoint_dir, held)
