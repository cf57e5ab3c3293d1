"""A run resolved once: every value derived from its config, computed at its start.

Optuna's ``get_storage()`` turns user input into one object in one place; here
:func:`resolve` turns a RunConfig into a frozen :class:`ResolvedRun` that the run's lifecycle
(run.py), its trainer, its checkpoints and its MLflow params share, so no value is derived twice.
"""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import TYPE_CHECKING, Any

from prunebench.bench import identity
from prunebench.bench.budgets import Budget
from prunebench.bench.config_checks import build_pruner, check_config
from prunebench.bench.devices import run_threads

if TYPE_CHECKING:
    import torch

    from prunebench.bench.config import RunConfig


@dataclass(frozen=True)
class ResolvedRun:
    """One run's config and what it resolves to (built by :func:`resolve`)."""

    cfg: RunConfig
    plain: dict[str, Any]
    """The config as plain data (config.json, the checkpoint's ``config``)."""
    config_hash: str
    """Names the checkpoint and the MLflow run; includes nproc (no other process count shares
    the checkpoint path)."""
    budget: Budget
    """What is trained: the config's budget, a symbolic one resolved to seconds or passes."""
    target_prune_ratio: float
    """The nominal prune ratio, as the pruner class computes it from its params."""
    pruner_kwargs: dict[str, Any]
    """``create_pruner``'s keyword parameters (the reference pruner's ratio 0 dropped)."""
    n: int
    """Training samples: the dataset's, or the subset's."""
    pruner_epochs: int
    """The ``epochs`` handed to the pruner (exact for an epochs budget, else an estimate)."""
    cell: str
    run_name: str
    comparison: str
    device: torch.device | None
    """This process's device (None: resolved before the processes were started)."""
    threads: int | None
    """The torch threads this process pins (see devices.run_threads)."""
    pruner: Any = field(compare=False, repr=False)
    """The run's pruner, built once here (its own parameter checks are the last validation);
    the trainer takes it over."""


def resolve(cfg: RunConfig, device: torch.device | None = None) -> ResolvedRun:
    """Validate ``cfg`` (ConfigError or UsageError, one sentence) and derive every value of the
    run on ``device`` once, building its pruner there."""
    n = check_config(cfg)
    budget = cfg.training_budget()  # an unresolved symbolic budget cannot train: say so here
    target = cfg.target_prune_ratio()
    pruner_kwargs = cfg.pruner_kwargs()
    plain = identity.plain_values(cfg, pruner_kwargs)
    pruner = build_pruner(cfg, n, budget, target, device, pruner_kwargs)
    return ResolvedRun(
        cfg=cfg,
        plain=plain,
        config_hash=identity.config_hash(fields(cfg), plain),
        budget=budget,
        target_prune_ratio=target,
        pruner_kwargs=pruner_kwargs,
        n=n,
        pruner_epochs=budget.pruner_epochs(n, target),
        cell=identity.cell(cfg, target),
        run_name=identity.run_name(cfg, target),
        comparison=cfg.comparison(),
        device=device,
        threads=run_threads(cfg.num_threads, device) if device is not None else None,
        pruner=pruner,
    )
