"""Starting and stopping a suite's local worker processes, so that none outlives the suite.

A terminal's Ctrl-C reaches every process of its group, and a parent stopped by SIGINT or SIGTERM
must stop its workers: workers start with SIGINT ignored (:func:`sigint_ignored`) until they
handle signals themselves (``prunebench.interrupts``), and :func:`stop_workers` ends them.
"""

from __future__ import annotations

import contextlib
import logging
import os
import signal
import threading
import time
from collections.abc import Iterator

log = logging.getLogger(__name__)

STOP_WAIT_SECONDS = 60.0
"""How long an interrupted suite waits for its workers to close their runs before killing them."""


def logger_levels() -> dict[str, int]:
    """The levels this process set on named loggers (e.g. Optuna's INFO lines turned off)."""
    loggers = logging.root.manager.loggerDict.items()
    return {
        name: logger.level
        for name, logger in loggers
        if isinstance(logger, logging.Logger) and logger.level != logging.NOTSET
    }


@contextlib.contextmanager
def sigint_ignored() -> Iterator[None]:
    """SIGINT ignored in this process while the body starts a child (which inherits that)."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        yield
    finally:
        signal.signal(signal.SIGINT, previous)


def stop_workers(processes: list) -> None:
    """Stop the live workers with SIGTERM, wait for them to close their runs (at most
    STOP_WAIT_SECONDS), then kill any left: the suite leaves no process behind.

    SIGTERM whatever the parent received: a worker still starting (its SIGINT ignored, see
    sigint_ignored) ends at once and silently; a started one handles it as it would SIGINT.
    """
    for process in processes:
        if process.is_alive() and process.pid is not None:
            with contextlib.suppress(ProcessLookupError):
                os.kill(process.pid, signal.SIGTERM)
    deadline = time.monotonic() + STOP_WAIT_SECONDS
    for process in processes:
        process.join(max(0.0, deadline - time.monotonic()))
    for process in processes:
        if process.is_alive():
            log.warning("worker %d did not stop in %g s; killed", process.pid, STOP_WAIT_SECONDS)
            process.kill()
            process.join()
