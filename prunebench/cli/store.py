"""``prunebench store repair``: repair a SQLite store left half-migrated, on request."""

from __future__ import annotations

import argparse

from prunebench.cli.main import SUMMARIES
from prunebench.mlflow_store import TRACKING_URI_HELP

CONTINUE_HINT = (
    "the store is unchanged or backed up (see its .backup-* file); run the same command again"
)


def add_parser(subparsers: argparse._SubParsersAction) -> argparse.ArgumentParser:
    """Add the ``store`` subcommand and its flags."""
    parser = subparsers.add_parser(
        "store",
        help=SUMMARIES["store"],
        description=(
            "repair: back the SQLite file up (FILE.backup-TIME, written whole), undo the steps "
            "of the interrupted migration (its _alembic_tmp_* tables), finish the migration with "
            "MLflow's (or Optuna's) own migration code, and open the store to prove it works. "
            "A complete store is left as it is. Repairs the tracking store, or with --storage "
            "the Optuna storage instead."
        ),
    )
    parser.set_defaults(execute=execute, continue_hint=CONTINUE_HINT)
    parser.add_argument("action", choices=("repair",), help="what to do to the store")
    parser.add_argument("--tracking-uri", metavar="URI", default=None, help=TRACKING_URI_HELP)
    parser.add_argument(
        "--storage",
        metavar="URL",
        default=None,
        help="repair this Optuna storage (sqlite:///FILE) instead of the tracking store",
    )
    return parser


def execute(args: argparse.Namespace) -> int:
    """Repair the named store; exit 0 repaired (or complete), 2 when it cannot be repaired."""
    if args.storage is not None:
        from prunebench.suite.workqueue import repair_storage

        print(repair_storage(args.storage).sentence("the Optuna storage"))
        return 0
    from prunebench.mlflow_store import repair_tracking_store

    print(repair_tracking_store(args.tracking_uri).sentence("tracking store"))
    return 0
