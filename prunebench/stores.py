"""Store URLs for humans and machines: password masking, a fingerprint, safe concurrent first use.

A store URL (MLflow ``--tracking-uri``, Optuna ``--storage``) may carry a database password. Only
:func:`redact_url` turns one into text for a message, a log line or a report, and only
:func:`store_fingerprint` into something persisted (a checkpoint's ``origin``).

Processes that start together on a NEW database race to create its tables: MLflow's SQLAlchemy
store and Optuna's RDB storage both check for the schema and then create it, so the loser of the
race crashes (``table latest_metrics already exists``). :func:`first_use_lock` serializes that
first use across processes of this machine with an exclusive ``fcntl`` lock, and
:func:`create_sqlite_whole` builds a new SQLite store in a temporary file that appears under the
store's name only complete: an interrupted or failed creation leaves no store, never a
half-migrated one. :func:`check_sqlite_file` opens an existing file as the store will (read-write
where the command writes, so SQLite rolls back a hot journal) and names the repair of a store
left half-migrated.
"""

from __future__ import annotations

import contextlib
import dataclasses
import fcntl
import hashlib
import os
import re
import sqlite3
import tempfile
import uuid
from collections.abc import Callable, Iterator
from pathlib import Path

from prunebench import interrupts
from prunebench.errors import UsageError

MASK = "***"
_UNPRINTABLE = "<store URL>"
_SCHEME = re.compile(r"^([A-Za-z][A-Za-z0-9+.\-]*://)(.*)$", re.DOTALL)
# SQLAlchemy's own URL grammar: the password runs from the first ':' after the user to the
# first '@', and may contain '/', which a generic URL parser would take as the path.
_SQLALCHEMY_USERINFO = re.compile(r"^([^:/@?#]*):([^@]*)@")
_SECRET_QUERY = re.compile(
    r"([?&;](?:password|passwd|pwd|secret|token|api_key|apikey|access_key)=)[^&;#]*",
    re.IGNORECASE,
)


def _mask_userinfo(rest: str) -> str:
    """``rest`` (what follows ``scheme://``) with any password in its user info masked."""
    authority_end = min((i for i in (rest.find(c) for c in "/?#") if i >= 0), default=len(rest))
    authority = rest[:authority_end]
    if "@" in authority:
        userinfo, _, host = authority.rpartition("@")
        user, colon, _ = userinfo.partition(":")
        masked = f"{user}:{MASK}" if colon else user
        rest = f"{masked}@{host}{rest[authority_end:]}"
    match = _SQLALCHEMY_USERINFO.match(rest)
    if match and match.group(2) != MASK:
        rest = f"{match.group(1)}:{MASK}@{rest[match.end() :]}"
    return rest


def redact_url(url: object) -> str:
    """``url`` for humans: any password (user info or query) replaced by ``***``; never raises."""
    try:
        text = str(url)
        match = _SCHEME.match(text)
        if match:
            text = match.group(1) + _mask_userinfo(match.group(2))
        return _SECRET_QUERY.sub(lambda m: m.group(1) + MASK, text)
    except Exception:  # a URL we cannot even read is shown as a placeholder, never as itself
        return _UNPRINTABLE


_URL_IN_TEXT = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*://[^\s'\"<>()\[\]]+")


def redact_text(text: object) -> str:
    """``text`` (e.g. a driver's error message) with every URL in it passed through redact_url."""
    try:
        return _URL_IN_TEXT.sub(lambda m: redact_url(m.group(0)), str(text))
    except Exception:  # same promise as redact_url: never raise, never echo what we cannot read
        return _UNPRINTABLE


def store_fingerprint(url: str) -> str:
    """A stable hash of the store URL: tells two stores apart without persisting the URL."""
    return hashlib.sha256(f"prunebench-store:{url}".encode()).hexdigest()[:16]


def sqlite_path(url: str) -> Path | None:
    """The database file of a ``sqlite:///`` URL (None for in-memory or other schemes)."""
    if not url.startswith("sqlite:///"):
        return None
    location = url[len("sqlite:///") :].split("?", 1)[0]
    if not location or location == ":memory:":
        return None
    return Path(location).resolve()


def local_store_path(url: str) -> Path | None:
    """The local file or folder of a store URL: a SQLite file, or an MLflow file store's folder
    (``file:`` or a bare path); None for in-memory SQLite and for servers and databases."""
    if url.startswith("sqlite:"):
        return sqlite_path(url)
    if url.startswith("file:"):
        return Path(url.removeprefix("file://").removeprefix("file:")).resolve()
    return None if "://" in url else Path(url).resolve()


def store_exists(url: str) -> bool:
    """False only for a local store (SQLite file, file store) not created yet: opening it would
    create it, so a dry run must not; a server or database is taken to exist."""
    path = local_store_path(url)
    if path is None:
        return True
    return path.is_file() if url.startswith("sqlite:") else path.exists()


