"""Suite presets: a TOML file expanded into cells (dataset x model x pruner x ratio x seed).

A preset reads like this (every key but ``name``, ``budget`` and ``pruners`` has a default)::

    name = "demo-fmnist"                 # the MLflow experiment
    description = "every pruner on Fashion-MNIST, CPU-sized"
    datasets = ["fashion_mnist"]
    models = ["small_cnn"]
    budget = "epochs:4"
    seeds = [0, 1]
    prune_ratios = [0.3, 0.7]            # pruners without their own ratio get each of these
    batch_size = 128
    lr = 0.05
    loader = "tensor"
    subset = 20000
    accuracy_targets = [0.80, 0.85]

    [[pruners]]
    name = "full"                        # always one cell per seed, ratio 0

    [[pruners]]
    name = "infobatch"
    label = "infobatch-anneal"           # tells variants apart in tags and reports
    params = { anneal = true }

    [search]                             # optional: `prunebench search` defaults
    pruners = ["orderdp"]
    trials = 12
    seeds = 2
"""

from __future__ import annotations

import hashlib
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from prunebench.bench.config import RunConfig, parse_budget
from prunebench.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

CONFIG_DIR = Path(__file__).resolve().parents[2] / "configs"


def _default(name: str) -> Any:
    """RunConfig's default for a field (one definition of it)."""
    return RunConfig.__dataclass_fields__[name].default


# Preset key -> (accepted types, default): settings every cell shares, passed to RunConfig.
_RUN_KEYS: dict[str, tuple[type | tuple[type, ...], Any]] = {
    "batch_size": (int, 128),
    "lr": ((int, float), 0.2),
    "momentum": ((int, float), 0.9),
    "weight_decay": ((int, float), 5e-4),
    "label_smoothing": ((int, float), 0.0),
    "loader": (str, "tensor"),
    "subset": (int, None),
    "data_dir": (str, None),
    "device": (str, "auto"),
    "augment": (bool, True),
    # The LR/momentum recipe and the gradient-alignment diagnostic (RunConfig's defaults).
    "lr_pct_start": ((int, float), _default("lr_pct_start")),
    "lr_div_factor": ((int, float), _default("lr_div_factor")),
    "lr_final_div_factor": ((int, float), _default("lr_final_div_factor")),
    "cycle_momentum": (bool, _default("cycle_momentum")),
    "base_momentum": ((int, float), _default("base_momentum")),
    "max_momentum": ((int, float), _default("max_momentum")),
    "grad_alignment": (bool, _default("grad_alignment")),
    "grad_alignment_probe": (int, _default("grad_alignment_probe")),
    "grad_alignment_checkpoints": (list, _default("grad_alignment_checkpoints")),
}
_LIST_KEYS = ("datasets", "models", "seeds", "prune_ratios", "accuracy_targets")
_TOP_KEYS = {"name", "description", "budget", "pruners", "search", *_LIST_KEYS, *_RUN_KEYS}
_PRUNER_KEYS = {"name", "label", "params", "prune_ratios"}
_SEARCH_KEYS = {"pruners", "trials", "seeds", "tolerance", "dataset", "model"}
_RATIO_PARAMS = ("prune_ratio", "exploration", "exploitation")


@dataclass(frozen=True)
class PrunerEntry:
    """One pruner (or variant) of a preset."""

    name: str
    label: str
    params: dict[str, Any]
    prune_ratios: tuple[float, ...]


@dataclass(frozen=True)
class SearchSettings:
    """Defaults for ``prunebench search`` on this preset."""

    pruners: tuple[str, ...] = ("orderdp",)
    trials: int = 12
    seeds: int = 2
    tolerance: float | None = None
    dataset: str | None = None
    model: str | None = None


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

    def base_config(self, dataset: str, model: str, seed: int) -> RunConfig:
        """A RunConfig with the preset's shared settings and the full pruner."""
        return RunConfig(
            dataset=dataset,
            model=model,
            pruner="full",
            budget=parse_budget(self.budget),
            seed=seed,
            accuracy_targets=self.accuracy_targets,
            **self.run_settings,
        )

    def cells(self) -> list[RunConfig]:
        """Every run of the suite, in a stable order (seed innermost)."""
        configs = []
        for dataset in self.datasets:
            for model in self.models:
                for entry in self.pruners:
                    for params in _ratio_variants(entry):
                        for seed in self.seeds:
                            base = self.base_config(dataset, model, seed)
                            base.pruner, base.pruner_params = entry.name, params
                            base.pruner_label = entry.label
                            configs.append(base)
        return configs

    def digest(self) -> str:
        """Identifies the set of cells: changes when any cell's configuration changes."""
        hashes = "\n".join(sorted(cfg.config_hash() for cfg in self.cells()))
        return hashlib.sha256(hashes.encode()).hexdigest()[:12]


def _ratio_variants(entry: PrunerEntry) -> list[dict[str, Any]]:
    if entry.name == "full" or any(key in entry.params for key in _RATIO_PARAMS):
        return [dict(entry.params)]
    return [{**entry.params, "prune_ratio": ratio} for ratio in entry.prune_ratios]


def _fail(where: str, message: str) -> ConfigError:
    return ConfigError(f"{where}: {message}")


def _check_keys(where: str, table: dict[str, Any], valid: set[str]) -> None:
    unknown = sorted(set(table) - valid)
    if unknown:
        raise _fail(where, f"unknown key {unknown[0]!r}; valid keys: {', '.join(sorted(valid))}")


