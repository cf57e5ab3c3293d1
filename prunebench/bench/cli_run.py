"""``prunebench run``: one training run of one pruner under one budget."""

from __future__ import annotations

import argparse
import sys

from prunebench.bench.budgets import parse_budget
from prunebench.bench.cli import configure_logging
from prunebench.bench.config import DEFAULT_ACCURACY_TARGETS, LOADERS, RunConfig, parse_param
from prunebench.bench.schedule import PUBLIC_RECIPE
from prunebench.bench.tracking import DEFAULT_EXPERIMENT, DEFAULT_TRACKING_URI
from prunebench.errors import ConfigError


def add_parser(subparsers) -> argparse.ArgumentParser:
    """Register ``run`` on the top-level parser's ``subparsers``."""
    parser = subparsers.add_parser(
        "run",
        help="train one run of one pruner under one budget",
        description=(
            "Train one model with one pruner under an epochs, samples or time budget, tracked "
            "in MLflow and checkpointed every epoch."
        ),
    )
    what = parser.add_argument_group("what to train")
    what.add_argument("--dataset", required=True, help="e.g. cifar10, fashion_mnist, synthetic")
    what.add_argument("--model", default="resnet18", help="default: resnet18")
    what.add_argument("--pruner", default="full", help="default: full (no pruning)")
    what.add_argument("--prune-ratio", type=float, help="the pruner's prune_ratio, in [0, 1)")
    what.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help="a pruner parameter, repeatable (e.g. --param exploration=0.5); VALUE: a number, "
        "true/false, inf or a word",
    )
    what.add_argument("--label", help="pruner label for tags and reports (default: the pruner)")
    what.add_argument(
        "--budget", required=True, help="epochs:N | samples:N (forward+backward) | time:SECONDS"
    )
    what.add_argument("--seed", type=int, default=0)
    how = parser.add_argument_group("optimization")
    how.add_argument("--batch-size", type=int, default=128)
    how.add_argument("--lr", type=float, default=0.2, help="max LR of the OneCycle schedule")
    how.add_argument("--momentum", type=float, default=0.9)
    how.add_argument("--weight-decay", type=float, default=5e-4)
    how.add_argument(
        "--label-smoothing", type=float, help="default: 0, or 0.1 with --public-recipe"
    )
    how.add_argument(
        "--public-recipe",
        action="store_true",
        help="the public OrderDP/InfoBatch recipe: label smoothing 0.1, torch OneCycleLR with "
        "pct_start 0.3 and momentum cycled 0.85-0.95 (as the paper presets)",
    )
    how.add_argument(
        "--grad-alignment",
        action="store_true",
        help="measure plan-vs-full-data gradient cosine at 20/40/60/80/100%% of training",
    )
    how.add_argument(
        "--grad-alignment-probe",
        type=int,
        help="full-data gradient over this many seeded samples (default: every sample)",
    )
    how.add_argument("--no-augment", action="store_true", help="train without augmentation")
    how.add_argument(
        "--accuracy-targets",
        default=",".join(f"{t:g}" for t in DEFAULT_ACCURACY_TARGETS),
        help="comma-separated test accuracies for time-to-accuracy (default: %(default)s)",
    )
    data = parser.add_argument_group("data and device")
    data.add_argument("--data-dir", help="where the dataset's files are (or are downloaded to)")
    data.add_argument("--subset", type=int, help="train on this many training samples")
    data.add_argument("--loader", default="tensor", help=f"one of {', '.join(LOADERS)}")
    data.add_argument("--device", default="auto", help="auto (cuda if available), cpu, cuda[:N]")
    out = parser.add_argument_group("tracking")
    out.add_argument("--tracking-uri", default=DEFAULT_TRACKING_URI)
    out.add_argument("--experiment", default=DEFAULT_EXPERIMENT)
    out.add_argument("--checkpoint-dir", default="checkpoints")
    out.add_argument(
        "--resume", action="store_true", help="continue this config's checkpoint and MLflow run"
    )
    out.add_argument("--quiet", action="store_true", help="no progress bar or per-epoch lines")
    parser.set_defaults(execute=execute)
    return parser


def _accuracy_targets(text: str) -> tuple[float, ...]:
    try:
        return tuple(float(part) for part in text.split(",") if part.strip())
    except ValueError:
        raise ConfigError(
            f"--accuracy-targets expects comma-separated numbers in (0, 1], got {text!r}"
        ) from None


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
    recipe = dict(PUBLIC_RECIPE) if args.public_recipe else {"label_smoothing": 0.0}
    if args.label_smoothing is not None:  # an explicit value wins over the recipe's
        recipe["label_smoothing"] = args.label_smoothing
    cfg = RunConfig(
        dataset=args.dataset,
        model=args.model,
        pruner=args.pruner,
        pruner_params=params,
        pruner_label=args.label,
        budget=parse_budget(args.budget),
        seed=args.seed,
        batch_size=args.batch_size,
        lr=args.lr,
        momentum=args.momentum,
        weight_decay=args.weight_decay,
        **recipe,
        data_dir=args.data_dir,
        subset=args.subset,
        loader=args.loader,
        device=args.device,
        augment=not args.no_augment,
        accuracy_targets=_accuracy_targets(args.accuracy_targets),
        grad_alignment=args.grad_alignment,
        grad_alignment_probe=args.grad_alignment_probe,
    )
    cfg.validate()
    return cfg


def execute(args: argparse.Namespace) -> int:
    """Validate, train, print a one-line result; 0 finished, 1 failed."""
    from prunebench.bench.train import train_run  # heavy: imported when a run starts

    cfg = config_from_args(args)
    configure_logging(args.quiet)
    result = train_run(
        cfg,
        tracking_uri=args.tracking_uri,
        experiment=args.experiment,
        checkpoint_dir=args.checkpoint_dir,
        resume=args.resume,
        quiet=args.quiet,
    )
    if result.status != "FINISHED":
        print(f"prunebench: run {result.run_id} failed: {result.failure_reason}", file=sys.stderr)
        return 1
    if not args.quiet:
        metrics = result.metrics
        print(
            f"run {result.run_id} finished: final_test_accuracy="
            f"{metrics['final_test_accuracy']:.4f} realized_prune_ratio="
            f"{metrics['realized_prune_ratio']:.4f} train_seconds="
            f"{metrics['train_seconds_total']:.1f} samples_trained="
            f"{int(metrics['samples_trained_total'])}"
        )
    return 0
