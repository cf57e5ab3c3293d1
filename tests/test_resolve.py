"""resolve(cfg): the values a run derives from its config, computed once, agree with the config."""

from __future__ import annotations

import dataclasses

import pytest
import torch

from prunebench.bench.budgets import Budget, parse_budget
from prunebench.bench.config import RunConfig
from prunebench.bench.devices import DEFAULT_CPU_THREADS
from prunebench.bench.resolve import resolve
from prunebench.errors import ConfigError, UsageError


def make_config(**overrides) -> RunConfig:
    settings = dict(
        dataset="synthetic",
        model="small_cnn",
        pruner="orderdp",
        pruner_params={"prune_ratio": 0.5},
        budget=parse_budget("samples:1000"),
        subset=200,
        device="cpu",
    )
    settings.update(overrides)
    return RunConfig(**settings)


def test_resolved_values_are_the_configs():
    cfg = make_config()
    run = resolve(cfg, torch.device("cpu"))
    assert run.config_hash == cfg.config_hash()
    assert run.budget == cfg.training_budget()
    assert run.target_prune_ratio == cfg.target_prune_ratio() == 0.5
    assert run.pruner_kwargs == cfg.pruner_kwargs()
    assert (run.cell, run.run_name, run.comparison) == (cfg.cell(), cfg.run_name(), "main")
    assert run.plain == cfg.to_dict()
    assert run.n == 200
    # samples:1000 at ratio 0.5 of 200 samples: 100 kept an epoch, 10 epochs.
    assert run.pruner_epochs == 10 == run.pruner.epochs
    assert run.threads == DEFAULT_CPU_THREADS
    with pytest.raises(dataclasses.FrozenInstanceError):
        run.n = 3  # type: ignore[misc]


def test_resolve_validates_and_resolves_symbolic_budgets():
    with pytest.raises(ConfigError, match="unknown pruner"):
        resolve(make_config(pruner="magic"))
    with pytest.raises(UsageError, match="prunebench suite"):
        resolve(make_config(pruner="full", pruner_params={}, budget=Budget("time-fraction", 0.5)))
    cfg = make_config(
        pruner="full", pruner_params={}, budget=Budget("time-fraction", 0.5), time_budget_seconds=8
    )
    run = resolve(cfg)
    assert run.budget == Budget("time", 8.0) and run.device is None and run.threads is None
    assert run.comparison == cfg.comparison() == "equal_time"
