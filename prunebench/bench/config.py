"""One training run's configuration: the RunConfig fields, each with its schema facts.

RunConfig is the one schema of a run: each field's default, help text, range check, preset type,
CLI flag, and its hash and log policy live in the field's metadata (:func:`~.settings.setting`).
The ``prunebench run`` flags (``prunebench.cli.run``), the preset keys and their defaults
(``prunebench.suite.presets``), the config hash and the logged MLflow parameters
(``identity.py``) are derived from it. Cross-registry validation is ``config_checks.py``; the
values a run derives from its config, computed once, are ``resolve.py``. Importing this module
imports no torch, MLflow or Optuna (``prunebench --help`` builds its flags from it).
"""

from __future__ import annotations

from dataclasses import Field, dataclass, fields
from typing import Any

from prunebench.bench import identity
from prunebench.bench.budgets import SAME_COMPUTE, TIME_FRACTION, Budget, parse_budget
from prunebench.bench.devices import DEFAULT_CPU_THREADS
from prunebench.bench.schedule import (
    BASE_MOMENTUM,
    DIV_FACTOR,
    FINAL_DIV_FACTOR,
    MAX_MOMENTUM,
    WARMUP_FRACTION,
)
from prunebench.bench.settings import (
    HASHED_WHEN_SET,
    LOGGED_WHEN_SET,
    NOT_HASHED,
    NOT_LOGGED,
    check_bool,
    check_checkpoints,
    check_count,
    check_fraction,
    check_non_negative,
    check_open_fraction,
    check_positive,
    check_positive_int,
    check_targets,
    floats,
    number_values,
    parse_param,
    setting,
)
from prunebench.errors import ConfigError, UsageError
from prunebench.record import PROGRESS_CHECKPOINTS

__all__ = ["Budget", "RunConfig", "parse_budget", "parse_param"]

DEFAULT_ACCURACY_TARGETS = (0.5, 0.7, 0.8, 0.9, 0.95)
DEFAULT_ALIGNMENT_CHECKPOINTS = PROGRESS_CHECKPOINTS


def _reference_pruner() -> str:
    # The pruner registry imports torch: read when a flag is shown or parsed, not at import.
    from prunebench.pruners import reference_pruner

    return reference_pruner()


def _loaders() -> tuple[str, ...]:
    from prunebench.datasets.build import BACKENDS

    return BACKENDS


def _check_loader(name: str, value: Any) -> None:
    if value not in _loaders():
        raise ConfigError(f"unknown {name} {value!r}; choose one of: " + ", ".join(_loaders()))


def _hashed_budget(text: str) -> dict[str, Any]:
    """A budget's hashed form: its kind and amount as a float (epochs:2 and epochs:2.0 alike)."""
    kind, _, amount = text.rpartition(":")
    return {"kind": kind, "amount": float(amount)}


