"""One training run's configuration: a validated dataclass, hashed to name its checkpoint."""

from __future__ import annotations

import hashlib
import inspect
import json
import math
import sys
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import torch

from prunebench.bench.budgets import Budget, parse_budget
from prunebench.bench.schedule import (
    BASE_MOMENTUM,
    DIV_FACTOR,
    FINAL_DIV_FACTOR,
    MAX_MOMENTUM,
    WARMUP_FRACTION,
)
from prunebench.errors import ConfigError

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["LOADERS", "Budget", "RunConfig", "parse_budget", "parse_param"]

LOADERS = ("tensor", "ffcv")
DEFAULT_ACCURACY_TARGETS = (0.5, 0.7, 0.8, 0.9, 0.95)
_HASH_EXCLUDED = ("data_dir",)
"""Fields that say where things are, not what is computed: left out of the config hash."""
_HASH_IF_CHANGED = (
    "lr_pct_start",
    "lr_div_factor",
    "lr_final_div_factor",
    "cycle_momentum",
    "base_momentum",
    "max_momentum",
    "grad_alignment",
    "grad_alignment_probe",
    "grad_alignment_checkpoints",
)
"""Fields added after the hash was defined: hashed only when they differ from their default, so
configs that do not use them keep their hash (and their checkpoints and MLflow identity)."""
DEFAULT_ALIGNMENT_CHECKPOINTS = (0.2, 0.4, 0.6, 0.8, 1.0)


def parse_param(text: str) -> tuple[str, Any]:
    """Parse a ``KEY=VALUE`` pruner parameter; VALUE is a TOML literal (1, 0.5, true, inf, "x").

    A bare word that is not TOML (e.g. ``mode=fast``) is taken as a string.
    """
    key, sep, raw = text.partition("=")
    key, raw = key.strip(), raw.strip()
    if not sep or not key.isidentifier() or not raw:
        raise ConfigError(f"--param expects KEY=VALUE (e.g. exploration=0.5), got {text!r}")
    try:
        value = tomllib.loads(f"value = {raw}")["value"]
    except tomllib.TOMLDecodeError:
        if not raw.replace("-", "_").isidentifier():
            raise ConfigError(
                f"--param {key}: cannot read {raw!r}; use a number, true/false, inf or a word"
            ) from None
        value = raw
    if isinstance(value, (list, dict)):
        raise ConfigError(f"--param {key}: expected a single value, got {raw!r}")
    return key, value


def _check_number(name: str, value: Any, low: float, high: float, high_open: bool) -> None:
    if isinstance(value, bool) or not isinstance(value, (int, float)) or math.isnan(value):
        raise ConfigError(f"{name} must be a number, got {value!r}")
    if value < low or value > high or (high_open and value == high):
        interval = f"[{low:g}, {high:g}{')' if high_open else ']'}"
        raise ConfigError(f"{name} must be in {interval}, got {value!r}")


