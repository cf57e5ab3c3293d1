"""One training run's configuration: a validated dataclass, hashed to name its checkpoint.

RunConfig is the one schema of a run: each field's default, help text, range check, preset type
and whether it is logged live in the field's metadata (:func:`setting`). The ``prunebench run``
flags (``prunebench.cli.run``), the preset keys and their defaults (``prunebench.suite.presets``)
and the logged MLflow parameters (``prunebench.bench.run``) are derived from it.
"""

from __future__ import annotations

import hashlib
import json
import math
import sys
from collections.abc import Callable
from dataclasses import MISSING, Field, asdict, dataclass, field, fields
from pathlib import Path
from typing import Any

import torch

from prunebench.bench.budgets import SAME_COMPUTE, TIME_FRACTION, Budget, parse_budget
from prunebench.bench.distributed import check_batch_size
from prunebench.bench.schedule import (
    BASE_MOMENTUM,
    DIV_FACTOR,
    FINAL_DIV_FACTOR,
    MAX_MOMENTUM,
    WARMUP_FRACTION,
)
from prunebench.datasets.build import BACKENDS as LOADERS
from prunebench.errors import ConfigError, UsageError
from prunebench.pruners import reference_pruner
from prunebench.record import PROGRESS_CHECKPOINTS

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - Python 3.10
    import tomli as tomllib

__all__ = ["LOADERS", "Budget", "RunConfig", "parse_budget", "parse_param"]

DEFAULT_ACCURACY_TARGETS = (0.5, 0.7, 0.8, 0.9, 0.95)
_HASH_EXCLUDED = ("data_dir", "time_budget_seconds", "same_compute_samples", "num_threads")
"""Fields left out of the config hash: where things are (data_dir), how many threads compute
(num_threads: a rerun with another count continues the same cell), and what a symbolic
``time-fraction`` or ``same-compute`` budget resolved to (the symbolic budget names the cell, so a
rerun that measures the reference runs again is the same cell)."""
DEFAULT_CPU_THREADS = 2
"""torch threads of a CPU run without --threads: a fixed number, not the machine's core count,
so a config computes the same numbers on any machine and under any number of suite workers."""
_HASH_WHEN_SET = (
    "eval_points",
    "matched_prune_ratio",
    "budget_multiple",
    "lr_pct_start",
    "lr_div_factor",
    "lr_final_div_factor",
    "cycle_momentum",
    "base_momentum",
    "max_momentum",
    "grad_alignment",
    "grad_alignment_probe",
    "grad_alignment_checkpoints",
    "nproc",
)
"""Fields added after runs were recorded, hashed only when not at their default, so that the
runs a store already holds keep their hash (and a suite does not train them again). nproc is
hashed (a 2-process run is another computation, with its own checkpoint: batch-norm statistics
are per process), but 1 hashes as before the field existed."""
DEFAULT_ALIGNMENT_CHECKPOINTS = PROGRESS_CHECKPOINTS


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


def _check_count(name: str, value: Any) -> None:
    if isinstance(value, bool) or not isinstance(value, int) or value < 0:
        raise ConfigError(f"{name} must be an integer >= 0, got {value!r}")


def _check_lr(name: str, value: Any) -> None:
    if (
        isinstance(value, bool)
        or not isinstance(value, (int, float))
        or not math.isfinite(value)
        or value <= 0
    ):
        raise ConfigError(f"{name} must be a positive number, got {value!r}")


def _check_fraction(name: str, value: Any) -> None:
    _check_number(name, value, 0.0, 1.0, high_open=True)


def _check_non_negative(name: str, value: Any) -> None:
    _check_number(name, value, 0.0, math.inf, high_open=True)


def _check_bool(name: str, value: Any) -> None:
    if not isinstance(value, bool):
        raise ConfigError(f"{name} must be true or false, got {value!r}")


def _check_open_fraction(name: str, value: Any) -> None:
    _check_number(name, value, 0.0, 1.0, high_open=True)
    if value == 0:
        raise ConfigError(f"{name} must be in (0, 1), got 0")


def _check_positive(name: str, value: Any) -> None:
    _check_lr(name, value)


