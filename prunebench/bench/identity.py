"""A run config's identity: its plain values, its hash, its cell and run name, its MLflow params.

Every rule here reads the field's schema metadata (``settings.setting``): whether and how the
field is hashed (``hash``, ``hash_as``) and logged (``log``, ``log_as``). No field is named here,
so a new field states its policy where it is declared.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import Field, asdict
from typing import Any

from prunebench.bench.settings import HASHED_WHEN_SET, LOGGED, LOGGED_WHEN_SET, NOT_HASHED


def plain_values(cfg: Any, pruner_kwargs: dict[str, Any]) -> dict[str, Any]:
    """The config as plain JSON-able data: budget as its string, the pruner's label and its
    ``create_pruner`` parameters (sorted), tuples as lists."""
    data = asdict(cfg)
    data["budget"] = str(cfg.budget)
    data["pruner_label"] = cfg.label
    data["pruner_params"] = dict(sorted(pruner_kwargs.items()))
    for key, value in data.items():
        if isinstance(value, tuple):
            data[key] = list(value)
    return data


def logged_params(schema: tuple[Field, ...], plain: dict[str, Any]) -> dict[str, Any]:
    """The MLflow params of the fields their ``schema`` logs, in their logged form."""
    params = {}
    for spec in schema:
        policy, value = spec.metadata["log"], plain[spec.name]
        if policy == LOGGED or (policy == LOGGED_WHEN_SET and value is not None):
            show = spec.metadata["log_as"]
            params[spec.name] = show(value) if show is not None else value
    return params


def config_hash(schema: tuple[Field, ...], plain: dict[str, Any]) -> str:
    """sha256 (first 16 hex digits) of the hashed fields' hashed values (``schema``'s policy)."""
    data = {}
    for spec in schema:
        policy, value = spec.metadata["hash"], plain[spec.name]
        if policy == NOT_HASHED:
            continue
        if policy == HASHED_WHEN_SET and value == _plain_default(spec.default):
            continue  # as before the field existed: recorded runs keep their hash
        convert = spec.metadata["hash_as"]
        data[spec.name] = convert(value) if convert is not None else value
    text = json.dumps(data, sort_keys=True, default=str, allow_nan=True)
    return hashlib.sha256(text.encode()).hexdigest()[:16]


def cell(cfg: Any, target_prune_ratio: float) -> str:
    """The tag naming a run's cell: dataset/model/pruner_label/target ratio (no seed).

    Not the process count either: the cell names what is compared (a pruner at a ratio on a
    task), and runs on 1 and on 8 devices of the same cell are the same experiment computed
    differently; ``nproc`` is in the config hash and logged as ``device_count``/``nproc``.
    """
    return f"{cfg.dataset}/{cfg.model}/{cfg.label}/{target_prune_ratio:g}"


def run_name(cfg: Any, target_prune_ratio: float) -> str:
    """MLflow run name: ``<pruner_label>-p<ratio>-s<seed>``."""
    return f"{cfg.label}-p{target_prune_ratio:g}-s{cfg.seed}"


def _plain_default(default: Any) -> Any:
    return list(default) if isinstance(default, tuple) else default
