"""One signal path for every command: SIGINT and SIGTERM alike, from the first line of ``main``.

While :func:`handling` is active, the first SIGINT or SIGTERM raises :class:`Interrupted` (a
KeyboardInterrupt carrying the signal) in the main thread, so whatever runs stops where it is and
the code on its way out records how it ended. Later signals are only noted: the closing of a
record (a run's status, end time, checkpoint) is never cut short by a second Ctrl-C, nor by the
SIGINT that coreutils ``timeout`` sends 2 ms after the first.

Inside :func:`shielded` even the first signal is only noted: creating a store, and finishing a
run whose training is complete, happen whole. The signal then takes effect at the next safe point
(:func:`check`), or the caller reads :func:`received` and reports that the work finished.

A first signal raised where Python discards exceptions (a weakref callback during garbage
collection) is not lost: :func:`check` raises it again at the next safe point, until an
``except`` that closes the record calls :func:`acknowledge`.

Tests inject signals at named points (:func:`point`) through PRUNEBENCH_SIGNAL_AT, e.g.
``epoch-end=SIGINT,closing=SIGINT``: each named point sends its signal to this process once.
"""

from __future__ import annotations

import contextlib
import os
import signal
import sys
import threading
from collections.abc import Iterator

SIGNALS = (signal.SIGINT, signal.SIGTERM)
TEST_HOOK_VARIABLE = "PRUNEBENCH_SIGNAL_AT"


class Interrupted(KeyboardInterrupt):
    """A stop requested by SIGINT or SIGTERM; ``exit_code`` is the shell's 128 + signal."""

    def __init__(self, signum: int):
        super().__init__(signal.Signals(signum).name)
        self.signum = signum

    @property
    def exit_code(self) -> int:
        return 128 + self.signum


class _State:
    def __init__(self) -> None:
        self.received: list[int] = []
        self.raised = False
        self.acknowledged = False
        self.shield_depth = 0
        self.fired: set[str] = set()


_state = _State()


def _handler(signum: int, frame) -> None:
    _state.received.append(signum)
    if _state.shield_depth == 0 and not _state.raised:
        _state.raised = True
        raise Interrupted(signum)


def exit_code(error: BaseException) -> int:
    """The exit code of a stop: 128 + its signal (a KeyboardInterrupt from elsewhere: 130)."""
    return error.exit_code if isinstance(error, Interrupted) else 128 + signal.SIGINT


def signal_name(exit_code: int) -> str:
    """SIGINT for 130, SIGTERM for 143: the signal an exit code of 128 + N reports."""
    return signal.Signals(exit_code - 128).name


def received() -> int | None:
    """The first signal received while handling (None if none)."""
    return _state.received[0] if _state.received else None


def check() -> None:
    """A safe point: raise the first signal's Interrupted if it has not taken effect yet."""
    if _state.received and not _state.acknowledged and _state.shield_depth == 0:
        _state.raised = True
        raise Interrupted(_state.received[0])


def acknowledge() -> None:
    """The stop took effect (a record is being closed for it): :func:`check` no longer raises."""
    _state.raised = True
    _state.acknowledged = True


@contextlib.contextmanager
def shielded() -> Iterator[None]:
    """Run the body whole: a signal arriving meanwhile is noted, not raised."""
    _state.shield_depth += 1
    try:
        yield
    finally:
        _state.shield_depth -= 1


@contextlib.contextmanager
def handling(restore: bool = True) -> Iterator[None]:
    """Route SIGINT and SIGTERM through this module while the body runs (main thread only).

    ``restore=False`` leaves the handlers in place afterwards (a program's ``main``): a signal
    during interpreter shutdown is then noted instead of turning a finished command into 130.
    """
    global _state
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    _state = _State()
    previous = {number: signal.getsignal(number) for number in SIGNALS}
    previous_hook = sys.unraisablehook
    for number in SIGNALS:
        signal.signal(number, _handler)
    sys.unraisablehook = _quiet_unraisable(previous_hook)
    try:
        yield
    finally:
        if restore:
            for number, handler in previous.items():
                signal.signal(number, handler if handler is not None else signal.SIG_DFL)
            sys.unraisablehook = previous_hook
        else:
            _state.shield_depth += 1  # from here on, every signal is only noted


def _quiet_unraisable(previous):
    """An unraisable hook that drops a discarded Interrupted (no 'Exception ignored' lines):
    :func:`check` raises it again at the next safe point."""

    def hook(unraisable) -> None:
        if not isinstance(unraisable.exc_value, Interrupted):
            previous(unraisable)

    return hook


def point(name: str) -> None:
    """A named point where tests inject signals (PRUNEBENCH_SIGNAL_AT); a no-op otherwise."""
    spec = os.environ.get(TEST_HOOK_VARIABLE)
    if not spec or name in _state.fired:
        return
    for entry in spec.split(","):
        where, _, what = entry.strip().partition("=")
        if where == name:
            _state.fired.add(name)
            os.kill(os.getpid(), signal.Signals[what.strip()])
            return
