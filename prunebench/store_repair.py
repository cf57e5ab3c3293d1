"""Repair, on request, a SQLite store left half-migrated by an interrupted first use.

An interrupted alembic batch step leaves a ``_alembic_tmp_<table>`` copy (every later use then
fails with ``table _alembic_tmp_<table> already exists``), or an interrupted first migration
leaves tables without a version row. :func:`repair_sqlite_store` backs the file up (a complete
copy that appears under its name only whole), undoes the interrupted batch steps, lets the
store's own migration code finish the migration, and proves that the store opens. The store's
first-use lock is held throughout, so no prunebench process of this machine uses it meanwhile.
"""

from __future__ import annotations

import contextlib
import dataclasses
import datetime as dt
import os
import sqlite3
import uuid
from collections.abc import Callable
from pathlib import Path

from prunebench.errors import UsageError
from prunebench.stores import (
    SqliteState,
    check_sqlite_file,
    create_sqlite_whole,
    first_use_lock,
    inspect_sqlite_file,
    redact_url,
)


@dataclasses.dataclass(frozen=True)
class Repair:
    """What a repair did: the backup it made and the SQL steps it ran (empty: nothing to do)."""

    url: str
    backup: Path | None
    steps: tuple[str, ...]
    recreated: bool = False

    def sentence(self, what: str) -> str:
        """One line for the user saying what was done."""
        if self.backup is None:
            return f"{what} {redact_url(self.url)} is complete: nothing to repair"
        if self.recreated:
            done = "it held no runs and was created again whole"
        else:
            done = "; ".join([*self.steps, "migration finished"])
        return f"{what} {redact_url(self.url)} repaired ({done}); backup at {self.backup}"


def backup_sqlite(database: Path) -> Path:
    """A consistent copy of ``database`` next to it, named ``<name>.backup-<UTC time>``.

    SQLite's online backup copies a consistent state; the copy is written under a temporary
    name and renamed, so the backup name only ever shows a complete file.
    """
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S%fZ")
    target = database.with_name(f"{database.name}.backup-{stamp}")
    temporary = database.with_name(f".{target.name}.{uuid.uuid4().hex[:12]}.partial")
    try:
        with (
            contextlib.closing(sqlite3.connect(database)) as source,
            contextlib.closing(sqlite3.connect(temporary)) as copy,
        ):
            source.backup(copy)
        with open(temporary, "rb") as handle:  # on disk before the name says it is complete
            os.fsync(handle.fileno())
        os.replace(temporary, target)
    finally:
        temporary.unlink(missing_ok=True)
    return target


def _run_steps(database: Path, steps: list[str]) -> None:
    """Run ``steps`` in one transaction: all of them, or (on an error) none."""
    with contextlib.closing(sqlite3.connect(database, isolation_level=None)) as db:
        db.execute("BEGIN IMMEDIATE")
        try:
            for step in steps:
                db.execute(step)
        except BaseException:
            db.execute("ROLLBACK")
            raise
        db.execute("COMMIT")


def repair_sqlite_store(
    url: str,
    what: str,
    option: str,
    *,
    finish: Callable[[str], None],
    create: Callable[[str], None],
    prove: Callable[[str], None],
) -> Repair:
    """Repair the half-migrated SQLite store at ``url``; a complete store is left untouched.

    ``finish(url)`` runs the store's own migrations to their head, ``create(url)`` makes a new
    store whole (a store without a version row that holds no runs is made again), and
    ``prove(url)`` opens the repaired store as a command would. A store without a version row
    that holds runs cannot be repaired safely: a UsageError says so, and nothing is changed.
    """
    if not url.startswith("sqlite:"):
        raise UsageError(f"{what} {redact_url(url)} is not a SQLite file: nothing to repair")
    with first_use_lock(url):
        state = inspect_sqlite_file(url, what, option)
        if state is None:
            raise UsageError(
                f"{what} {redact_url(url)} does not exist: nothing to repair; pass {option}"
            )
        if not state.versioned and state.rows:
            raise UsageError(
                f"{what} {redact_url(url)} holds {state.rows} runs but no schema version, so its "
                "migrations cannot be finished safely; restore it from a backup"
            )
        repair = Repair(url, None, ())
        if state.half_migrated:
            repair = _repair(url, what, option, state, finish, create)
    prove(url)  # outside the lock: opening the store takes it again
    return repair


def _repair(
    url: str,
    what: str,
    option: str,
    state: SqliteState,
    finish: Callable[[str], None],
    create: Callable[[str], None],
) -> Repair:
    """Back up, then undo the interrupted steps and finish (or make a store without runs again)."""
    backup = backup_sqlite(state.database)
    steps = state.leftover_steps()
    if state.versioned:
        _run_steps(state.database, steps)
        finish(url)
    else:  # no version row and no runs: nothing to keep, so it is made again, whole
        state.database.unlink()
        create_sqlite_whole(url, create)
    check_sqlite_file(url, what, option)
    return Repair(url, backup, tuple(steps), recreated=not state.versioned)
