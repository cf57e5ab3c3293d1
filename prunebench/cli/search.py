"""`prunebench search PRESET`: the largest lossless prune ratio of a pruner, found by Optuna."""

from __future__ import annotations

import argparse
import logging
import multiprocessing
from concurrent.futures import ProcessPoolExecutor

from prunebench.cli.main import SUMMARIES
from prunebench.errors import ConfigError
from prunebench.mlflow_store import TRACKING_URI_HELP
from prunebench.pruners import searchable_pruners
from prunebench.record import DEFAULT_CHECKPOINT_DIR
from prunebench.suite.preflight import preflight_suite
from prunebench.suite.preset_overrides import add_override_options, overrides_from_args
from prunebench.suite.presets import load_preset
from prunebench.suite.runner import DEFAULT_STORAGE
from prunebench.suite.search import run_search, search_variants
from prunebench.suite.stopping import logger_levels

CONTINUE_HINT = (
    "the interrupted runs are recorded KILLED; rerun the same search command to continue its "
    "study (finished runs are reused)"
)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the `search` subcommand."""
    parser = subparsers.add_parser(
        "search",
        help=SUMMARIES["search"],
        description="Maximize the prune ratio subject to the accuracies over --seeds seeds being "
        "non-inferior to full data (one-sided Welch test at a margin). Each labelled variant of a "
        "pruner in the preset is searched on its own. Workers sharing --storage share the study.",
    )
    parser.set_defaults(execute=execute, continue_hint=CONTINUE_HINT)
    parser.add_argument("preset", help="a named preset (e.g. demo-fmnist) or a TOML file")
    parser.add_argument(
        "--pruner",
        action="append",
        default=None,
        help="pruner to search (repeatable; default: the preset's [search] pruners, else every "
        "pruner of the preset with a search space)",
    )
    parser.add_argument("--trials", type=int, default=None, help="trials per pruner, all workers")
    parser.add_argument("--seeds", type=int, default=None, help="seeds per trial")
    parser.add_argument(
        "--tolerance",
        type=float,
        default=None,
        help="non-inferiority margin of the lossless test (fraction; default 0.001 = 0.1 points)",
    )
    parser.add_argument("--storage", default=DEFAULT_STORAGE, help="Optuna RDB storage URL")
    parser.add_argument("--tracking-uri", metavar="URI", default=None, help=TRACKING_URI_HELP)
    parser.add_argument("--checkpoint-dir", default=DEFAULT_CHECKPOINT_DIR)
    parser.add_argument("--data-dir", default=None)
    parser.add_argument("--sampler-seed", type=int, default=0)
    parser.add_argument(
        "--workers",
        type=int,
        default=1,
        help="search this many pruner variants at once, one process each (default 1)",
    )
    # --seeds here counts seeds per trial
    add_override_options(parser, ("budget", "subset", "nproc"))


def execute(args: argparse.Namespace) -> int:
    """Run the search for each pruner and print its answer and explored frontier."""
    preset = load_preset(args.preset, **overrides_from_args(args))
    settings = preset.search
    pruners = args.pruner or settings.pruners or preset.searchable()
    unknown = sorted(set(pruners) - set(searchable_pruners()))
    if unknown:
        raise ConfigError(
            f"cannot search pruner {unknown[0]!r}; choose one of: {', '.join(searchable_pruners())}"
        )
    preflight_suite(
        preset,
        tracking_uri=args.tracking_uri,
        storage_url=args.storage,
        checkpoint_dir=args.checkpoint_dir,
        datasets=[settings.dataset or preset.datasets[0]],
    )
    searches = [
        (pruner, variant) for pruner in pruners for variant in search_variants(preset, pruner)
    ]
    if args.workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {args.workers}")
    options = {
        "trials": args.trials or settings.trials,
        "seeds": args.seeds or settings.seeds,
        "tracking_uri": args.tracking_uri,
        "storage_url": args.storage,
        "dataset": settings.dataset,
        "model": settings.model,
        "tolerance": first_set(args.tolerance, settings.tolerance, preset.margin),
        "checkpoint_dir": args.checkpoint_dir,
        "sampler_seed": args.sampler_seed,
        "sampler": settings.sampler,
        "confirm_seeds": settings.confirm_seeds,
        "confirm_max_seeds": settings.confirm_max_seeds,
    }
    if args.workers == 1:
        for pruner, variant in searches:
            print(_search_text(preset, pruner, variant, options), flush=True)
        return 0
    # Each pruner variant's search in a process of its own (spawned: no state shared); the
    # answers print in the preset's order as they come in.
    context = multiprocessing.get_context("spawn")
    overrides = overrides_from_args(args)
    with ProcessPoolExecutor(args.workers, mp_context=context) as pool:
        futures = [
            pool.submit(
                _search_worker, args.preset, overrides, pruner, variant, options, logger_levels()
            )
            for pruner, variant in searches
        ]
        for future in futures:
            print(future.result(), flush=True)
    return 0


def _search_worker(
    preset_arg: str, overrides: dict, pruner: str, variant: str, options: dict, levels: dict
) -> str:
    """One variant's search in a worker process: its answer as text."""
    from prunebench.bench.plugins import load_inherited_plugins

    for name, level in levels.items():  # the parent's (Optuna's INFO lines off unless --verbose)
        logging.getLogger(name).setLevel(level)
    load_inherited_plugins()
    return _search_text(load_preset(preset_arg, **overrides), pruner, variant, options)


