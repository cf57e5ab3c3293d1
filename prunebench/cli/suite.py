"""`prunebench suite PRESET`: run every cell of a preset once, skipping what MLflow has finished."""

from __future__ import annotations

import argparse
import logging
import os
import sys
from collections import Counter

from prunebench.bench.devices import resolve_device, run_threads
from prunebench.bench.system_metrics import SUITE_SYSTEM_METRICS_INTERVAL_S
from prunebench.cli.main import SUMMARIES, configure_logging
from prunebench.errors import ConfigError
from prunebench.mlflow_store import TRACKING_URI_HELP
from prunebench.record import DEFAULT_CHECKPOINT_DIR
from prunebench.stats import DEFAULT_MARGIN, look_level, planned_looks
from prunebench.stores import redact_url
from prunebench.suite.preflight import preflight_suite
from prunebench.suite.preset_cells import Preset
from prunebench.suite.preset_overrides import add_override_options, overrides_from_args
from prunebench.suite.presets import load_preset
from prunebench.suite.runner import (
    DEFAULT_STORAGE,
    CellState,
    held_by_workers,
    plan,
    run_suite,
)
from prunebench.suite.until_decided import run_until_decided
from prunebench.suite.workqueue import GRACE_SECONDS

MIN_GRACE_SECONDS = 3
"""Below this, a busy but live worker could miss its heartbeat and lose its cell."""
ACTIONS = {
    "done": "finished, skipped",
    "resume": "resumes from its checkpoint",
    "run": "runs",
    "retry": "failed before, runs again",
    "held": "held by another worker",
    "blocked": "cannot resume",
}
CONTINUE_HINT = (
    "interrupted cells are recorded KILLED and requeued; rerun the same suite command to continue "
    "(finished cells are skipped, interrupted ones resume from their checkpoints)"
)


def add_parser(subparsers: argparse._SubParsersAction) -> None:
    """Register the `suite` subcommand."""
    parser = subparsers.add_parser(
        "suite",
        help=SUMMARIES["suite"],
        description="Run every cell (dataset x model x pruner x ratio x seed) of a preset. "
        "Start the same command on several machines sharing --tracking-uri and --storage "
        "to split the cells between them.",
    )
    parser.set_defaults(execute=execute, continue_hint=CONTINUE_HINT)
    parser.add_argument("preset", help="a named preset (e.g. demo-fmnist) or a TOML file")
    parser.add_argument("--workers", type=int, default=1, help="local worker processes")
    parser.add_argument("--dry-run", action="store_true", help="show the plan, run nothing")
    parser.add_argument("--tracking-uri", metavar="URI", default=None, help=TRACKING_URI_HELP)
    parser.add_argument(
        "--storage", default=DEFAULT_STORAGE, help="Optuna RDB URL of the shared work queue"
    )
    parser.add_argument("--checkpoint-dir", default=DEFAULT_CHECKPOINT_DIR)
    parser.add_argument(
        "--heartbeat-grace",
        type=int,
        default=GRACE_SECONDS,
        metavar="SECONDS",
        help="a cell whose worker sent no heartbeat for this long goes back to the queue "
        "(default: %(default)s)",
    )
    parser.add_argument("--data-dir", default=None, help="where the datasets are (or go)")
    parser.add_argument("--quiet", action="store_true", help="no per-run progress bars")
    parser.add_argument(
        "--system-metrics",
        type=float,
        default=SUITE_SYSTEM_METRICS_INTERVAL_S,
        metavar="SECONDS",
        help="sample MLflow system metrics (CPU, memory, GPU) every SECONDS (0: off; default "
        "%(default)g)",
    )
    parser.add_argument(
        "--verbose",
        action="store_true",
        help="print a failed cell's traceback (always logged as its run's traceback.txt)",
    )
    parser.add_argument(
        "--until-decided",
        action="store_true",
        help="after the preset's seeds, add rounds of seeds to the cells whose verdict against "
        "full data (or same-compute full data) is undecided, until decided or --max-seeds; "
        "every look tests at level / looks (Bonferroni), so the false-lossless rate over all "
        "looks stays at the level",
    )
    parser.add_argument(
        "--max-seeds", type=int, default=20, help="with --until-decided: seeds a cell may reach"
    )
    parser.add_argument(
        "--round-seeds",
        type=int,
        default=None,
        help="with --until-decided: seeds a round adds (default: the preset's seed count)",
    )
    add_override_options(parser)


def loader_line(preset: Preset) -> str:
    """Which loader the suite's cells use, and why when the preset left it to ``auto``."""
    loader = preset.run_settings["loader"]
    if preset.requested_loader != "auto":
        return f"suite {preset.name}: loader {loader}"
    why = "FFCV is installed" if loader == "ffcv" else "FFCV is not installed here"
    return f"suite {preset.name}: loader {loader} (auto: {why})"


def contention_line(preset: Preset, workers: int, cores: int | None) -> str | None:
    """A warning when the suite's CPU runs would ask for more threads than the machine has cores.

    Each CPU run pins its thread count (results depend on it), so workers do not share threads:
    oversubscribed, every run slows down many times over, and its times (time budgets, equal-time
    cells, device-hours) measure the contention instead of the pruner.
    """
    cfg = preset.main_cells()[0]  # device, threads and nproc are shared settings
    device = resolve_device(cfg.device)
    if device.type != "cpu":
        return None
    threads, nproc = run_threads(cfg.num_threads, device), cfg.nproc or 1
    wanted = workers * nproc * threads
    if cores is None or wanted <= cores:
        return None
    return (
        f"suite {preset.name}: warning: {workers} worker(s) x {nproc * threads} threads = {wanted} "
        f"CPU threads on {cores} cores: runs will compete for cores and their times will measure "
        "that; use fewer --workers (or num_threads = 1 in the preset)"
    )