def can_write(path: Path) -> bool:
    """Whether this process can write ``path``: a folder takes a new file, a file opens for
    writing. A real probe, not permission bits: root passes every permission check, yet cannot
    write under /proc or on a read-only mount."""
    try:
        if path.is_dir():
            with tempfile.TemporaryFile(dir=path, prefix=".prunebench-probe-"):
                return True
        os.close(os.open(path, os.O_WRONLY))  # opening writes nothing; no O_CREAT, no O_TRUNC
        return True
    except OSError:
        return False


def probe_writable(folder: str | os.PathLike, what: str, option: str) -> None:
    """UsageError (``<what> <folder> cannot be written (reason); pass <option>``) unless a file
    can be created in ``folder``, or in its nearest existing parent when it is still to be
    created: the one folder-write probe of checkpoints, stores and reports."""
    existing = Path(folder).resolve()
    while not existing.exists():
        existing = existing.parent
    if not existing.is_dir():
        raise UsageError(f"{what} {folder} cannot be created: {existing} is a file; pass {option}")
    try:
        with tempfile.TemporaryFile(dir=existing, prefix=".prunebench-probe-"):
            pass
    except OSError as error:
        reason = (error.strerror or type(error).__name__).lower()
        raise UsageError(f"{what} {folder} cannot be written ({reason}); pass {option}") from None


def check_database_connects(url: str, timeout_s: float, what: str, option: str) -> None:
    """UsageError unless the SQL database at ``url`` accepts a connection within ``timeout_s``
    (a missing driver named as such); creates nothing."""
    import sqlalchemy

    scheme = url.split(":", 1)[0]
    connect_args = (
        {"connect_timeout": int(timeout_s)}
        if scheme.split("+")[0] in ("postgresql", "mysql")
        else {}
    )
    try:
        engine = sqlalchemy.create_engine(url, connect_args=connect_args)
        try:
            with engine.connect():
                pass
        finally:
            engine.dispose()
    except ModuleNotFoundError as error:
        raise UsageError(
            f"{what} {redact_url(url)} needs a database driver that is not installed ({error}); "
            f"install it or name an installed one in {option} (e.g. postgresql+psycopg2://)"
        ) from None
    except Exception as error:  # driver errors differ by database; all mean "cannot use it"
        lines = str(error).strip().splitlines()
        reason = lines[0][:160] if lines else type(error).__name__
        raise UsageError(
            f"{what} {redact_url(url)} is unreachable ({redact_text(reason)}); "
            f"start it or pass a reachable {option}"
        ) from None


def lock_path(url: str) -> Path:
    """The lock file that serializes the first use of the store at ``url`` on this machine.

    In the temporary directory, keyed by the fingerprint of the SQLite file's resolved path (so
    processes sharing the file share the lock) or of a server database's URL. Never next to the
    store: a lock file cannot be removed safely while another process may wait on it, and the
    user's folder (a git checkout, say) keeps only what the user made.
    """
    database = sqlite_path(url)
    key = store_fingerprint(f"sqlite:///{database}" if database is not None else url)
    return Path(tempfile.gettempdir()) / f"prunebench-store-{key}.lock"


@contextlib.contextmanager
def exclusive_lock(path: Path, wait: bool = True) -> Iterator[bool]:
    """Hold an exclusive ``flock`` on ``path`` (a folder, or a lock file created if missing);
    yields whether it is held. ``wait=False``: if another process holds it, yield False at once.

    Locking a folder leaves no lock file behind. If ``path`` cannot be opened (read-only place)
    the block runs unlocked: whatever it writes there then fails with its own clear error.
    """
    try:
        if path.is_dir():
            descriptor = os.open(path, os.O_RDONLY)
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            descriptor = os.open(path, os.O_RDWR | os.O_CREAT, 0o666)
    except OSError:
        yield True
        return
    try:
        try:
            fcntl.flock(descriptor, fcntl.LOCK_EX | (0 if wait else fcntl.LOCK_NB))
        except BlockingIOError:  # held elsewhere, and the caller would rather not wait
            yield False
            return
        yield True
    finally:
        os.close(descriptor)  # closing releases the flock


@contextlib.contextmanager
def first_use_lock(url: str) -> Iterator[None]:
    """Hold an exclusive lock while the store at ``url`` is opened or its experiment is created.

    Schema creation and migrations, experiment get-or-create and study creation happen inside,
    one process at a time; the lock is released when the block ends (or the process dies).
    """
    with exclusive_lock(lock_path(url)):
        yield


