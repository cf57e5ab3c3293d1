"""A work queue of suite cells on an Optuna RDB storage, so many workers run each cell once.

Optuna's storage already solves the hard parts: its ``WAITING -> RUNNING`` transition is atomic
(a row lock on PostgreSQL, a write transaction on SQLite), so claiming a cell is popping an
enqueued trial; its heartbeats mark the trials of crashed workers stale, and the worker that
fails a stale trial (again atomically) puts the cell back in the queue.

Queues come in generations under one root study per suite: workers that start together join
the current generation while it has work; once it is drained, the next ``prunebench suite``
opens a new generation holding whatever MLflow does not yet record as finished.
"""

from __future__ import annotations

import threading
import time
import warnings
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass

import optuna
from optuna.storages import RDBStorage, fail_stale_trials
from optuna.trial import TrialState

from prunebench.errors import UsageError
from prunebench.store_repair import Repair, repair_sqlite_store
from prunebench.stores import create_sqlite_whole, first_use_lock, redact_text, redact_url

_EXPERIMENTAL = optuna.exceptions.ExperimentalWarning

GRACE_SECONDS = 90
"""Seconds without a heartbeat after which a claimed cell counts as abandoned and is requeued."""
SETUP_TIMEOUT_SECONDS = 120
CELL_ATTR = "cell"
BEAT_ATTR = "heartbeat_at"
"""A claim's last heartbeat (Unix time), kept for messages: Optuna's own is not public."""


