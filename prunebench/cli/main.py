"""The ``prunebench`` command: a registry of subcommand modules behind one argument parser.

Each module in SUBCOMMANDS exposes ``add_parser(subparsers)`` (which sets ``execute`` as the
parser's default, and takes its one-line help from SUMMARIES) and ``execute(args) -> int``, and
may set ``continue_hint`` (how to continue after an interrupt) the same way. Only the command
being run has its module imported and its flags built: the others are their SUMMARIES line, so
``prunebench --help`` imports no torch, MLflow or Optuna. Exit codes: 0 done, 1 the work failed
(e.g. a diverged run), 2 bad usage or configuration (one line on stderr, nothing written),
130/143 stopped by SIGINT or SIGTERM (one line; see ``prunebench.interrupts``).
"""

from __future__ import annotations

import argparse
import importlib
import logging
import os
import sys
from collections.abc import Sequence
from pathlib import Path

from prunebench import __version__, interrupts
from prunebench.errors import UsageError, write_error, write_failure
from prunebench.mlflow_store import resolve_tracking_uri

SUBCOMMANDS: tuple[str, ...] = (
    "prunebench.cli.run",
    "prunebench.cli.suite",
    "prunebench.cli.search",
    "prunebench.cli.report",
    "prunebench.cli.store",
)
SUMMARIES: dict[str, str] = {
    "run": "train one run of one pruner under one budget",
    "suite": "run a suite preset (every cell once; finished cells skipped)",
    "search": "find a pruner's largest lossless prune ratio (Optuna)",
    "report": "build the report (leaderboards, Pareto frontiers, figures) from MLflow",
    "store": "repair a SQLite store left half-migrated by an interrupted first use",
}
"""Each command's line in ``prunebench --help`` (the command is the module's last name)."""


class ArgumentParser(argparse.ArgumentParser):
    """argparse, but a usage error raises UsageError (one line) instead of printing usage."""

    def error(self, message: str):  # type: ignore[override]
        raise UsageError(message)


def build_parser(command: str | None = None) -> ArgumentParser:
    """The top-level parser with every registered subcommand; with ``command``, only that
    one's module is imported and its flags built (the others are their one-line summary; ""
    builds none)."""
    parser = ArgumentParser(
        prog="prunebench",
        description="Benchmark dynamic data pruners under one budget, tracked in MLflow.",
    )
    parser.add_argument("--version", action="version", version=f"prunebench {__version__}")
    subparsers = parser.add_subparsers(title="commands", metavar="COMMAND")
    for module_name in SUBCOMMANDS:
        name = module_name.rpartition(".")[2]
        if command in (None, name):
            importlib.import_module(module_name).add_parser(subparsers)
        else:  # not run now: its flags (and their heavy imports) are not needed
            subparsers.add_parser(name, help=SUMMARIES[name])
    for command in subparsers.choices.values():
        command.add_argument(
            "--plugin",
            action="append",
            default=[],
            metavar="MODULE_OR_FILE",
            help="load a plugin registering pruners, models or datasets first (repeatable)",
        )
    return parser


class _StderrHandler(logging.StreamHandler):
    """Writes each record to the sys.stderr of the moment (it may be replaced, e.g. in tests)."""

    @property
    def stream(self):
        return sys.stderr

    @stream.setter
    def stream(self, value) -> None:
        pass


def configure_logging(quiet: bool) -> None:
    """prunebench's own log lines on stderr: INFO (per-epoch lines), or warnings only if quiet."""
    logger = logging.getLogger("prunebench")
    if not any(isinstance(handler, _StderrHandler) for handler in logger.handlers):
        handler = _StderrHandler()
        handler.setFormatter(logging.Formatter("%(message)s"))
        logger.addHandler(handler)
        logger.propagate = False
    logger.setLevel(logging.WARNING if quiet else logging.INFO)