def _check_checkpoints(name: str, value: Any) -> None:
    if not value:
        raise ConfigError(f"{name} needs at least one progress point in (0, 1]")
    for point in value:
        _check_number(f"{name} point", point, 0.0, 1.0, high_open=False)
        if point == 0:
            raise ConfigError(f"{name} points must be in (0, 1], got 0")
    if list(value) != sorted(set(value)):
        raise ConfigError(f"{name} must increase strictly, got {list(value)}")


def _check_loader(name: str, value: Any) -> None:
    if value not in LOADERS:
        raise ConfigError(f"unknown {name} {value!r}; choose one of: " + ", ".join(LOADERS))


def _check_targets(name: str, value: Any) -> None:
    if not value:
        raise ConfigError("accuracy_targets needs at least one target in (0, 1]")
    for target in value:
        _check_number("accuracy target", target, 0.0, 1.0, high_open=False)
        if target == 0:
            raise ConfigError("accuracy targets must be in (0, 1], got 0")


def setting(
    default: Any = MISSING,
    *,
    help: str,
    label: str | None = None,
    check: Callable[[str, Any], None] | None = None,
    preset: tuple[type, ...] | None = None,
    cli: str | None = "",
    cli_default: Any = None,
    flag: str | None = None,
    log: bool = True,
) -> Any:
    """A RunConfig field and its schema facts (everything else derives from these).

    ``label``: its name in error messages; ``check(label, value)`` raises ConfigError when the
    value is out of range (None values are not checked); ``preset``: the TOML types a suite
    preset may set it with (None: not a shared preset key); ``cli``: the group of its
    ``prunebench run`` flag (None: no generated flag); ``cli_default``: the flag's default for
    a field the dataclass requires; ``flag``: the flag's name (default: --field-name);
    ``log``: logged as an MLflow parameter.
    """
    metadata = {
        "help": help,
        "label": label,
        "check": check,
        "preset": preset,
        "cli": cli,
        "cli_default": cli_default,
        "flag": flag,
        "log": log,
    }
    if isinstance(default, (dict, list)):
        return field(default_factory=lambda: type(default)(default), metadata=metadata)
    return field(default=default, metadata=metadata)