def create_sqlite_whole(url: str, create: Callable[[str], None]) -> None:
    """Create the missing SQLite store at ``url`` whole: ``create(temporary_url)`` builds and
    migrates it in a temporary file next to the target, which is then linked into place.

    Call it under :func:`first_use_lock`. A no-op when ``url`` is not a SQLite file or the file
    exists. A signal or error during the creation removes the temporary file; the store's name
    only ever shows a complete store. Linking (not renaming) never replaces a store another
    machine created meanwhile.
    """
    database = sqlite_path(url)
    if database is None or database.exists():
        return
    temporary = database.with_name(f".{database.name}.{uuid.uuid4().hex[:12]}.creating")
    try:
        create(f"sqlite:///{temporary}")
        interrupts.point("store-migrated")
        with contextlib.suppress(FileExistsError):  # another machine's process made it: use it
            os.link(temporary, database)
    finally:
        for leftover in (temporary, temporary.with_name(temporary.name + "-journal")):
            leftover.unlink(missing_ok=True)


@dataclasses.dataclass(frozen=True)
class SqliteState:
    """What an existing SQLite store file holds, as far as its migrations are concerned."""

    database: Path
    tables: frozenset[str]
    versioned: bool
    """Whether its migrations are recorded: a version row, or no version table at all."""
    rows: int
    """Its runs (MLflow) or trials (Optuna): what deleting it would lose."""

    @property
    def leftovers(self) -> list[str]:
        """The temporary tables of an interrupted alembic batch migration."""
        return sorted(table for table in self.tables if table.startswith(ALEMBIC_TMP_PREFIX))

    @property
    def half_migrated(self) -> bool:
        """Whether an interrupted migration left it: a leftover table or no version row."""
        return bool(self.leftovers) or not self.versioned

    def leftover_steps(self) -> list[str]:
        """The SQL that undoes the interrupted batch steps: drop a copy whose original is still
        there; rename a copy whose original was already dropped (the copy holds the data)."""
        return [
            f"DROP TABLE {table}"
            if table.removeprefix(ALEMBIC_TMP_PREFIX) in self.tables
            else f"ALTER TABLE {table} RENAME TO {table.removeprefix(ALEMBIC_TMP_PREFIX)}"
            for table in self.leftovers
        ]


ALEMBIC_TMP_PREFIX = "_alembic_tmp_"
"""Alembic's batch mode on SQLite copies a table to ``_alembic_tmp_<table>``, drops the original
and renames the copy: an interruption in between leaves the copy, and the rerun of the
migration then fails with ``table _alembic_tmp_<table> already exists``."""


def inspect_sqlite_file(url: str, what: str, option: str) -> SqliteState | None:
    """The state of the existing SQLite file of ``url`` (None: another scheme, or no file yet).

    The file is opened read-write where it is writable, as MLflow and Optuna open it, so a hot
    journal left by a writer that died mid-transaction is rolled back by SQLite here. A file
    that is not a SQLite database is a UsageError naming ``option``.
    """
    database = sqlite_path(url)
    if database is None or not database.is_file():
        return None
    writable = can_write(database) and can_write(database.parent)
    address = f"{database.as_uri()}?mode={'rw' if writable else 'ro'}"
    try:
        with contextlib.closing(sqlite3.connect(address, uri=True, timeout=60)) as db:
            tables = {row[0] for row in db.execute("SELECT name FROM sqlite_master")}
            versions = (
                db.execute("SELECT * FROM alembic_version").fetchall()
                if "alembic_version" in tables
                else []
            )
            rows = sum(
                db.execute(f"SELECT count(*) FROM {table}").fetchone()[0]
                for table in ("runs", "trials")
                if table in tables
            )
    except sqlite3.DatabaseError as error:
        raise UsageError(
            f"{what} {redact_url(url)} is not a SQLite database ({error}); pass another {option}"
        ) from None
    versioned = bool(versions) or "alembic_version" not in tables
    return SqliteState(database, frozenset(tables), versioned, rows)


def check_sqlite_file(url: str, what: str, option: str) -> None:
    """UsageError (one line naming the fix) unless the existing SQLite file of ``url`` opens as
    a database whose migrations are complete (see :func:`inspect_sqlite_file`); a missing file
    or another scheme passes."""
    state = inspect_sqlite_file(url, what, option)
    if state is None or not state.half_migrated:
        return
    database, rows = state.database, state.rows
    if not rows:
        repair = f"it holds no runs: delete {database} and run the command again"
    else:
        repair = (
            f"it holds {rows} runs: run prunebench store repair {option} {redact_url(url)} (it "
            "backs the file up first), then run the command again"
        )
    found = f"table {state.leftovers[0]}" if state.leftovers else "no schema version"
    raise UsageError(
        f"{what} {redact_url(url)} was left half-migrated by an interrupted first use ({found}); "
        f"{repair}"
    )