def _quiet_third_party_logs(verbose: bool = False) -> None:
    # MLflow and its migration tool log at INFO on every new store; keep the console for prunebench.
    # MLflow configures its loggers at import from this variable (a user's setting wins).
    os.environ.setdefault("MLFLOW_LOGGING_LEVEL", "WARNING")
    for name in ("mlflow", "alembic", "sqlalchemy"):
        logging.getLogger(name).setLevel(logging.WARNING)
    # Optuna's INFO lines (a study created, each trial's value) only with --verbose, nor its
    # warning that an interrupted trial failed (the command's one line says so); suite workers
    # take this level over from their parent.
    optuna_logger = logging.getLogger("optuna")
    optuna_logger.setLevel(logging.INFO if verbose else logging.ERROR)
    if verbose:
        # Optuna's own handler keeps the sys.stderr of Optuna's first import (in a long-lived
        # process that stream may be closed since: "--- Logging error ---"); ours writes to the
        # stderr of the moment, like prunebench's lines.
        import optuna

        optuna.logging.disable_default_handler()
        if not any(isinstance(handler, _StderrHandler) for handler in optuna_logger.handlers):
            handler = _StderrHandler()
            handler.setFormatter(optuna.logging.create_default_formatter())
            optuna_logger.addHandler(handler)
    # MLflow's SQL store logs each database error with its traceback, then raises it: the raised
    # error is what prunebench reports (one line for a full disk), so the log is left out.
    logging.getLogger("mlflow.store.db.utils").setLevel(logging.CRITICAL)


INTERRUPTED_BEFORE_START = "nothing was started; run the command again"


def _load_plugins(files: list[str]) -> None:
    """The installed packages' plugins, those inherited from a parent process, then ``files``."""
    from prunebench.bench.plugins import load_inherited_plugins, load_plugins

    load_inherited_plugins()
    load_plugins(files)


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line ``argv`` (default: sys.argv[1:]); returns the exit code.

    SIGINT and SIGTERM are handled alike from the first line on (``prunebench.interrupts``).
    Called as the program (``argv`` None) the handlers stay after the return, so a signal
    during interpreter shutdown cannot turn a finished command's exit code into 130.
    """
    with interrupts.handling(restore=argv is not None):
        args = None
        try:
            interrupts.point("main")
            parser = build_parser(_command(sys.argv[1:] if argv is None else argv))
            interrupts.point("parser-built")
            args = parser.parse_args(argv)
            if hasattr(args, "tracking_uri"):  # the one rule, resolved once, for every command
                args.tracking_uri = resolve_tracking_uri(args.tracking_uri)
            if not hasattr(args, "execute"):
                parser.print_help(sys.stderr)
                return 2
            _quiet_third_party_logs(verbose=getattr(args, "verbose", False))
            _load_plugins(getattr(args, "plugin", None) or [])
            return int(args.execute(args))
        except UsageError as error:
            print(f"prunebench: error: {error}", file=sys.stderr)
            return 2
        except KeyboardInterrupt as error:
            interrupts.acknowledge()
            # Runs record themselves as KILLED and keep their last epoch's checkpoint.
            hint = getattr(args, "continue_hint", None) or INTERRUPTED_BEFORE_START
            name = interrupts.signal_name(interrupts.exit_code(error))
            print(f"prunebench: interrupted by {name}; {hint}", file=sys.stderr)
            return interrupts.exit_code(error)
        except BrokenPipeError:
            # The reader went away (e.g. `prunebench suite X --dry-run | head`): not an error.
            os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
            return 0
        except Exception as error:
            cause = write_failure(error)  # a full disk, at any write of any command
            if cause is None:
                raise
            print(f"prunebench: error: {_write_error_line(cause, args)}", file=sys.stderr)
            return 2


def _command(argv: Sequence[str]) -> str:
    """The command ``argv`` names (its first word that is not an option); "" for none."""
    words = [word for word in argv if not word.startswith("-")]
    return words[0] if words else ""


def _write_error_line(cause: OSError, args: argparse.Namespace | None) -> str:
    """The one line of a failed write: the file (the OS's, else the tracking store's), the free
    space there, and how to continue once there is room."""
    from prunebench.stores import sqlite_path

    path = cause.filename
    if path is None:
        uri = getattr(args, "tracking_uri", None)
        path = sqlite_path(uri) if uri is not None else None
    resume = " with --resume" if hasattr(args, "resume") else ""  # `run` continues its run
    fix = f"free space there, then run the same command again{resume}"
    return str(write_error(cause, path or Path.cwd(), fix))


if __name__ == "__main__":
    sys.exit(main())