@dataclass
class RunConfig:
    """Everything that determines one training run (plus where its data lives)."""

    dataset: str = setting(
        help="e.g. cifar10, fashion_mnist, synthetic, npz:PATH, folder:PATH[@SIZE]",
        cli="what to train",
    )
    model: str = setting(help="default: resnet18", cli="what to train", cli_default="resnet18")
    pruner: str = setting(
        help=f"default: {reference_pruner()} (no pruning)",
        cli="what to train",
        cli_default=reference_pruner(),
    )
    budget: Budget = setting(
        help="epochs:N | samples:N (forward+backward) | time:SECONDS", cli="what to train"
    )
    pruner_params: dict[str, Any] = setting({}, help="the pruner's parameters", cli=None, log=False)
    pruner_label: str | None = setting(
        None,
        help="pruner label for tags and reports (default: the pruner)",
        cli="what to train",
        flag="--label",
    )
    seed: int = setting(0, help="the run's seed", check=_check_count, cli="what to train")
    batch_size: int = setting(
        128,
        help="training batch size",
        label="batch size",
        check=_check_positive_int,
        preset=(int,),
        cli="optimization",
    )
    lr: float = setting(
        0.2,
        help="max LR of the OneCycle schedule",
        label="learning rate",
        check=_check_lr,
        preset=(int, float),
        cli="optimization",
    )
    momentum: float = setting(
        0.9, help="SGD momentum", check=_check_fraction, preset=(int, float), cli="optimization"
    )
    weight_decay: float = setting(
        5e-4,
        help="SGD weight decay",
        label="weight decay",
        check=_check_non_negative,
        preset=(int, float),
        cli="optimization",
    )
    label_smoothing: float = setting(
        0.0,
        help="cross-entropy label smoothing",
        label="label smoothing",
        check=_check_fraction,
        preset=(int, float),
        cli="optimization",
    )
    lr_pct_start: float = setting(
        WARMUP_FRACTION,
        help="warm-up share of the OneCycle schedule (torch's pct_start)",
        check=_check_open_fraction,
        preset=(int, float),
        cli="optimization",
    )
    lr_div_factor: float = setting(
        DIV_FACTOR,
        help="initial LR = lr / lr_div_factor (torch's div_factor)",
        check=_check_positive,
        preset=(int, float),
        cli="optimization",
    )
    lr_final_div_factor: float = setting(
        FINAL_DIV_FACTOR,
        help="final LR = initial LR / lr_final_div_factor (torch's final_div_factor)",
        check=_check_positive,
        preset=(int, float),
        cli="optimization",
    )
    cycle_momentum: bool = setting(
        False,
        help="cycle SGD momentum inversely to the LR, as torch's OneCycleLR (else fixed)",
        check=_check_bool,
        preset=(bool,),
        cli="optimization",
    )
    base_momentum: float = setting(
        BASE_MOMENTUM,
        help="lowest cycled momentum, at the LR peak (with --cycle-momentum)",
        check=_check_fraction,
        preset=(int, float),
        cli="optimization",
    )
    max_momentum: float = setting(
        MAX_MOMENTUM,
        help="highest cycled momentum, at the start and end (with --cycle-momentum)",
        check=_check_fraction,
        preset=(int, float),
        cli="optimization",
    )
    grad_alignment: bool = setting(
        False,
        help="measure the plan's gradient against the full-data gradient at progress checkpoints",
        check=_check_bool,
        preset=(bool,),
        cli="diagnostics",
    )
    grad_alignment_probe: int | None = setting(
        None,
        help="full-data gradient over this many seeded samples (default: every sample)",
        check=_check_positive_int,
        preset=(int,),
        cli="diagnostics",
    )
    grad_alignment_checkpoints: tuple[float, ...] = setting(
        DEFAULT_ALIGNMENT_CHECKPOINTS,
        help="comma-separated training progress points in (0, 1] to measure at "
        "(default: %(default)s)",
        check=_check_checkpoints,
        preset=(list,),
        cli="diagnostics",
    )
    data_dir: str | None = setting(
        None,
        help="where the dataset's files are (or are downloaded to)",
        preset=(str,),
        cli="data and device",
        log=False,
    )
    subset: int | None = setting(
        None,
        help="train on this many training samples",
        check=_check_positive_int,
        preset=(int,),
        cli="data and device",
    )
    loader: str = setting(
        "tensor",
        help=f"one of {', '.join(LOADERS)}",
        check=_check_loader,
        preset=(str,),
        cli="data and device",
    )
    device: str = setting(
        "auto",
        help="auto (cuda if available), cpu, cuda[:N]",
        preset=(str,),
        cli="data and device",
    )
    nproc: int = setting(
        1,
        help="train data-parallel on N processes, one device each (GPUs: NCCL, CPU: gloo); the "
        "batch size is the global one and must divide by N. Under torchrun: the total number of "
        "processes (left out: torchrun's)",
        label="number of processes",
        check=_check_positive_int,
        preset=(int,),
        cli="data and device",
    )
    augment: bool = setting(
        True,
        help="train without augmentation",
        check=_check_bool,
        preset=(bool,),
        cli="optimization",
        flag="--no-augment",
    )
    eval_points: int = setting(
        0,
        help="evaluate at this many points spread evenly over the budget's full-data sample "
        "passes (seconds under time budgets), the same for every pruner, and at the end "
        "(0: every full-data epoch of passes; 20 points under time budgets); time-to-accuracy "
        "has this resolution",
        label="eval points",
        check=_check_count,
        preset=(int,),
        cli="optimization",
    )
    matched_prune_ratio: float | None = setting(
        None,
        help="of a same-compute full-data run: the target prune ratio whose passes it trains "
        "(set by the suite)",
        label="matched prune ratio",
        check=_check_fraction,
        cli=None,
        log=False,  # logged only when set (run.run_params)
    )
    budget_multiple: float | None = setting(
        None,
        help="of a saturation run: full data on this multiple of the suite's budget, to measure "
        "how much more training would still gain (set by the suite)",
        label="budget multiple",
        check=_check_lr,  # a positive finite number
        cli=None,
        log=False,  # logged only when set (run.run_params)
    )
    time_budget_seconds: float | None = setting(
        None,
        help="the training seconds a time-fraction budget resolves to (set by the suite)",
        label="time budget seconds",
        check=_check_lr,  # a positive finite number
        cli=None,
        log=False,  # logged only when set (run.run_params)
    )
    same_compute_samples: int | None = setting(
        None,
        help="the sample passes a same-compute budget resolves to (set by the suite)",
        label="same-compute samples",
        check=_check_positive_int,
        cli=None,
        log=False,  # logged only when set (run.run_params)
    )
    accuracy_targets: tuple[float, ...] = setting(
        DEFAULT_ACCURACY_TARGETS,
        help="comma-separated test accuracies for time-to-accuracy (default: %(default)s)",
        check=_check_targets,
        cli="optimization",
    )
    # The thread count changes floating-point reduction order, so it is pinned per run, never
    # per suite worker; the count actually used is logged by the run (param num_threads).
    num_threads: int | None = setting(
        None,
        help=f"torch CPU threads of each of the run's processes (default: {DEFAULT_CPU_THREADS} "
        "on CPU, torch's own on CUDA); CPU results depend on it",
        label="thread count",
        check=_check_positive_int,
        preset=(int,),
        cli="data and device",
        flag="--threads",
        log=False,
    )

    @staticmethod
    def schema() -> tuple[Field, ...]:
        """The fields of a run's configuration, with their schema facts in ``metadata``."""
        return fields(RunConfig)

    @staticmethod
    def preset_keys() -> dict[str, tuple[tuple[type, ...], Any]]:
        """Preset key -> (accepted TOML types, default): the settings a suite's cells share."""
        return {
            f.name: (f.metadata["preset"], f.default)
            for f in fields(RunConfig)
            if f.metadata["preset"] is not None
        }

    # ------------------------------------------------------------------ derived values
    @property
    def label(self) -> str:
        """The pruner label used in tags and run names (the pruner name unless a preset says)."""
        return self.pruner_label or self.pruner

    def target_prune_ratio(self) -> float:
        """The nominal prune ratio asked for, as the pruner class computes it from its params."""
        from prunebench.pruners import pruner_class

        return pruner_class(self.pruner).target_prune_ratio(self.pruner_params)

    def comparison(self) -> str:
        """Which comparison the run belongs to (record.COMPARISONS): equal time for a
        time-fraction budget, same compute for a full-data run matching a prune ratio, else main."""
        from prunebench import record

        if self.budget.kind == TIME_FRACTION:
            return record.COMPARISON_EQUAL_TIME
        if self.matched_prune_ratio is not None:
            return record.COMPARISON_SAME_COMPUTE
        if self.budget_multiple is not None:
            return record.COMPARISON_SATURATION
        return record.COMPARISON_MAIN

    def training_budget(self) -> Budget:
        """The budget the trainer follows: the budget itself, a time-fraction resolved to
        ``time_budget_seconds``, or a same-compute budget resolved to ``same_compute_samples``
        (UsageError while unresolved)."""
        if not self.budget.is_symbolic:
            return self.budget
        if self.budget.kind == SAME_COMPUTE:
            if self.same_compute_samples is None:
                raise UsageError(
                    f"budget {self.budget} is the mean sample passes of a suite's pruned runs; "
                    "run it with `prunebench suite`, or pass --budget samples:N"
                )
            return Budget("samples", int(self.same_compute_samples))
        if self.time_budget_seconds is None:
            raise UsageError(
                f"budget {self.budget} is relative to the full-data runs' training time of a "
                "suite; run it with `prunebench suite`, or pass --budget time:SECONDS"
            )
        return Budget("time", float(self.time_budget_seconds))

    def pruner_kwargs(self) -> dict[str, Any]:
        """Keyword parameters for ``create_pruner`` (the reference's prune ratio 0 is dropped)."""
        from prunebench.pruners import pruner_class

        params = dict(self.pruner_params)
        if pruner_class(self.pruner).is_reference:
            params.pop("prune_ratio", None)
        return params

    def cell(self) -> str:
        """The tag naming this run's cell: dataset/model/pruner_label/target ratio (no seed).

        Not the process count either: the cell names what is compared (a pruner at a ratio on a
        task), and runs on 1 and on 8 devices of the same cell are the same experiment computed
        differently; ``nproc`` is in the config hash and logged as ``device_count``/``nproc``.
        """
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

    def logged_params(self) -> dict[str, Any]:
        """The fields logged as MLflow parameters (schema ``log``), as their logged values."""
        shown = {
            "pruner_label": self.label,
            "budget": str(self.budget),
            "accuracy_targets": ",".join(f"{t:.2f}" for t in self.accuracy_targets),
            "grad_alignment_checkpoints": ",".join(
                f"{c:g}" for c in self.grad_alignment_checkpoints
            ),
        }
        return {
            spec.name: shown.get(spec.name, getattr(self, spec.name))
            for spec in fields(self)
            if spec.metadata["log"]
        }

    def config_hash(self) -> str:
        """sha256 (first 16 hex digits) of the resolved config, seed included, data_dir not."""
        data = self.to_dict()
        for key in _HASH_EXCLUDED:
            data.pop(key)
        defaults = RunConfig.__dataclass_fields__
        for key in _HASH_WHEN_SET:
            default = defaults[key].default
            value = data[key]
            if value == (list(default) if isinstance(default, tuple) else default):
                data.pop(key)
            elif isinstance(default, float):  # 0.3 and 3e-1 (or an int 1) hash alike
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
        from prunebench.datasets import get_spec
        from prunebench.pruners import available_pruners, create_pruner, pruner_class

        get_spec(self.dataset)  # ConfigError naming the valid datasets (or what data is missing)
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
        if self.same_compute_samples is not None and self.budget.kind != SAME_COMPUTE:
            raise ConfigError(
                f"same_compute_samples is for a same-compute budget, not {self.budget}; drop it"
            )
        if self.budget.kind == SAME_COMPUTE and self.matched_prune_ratio is None:
            raise ConfigError(f"budget {self.budget} needs matched_prune_ratio (set by the suite)")
        if self.time_budget_seconds is not None and self.budget.kind != TIME_FRACTION:
            raise ConfigError(
                f"time_budget_seconds is for a time-fraction budget, not {self.budget}; drop it"
            )
        if self.matched_prune_ratio is not None and not pruner_class(self.pruner).is_reference:
            raise ConfigError(
                "matched_prune_ratio is for a full-data run matching a prune ratio; drop it"
            )
        for spec in fields(self):  # each field's own range check (schema metadata)
            value = getattr(self, spec.name)
            optional = value is None and spec.default is None  # e.g. no subset
            if spec.metadata["check"] is not None and not optional:
                spec.metadata["check"](spec.metadata["label"] or spec.name, value)
        check_batch_size(self.batch_size, self.nproc)  # the per-process batch is batch / nproc
        if self.nproc > 1 and pruner_class(self.pruner).selects_per_step:
            raise ConfigError(
                f"pruner {self.pruner!r} selects per step and runs on one process; drop --nproc"
            )
        if self.base_momentum > self.max_momentum:
            raise ConfigError(
                f"base_momentum {self.base_momentum} exceeds max_momentum {self.max_momentum}; "
                "swap them"
            )
        self._validate_device()
        if self.data_dir is not None:
            # A missing folder is fine (downloads and caches create it); a file in the way is not.
            existing = Path(self.data_dir)
            while not existing.exists() and existing != existing.parent:
                existing = existing.parent
            if not existing.is_dir():
                raise ConfigError(
                    f"data directory {self.data_dir}: {existing} is not a directory; pass a "
                    "folder as --data-dir"
                )
        spec = get_spec(self.dataset)
        train_size = spec.train_size
        if self.subset is not None:
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
        if pruner_class(self.pruner).is_reference and ratio not in (None, 0):
            raise ConfigError(
                f"the {self.pruner} pruner trains on all data, so its prune ratio must be 0, got "
                f"{ratio!r}; choose another pruner to prune"
            )
        create_pruner(
            self.pruner,
            n=train_size,
            epochs=self.budget.pruner_epochs(train_size, self.target_prune_ratio()),
            seed=self.seed,
            **self.pruner_kwargs(),
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


def run_threads(cfg: RunConfig, device: torch.device) -> int:
    """The torch thread count a run pins: its setting, else DEFAULT_CPU_THREADS on CPU.

    On CUDA the arithmetic runs on the GPU, so torch's own host default is kept.
    """
    if cfg.num_threads is not None:
        return cfg.num_threads
    return DEFAULT_CPU_THREADS if device.type == "cpu" else torch.get_num_threads()


def device_kind(device: torch.device) -> str:
    """What the run is timed on: the GPU's name (e.g. "NVIDIA H200") or "cpu"."""
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    return "cpu"
