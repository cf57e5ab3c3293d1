"""A preset's TOML validated to the leaf and built into a Preset (see ``preset_cells``).

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

    margin = 0.003                       # the lossless margin (accuracy fraction): 0.3 points
    same_compute = true                  # + full data on the pruned runs' passes, per ratio
    equal_time = [0.5]                   # + every cell on 0.5 x full data's training seconds
    saturation = true                    # + full data on twice the budget: is it saturated?

    [[pruners]]
    name = "full"                        # always one cell per seed, ratio 0

    [[pruners]]
    name = "infobatch"
    label = "infobatch-anneal"           # tells variants apart in tags and reports
    params = { anneal = true }

    [[pruners]]
    name = "orderdp"
    settings = { grad_alignment = true } # this entry's own run settings (any shared key),
    settings_ratios = [0.7]              # optionally at some of its ratios only

    [search]                             # optional: `prunebench search` defaults
    pruners = ["orderdp"]                # default: every searchable pruner of the preset
    trials = 12
    seeds = 2
    sampler = "tpe"                      # or "grid": the preset's own prune ratios
    confirm_seeds = 2                    # fresh seeds the answer is confirmed on (default: seeds)
    confirm_max_seeds = 6                # rounds of confirm_seeds more while undecided, up to this

Besides its main cells (record tag ``prunebench.comparison`` = "main"), a preset can ask for two
fair comparisons:

- ``same_compute = true``: for every target prune ratio p of its pruned cells, full data on the
  sample passes the pruned runs at p train (bench.budgets.same_compute_budget, the one rule):
  ``samples:kept * E`` for a budget ``epochs:E`` (kept = round((1 - p) * n) a plan),
  ``samples:S`` for a budget ``samples:S`` (every pruned run trains exactly S), and under
  ``time:`` the symbolic ``same-compute:p``, resolved by the runner to the mean
  ``samples_trained_total`` of the finished pruned main runs at p (a second-phase cell); the LR
  schedule compressed to it; param matched_prune_ratio = p.
- ``equal_time = [fractions]``: every main cell again under the symbolic budget
  ``time-fraction:F``, F times the mean training seconds of the suite's finished full-data main
  runs of the same dataset and model. These cells run in a second phase, once those runs are
  finished (the runner resolves the seconds).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from prunebench.bench.config import DEFAULT_ACCURACY_TARGETS, RunConfig, parse_budget
from prunebench.bench.plugins import load_plugins
from prunebench.datasets.build import resolve_loader
from prunebench.errors import ConfigError
from prunebench.pruners import pruner_class
from prunebench.pruners.registry import check_param_types
from prunebench.suite.preset_cells import Preset, PrunerEntry, SearchSettings

# Preset key -> (accepted types, default): settings every cell shares, from RunConfig's schema.
_RUN_KEYS = RunConfig.preset_keys()
_LIST_KEYS = ("datasets", "models", "seeds", "prune_ratios", "accuracy_targets")
_COMPARISON_KEYS = {"same_compute", "equal_time", "saturation"}
_TOP_KEYS = {
    "name",
    "description",
    "budget",
    "pruners",
    "search",
    "margin",
    "plugins",  # modules or .py files (relative to the preset) loaded before the rest is read
    *_LIST_KEYS,
    *_RUN_KEYS,
    *_COMPARISON_KEYS,
}
_PRUNER_KEYS = {"name", "label", "params", "prune_ratios", "settings", "settings_ratios"}
_SEARCH_KEYS = {
    "pruners",
    "trials",
    "seeds",
    "tolerance",
    "dataset",
    "model",
    "sampler",
    "confirm_seeds",
    "confirm_max_seeds",
}
SEARCH_SAMPLERS = ("tpe", "grid")
"""tpe: Optuna's TPE over the pruner's search space; grid: the preset's prune ratios."""


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


def _run_value(where: str, key: str, kind: tuple[type, ...], value: Any) -> Any:
    """A preset's value for RunConfig field ``key`` as RunConfig takes it (type-checked)."""
    if value is None:
        return None
    if list in kind:  # a TOML array of numbers -> RunConfig's tuple of floats
        if not isinstance(value, (list, tuple)) or not all(
            isinstance(v, (int, float)) and not isinstance(v, bool) for v in value
        ):
            raise _fail(where, f"{key!r} must be a list of numbers, got {value!r}")
        return tuple(map(float, value))
    if not isinstance(value, kind) or (isinstance(value, bool) and bool not in kind):
        raise _fail(where, f"{key!r} has the wrong type: {value!r}")
    return float(value) if float in kind else value


def _entry_settings(
    at: str, table: dict[str, Any], pruner: str, ratios: tuple[float, ...]
) -> tuple[dict[str, Any], tuple[float, ...] | None]:
    """A [[pruners]] entry's ``settings`` (checked against RunConfig's preset keys) and the
    ``settings_ratios`` they apply at."""
    settings = table.get("settings", {})
    if not isinstance(settings, dict):
        raise _fail(at, f"'settings' must be a table of run settings, got {settings!r}")
    unknown = sorted(set(settings) - set(_RUN_KEYS))
    if unknown:
        valid = ", ".join(sorted(_RUN_KEYS))
        raise _fail(at, f"unknown run setting {unknown[0]!r} in 'settings'; valid: {valid}")
    checked = {key: _run_value(at, key, _RUN_KEYS[key][0], v) for key, v in settings.items()}
    if "settings_ratios" not in table:
        return checked, None
    if not checked:
        raise _fail(at, "'settings_ratios' needs a 'settings' table to apply")
    if pruner_class(pruner).is_reference:
        raise _fail(at, f"the {pruner} pruner has one cell (ratio 0); drop 'settings_ratios'")
    chosen = tuple(map(float, _list(at, table, "settings_ratios", (int, float), None)))
    stray = [r for r in chosen if r not in ratios]
    if stray:
        raise _fail(
            at,
            f"settings_ratios {stray[0]:g} is not one of the entry's prune_ratios {list(ratios)}",
        )
    return checked, chosen


