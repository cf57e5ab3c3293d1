"""``prunebench run``: one training run of one pruner under one budget."""

from __future__ import annotations

import argparse
import dataclasses
import os
import sys
from dataclasses import MISSING, Field

from prunebench import interrupts, record
from prunebench.bench.budgets import parse_budget
from prunebench.bench.config import RunConfig, parse_param
from prunebench.bench.schedule import PUBLIC_RECIPE
from prunebench.bench.settings import help_text
from prunebench.bench.system_metrics import SUITE_SYSTEM_METRICS_INTERVAL_S
from prunebench.cli.main import SUMMARIES, configure_logging
from prunebench.errors import ConfigError
from prunebench.mlflow_store import TRACKING_URI_HELP
from prunebench.pruners import available_pruners
from prunebench.record import DEFAULT_CHECKPOINT_DIR, DEFAULT_EXPERIMENT

CONTINUE_HINT = (
    "the run is recorded KILLED; rerun the same command with --resume to continue from its last "
    "checkpoint"
)


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``run`` on the top-level parser's ``subparsers``."""
    parser = subparsers.add_parser(
        "run",
        help=SUMMARIES["run"],
        description=(
            "Train one model with one pruner under an epochs, samples or time budget, tracked "
            "in MLflow and checkpointed every epoch."
        ),
    )
    groups: dict[str, argparse._ArgumentGroup] = {}
    for spec in RunConfig.schema():  # one flag per RunConfig field, from its schema
        name = spec.metadata["cli"]
        if name is None:
            continue
        if name not in groups:
            groups[name] = parser.add_argument_group(name)
        _add_flag(groups[name], spec)
        if spec.name == "pruner":
            _add_pruner_params(groups[name])
    groups["optimization"].add_argument(
        "--public-recipe",
        action="store_true",
        help="the public OrderDP/InfoBatch recipe, as the paper presets: "
        + ", ".join(f"{key}={value:g}" for key, value in PUBLIC_RECIPE.items())
        + " (flags given explicitly win)",
    )
    out = parser.add_argument_group("tracking")
    out.add_argument("--tracking-uri", metavar="URI", default=None, help=TRACKING_URI_HELP)
    out.add_argument("--experiment", default=DEFAULT_EXPERIMENT)
    out.add_argument("--checkpoint-dir", default=DEFAULT_CHECKPOINT_DIR)
    out.add_argument(
        "--resume", action="store_true", help="continue this config's checkpoint and MLflow run"
    )
    out.add_argument("--quiet", action="store_true", help="no progress bar or per-epoch lines")
    out.add_argument(
        "--system-metrics",
        type=float,
        default=SUITE_SYSTEM_METRICS_INTERVAL_S,
        metavar="SECONDS",
        help="sample MLflow system metrics (CPU, memory, GPU) every SECONDS, as suite cells do "
        "(0: off; default %(default)g)",
    )
    parser.set_defaults(execute=execute, continue_hint=CONTINUE_HINT)
    return parser


def _add_flag(group: argparse._ArgumentGroup, spec: Field) -> None:
    """The ``run`` flag of one RunConfig field: name, type, default and help from its schema."""
    meta = spec.metadata
    flag = meta["flag"] or "--" + spec.name.replace("_", "-")
    default = spec.default if spec.default is not MISSING else meta["cli_default"]
    if callable(default):  # a registry's name (e.g. the reference pruner): read when parsed
        default = None
    if isinstance(default, bool):  # a switch away from the default
        action = "store_false" if default else "store_true"
        # None when not given, so that --public-recipe can tell a default from a choice.
        group.add_argument(flag, dest=spec.name, action=action, default=None, help=help_text(spec))
        return
    if isinstance(default, tuple):
        default = ",".join(f"{value:g}" for value in default)
    if spec.name in PUBLIC_RECIPE:
        default = None  # filled in by config_from_args: the recipe's value or the schema's
    kind = spec.type.split(" ")[0] if isinstance(spec.type, str) else spec.type.__name__
    group.add_argument(
        flag,
        dest=spec.name,
        type={"int": int, "float": float}.get(kind, str),
        default=default,
        required=spec.default is MISSING and meta["cli_default"] is None,
        help=help_text(spec),
    )


