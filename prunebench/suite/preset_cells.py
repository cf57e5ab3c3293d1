"""A validated suite preset and its cells (dataset x model x pruner x ratio x seed).

The cells are built once per Preset and kept: a suite plans, hashes and digests the same
RunConfig objects, which callers treat as read-only (``dataclasses.replace`` makes a variant).
The TOML format a preset is written in is ``preset_toml``; finding and loading the file is
``presets``.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field, replace
from functools import cached_property
from pathlib import Path
from typing import Any

from prunebench.bench.budgets import SAME_COMPUTE, TIME_FRACTION, Budget, same_compute_budget
from prunebench.bench.config import RunConfig, parse_budget
from prunebench.pruners import pruner_class, reference_pruner
from prunebench.record import COMPARISON_SAME_COMPUTE

SATURATION_MULTIPLE = 2.0
"""A saturation cell trains full data on this multiple of the budget (the doubling test)."""


@dataclass(frozen=True)
class PrunerEntry:
    """One pruner (or variant) of a preset."""

    name: str
    label: str
    params: dict[str, Any]
    prune_ratios: tuple[float, ...]
    settings: dict[str, Any] = field(default_factory=dict)
    """Run settings of this entry's cells (shared preset keys, e.g. grad_alignment), over the
    preset's own."""
    settings_ratios: tuple[float, ...] | None = None
    """The target prune ratios whose cells get ``settings`` (None: every cell of the entry)."""

    def settings_at(self, target_ratio: float) -> dict[str, Any]:
        """The entry's own run settings for its cell at ``target_ratio``."""
        if self.settings_ratios is None or target_ratio in self.settings_ratios:
            return self.settings
        return {}


@dataclass(frozen=True)
class SearchSettings:
    """Defaults for ``prunebench search`` on this preset."""

    pruners: tuple[str, ...] = ()
    """Pruners to search; empty: every searchable pruner the preset lists (the same search
    budget for each, as AlgoPerf asks)."""
    trials: int = 12
    seeds: int = 2
    tolerance: float | None = None
    dataset: str | None = None
    model: str | None = None
    sampler: str = "tpe"
    confirm_seeds: int | None = None
    """Fresh seeds the answer is confirmed on (None: as many as ``seeds``)."""
    confirm_max_seeds: int | None = None
    """Fresh seeds a side an undecided candidate may grow to, a round of ``confirm_seeds`` at a
    time (None: no more rounds)."""


