"""Cross-registry validation of a RunConfig: names, ranges, data directory, device, pruner.

Each field's own range check is its schema's ``check``; what needs more than one field or a
registry (datasets, models, pruners) is here. Every failure is a ConfigError of one sentence
naming the fix, raised before any work.
"""

from __future__ import annotations

from dataclasses import fields
from pathlib import Path
from typing import TYPE_CHECKING, Any

from prunebench.bench.budgets import SAME_COMPUTE, TIME_FRACTION, Budget
from prunebench.bench.devices import check_batch_size, check_device
from prunebench.bench.settings import check_number
from prunebench.errors import ConfigError

if TYPE_CHECKING:
    import torch

    from prunebench.bench.config import RunConfig


def validate(cfg: RunConfig) -> None:
    """ConfigError for any invalid value; builds the pruner once (on the CPU) so that its own
    parameter checks (e.g. q > s) run too."""
    train_size = check_config(cfg)
    build_pruner(cfg, train_size, cfg.budget, cfg.target_prune_ratio())


def build_pruner(
    cfg: RunConfig,
    n: int,
    budget: Budget,
    target_prune_ratio: float,
    device: torch.device | None = None,
    pruner_kwargs: dict[str, Any] | None = None,
) -> Any:
    """The run's pruner for ``n`` training samples (ConfigError from its parameter checks)."""
    from prunebench.pruners import create_pruner

    options = {} if device is None else {"device": device}
    return create_pruner(
        cfg.pruner,
        n=n,
        epochs=budget.pruner_epochs(n, target_prune_ratio),
        seed=cfg.seed,
        **options,
        **(pruner_kwargs if pruner_kwargs is not None else cfg.pruner_kwargs()),
    )


def check_config(cfg: RunConfig) -> int:
    """ConfigError for any invalid value but the pruner's own parameters; returns the number of
    training samples (the dataset's, or the subset's)."""
    from prunebench.bench.models import available_models
    from prunebench.datasets import get_spec
    from prunebench.pruners import available_pruners, pruner_class

    spec = get_spec(cfg.dataset)  # ConfigError naming the valid datasets (or the missing data)
    if cfg.model not in available_models():
        raise ConfigError(
            f"unknown model {cfg.model!r}; choose one of: " + ", ".join(available_models())
        )
    if cfg.pruner not in available_pruners():
        raise ConfigError(
            f"unknown pruner {cfg.pruner!r}; choose one of: " + ", ".join(available_pruners())
        )
    _check_budget(cfg)
    reference = pruner_class(cfg.pruner).is_reference
    if cfg.matched_prune_ratio is not None and not reference:
        raise ConfigError(
            "matched_prune_ratio is for a full-data run matching a prune ratio; drop it"
        )
    for field in fields(cfg):  # each field's own range check (schema metadata)
        value = getattr(cfg, field.name)
        optional = value is None and field.default is None  # e.g. no subset
        if field.metadata["check"] is not None and not optional:
            field.metadata["check"](field.metadata["label"] or field.name, value)
    check_batch_size(cfg.batch_size, cfg.nproc)  # the per-process batch is batch / nproc
    if cfg.nproc > 1 and pruner_class(cfg.pruner).selects_per_step:
        raise ConfigError(
            f"pruner {cfg.pruner!r} selects per step and runs on one process; drop --nproc"
        )
    if cfg.base_momentum > cfg.max_momentum:
        raise ConfigError(
            f"base_momentum {cfg.base_momentum} exceeds max_momentum {cfg.max_momentum}; swap them"
        )
    check_device(cfg.device)
    _check_data_dir(cfg.data_dir)
    train_size = spec.train_size
    if cfg.subset is not None:
        if cfg.subset > spec.train_size:
            raise ConfigError(
                f"subset {cfg.subset} is larger than {cfg.dataset}'s training set "
                f"({spec.train_size}); pass --subset <= {spec.train_size}"
            )
        train_size = cfg.subset
    _check_pruner_params(cfg, reference)
    return train_size


def _check_budget(cfg: RunConfig) -> None:
    if not isinstance(cfg.budget, Budget):
        raise ConfigError(f"budget must be a Budget (see parse_budget), got {cfg.budget!r}")
    cfg.budget.validate()
    if cfg.same_compute_samples is not None and cfg.budget.kind != SAME_COMPUTE:
        raise ConfigError(
            f"same_compute_samples is for a same-compute budget, not {cfg.budget}; drop it"
        )
    if cfg.budget.kind == SAME_COMPUTE and cfg.matched_prune_ratio is None:
        raise ConfigError(f"budget {cfg.budget} needs matched_prune_ratio (set by the suite)")
    if cfg.time_budget_seconds is not None and cfg.budget.kind != TIME_FRACTION:
        raise ConfigError(
            f"time_budget_seconds is for a time-fraction budget, not {cfg.budget}; drop it"
        )


def _check_data_dir(data_dir: str | None) -> None:
    if data_dir is None:
        return
    # A missing folder is fine (downloads and caches create it); a file in the way is not.
    existing = Path(data_dir)
    while not existing.exists() and existing != existing.parent:
        existing = existing.parent
    if not existing.is_dir():
        raise ConfigError(
            f"data directory {data_dir}: {existing} is not a directory; pass a folder as --data-dir"
        )


def _check_pruner_params(cfg: RunConfig, reference: bool) -> None:
    if not isinstance(cfg.pruner_params, dict):
        raise ConfigError(f"pruner_params must be a dict, got {cfg.pruner_params!r}")
    ratio = cfg.pruner_params.get("prune_ratio")
    if ratio is not None:
        check_number("prune ratio", ratio, 0.0, 1.0, high_open=True)
    if reference and ratio not in (None, 0):
        raise ConfigError(
            f"the {cfg.pruner} pruner trains on all data, so its prune ratio must be 0, got "
            f"{ratio!r}; choose another pruner to prune"
        )