def _list(where: str, table: dict[str, Any], key: str, kind, default) -> tuple:
    value = table.get(key, default)
    if value is None:
        raise _fail(where, f"{key!r} is required")
    if not isinstance(value, list) or not value:
        raise _fail(where, f"{key!r} must be a non-empty list, got {value!r}")
    for item in value:
        if isinstance(item, bool) or not isinstance(item, kind):
            raise _fail(where, f"{key!r} has an entry of the wrong type: {item!r}")
    if len(set(value)) != len(value):
        raise _fail(where, f"{key!r} lists an entry twice: {value!r}")
    return tuple(value)


def parse_preset(data: dict[str, Any], where: str, path: Path | None = None) -> Preset:
    """Validate a preset's TOML data (``where`` names it in errors) and build the Preset."""
    _check_keys(where, data, _TOP_KEYS)
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise _fail(where, "'name' (the MLflow experiment) must be a non-empty string")
    budget = data.get("budget")
    if not isinstance(budget, str):
        raise _fail(where, "'budget' must be a string such as \"epochs:200\"")
    parse_budget(budget).validate()
    run_settings = {}
    for key, (kind, default) in _RUN_KEYS.items():
        value = data.get(key, default)
        if kind is list:  # a TOML array of numbers -> RunConfig's tuple of floats
            if not isinstance(value, (list, tuple)) or not all(
                isinstance(v, (int, float)) and not isinstance(v, bool) for v in value
            ):
                raise _fail(where, f"{key!r} must be a list of numbers, got {value!r}")
            run_settings[key] = tuple(map(float, value))
            continue
        if value is not None and (
            not isinstance(value, kind) or (isinstance(value, bool) and kind is not bool)
        ):
            raise _fail(where, f"{key!r} has the wrong type: {value!r}")
        run_settings[key] = float(value) if kind == (int, float) else value
    ratios = _list(where, data, "prune_ratios", (int, float), [0.5])
    pruners_data = data.get("pruners")
    if not isinstance(pruners_data, list) or not pruners_data:
        raise _fail(where, "needs at least one [[pruners]] table")
    entries = []
    for i, table in enumerate(pruners_data):
        at = f"{where} [[pruners]] #{i + 1}"
        if not isinstance(table, dict):
            raise _fail(at, "must be a table")
        _check_keys(at, table, _PRUNER_KEYS)
        pruner = table.get("name")
        if not isinstance(pruner, str):
            raise _fail(at, "'name' (a pruner) is required")
        params = table.get("params", {})
        if not isinstance(params, dict):
            raise _fail(at, f"'params' must be a table, got {params!r}")
        own = _list(at, table, "prune_ratios", (int, float), list(ratios))
        entries.append(
            PrunerEntry(pruner, table.get("label", pruner), dict(params), tuple(map(float, own)))
        )
    labels = [entry.label for entry in entries]
    if len(set(labels)) != len(labels):
        raise _fail(where, f"two pruners share a label ({labels}); give variants a 'label'")
    search = _parse_search(where, data.get("search", {}))
    preset = Preset(
        name=name.strip(),
        description=str(data.get("description", "")),
        path=path,
        datasets=_list(where, data, "datasets", str, None),
        models=_list(where, data, "models", str, None),
        budget=budget,
        seeds=_list(where, data, "seeds", int, [0]),
        pruners=tuple(entries),
        accuracy_targets=tuple(
            map(float, _list(where, data, "accuracy_targets", (int, float), [0.9]))
        ),
        run_settings=run_settings,
        search=search,
    )
    for cfg in preset.cells():
        try:
            cfg.validate()
        except ConfigError as error:
            raise _fail(f"{where} (cell {cfg.cell()}, seed {cfg.seed})", str(error)) from None
    return preset


def _parse_search(where: str, table: Any) -> SearchSettings:
    at = f"{where} [search]"
    if not isinstance(table, dict):
        raise _fail(at, "must be a table")
    _check_keys(at, table, _SEARCH_KEYS)
    settings = SearchSettings()
    pruners = _list(at, table, "pruners", str, list(settings.pruners))
    trials, seeds = table.get("trials", settings.trials), table.get("seeds", settings.seeds)
    for key, value in (("trials", trials), ("seeds", seeds)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise _fail(at, f"{key!r} must be a positive integer, got {value!r}")
    tolerance = table.get("tolerance")
    if tolerance is not None and (
        isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or tolerance < 0
    ):
        raise _fail(at, f"'tolerance' must be a number >= 0, got {tolerance!r}")
    return SearchSettings(
        pruners, trials, seeds, tolerance, table.get("dataset"), table.get("model")
    )


def resolve_preset_path(name_or_path: str) -> Path:
    """A path to a TOML file, or the name of a preset in configs/ (with or without .toml)."""
    path = Path(name_or_path)
    if path.suffix == ".toml" and path.is_file():
        return path
    candidate = CONFIG_DIR / f"{path.stem if path.suffix == '.toml' else name_or_path}.toml"
    if candidate.is_file():
        return candidate
    known = ", ".join(sorted(p.stem for p in CONFIG_DIR.glob("*.toml"))) or "none"
    raise ConfigError(
        f"no preset {name_or_path!r}: pass a TOML file or one of the presets in configs/ ({known})"
    )


def load_preset(name_or_path: str, **overrides: Any) -> Preset:
    """Read, override (e.g. ``data_dir``) and validate a preset file."""
    path = resolve_preset_path(name_or_path)
    try:
        data = tomllib.loads(path.read_text())
    except tomllib.TOMLDecodeError as error:
        raise ConfigError(f"{path}: not valid TOML ({error}); fix the file") from None
    data.update({k: v for k, v in overrides.items() if v is not None})
    return parse_preset(data, str(path), path)
