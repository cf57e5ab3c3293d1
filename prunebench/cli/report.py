"""`prunebench report`: build the HTML/Markdown/CSV report of an experiment from MLflow."""

from __future__ import annotations

import argparse
from typing import TYPE_CHECKING

from prunebench.cli.main import SUMMARIES
from prunebench.errors import ConfigError, UsageError
from prunebench.mlflow_store import TRACKING_URI_HELP
from prunebench.reports.ui_links import DEFAULT_UI_URL
from prunebench.stats.lossless import DEFAULT_MIN_TOLERANCE

if TYPE_CHECKING:
    import pandas as pd

CONTINUE_HINT = "the report folder was not changed; run the same command again"


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``report`` subcommand and its flags."""
    parser = subparsers.add_parser(
        "report",
        help=SUMMARIES["report"],
        description=(
            "Read an experiment's runs from MLflow and write DIR/index.html (self-contained), "
            "DIR/leaderboard.md and .csv, DIR/figures/*.png and DIR/tables/*.csv; the report "
            "is also logged as the artifacts of a run of kind 'report'."
        ),
    )
    parser.add_argument("--experiment", metavar="NAME", help="MLflow experiment to report on")
    parser.add_argument(
        "--preset",
        metavar="CONFIG",
        help="suite preset (TOML path, or a named preset): its name is the experiment; "
        "its cells and seeds are what the report expects (missing ones are flagged)",
    )
    parser.add_argument("--out", metavar="DIR", required=True, help="report directory")
    parser.add_argument(
        "--tracking-uri",
        metavar="URI",
        default=None,
        help=TRACKING_URI_HELP,
    )
    parser.add_argument(
        "--min-tolerance",
        type=float,
        default=None,
        metavar="FRACTION",
        help="non-inferiority margin of the lossless test (fraction; default: the preset's "
        "margin, else the one its --until-decided suite used, else "
        f"{DEFAULT_MIN_TOLERANCE:g} = {100 * DEFAULT_MIN_TOLERANCE:g} points)",
    )
    parser.add_argument(
        "--ui-url",
        metavar="URL",
        default=DEFAULT_UI_URL,
        help="MLflow UI the report links runs to (default: %(default)s, where `nox -s ui` "
        "serves it; '' for no links)",
    )
    parser.add_argument(
        "--no-log-run",
        action="store_true",
        help="do not log the report as an MLflow run (for read-only stores)",
    )
    from prunebench.suite.preset_overrides import add_override_options

    add_override_options(parser)  # with --preset: the cut-down grid a suite ran with them
    parser.set_defaults(execute=execute, continue_hint=CONTINUE_HINT)
    return parser


def read_preset(value: str, **overrides) -> tuple[str, list[int], pd.DataFrame, float | None]:
    """(experiment name, seeds, planned cells, margin) of a suite preset, read by the suite's
    own parser.

    The cells frame has the leaderboard's cell columns plus ``pruner``: one row per planned
    dataset x model x pruner variant x target ratio, so cells never run show up as missing.
    Only main cells: same-compute and equal-time runs are rows of their main cell's section
    (keyed by the ratio they match), never sections of their own budgets.
    """
    import pandas as pd

    from prunebench.suite.presets import load_preset

    preset = load_preset(value, **overrides)
    cells = pd.DataFrame(
        [
            {
                "dataset": cfg.dataset,
                "model": cfg.model,
                "budget": str(cfg.budget),
                "pruner_label": cfg.label,
                "target_prune_ratio": round(cfg.target_prune_ratio(), 9),
                "pruner": cfg.pruner,
            }
            for cfg in preset.main_cells()
        ]
    ).drop_duplicates(ignore_index=True)
    return preset.name, sorted(set(preset.seeds)), cells


def execute(args: argparse.Namespace) -> int:
    """Run ``prunebench report``; user errors raise UsageError/ConfigError (exit code 2)."""
    # Imported here so `prunebench --help` stays fast (MLflow and matplotlib load slowly).
    from prunebench.reports.build import build

    if (args.experiment is None) == (args.preset is None):
        raise UsageError("Pass exactly one of --experiment NAME or --preset CONFIG.")
    if args.min_tolerance is not None and not 0.0 <= args.min_tolerance < 1.0:
        raise ConfigError(
            f"--min-tolerance must be an accuracy fraction in [0, 1), got {args.min_tolerance:g}."
        )
    from prunebench.suite.preflight import preflight_report
    from prunebench.suite.preset_overrides import overrides_from_args

    experiment, expected_seeds, expected_cells = args.experiment, None, None
    margin = args.min_tolerance
    if args.preset is not None:
        overrides = overrides_from_args(args)
        experiment, expected_seeds, expected_cells = read_preset(args.preset, **overrides)
        if margin is None:  # the preset's own margin, as its suite and search used it
            from prunebench.suite.presets import load_preset

            margin = load_preset(args.preset, **overrides).margin
    preflight_report(args.out)
    out, run_id = build(
        experiment,
        args.out,
        args.tracking_uri,
        expected_seeds=expected_seeds,
        expected_cells=expected_cells,
        min_tolerance=margin,
        log_run=not args.no_log_run,
        ui_url=args.ui_url,
    )
    logged = f"; logged as MLflow run {run_id}" if run_id else ""
    print(f"Report written to {out / 'index.html'}{logged}")
    return 0