def heartbeat_seconds(grace_seconds: int) -> int:
    """The heartbeat interval for a grace period: 4.5 beats per grace (20 s for 90 s)."""
    return max(1, grace_seconds * 2 // 9)


def _requeue(study: optuna.Study, trial: optuna.trial.FrozenTrial) -> None:
    """Put a failed (crashed or interrupted) trial's cell back in the queue."""
    study.enqueue_trial(
        {}, user_attrs={CELL_ATTR: trial.user_attrs[CELL_ATTR], "retry_of": trial.number}
    )


def open_storage(url: str, attempts: int = 3, grace_seconds: int = GRACE_SECONDS) -> RDBStorage:
    """An Optuna RDB storage with heartbeats; a clear error if the database is unreachable.

    A claim whose worker has not beaten for ``grace_seconds`` is abandoned: the next worker that
    looks for work fails it and puts its cell back in the queue.

    Workers starting together on a new database race to create its tables; the losers of that
    race see an integrity error and simply try again.
    """
    engine_kwargs = {"connect_args": {"timeout": 60}} if url.startswith("sqlite") else {}
    for attempt in range(attempts):
        try:
            with warnings.catch_warnings(), first_use_lock(url):
                warnings.simplefilter("ignore", _EXPERIMENTAL)  # heartbeats: stable since 2.9
                create_sqlite_whole(url, _create_optuna_storage)  # a new SQLite file: whole
                return RDBStorage(
                    url,
                    engine_kwargs=engine_kwargs,
                    heartbeat_interval=heartbeat_seconds(grace_seconds),
                    grace_period=grace_seconds,
                    heartbeat_stale_trial_callback=_requeue,
                )
        except Exception as error:  # sqlalchemy raises many kinds; all mean "cannot use this URL"
            if attempt + 1 < attempts and "IntegrityError" in type(error).__name__ + str(error):
                time.sleep(1.0 + attempt)
                continue
            reason = str(error).splitlines()[0]
            raise UsageError(
                f"cannot open the Optuna storage {redact_url(url)} ({redact_text(reason)}); "
                "pass a reachable --storage URL"
            ) from None
    raise AssertionError("unreachable")


def _create_optuna_storage(temporary_url: str) -> None:
    """Create Optuna's schema at ``temporary_url``, then close every connection to it."""
    RDBStorage(temporary_url).engine.dispose()


def _finish_optuna_migration(url: str) -> None:
    """Run Optuna's own migrations to their head on ``url`` (``optuna storage upgrade``)."""
    storage = RDBStorage(url, skip_compatibility_check=True, skip_table_creation=True)
    try:
        storage.upgrade()
    finally:
        storage.engine.dispose()


def repair_storage(url: str) -> Repair:
    """Repair a SQLite Optuna storage left half-migrated (``prunebench store repair``)."""
    return repair_sqlite_store(
        url,
        "the Optuna storage",
        "--storage",
        finish=_finish_optuna_migration,
        create=_create_optuna_storage,
        prove=lambda checked: open_storage(checked).get_all_studies(),
    )


def _fail_stale(study: optuna.Study) -> None:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", _EXPERIMENTAL)
        fail_stale_trials(study)


@dataclass(frozen=True)
class Held:
    """A cell another worker holds: its last heartbeat's age, and when the claim would lapse."""

    heartbeat_age: float
    lapses_in: float
    """Seconds until the cell is requeued if its worker is gone (no further heartbeat)."""


def held_cells(storage: RDBStorage, root_name: str) -> dict[str, Held]:
    """The cells held in the live generation of queue ``root_name`` (creates nothing)."""
    try:
        root = optuna.load_study(study_name=root_name, storage=storage)
    except KeyError:  # no suite has used this queue yet
        return {}
    generation = root.user_attrs.get("generation", 0)
    if not generation:
        return {}
    study = optuna.load_study(study_name=f"{root_name}/{generation}", storage=storage)
    return CellQueue(storage, study).held()


@dataclass
class Claim:
    """A cell this worker holds; heartbeats keep it while the cell runs."""

    cell: str
    trial_id: int


class CellQueue:
    """One generation of the queue: enqueued cells that workers claim atomically."""

    def __init__(self, storage: RDBStorage, study: optuna.Study):
        self.storage = storage
        self.study = study
        self.study_id = storage.get_study_id_from_name(study.study_name)

    @classmethod
    def open(cls, storage: RDBStorage, root_name: str, pending: list[str]) -> CellQueue | None:
        """Join the live generation of ``root_name`` or open a new one holding ``pending``.

        Returns None when there is nothing to do (no live generation and nothing pending).
        """
        root = optuna.create_study(storage=storage, study_name=root_name, load_if_exists=True)
        deadline = time.monotonic() + SETUP_TIMEOUT_SECONDS
        while time.monotonic() < deadline:
            generation = root.user_attrs.get("generation", 0)
            if generation:
                current = cls(
                    storage,
                    optuna.load_study(study_name=f"{root_name}/{generation}", storage=storage),
                )
                if current.study.user_attrs.get("ready") and current.has_work():
                    return current
            if not pending:
                return None
            name = f"{root_name}/{generation + 1}"
            try:
                study = optuna.create_study(storage=storage, study_name=name, direction="maximize")
            except optuna.exceptions.DuplicatedStudyError:
                time.sleep(0.5)  # another worker is filling the next generation: wait, then join
                root = optuna.load_study(study_name=root_name, storage=storage)
                continue
            for cell in pending:
                study.enqueue_trial({}, user_attrs={CELL_ATTR: cell})
            study.set_user_attr("ready", True)
            root.set_user_attr("generation", generation + 1)
            return cls(storage, study)
        raise UsageError(
            f"the work queue {root_name} was left half-created by a worker that died; "
            "start again with a fresh --storage"
        )

    def has_work(self) -> bool:
        """Whether cells wait or run (stale runs are failed and requeued first)."""
        _fail_stale(self.study)
        states = (TrialState.WAITING, TrialState.RUNNING)
        return bool(self.study.get_trials(deepcopy=False, states=states))

    def unfinished_cells(self) -> set[str]:
        """The cells still waiting or running."""
        states = (TrialState.WAITING, TrialState.RUNNING)
        trials = self.study.get_trials(deepcopy=False, states=states)
        return {trial.user_attrs[CELL_ATTR] for trial in trials}

    def has_waiting(self) -> bool:
        """Whether cells wait to be claimed (stale runs are failed and requeued first)."""
        _fail_stale(self.study)
        return bool(self.study.get_trials(deepcopy=False, states=(TrialState.WAITING,)))

    def claim(self, ready: Callable[[str, set[str]], bool] | None = None) -> Claim | None:
        """Atomically take a waiting cell, or None if none is left.

        ``ready(cell, unfinished)`` (if given) says whether a cell may start now, given the
        cells still waiting or running; a cell it refuses stays in the queue.
        """
        for attempt in range(2):
            unfinished = self.unfinished_cells() if ready is not None else set()
            for trial in self.study.get_trials(deepcopy=False, states=(TrialState.WAITING,)):
                if ready is not None and not ready(trial.user_attrs[CELL_ATTR], unfinished):
                    continue
                trial_id = self.storage.get_trial_id_from_study_id_trial_number(
                    self.study_id, trial.number
                )
                try:
                    if self.storage.set_trial_state_values(trial_id, TrialState.RUNNING):
                        self._beat(trial_id)
                        return Claim(trial.user_attrs[CELL_ATTR], trial_id)
                except optuna.exceptions.UpdateFinishedTrialError:
                    continue  # another worker took and finished it meanwhile
            if attempt == 0:
                _fail_stale(self.study)  # crashed workers' cells come back as waiting
        return None

    @contextmanager
    def hold(self, claim: Claim) -> Iterator[None]:
        """Keep ``claim`` alive while the body runs; on an exception, requeue the cell."""
        stop = threading.Event()

        def beat() -> None:
            while not stop.wait(self.storage.get_heartbeat_interval()):
                try:
                    self._beat(claim.trial_id)
                except optuna.exceptions.UpdateFinishedTrialError:
                    return  # the body finished the cell (finish()) before leaving the hold

        thread = threading.Thread(target=beat, name="prunebench-heartbeat", daemon=True)
        thread.start()
        try:
            yield
        except BaseException:
            self.storage.set_trial_state_values(claim.trial_id, TrialState.FAIL)
            _requeue(self.study, self.storage.get_trial(claim.trial_id))
            raise
        finally:
            stop.set()
            thread.join()

    def _beat(self, trial_id: int) -> None:
        self.storage.record_heartbeat(trial_id)
        self.storage.set_trial_user_attr(trial_id, BEAT_ATTR, time.time())

    def held(self) -> dict[str, Held]:
        """Cells claimed by a worker whose heartbeat is within the grace period, by cell.

        Whether that worker is alive or died moments ago cannot be told apart until the grace
        period ends; then the cell is requeued and no longer held.
        """
        grace = self.storage.grace_period
        now = time.time()
        held = {}
        for trial in self.study.get_trials(deepcopy=False, states=(TrialState.RUNNING,)):
            start = trial.datetime_start.timestamp() if trial.datetime_start else now
            age = max(0.0, now - float(trial.user_attrs.get(BEAT_ATTR, start)))
            if age <= grace:
                held[trial.user_attrs[CELL_ATTR]] = Held(age, grace - age)
        return held

    def finish(self, claim: Claim, status: str) -> None:
        """Mark the claimed cell done; ``status`` (FINISHED or FAILED) is kept as a trial attr."""
        self.storage.set_trial_user_attr(claim.trial_id, "status", status)
        value = 1.0 if status == "FINISHED" else 0.0
        self.storage.set_trial_state_values(claim.trial_id, TrialState.COMPLETE, values=[value])