def parse_preset(data: dict[str, Any], where: str, path: Path | None = None) -> Preset:
    """Validate a preset's TOML data (``where`` names it in errors) and build the Preset."""
    _check_keys(where, data, _TOP_KEYS)
    plugins = _list(where, data, "plugins", str, None) if "plugins" in data else ()
    load_plugins(plugins, path.parent if path is not None else None)  # their names, then checks
    name = data.get("name")
    if not isinstance(name, str) or not name.strip():
        raise _fail(where, "'name' (the MLflow experiment) must be a non-empty string")
    budget = data.get("budget")
    if not isinstance(budget, str):
        raise _fail(where, "'budget' must be a string such as \"epochs:200\"")
    parse_budget(budget).validate()
    run_settings = {}
    for key, (kind, default) in _RUN_KEYS.items():
        run_settings[key] = _run_value(where, key, kind, data.get(key, default))
    # "auto" is a preset-only loader value, resolved here so the cells' configs (and hashes)
    # name the loader they actually use.
    requested_loader = run_settings["loader"]
    run_settings["loader"] = resolve_loader(requested_loader)
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
        try:  # each value of its declared type, so --dry-run already refuses "half"
            check_param_types(pruner, params)
        except ConfigError as error:
            raise _fail(at, str(error)) from None
        label = table.get("label", pruner)
        if not isinstance(label, str) or not label.strip():
            raise _fail(at, f"'label' must be a non-empty string, got {label!r}")
        own = tuple(map(float, _list(at, table, "prune_ratios", (int, float), list(ratios))))
        settings, settings_ratios = _entry_settings(at, table, pruner, own)
        entries.append(PrunerEntry(pruner, label, dict(params), own, settings, settings_ratios))
    labels = [entry.label for entry in entries]
    if len(set(labels)) != len(labels):
        raise _fail(where, f"two pruners share a label ({labels}); give variants a 'label'")
    search = _parse_search(where, data.get("search", {}))
    same_compute = data.get("same_compute", False)
    if not isinstance(same_compute, bool):
        raise _fail(where, f"'same_compute' must be true or false, got {same_compute!r}")
    margin = data.get("margin")
    if margin is not None and (
        isinstance(margin, bool) or not isinstance(margin, (int, float)) or not 0 <= margin < 1
    ):
        raise _fail(where, f"'margin' must be an accuracy fraction in [0, 1), got {margin!r}")
    saturation = data.get("saturation", False)
    if not isinstance(saturation, bool):
        raise _fail(where, f"'saturation' must be true or false, got {saturation!r}")
    if saturation and parse_budget(budget).kind == "time":
        raise _fail(where, "saturation needs an epochs or samples budget to multiply")
    equal_time = data.get("equal_time", [])
    if equal_time != []:  # an empty list (the default) asks for no equal-time cells
        equal_time = _list(where, data, "equal_time", (int, float), None)
    for fraction in equal_time:
        if not 0 < fraction < float("inf"):
            raise _fail(where, f"'equal_time' fractions must be positive, got {fraction!r}")
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
            map(
                float,
                _list(
                    where, data, "accuracy_targets", (int, float), list(DEFAULT_ACCURACY_TARGETS)
                ),
            )
        ),
        run_settings=run_settings,
        search=search,
        requested_loader=requested_loader,
        same_compute=same_compute,
        equal_time=tuple(map(float, equal_time)),
        saturation=saturation,
        margin=None if margin is None else float(margin),
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
    pruners = _list(at, table, "pruners", str, None) if "pruners" in table else ()
    trials, seeds = table.get("trials", settings.trials), table.get("seeds", settings.seeds)
    for key, value in (("trials", trials), ("seeds", seeds)):
        if isinstance(value, bool) or not isinstance(value, int) or value < 1:
            raise _fail(at, f"{key!r} must be a positive integer, got {value!r}")
    tolerance = table.get("tolerance")
    if tolerance is not None and (
        isinstance(tolerance, bool) or not isinstance(tolerance, (int, float)) or tolerance < 0
    ):
        raise _fail(at, f"'tolerance' must be a number >= 0, got {tolerance!r}")
    sampler = table.get("sampler", settings.sampler)
    if sampler not in SEARCH_SAMPLERS:
        raise _fail(at, f"'sampler' must be one of {', '.join(SEARCH_SAMPLERS)}, got {sampler!r}")
    confirm_seeds = table.get("confirm_seeds")
    if confirm_seeds is not None and (
        isinstance(confirm_seeds, bool) or not isinstance(confirm_seeds, int) or confirm_seeds < 2
    ):
        raise _fail(at, f"'confirm_seeds' must be an integer >= 2, got {confirm_seeds!r}")
    confirm_max_seeds = table.get("confirm_max_seeds")
    least = confirm_seeds or seeds
    if confirm_max_seeds is not None and (
        isinstance(confirm_max_seeds, bool)
        or not isinstance(confirm_max_seeds, int)
        or confirm_max_seeds < least
    ):
        raise _fail(
            at,
            f"'confirm_max_seeds' must be an integer >= confirm_seeds ({least}), "
            f"got {confirm_max_seeds!r}",
        )
    return SearchSettings(
        pruners,
        trials,
        seeds,
        tolerance,
        table.get("dataset"),
        table.get("model"),
        sampler,
        confirm_seeds,
        confirm_max_seeds,
    )
