"""Command-line overrides of a preset: fewer seeds, a shorter budget, some pruners, other data.

``prunebench suite paper-cifar10-r18 --seeds 0 --budget epochs:1 --pruners full,orderdp
--prune-ratios 0.5 --data-dir DIR`` runs the preset's own code path (model, loader,
augmentations) on a cut-down grid (``--grad-alignment-probe N`` also cuts a preset's
gradient-alignment diagnostics to a seeded probe of N samples): a smoke test of a GPU preset on
any machine, or a first look at a new dataset; ``--nproc N`` runs each cell on N processes
instead of the preset's count (e.g. the 8-device ImageNet preset on a 4-GPU machine). Overrides
are applied to the preset's TOML data before validation, so every check a preset gets applies to
the overridden one too.
"""

from __future__ import annotations

import argparse
from collections.abc import Sequence
from typing import Any

from prunebench.bench.config import RunConfig
from prunebench.errors import ConfigError

GRID_OPTIONS: dict[str, str] = {
    "seeds": "comma-separated seeds replacing the preset's (e.g. 0 or 0,1)",
    "pruners": "comma-separated pruner labels to keep from the preset",
    "prune_ratios": "comma-separated prune ratios replacing every pruner's (e.g. 0.5)",
}
"""Options on the preset's grid (not run settings): the key's help text."""
RUN_OPTIONS = ("budget", "subset", "grad_alignment_probe", "nproc")
"""Options that replace a RunConfig setting for every cell: flag help and type from its schema."""
OPTIONS = (*GRID_OPTIONS, *RUN_OPTIONS)


def _flag(key: str) -> str:
    return "--" + key.replace("_", "-")


def add_override_options(parser: argparse.ArgumentParser, keys: Sequence[str] = OPTIONS) -> None:
    """Add ``--seeds``, ``--pruners``, ``--prune-ratios``, ``--budget``, ``--subset``,
    ``--grad-alignment-probe`` and ``--nproc`` (those of ``keys``)."""
    group = parser.add_argument_group("preset overrides")
    schema = {spec.name: spec for spec in RunConfig.schema()}
    for key in keys:
        if key in GRID_OPTIONS:
            group.add_argument(
                _flag(key), dest=f"override_{key}", default=None, help=GRID_OPTIONS[key]
            )
            continue
        spec = schema[key]  # budget: parsed and checked by the preset; subset, nproc: ints
        kind = int if "int" in str(spec.type) else str
        help_text = f"every cell's {key}, replacing the preset's ({spec.metadata['help']})"
        group.add_argument(
            _flag(key), dest=f"override_{key}", type=kind, default=None, help=help_text
        )


def _numbers(flag: str, text: str, kind: type) -> list:
    try:
        return [kind(item) for item in text.split(",") if item.strip()]
    except ValueError:
        raise ConfigError(f"{flag} expects comma-separated numbers, got {text!r}") from None


def overrides_from_args(args: argparse.Namespace) -> dict[str, Any]:
    """The preset keys the given override options set (``data_dir`` included when present)."""
    overrides: dict[str, Any] = {}
    if getattr(args, "data_dir", None) is not None:
        overrides["data_dir"] = args.data_dir
    for key in OPTIONS:
        value = getattr(args, f"override_{key}", None)
        if value is None:
            continue
        flag = _flag(key)
        if key == "seeds":
            value = _numbers(flag, value, int)
        elif key == "prune_ratios":
            value = _numbers(flag, value, float)
        elif key == "pruners":
            value = [label.strip() for label in value.split(",") if label.strip()]
        overrides[key] = value
    return overrides


def _with_ratios(table: dict[str, Any], ratios: Sequence[float]) -> dict[str, Any]:
    """A [[pruners]] table on the overriding ratios: its own ratios dropped, and its per-ratio
    ``settings`` kept only at the ratios still run (dropped when none is)."""
    table = {k: v for k, v in table.items() if k != "prune_ratios"}
    chosen = table.get("settings_ratios")
    if isinstance(chosen, list):
        kept = [r for r in chosen if r in ratios]
        if kept:
            table["settings_ratios"] = kept
        else:
            table.pop("settings_ratios")
            table.pop("settings", None)
    return table


def apply_overrides(data: dict[str, Any], overrides: dict[str, Any]) -> dict[str, Any]:
    """The preset's TOML ``data`` with ``overrides`` applied (``pruners``: labels to keep)."""
    data = dict(data)
    for key, value in overrides.items():
        if value is None:
            continue
        if key == "pruners":
            tables = data.get("pruners") or []
            labels = [t.get("label", t.get("name")) for t in tables if isinstance(t, dict)]
            unknown = [label for label in value if label not in labels]
            if unknown:
                raise ConfigError(
                    f"--pruners: the preset has no pruner labelled {unknown[0]!r}; "
                    f"choose from {', '.join(map(str, labels))}"
                )
            data["pruners"] = [t for t in tables if t.get("label", t.get("name")) in value]
        elif key == "prune_ratios":
            data["prune_ratios"] = value
            data["pruners"] = [
                _with_ratios(t, value) if isinstance(t, dict) else t
                for t in data.get("pruners") or []
            ]
        else:
            data[key] = value
    return data