@dataclass
class RunConfig:
    """Everything that determines one training run (plus where its data lives)."""

    dataset: str = setting(
        help="e.g. cifar10, fashion_mnist, synthetic, npz:PATH, folder:PATH[@SIZE]",
        cli="what to train",
    )
    model: str = setting(help="default: resnet18", cli="what to train", cli_default="resnet18")
    pruner: str = setting(
        help=lambda: f"default: {_reference_pruner()} (no pruning)",
        cli="what to train",
        cli_default=_reference_pruner,
    )
    budget: Budget = setting(
        help="epochs:N | samples:N (forward+backward) | time:SECONDS",
        cli="what to train",
        hash_as=_hashed_budget,
    )
    pruner_params: dict[str, Any] = setting(
        {}, help="the pruner's parameters", cli=None, log=NOT_LOGGED, hash_as=number_values
    )
    pruner_label: str | None = setting(
        None,
        help="pruner label for tags and reports (default: the pruner)",
        cli="what to train",
        flag="--label",
    )
    seed: int = setting(0, help="the run's seed", check=check_count, cli="what to train")
    batch_size: int = setting(
        128,
        help="training batch size",
        label="batch size",
        check=check_positive_int,
        preset=(int,),
        cli="optimization",
    )
    lr: float = setting(
        0.2,
        help="max LR of the OneCycle schedule",
        label="learning rate",
        check=check_positive,
        preset=(int, float),
        cli="optimization",
    )
    momentum: float = setting(
        0.9, help="SGD momentum", check=check_fraction, preset=(int, float), cli="optimization"
    )
    weight_decay: float = setting(
        5e-4,
        help="SGD weight decay",
        label="weight decay",
        check=check_non_negative,
        preset=(int, float),
        cli="optimization",
    )
    label_smoothing: float = setting(
        0.0,
        help="cross-entropy label smoothing",
        label="label smoothing",
        check=check_fraction,
        preset=(int, float),
        cli="optimization",
    )
    lr_pct_start: float = setting(
        WARMUP_FRACTION,
        help="warm-up share of the OneCycle schedule (torch's pct_start)",
        check=check_open_fraction,
        preset=(int, float),
        cli="optimization",
        hash=HASHED_WHEN_SET,
        hash_as=float,
    )
    lr_div_factor: float = setting(
        DIV_FACTOR,
        help="initial LR = lr / lr_div_factor (torch's div_factor)",
        check=check_positive,
        preset=(int, float),
        cli="optimization",
        hash=HASHED_WHEN_SET,
        hash_as=float,
    )
    lr_final_div_factor: float = setting(
        FINAL_DIV_FACTOR,
        help="final LR = initial LR / lr_final_div_factor (torch's final_div_factor)",
        check=check_positive,
        preset=(int, float),
        cli="optimization",
        hash=HASHED_WHEN_SET,
        hash_as=float,
    )
    cycle_momentum: bool = setting(
        False,
        help="cycle SGD momentum inversely to the LR, as torch's OneCycleLR (else fixed)",
        check=check_bool,
        preset=(bool,),
        cli="optimization",
        hash=HASHED_WHEN_SET,
    )
    base_momentum: float = setting(
        BASE_MOMENTUM,
        help="lowest cycled momentum, at the LR peak (with --cycle-momentum)",
        check=check_fraction,
        preset=(int, float),
        cli="optimization",
        hash=HASHED_WHEN_SET,
        hash_as=float,
    )
    max_momentum: float = setting(
        MAX_MOMENTUM,
        help="highest cycled momentum, at the start and end (with --cycle-momentum)",
        check=check_fraction,
        preset=(int, float),
        cli="optimization",
        hash=HASHED_WHEN_SET,
        hash_as=float,
    )
    grad_alignment: bool = setting(
        False,
        help="measure the plan's gradient against the full-data gradient at progress checkpoints",
        check=check_bool,
        preset=(bool,),
        cli="diagnostics",
        hash=HASHED_WHEN_SET,
    )
    grad_alignment_probe: int | None = setting(
        None,
        help="full-data gradient over this many seeded samples (default: every sample)",
        check=check_positive_int,
        preset=(int,),
        cli="diagnostics",
        # Logged with the trainer's params, resolved (None means every sample).
        log=NOT_LOGGED,
        hash=HASHED_WHEN_SET,
    )
    grad_alignment_checkpoints: tuple[float, ...] = setting(
        DEFAULT_ALIGNMENT_CHECKPOINTS,
        help="comma-separated training progress points in (0, 1] to measure at "
        "(default: %(default)s)",
        check=check_checkpoints,
        preset=(list,),
        cli="diagnostics",
        log_as=lambda points: ",".join(f"{point:g}" for point in points),
        hash=HASHED_WHEN_SET,
        hash_as=floats,
    )
    data_dir: str | None = setting(
        None,
        help="where the dataset's files are (or are downloaded to)",
        preset=(str,),
        cli="data and device",
        log=NOT_LOGGED,
        hash=NOT_HASHED,
    )
    subset: int | None = setting(
        None,
        help="train on this many training samples",
        check=check_positive_int,
        preset=(int,),
        cli="data and device",
    )
    loader: str = setting(
        "tensor",
        help=lambda: f"one of {', '.join(_loaders())}",
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
    # nproc is hashed when set: a 2-process run is another computation, with its own checkpoint
    # (batch-norm statistics are per process), but 1 hashes as before the field existed.
    nproc: int = setting(
        1,
        help="train data-parallel on N processes, one device each (GPUs: NCCL, CPU: gloo); the "
        "batch size is the global one and must divide by N. Under torchrun: the total number of "
        "processes (left out: torchrun's)",
        label="number of processes",
        check=check_positive_int,
        preset=(int,),
        cli="data and device",
        hash=HASHED_WHEN_SET,
    )
    augment: bool = setting(
        True,
        help="train without augmentation",
        check=check_bool,
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
        check=check_count,
        preset=(int,),
        cli="optimization",
        hash=HASHED_WHEN_SET,
    )
    matched_prune_ratio: float | None = setting(
        None,
        help="of a same-compute full-data run: the target prune ratio whose passes it trains "
        "(set by the suite)",
        label="matched prune ratio",
        check=check_fraction,
        cli=None,
        log=LOGGED_WHEN_SET,
        hash=HASHED_WHEN_SET,
    )
    budget_multiple: float | None = setting(
        None,
        help="of a saturation run: full data on this multiple of the suite's budget, to measure "
        "how much more training would still gain (set by the suite)",
        label="budget multiple",
        check=check_positive,  # a positive finite number
        cli=None,
        log=LOGGED_WHEN_SET,
        hash=HASHED_WHEN_SET,
    )
    time_budget_seconds: float | None = setting(
        None,
        help="the training seconds a time-fraction budget resolves to (set by the suite)",
        label="time budget seconds",
        check=check_positive,  # a positive finite number
        cli=None,
        log=NOT_LOGGED,  # logged as the seconds trained (run_params.config_params)
        hash=NOT_HASHED,  # the symbolic budget names the cell; a rerun measures it again
    )
    same_compute_samples: int | None = setting(
        None,
        help="the sample passes a same-compute budget resolves to (set by the suite)",
        label="same-compute samples",
        check=check_positive_int,
        cli=None,
        log=NOT_LOGGED,
        hash=NOT_HASHED,  # the symbolic budget names the cell; a rerun measures it again
    )
    accuracy_targets: tuple[float, ...] = setting(
        DEFAULT_ACCURACY_TARGETS,
        help="comma-separated test accuracies for time-to-accuracy (default: %(default)s)",
        check=check_targets,
        cli="optimization",
        log_as=lambda targets: ",".join(f"{target:.2f}" for target in targets),
        hash_as=floats,
    )
    # The thread count changes floating-point reduction order, so it is pinned per run, never
    # per suite worker; the count actually used is logged by the run (param num_threads).
    num_threads: int | None = setting(
        None,
        help=f"torch CPU threads of each of the run's processes (default: {DEFAULT_CPU_THREADS} "
        "on CPU, torch's own on CUDA); CPU results depend on it",
        label="thread count",
        check=check_positive_int,
        preset=(int,),
        cli="data and device",
        flag="--threads",
        log=NOT_LOGGED,  # the count actually used is logged by the run
        hash=NOT_HASHED,  # a rerun with another count continues the same cell
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

    # ------------------------------------------------------------------ identity (identity.py)
    def cell(self) -> str:
        """The tag naming this run's cell: dataset/model/pruner_label/target ratio (no seed)."""
        return identity.cell(self, self.target_prune_ratio())

    def run_name(self) -> str:
        """MLflow run name: ``<pruner_label>-p<ratio>-s<seed>``."""
        return identity.run_name(self, self.target_prune_ratio())

    def to_dict(self) -> dict[str, Any]:
        """The resolved configuration as plain JSON-able data (budget as its string)."""
        return identity.plain_values(self, self.pruner_kwargs())

    def logged_params(self) -> dict[str, Any]:
        """The fields logged as MLflow parameters (schema ``log``), as their logged values."""
        return identity.logged_params(fields(self), self.to_dict())

    def config_hash(self) -> str:
        """sha256 (first 16 hex digits) of the resolved config, seed included, data_dir not."""
        return identity.config_hash(fields(self), self.to_dict())

    def validate(self) -> None:
        """Raise ConfigError (one sentence naming the fix) for any invalid value
        (config_checks.py; the pruner is built once for its own parameter checks)."""
        from prunebench.bench.config_checks import validate

        validate(self)