@dataclass(frozen=True)
class Preset:
    """A validated suite preset."""

    name: str
    description: str
    path: Path | None
    datasets: tuple[str, ...]
    models: tuple[str, ...]
    budget: str
    seeds: tuple[int, ...]
    pruners: tuple[PrunerEntry, ...]
    accuracy_targets: tuple[float, ...]
    run_settings: dict[str, Any] = field(default_factory=dict)
    search: SearchSettings = SearchSettings()
    requested_loader: str = "tensor"  # as written in the preset; run_settings has the resolved one
    same_compute: bool = False
    """Add full-data cells on the pruned runs' passes at each target prune ratio."""
    equal_time: tuple[float, ...] = ()
    """Fractions of the full-data runs' training seconds every main cell also runs under."""
    saturation: bool = False
    """Add full data on SATURATION_MULTIPLE x the budget: what more training would gain."""
    margin: float | None = None
    """The non-inferiority margin of this preset's verdicts (fraction; None: the default)."""
    extra_seeds: tuple[tuple[str, float, int], ...] = ()
    """(pruner label or COMPARISON_SAME_COMPUTE, target ratio, seed): cells beyond ``seeds`` (the
    rounds of ``--until-decided``)."""

    def base_config(self, dataset: str, model: str, seed: int) -> RunConfig:
        """A RunConfig with the preset's shared settings and the full-data reference pruner."""
        return RunConfig(
            dataset=dataset,
            model=model,
            pruner=reference_pruner(),
            budget=parse_budget(self.budget),
            seed=seed,
            accuracy_targets=self.accuracy_targets,
            **self.run_settings,
        )

    def main_cells(self) -> list[RunConfig]:
        """The preset's ordinary cells, in a stable order (seed innermost), then the extra
        seeds' cells (built once per Preset)."""
        return list(self._main_cells)

    @cached_property
    def _main_cells(self) -> tuple[RunConfig, ...]:
        configs = []
        for dataset in self.datasets:
            for model in self.models:
                for entry in self.pruners:
                    for params in _ratio_variants(entry):
                        seeds = [*self.seeds, *self._extra(entry.label, params, entry.name)]
                        for seed in seeds:
                            configs.append(self._cell(dataset, model, entry, params, seed))
        return tuple(configs)

    def _cell(
        self, dataset: str, model: str, entry: PrunerEntry, params: dict[str, Any], seed: int
    ) -> RunConfig:
        base = self.base_config(dataset, model, seed)
        base.pruner, base.pruner_params = entry.name, params
        base.pruner_label = entry.label
        for key, value in entry.settings_at(base.target_prune_ratio()).items():
            setattr(base, key, value)
        return base

    def _extra(self, label: str, params: dict[str, Any], pruner: str) -> list[int]:
        """The extra seeds of the cell of ``label`` at the target ratio of ``params``."""
        ratio = round(pruner_class(pruner).target_prune_ratio(params), 9)
        return [s for lab, r, s in self.extra_seeds if lab == label and round(r, 9) == ratio]

    def reference_config(self, dataset: str, model: str, seed: int) -> RunConfig:
        """The full-data main cell of ``dataset`` and ``model`` at ``seed``, its entry's settings
        included (so a search's reference IS the suite's cell, one run per config hash); a seed
        the preset does not list gets the same cell at that seed."""
        for cfg in self.main_cells():
            if pruner_class(cfg.pruner).is_reference and (cfg.dataset, cfg.model) == (
                dataset,
                model,
            ):
                return replace(cfg, seed=seed)
        return self.base_config(dataset, model, seed)  # a preset without a full-data entry

    def cell_config(
        self, dataset: str, model: str, label: str, params: dict[str, Any], seed: int
    ) -> RunConfig:
        """The main cell of variant ``label`` with ``params`` at ``seed``, its entry's settings
        included (so a search trial on the suite's grid IS the suite's cell, one run per config
        hash); parameters the preset has no cell for get the shared settings."""
        for cfg in self.main_cells():
            if (cfg.dataset, cfg.model, cfg.pruner_label, cfg.pruner_params) == (
                dataset,
                model,
                label,
                params,
            ):
                return replace(cfg, seed=seed)
        pruner = next((e.name for e in self.pruners if e.label == label), label)
        cfg = self.base_config(dataset, model, seed)
        cfg.pruner, cfg.pruner_params, cfg.pruner_label = pruner, dict(params), label
        return cfg

    def searchable(self) -> list[str]:
        """The preset's pruners (names, in order) a search can tune."""
        names = [entry.name for entry in self.pruners if pruner_class(entry.name).search_space]
        return list(dict.fromkeys(names))

    def prune_ratios(self) -> list[float]:
        """The distinct target prune ratios of the pruned main cells, ascending."""
        targets = {
            round(cfg.target_prune_ratio(), 9)
            for cfg in self.main_cells()
            if not pruner_class(cfg.pruner).is_reference
        }
        return sorted(t for t in targets if t > 0)

    def same_compute_cells(self) -> list[RunConfig]:
        """Full data on the pruned runs' sample passes at each target ratio (if asked for)."""
        if not self.same_compute:
            return []
        budget = parse_budget(self.budget)
        configs = []
        for dataset in self.datasets:
            n = _train_size(dataset, self.run_settings.get("subset"))
            for model in self.models:
                for ratio in self.prune_ratios():
                    matched = same_compute_budget(budget, n, ratio)
                    extra = [s for lab, r, s in self.extra_seeds if lab == COMPARISON_SAME_COMPUTE
                             and round(r, 9) == round(ratio, 9)]  # fmt: skip
                    for seed in [*self.seeds, *extra]:
                        cfg = self.base_config(dataset, model, seed)
                        cfg.budget = matched
                        cfg.matched_prune_ratio = ratio
                        configs.append(cfg)
        return configs

    def saturation_cells(self) -> list[RunConfig]:
        """Full data on SATURATION_MULTIPLE times the budget, every seed (if asked for)."""
        if not self.saturation:
            return []
        budget = parse_budget(self.budget)
        doubled = Budget(budget.kind, budget.amount * SATURATION_MULTIPLE)
        return [
            replace(
                self.reference_config(dataset, model, seed),
                budget=doubled,
                budget_multiple=SATURATION_MULTIPLE,
            )
            for dataset in self.datasets
            for model in self.models
            for seed in self.seeds
        ]

    def equal_time_cells(self) -> list[RunConfig]:
        """Every main cell under each ``time-fraction`` budget (unresolved: see the runner)."""
        return [
            replace(cfg, budget=Budget(TIME_FRACTION, fraction))
            for fraction in self.equal_time
            for cfg in self._main_cells
        ]

    def reference_cells(self, cfg: RunConfig) -> list[RunConfig]:
        """The main cells (every seed) a symbolic budget is resolved from, same dataset and model
        (the preset has one budget): for an equal-time cell the full-data cells whose training
        seconds it is a fraction of; for a ``same-compute:p`` cell the pruned cells at target
        ratio p whose sample passes it trains."""
        same = (cfg.dataset, cfg.model)
        if cfg.budget.kind == SAME_COMPUTE:
            return [
                main
                for main in self.main_cells()
                if not pruner_class(main.pruner).is_reference
                and (main.dataset, main.model) == same
                and round(main.target_prune_ratio(), 9) == round(float(cfg.budget.amount), 9)
            ]
        return [
            main
            for main in self.main_cells()
            if pruner_class(main.pruner).is_reference and (main.dataset, main.model) == same
        ]

    def cells(self) -> list[RunConfig]:
        """Every run of the suite: main cells, same-compute cells, saturation cells, then
        equal-time cells (cells with a symbolic budget are a second phase that waits for the main
        runs they rest on)."""
        return list(self._cells)

    @cached_property
    def _cells(self) -> tuple[RunConfig, ...]:
        return (
            *self._main_cells,
            *self.same_compute_cells(),
            *self.saturation_cells(),
            *self.equal_time_cells(),
        )

    def digest(self) -> str:
        """Identifies the set of cells: changes when any cell's configuration changes."""
        return self._digest

    @cached_property
    def _digest(self) -> str:
        hashes = "\n".join(sorted(cfg.config_hash() for cfg in self._cells))
        return hashlib.sha256(hashes.encode()).hexdigest()[:12]


def _train_size(dataset: str, subset: int | None) -> int:
    from prunebench.datasets import get_spec

    size = get_spec(dataset).train_size
    return min(size, subset) if subset is not None else size


def _ratio_variants(entry: PrunerEntry) -> list[dict[str, Any]]:
    cls = pruner_class(entry.name)
    if cls.is_reference or any(key in entry.params for key in cls.ratio_params):
        return [dict(entry.params)]
    return [{**entry.params, "prune_ratio": ratio} for ratio in entry.prune_ratios]