def _print_states(title: str, states: list[CellState]) -> None:
    counts = Counter(state.action for state in states)
    summary = ", ".join(f"{counts[a]} {label}" for a, label in ACTIONS.items() if counts[a])
    print(f"{title}: {len(states)} cells ({summary})")
    for state in states:
        cfg = state.config
        reason = f"  [{state.reason}]" if state.reason else ""
        comparison = cfg.comparison()
        kind = "" if comparison == "main" else f" ({comparison} {cfg.budget})"
        print(f"  {cfg.cell() + kind:<48} seed {cfg.seed:<3} {ACTIONS[state.action]}{reason}")


def _until_decided(preset: Preset, args: argparse.Namespace, options: dict):
    """Rounds of seeds until every verdict is decided; returns the last round's preset and
    final cell states, after printing each look."""
    round_seeds = args.round_seeds or len(preset.seeds)
    if args.max_seeds < len(preset.seeds) or round_seeds < 1:
        raise ConfigError(
            f"--max-seeds must be at least the preset's {len(preset.seeds)} seeds and "
            "--round-seeds at least 1"
        )
    states: dict[str, list] = {}

    def run_round(current: Preset) -> None:
        states["final"] = run_suite(current, **options)
        states["preset"] = current

    margin = preset.margin if preset.margin is not None else DEFAULT_MARGIN
    looks = run_until_decided(
        preset,
        run_round,
        args.tracking_uri,
        max_seeds=args.max_seeds,
        round_seeds=round_seeds,
        margin=margin,
    )
    total = planned_looks(len(preset.seeds), args.max_seeds, round_seeds)
    for look in looks:
        added = sum(len(seeds) for seeds in look.added.values())
        print(
            f"look {look.round} of at most {total} (each at level {look_level(total):.4g}): "
            f"{look.decided} comparisons decided, {look.undecided} cells undecided"
            + (f"; {len(look.added)} cells get {added} more seeds" if added else "")
        )
    return states["preset"], states["final"]


def execute(args: argparse.Namespace) -> int:
    """Plan, run and summarize; exit 1 if any cell ends failed."""
    if args.workers < 1:
        raise ConfigError(f"--workers must be at least 1, got {args.workers}")
    if args.heartbeat_grace < MIN_GRACE_SECONDS:
        raise ConfigError(
            f"--heartbeat-grace must be at least {MIN_GRACE_SECONDS} seconds, got "
            f"{args.heartbeat_grace}"
        )
    if not args.system_metrics >= 0:
        raise ConfigError(f"--system-metrics must be >= 0 seconds, got {args.system_metrics}")
    overrides = overrides_from_args(args)
    preset = load_preset(args.preset, **overrides)
    # Everything the cells need, before the first one: one line and exit 2 if anything is missing.
    preflight_suite(
        preset,
        tracking_uri=args.tracking_uri,
        storage_url=args.storage,
        checkpoint_dir=args.checkpoint_dir,
        data=not args.dry_run,
    )
    print(loader_line(preset), flush=True)
    if (contention := contention_line(preset, args.workers, os.cpu_count())) is not None:
        print(contention, file=sys.stderr, flush=True)
    if args.verbose:  # tracebacks of failed cells (logged at DEBUG) on stderr
        configure_logging(quiet=False)
        logging.getLogger(run_suite.__module__).setLevel(logging.DEBUG)
    # A dry run writes nothing: opening a server database's storage could create its tables.
    look = not args.dry_run or args.storage.startswith("sqlite:")
    held = held_by_workers(preset, args.storage, args.heartbeat_grace) if look else {}
    states = plan(preset, args.tracking_uri, args.checkpoint_dir, held)
    _print_states(f"suite {preset.name}", states)
    nproc = preset.run_settings.get("nproc") or 1
    if nproc > 1:
        print(f"each cell: one run on {nproc} processes, one device each")
    if args.dry_run:
        return 0
    options = {
        "tracking_uri": args.tracking_uri,
        "storage_url": args.storage,
        "checkpoint_dir": args.checkpoint_dir,
        "workers": args.workers,
        "quiet": args.quiet,
        "overrides": overrides,
        "system_metrics_s": args.system_metrics,
        "grace_seconds": args.heartbeat_grace,
    }
    if args.until_decided:
        preset, final = _until_decided(preset, args, options)
    else:  # the plan just printed is the one the worker claims from: planned once
        final = run_suite(preset, **options, states=states)
    unfinished = [s for s in final if s.action != "done"]
    if not unfinished:
        print(
            f"suite {preset.name}: all {len(final)} cells finished (MLflow experiment "
            f"{preset.name!r} at {redact_url(args.tracking_uri)})"
        )
        return 0
    if all(state.action == "held" for state in unfinished):
        # Not a failure: another worker (here or on another machine) still runs these cells.
        _print_states(
            f"suite {preset.name}: no cell left for this worker; {len(unfinished)} cells held by "
            "other workers",
            unfinished,
        )
        return 0
    _print_states(f"suite {preset.name}: {len(unfinished)} cells not finished", unfinished)
    return 1