def _add_pruner_params(group: argparse._ArgumentGroup) -> None:
    group.description = "pruners (--pruner): " + ", ".join(available_pruners())
    group.add_argument("--prune-ratio", type=float, help="the pruner's prune_ratio, in [0, 1)")
    group.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a pruner parameter, repeatable (e.g. --param exploration=0.5); VALUE: a number, "
        "true/false, inf or a word",
    )


def _numbers(flag: str, text: str) -> tuple[float, ...]:
    try:
        return tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ConfigError(
            f"{flag} expects comma-separated numbers in (0, 1], got {text!r}"
        ) from None


def _value(args: argparse.Namespace, spec: Field) -> object:
    """A field's value from the arguments: the flag's if given, else the recipe's or default."""
    value = getattr(args, spec.name)
    if value is None and callable(spec.metadata["cli_default"]):
        value = spec.metadata["cli_default"]()
    if value is None and spec.default is not MISSING and spec.default is not None:
        default = spec.default
        value = PUBLIC_RECIPE.get(spec.name, default) if args.public_recipe else default
    if spec.name == "budget":
        return parse_budget(value)
    if isinstance(value, str) and isinstance(spec.default, tuple):
        return _numbers("--" + spec.name.replace("_", "-"), value)
    return value


def config_from_args(args: argparse.Namespace) -> RunConfig:
    """The validated RunConfig the ``run`` arguments describe."""
    params: dict[str, object] = {}
    for text in args.param:
        key, value = parse_param(text)
        if key in params:
            raise ConfigError(f"--param {key} is given twice; give each parameter once")
        params[key] = value
    if args.prune_ratio is not None:
        if "prune_ratio" in params:
            raise ConfigError("give the prune ratio once: --prune-ratio or --param prune_ratio")
        params["prune_ratio"] = args.prune_ratio
    settings = {
        spec.name: _value(args, spec)
        for spec in RunConfig.schema()
        if spec.metadata["cli"] is not None
    }
    cfg = RunConfig(pruner_params=params, **settings)
    cfg.validate()
    return cfg


def execute(args: argparse.Namespace) -> int:
    """Validate, train, print a one-line result; 0 finished, 1 failed."""
    from prunebench.bench.launch import environment_world_size
    from prunebench.bench.run import train_run  # heavy: imported when a run starts

    if not args.system_metrics >= 0:
        raise ConfigError(f"--system-metrics must be >= 0 seconds, got {args.system_metrics}")
    cfg = config_from_args(args)
    world = environment_world_size()
    if world > 1 and cfg.nproc == 1:  # under torchrun, --nproc left out: torchrun's processes
        cfg = dataclasses.replace(cfg, nproc=world)
        cfg.validate()
    rank = int(os.environ.get("RANK", "0"))
    configure_logging(args.quiet or rank != 0)  # one process of a torchrun job reports
    result = train_run(
        cfg,
        tracking_uri=args.tracking_uri,
        experiment=args.experiment,
        checkpoint_dir=args.checkpoint_dir,
        resume=args.resume,
        quiet=args.quiet,
        system_metrics_s=args.system_metrics or None,
    )
    if (signum := interrupts.received()) is not None:
        # The signal came after training was complete: the record was closed first.
        name = interrupts.signal_name(128 + signum)
        print(
            f"prunebench: run {result.run_id} {result.status.lower()} before the {name} took "
            "effect; its record is complete, nothing to continue",
            file=sys.stderr,
        )
        return 128 + signum
    if rank != 0:
        return 0 if result.status == "FINISHED" else 1  # rank 0 prints the result
    if result.status != "FINISHED":
        print(f"prunebench: run {result.run_id} failed: {result.failure_reason}", file=sys.stderr)
        return 1
    if not args.quiet:
        metrics = result.metrics
        print(
            f"run {result.run_id} finished: final_test_accuracy="
            f"{metrics[record.METRIC_FINAL_ACCURACY]:.4f} realized_prune_ratio="
            f"{metrics[record.METRIC_REALIZED_RATIO]:.4f} train_seconds="
            f"{metrics[record.METRIC_TRAIN_SECONDS_TOTAL]:.1f} samples_trained="
            f"{int(metrics[record.METRIC_SAMPLES_TRAINED_TOTAL])}"
        )
    return 0