def _check_positive_int(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value <= 0:
        raise ConfigError(f"{name} must be a positive integer, got {value!r}")


@dataclass
class RunConfig:
    """Everything that determines one training run (plus where its data lives)."""

    dataset: str
    model: str
    pruner: str
    budget: Budget
    pruner_params: dict[str, Any] = field(default_factory=dict)
    pruner_label: str | None = None
    seed: int = 0
    batch_size: int = 128
    lr: float = 0.2
    momentum: float = 0.9
    weight_decay: float = 5e-4
    label_smoothing: float = 0.0
    lr_pct_start: float = WARMUP_FRACTION
    lr_div_factor: float = DIV_FACTOR
    lr_final_div_factor: float = FINAL_DIV_FACTOR
    cycle_momentum: bool = False
    """Cycle SGD momentum inversely to the LR (torch's OneCycleLR); else ``momentum`` is fixed."""
    base_momentum: float = BASE_MOMENTUM
    max_momentum: float = MAX_MOMENTUM
    grad_alignment: bool = False
    """Measure plan-vs-full-data gradient alignment at ``grad_alignment_checkpoints``."""
    grad_alignment_probe: int | None = None
    """Full-data gradient over a fixed seeded probe of this many samples (None: every sample)."""
    grad_alignment_checkpoints: tuple[float, ...] = DEFAULT_ALIGNMENT_CHECKPOINTS
    data_dir: str | None = None
    subset: int | None = None
    loader: str = "tensor"
    device: str = "auto"
    augment: bool = True
    accuracy_targets: tuple[float, ...] = DEFAULT_ACCURACY_TARGETS

    # ------------------------------------------------------------------ derived values
    @property
    def label(self) -> str:
        """The pruner label used in tags and run names (the pruner name unless a preset says)."""
        return self.pruner_label or self.pruner

    def target_prune_ratio(self) -> float:
        """The nominal prune ratio asked for: prune_ratio, 1 - a*b for OrderDP, 0 for full."""
        params = self.pruner_params
        if self.pruner == "full":
            return 0.0
        if "prune_ratio" in params:
            return float(params["prune_ratio"])
        if "exploration" in params and "exploitation" in params:
            return round(1.0 - float(params["exploration"]) * float(params["exploitation"]), 6)
        from prunebench.pruners import pruner_class

        default = inspect.signature(pruner_class(self.pruner).__init__).parameters.get(
            "prune_ratio"
        )
        if default is None or not isinstance(default.default, (int, float)):
            return 0.0
        return float(default.default)

    def pruner_kwargs(self) -> dict[str, Any]:
        """Keyword parameters for ``create_pruner`` (full's prune ratio of 0 is dropped)."""
        params = dict(self.pruner_params)
        if self.pruner == "full":
            params.pop("prune_ratio", None)
        return params

    def cell(self) -> str:
        """The tag naming this run's cell: dataset/model/pruner_label/target ratio (no seed)."""
        return f"{self.dataset}/{self.model}/{self.label}/{self.target_prune_ratio():g}"

    def run_name(self) -> str:
        """MLflow run name: ``<pruner_label>-p<ratio>-s<seed>``."""
        return f"{self.label}-p{self.target_prune_ratio():g}-s{self.seed}"

    def to_dict(self) -> dict[str, Any]:
        """The resolved configuration as plain JSON-able data (budget as its string)."""
        data = asdict(self)
        data["budget"] = str(self.budget)
        data["pruner_label"] = self.label
        data["pruner_params"] = dict(sorted(self.pruner_kwargs().items()))
        data["accuracy_targets"] = list(self.accuracy_targets)
        data["grad_alignment_checkpoints"] = list(self.grad_alignment_checkpoints)
        return data

    def config_hash(self) -> str:
        """sha256 (first 16 hex digits) of the resolved config, seed included, data_dir not."""
        data = self.to_dict()
        for key in _HASH_EXCLUDED:
            data.pop(key)
        defaults = RunConfig.__dataclass_fields__
        for key in _HASH_IF_CHANGED:
            default = defaults[key].default
            value = data[key]
            if value == (list(default) if isinstance(default, tuple) else default):
                data.pop(key)
            elif isinstance(value, (int, float)) and not isinstance(value, bool):
                data[key] = float(value)
            elif isinstance(value, list):
                data[key] = [float(v) for v in value]
        # Numbers hash by value, so prune_ratio=1 and prune_ratio=1.0 name the same run.
        data["pruner_params"] = {
            k: float(v) if isinstance(v, (int, float)) and not isinstance(v, bool) else v
            for k, v in data["pruner_params"].items()
        }
        data["budget"] = {"kind": self.budget.kind, "amount": float(self.budget.amount)}
        data["accuracy_targets"] = [float(t) for t in data["accuracy_targets"]]
        text = json.dumps(data, sort_keys=True, default=str, allow_nan=True)
        return hashlib.sha256(text.encode()).hexdigest()[:16]

    # ------------------------------------------------------------------ validation
    def validate(self) -> None:
        """Raise ConfigError (one sentence naming the fix) for any invalid value.

        Checks names, ranges, the data directory and device, and builds the pruner once for the
        training-set size so that its own parameter checks (e.g. q > s) run before any work.
        """
        from prunebench.bench.models import available_models
        from prunebench.datasets import available_datasets, get_spec
        from prunebench.pruners import available_pruners, create_pruner

        if self.dataset not in available_datasets():
            raise ConfigError(
                f"unknown dataset {self.dataset!r}; choose one of: "
                + ", ".join(available_datasets())
            )
        if self.model not in available_models():
            raise ConfigError(
                f"unknown model {self.model!r}; choose one of: " + ", ".join(available_models())
            )
        if self.pruner not in available_pruners():
            raise ConfigError(
                f"unknown pruner {self.pruner!r}; choose one of: " + ", ".join(available_pruners())
            )
        if not isinstance(self.budget, Budget):
            raise ConfigError(f"budget must be a Budget (see parse_budget), got {self.budget!r}")
        self.budget.validate()
        if isinstance(self.seed, bool) or not isinstance(self.seed, int) or self.seed < 0:
            raise ConfigError(f"seed must be an integer >= 0, got {self.seed!r}")
        _check_positive_int("batch size", self.batch_size)
        if (
            isinstance(self.lr, bool)
            or not isinstance(self.lr, (int, float))
            or not math.isfinite(self.lr)
            or self.lr <= 0
        ):
            raise ConfigError(f"learning rate must be a positive number, got {self.lr!r}")
        _check_number("momentum", self.momentum, 0.0, 1.0, high_open=True)
        _check_number("weight decay", self.weight_decay, 0.0, math.inf, high_open=True)
        _check_number("label smoothing", self.label_smoothing, 0.0, 1.0, high_open=True)
        self._validate_schedule()
        self._validate_alignment()
        if not isinstance(self.augment, bool):
            raise ConfigError(f"augment must be true or false, got {self.augment!r}")
        if not self.accuracy_targets:
            raise ConfigError("accuracy_targets needs at least one target in (0, 1]")
        for target in self.accuracy_targets:
            _check_number("accuracy target", target, 0.0, 1.0, high_open=False)
            if target == 0:
                raise ConfigError("accuracy targets must be in (0, 1], got 0")
        if self.loader not in LOADERS:
            raise ConfigError(
                f"unknown loader {self.loader!r}; choose one of: " + ", ".join(LOADERS)
            )
        self._validate_device()
        if self.data_dir is not None and not Path(self.data_dir).is_dir():
            raise ConfigError(
                f"data directory {self.data_dir} does not exist; pass an existing --data-dir"
            )
        spec = get_spec(self.dataset)
        train_size = spec.train_size
        if self.subset is not None:
            _check_positive_int("subset", self.subset)
            if self.subset > spec.train_size:
                raise ConfigError(
                    f"subset {self.subset} is larger than {self.dataset}'s training set "
                    f"({spec.train_size}); pass --subset <= {spec.train_size}"
                )
            train_size = self.subset
        if not isinstance(self.pruner_params, dict):
            raise ConfigError(f"pruner_params must be a dict, got {self.pruner_params!r}")
        ratio = self.pruner_params.get("prune_ratio")
        if ratio is not None:
            _check_number("prune ratio", ratio, 0.0, 1.0, high_open=True)
        if self.pruner == "full" and ratio not in (None, 0):
            raise ConfigError(
                f"the full pruner trains on all data, so its prune ratio must be 0, got {ratio!r}; "
                "choose another pruner to prune"
            )
        create_pruner(
            self.pruner,
            n=train_size,
            epochs=self.budget.pruner_epochs(train_size, self.target_prune_ratio()),
            seed=self.seed,
            **self.pruner_kwargs(),
        )

    def _validate_schedule(self) -> None:
        _check_number("lr_pct_start", self.lr_pct_start, 0.0, 1.0, high_open=True)
        if self.lr_pct_start == 0:
            raise ConfigError("lr_pct_start (the warm-up share) must be in (0, 1), got 0")
        for name in ("lr_div_factor", "lr_final_div_factor"):
            value = getattr(self, name)
            _check_number(name, value, 0.0, math.inf, high_open=True)
            if value == 0:
                raise ConfigError(f"{name} must be a positive number, got 0")
        if not isinstance(self.cycle_momentum, bool):
            raise ConfigError(f"cycle_momentum must be true or false, got {self.cycle_momentum!r}")
        _check_number("base_momentum", self.base_momentum, 0.0, 1.0, high_open=True)
        _check_number("max_momentum", self.max_momentum, 0.0, 1.0, high_open=True)
        if self.base_momentum > self.max_momentum:
            raise ConfigError(
                f"base_momentum {self.base_momentum} exceeds max_momentum {self.max_momentum}; "
                "swap them"
            )

    def _validate_alignment(self) -> None:
        if not isinstance(self.grad_alignment, bool):
            raise ConfigError(f"grad_alignment must be true or false, got {self.grad_alignment!r}")
        if self.grad_alignment_probe is not None:
            _check_positive_int("grad_alignment_probe", self.grad_alignment_probe)
        points = self.grad_alignment_checkpoints
        if not points:
            raise ConfigError("grad_alignment_checkpoints needs at least one progress in (0, 1]")
        for point in points:
            _check_number("grad alignment checkpoint", point, 0.0, 1.0, high_open=False)
            if point == 0:
                raise ConfigError("grad alignment checkpoints must be in (0, 1], got 0")
        if list(points) != sorted(set(points)):
            raise ConfigError(
                f"grad_alignment_checkpoints must increase strictly, got {list(points)}"
            )

    def _validate_device(self) -> None:
        if self.device in ("auto", "cpu"):
            return
        try:
            device = torch.device(self.device)
        except (RuntimeError, ValueError):
            raise ConfigError(
                f"unknown device {self.device!r}; use auto, cpu, cuda or cuda:N"
            ) from None
        if device.type != "cuda":
            raise ConfigError(f"unsupported device {self.device!r}; use auto, cpu, cuda or cuda:N")
        if not torch.cuda.is_available():
            raise ConfigError(
                f"device {self.device!r} was asked for but no CUDA device is available; "
                "use --device cpu"
            )
        if device.index is not None and device.index >= torch.cuda.device_count():
            raise ConfigError(
                f"device {self.device!r} does not exist ({torch.cuda.device_count()} CUDA "
                "devices); pick another index"
            )


def resolve_device(name: str) -> torch.device:
    """``auto`` -> cuda if available, else cpu; otherwise the named device."""
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(name)


def device_kind(device: torch.device) -> str:
    """What the run is timed on: the GPU's name (e.g. "NVIDIA H200") or "cpu"."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return "cpu"
