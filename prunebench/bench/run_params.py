"""What one run records about itself in MLflow: its params and its tags, from its resolved run.

Every value comes from the run resolved once (resolve.py) or from its built trainer, so the
params, the tags, the checkpoint and the trainer agree by construction.
"""

from __future__ import annotations

from dataclasses import fields
from typing import TYPE_CHECKING, Any

import torch

import prunebench
from prunebench import record
from prunebench.bench import identity
from prunebench.bench.budgets import TIME_FRACTION
from prunebench.bench.devices import device_kind
from prunebench.bench.plugins import plugin_params
from prunebench.bench.resolve import ResolvedRun, resolve
from prunebench.bench.schedule import schedule_params
from prunebench.bench.system_metrics import nvml_index
from prunebench.bench.tracking import process_tag
from prunebench.bench.trainer_state import EVAL_BATCH_SIZE, autocast_dtype

if TYPE_CHECKING:
    from prunebench.bench.config import RunConfig
    from prunebench.bench.trainer import Trainer


def config_params(run: ResolvedRun, device: torch.device) -> dict[str, Any]:
    """The MLflow params known before the run's data and model are built (logged at its start)."""
    cfg, budget = run.cfg, run.budget  # budget: what is trained (a symbolic budget resolved)
    params = {
        **identity.logged_params(fields(cfg), run.plain),  # the config's fields, by schema
        "target_prune_ratio": run.target_prune_ratio,
        "budget_kind": budget.kind,
        "budget_amount": budget.amount,
        "eval_batch_size": EVAL_BATCH_SIZE,
        "optimizer": "sgd",
        "device": str(device),  # the resolved device, not "auto"
        "device_kind": device_kind(device),
        record.PARAM_DEVICE_COUNT: cfg.nproc,  # one device per process
        record.PARAM_BATCH_PER_DEVICE: cfg.batch_size // cfg.nproc,
        "num_threads": torch.get_num_threads(),  # as pinned for this run (per process)
        record.PARAM_VERSION: prunebench.__version__,
        record.PARAM_CONFIG_HASH: run.config_hash,
        "autocast_dtype": str(autocast_dtype(device)).removeprefix("torch.").lower(),
        **schedule_params(),
        **plugin_params(cfg.dataset, cfg.model, cfg.pruner),  # what code ran: plugin versions
    }
    # distributed: rank 0's GPU (rank 0 samples the system metrics; the others' GPUs are alike).
    if (index := nvml_index(device)) is not None:
        params[record.PARAM_NVML_INDEX] = index
    if cfg.budget.kind == TIME_FRACTION:
        params[record.PARAM_TIME_BUDGET_FRACTION] = cfg.budget.amount
        params[record.PARAM_TIME_BUDGET_SECONDS] = budget.amount
    return params


def trainer_params(trainer: Trainer) -> dict[str, Any]:
    """The MLflow params the built trainer determines: sizes and the pruner's own parameters."""
    params: dict[str, Any] = {
        "train_size": trainer.n,
        "pruner_epochs": trainer.pruner_epochs,
        "grad_alignment_probe": len(trainer.alignment.probe) if trainer.alignment else None,
    }
    pruner_values = {**trainer.run.pruner_kwargs, **trainer.pruner.params}
    params.update(
        {f"{record.PARAM_PRUNER_PREFIX}{key}": value for key, value in pruner_values.items()}
    )
    return params


def run_params(run: ResolvedRun, trainer: Trainer) -> dict[str, Any]:
    """MLflow params of a run (contract names; pruner parameters as ``pruner.<key>``)."""
    return {**config_params(run, trainer.device), **trainer_params(trainer)}


def run_tags(run: ResolvedRun | RunConfig, extra: dict[str, str] | None) -> dict[str, str]:
    """Tags of a new run: kind, cell, config hash, comparison, process, plus the caller's (which
    win); a RunConfig is resolved first."""
    resolved = run if isinstance(run, ResolvedRun) else resolve(run)
    tags = {
        **record.new_run_tags(record.KIND_TRAIN),
        record.TAG_CELL: resolved.cell,
        record.TAG_CONFIG_HASH: resolved.config_hash,
        record.TAG_COMPARISON: resolved.comparison,
        record.TAG_PROCESS: process_tag(),
    }
    tags.update(extra or {})
    return tags
