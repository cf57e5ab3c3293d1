"""Run a suite preset: every cell exactly once, across any number of workers and machines.

MLflow is the record of what is done (a FINISHED run with the cell's config hash); the Optuna
work queue (``workqueue``) decides who runs what. Finished cells are skipped, interrupted ones
resume from their checkpoints, failed ones are recorded and the suite carries on; running the
suite again retries them.
"""

from __future__ import annotations

import contextlib
import logging
import multiprocessing
import os
import sys
from dataclasses import dataclass
from pathlib import Path

from prunebench import record
from prunebench.bench.checkpoint import checkpoint_path
from prunebench.bench.config import RunConfig
from prunebench.bench.system_metrics import SUITE_SYSTEM_METRICS_INTERVAL_S
from prunebench.suite.presets import Preset, load_preset
from prunebench.suite.workqueue import CellQueue, open_storage

log = logging.getLogger(__name__)

DEFAULT_STORAGE = "sqlite:///optuna.db"


@dataclass(frozen=True)
class CellState:
    """What the suite knows of one cell before running it."""

    config: RunConfig
    action: str  # "done", "resume", "run", "retry"
    reason: str | None = None


def recorded_runs(tracking_uri: str, experiment: str) -> dict[str, tuple[str, str | None]]:
    """config hash -> (status, failure reason) of the experiment's training runs, FINISHED first."""
    client = record.client(tracking_uri)
    experiment_id = record.find_experiment_id(client, experiment)
    if experiment_id is None:
        return {}
    records: dict[str, tuple[str, str | None]] = {}
    for run in record.search_all_runs(client, experiment_id, record.train_filter()):
        key = run.data.tags.get(record.TAG_CONFIG_HASH)
        status = run.info.status
        if key and records.get(key, ("",))[0] != "FINISHED":
            records[key] = (status, run.data.tags.get(record.TAG_FAILURE_REASON))
    return records


def plan(preset: Preset, tracking_uri: str, checkpoint_dir: str | Path) -> list[CellState]:
    """Each cell with what running the suite now would do to it."""
    records = recorded_runs(tracking_uri, preset.name) if record.store_exists(tracking_uri) else {}
    states = []
    for cfg in preset.cells():
        status, reason = records.get(cfg.config_hash(), (None, None))
        if status == "FINISHED":
            states.append(CellState(cfg, "done"))
        elif status == "FAILED":  # retried from its last checkpoint, if it has one
            states.append(CellState(cfg, "retry", reason))
        elif checkpoint_path(checkpoint_dir, cfg.config_hash()).is_file():
            states.append(CellState(cfg, "resume"))
        else:
            states.append(CellState(cfg, "run"))
    return states


def run_worker(
    preset: Preset,
    tracking_uri: str,
    storage_url: str,
    checkpoint_dir: str | Path,
    quiet: bool = True,
    system_metrics_s: float | None = SUITE_SYSTEM_METRICS_INTERVAL_S,
) -> list[tuple[str, str]]:
    """Claim and run cells until the queue is drained; returns (config hash, status) run here."""
    from prunebench.bench.run import train_run

    by_hash = {cfg.config_hash(): cfg for cfg in preset.cells()}
    states = plan(preset, tracking_uri, checkpoint_dir)
    pending = [s.config.config_hash() for s in states if s.action != "done"]
    root = f"prunebench-suite/{preset.name}/{preset.digest()}"
    queue = CellQueue.open(open_storage(storage_url), root, pending)
    done: list[tuple[str, str]] = []
    while queue is not None and (claim := queue.claim()) is not None:
        cfg = by_hash[claim.cell]
        with queue.hold(claim):
            if recorded_runs(tracking_uri, preset.name).get(claim.cell, ("",))[0] == "FINISHED":
                queue.finish(claim, "FINISHED")  # finished by an earlier generation meanwhile
                continue
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


def failed_cell_line(cfg: RunConfig, reason: str | None) -> str:
    """The one terminal line of a failed cell (its first line of reason, at most 200 characters)."""
    first = (reason or "unknown reason").strip().splitlines()
    return f"cell {cfg.cell()} seed {cfg.seed} FAILED: {(first[0] if first else '')[:200]}"


def _worker_process(preset_path: str, overrides: dict, kwargs: dict) -> None:
    # No per-worker thread count: each run pins its own (RunConfig.num_threads), so a config's
    # results do not depend on how many workers share the machine.
    with contextlib.suppress(KeyboardInterrupt):  # Ctrl-C: the parent prints the one line
        run_worker(load_preset(preset_path, **overrides), **kwargs)


def run_suite(
    preset: Preset,
    tracking_uri: str,
    storage_url: str = DEFAULT_STORAGE,
    checkpoint_dir: str | Path = "checkpoints",
    workers: int = 1,
    quiet: bool = True,
    overrides: dict | None = None,
    system_metrics_s: float | None = SUITE_SYSTEM_METRICS_INTERVAL_S,
) -> list[CellState]:
    """Run the suite with ``workers`` local processes; returns every cell's final state.

    Every run samples MLflow's system metrics every ``system_metrics_s`` seconds (None: off).
    """
    record.check_tracking_uri(tracking_uri)
    open_storage(storage_url)
    record.prepare_experiment(tracking_uri, preset.name)
    kwargs = {
        "tracking_uri": tracking_uri,
        "storage_url": storage_url,
        "checkpoint_dir": str(checkpoint_dir),
        "quiet": quiet,
        "system_metrics_s": system_metrics_s,
    }
    if workers == 1:
        run_worker(preset, **kwargs)
    else:
        context = multiprocessing.get_context("spawn")
        processes = [
            context.Process(
                target=_worker_process,
                args=(str(preset.path), overrides or {}, kwargs),
                name=f"prunebench-worker-{i}",
            )
            for i in range(workers)
        ]
        for process in processes:
            process.start()
        for process in processes:
            process.join()
    return plan(preset, tracking_uri, checkpoint_dir)