def _search_text(preset, pruner: str, variant: str, options: dict) -> str:
    """Run one variant's search; its answer and frontier as the lines to print."""
    result = run_search(preset, pruner, variant=variant, **options)
    lines = [
        f"search {variant} ({pruner}) on {preset.name}: full data "
        f"{result.full_accuracy_mean:.4f} +- {result.full_accuracy_std:.4f}, "
        f"margin {result.tolerance:.4f}",
        f"  {'trial':>5} {'ratio':>7} {'accuracy':>17}  lossless  parameters",
    ]
    for row in result.frontier:
        mark = "yes" if row["lossless"] else "no"
        lines.append(
            f"  {row['trial']:>5} {row['prune_ratio']:>7.3f} "
            f"{row['accuracy_mean']:>8.4f} +- {row['accuracy_std']:.4f}  {mark:<8}  "
            + _params_text(row["params"], 3)
        )
    if result.best is None:
        lines.append("  no lossless setting found: try lower ratios or a larger --tolerance")
    else:
        lines.append(
            f"  largest lossless prune ratio on the search's seeds (unconfirmed): "
            f"{result.best['prune_ratio']:.3f} ({_params_text(result.best['params'], 4)})"
        )
    lines.append(confirmation_line(result))
    return "\n".join(lines)


def _params_text(params: dict, digits: int) -> str:
    """k=v pairs; numbers to ``digits`` decimals, other values (a mode, a flag) as they are."""
    return ", ".join(
        f"{k}={v:.{digits}f}" if isinstance(v, float) else f"{k}={v}" for k, v in params.items()
    )


def first_set(*values):
    """The first value that is not None (None if all are)."""
    return next((value for value in values if value is not None), None)


def confirmation_line(result) -> str:
    """The search's answer as confirmed (or not) on fresh seeds, with what it cost."""
    confirmation = result.confirmation
    cost = f"{result.training_runs} training runs asked for, reused ones included"
    if confirmation is None:
        return (
            "  confirmed on fresh seeds: done by another worker or an earlier run (see the "
            f"search run's confirmed_* metrics; {cost})"
        )
    if not confirmation.attempts:
        return f"  confirmed on fresh seeds: nothing to confirm ({cost})"
    seeds = f"seeds {confirmation.seeds[0]}-{confirmation.seeds[-1]}"
    tried = ", ".join(
        f"{a.searched_ratio:.3f} {a.verdict.verdict} on {a.seeds} seeds a side "
        f"({a.looks} look{'s' if a.looks > 1 else ''})"
        for a in confirmation.attempts
    )
    confirmed = confirmation.confirmed
    if confirmed is None:
        return f"  confirmed on fresh {seeds}: none (tried {tried}; {cost})"
    return (
        f"  CONFIRMED largest lossless prune ratio on fresh {seeds}: {confirmed.prune_ratio:.3f}, "
        f"{confirmed.verdict.loss_text()} (tried {tried}; {confirmation.rule}; {cost})"
    )
