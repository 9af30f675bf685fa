"""One way to stop: a signal sets one event, and every wait in the process watches it.

Waits hide in libraries (urllib3's retry backoff, a reconnect's backoff, the wait for a
rate-limit reset). Each of them sleeps through :meth:`Stop.sleep`, which a stop request cuts
short by raising :class:`Interrupted`. The pass itself runs on a worker thread, so the
main thread can give the unit of work in flight :data:`GRACE_SECONDS` to finish and then
exit regardless: a unit is one transaction, so one abandoned mid-way rolls back and is
redone by the next pass. That bounds a stop to a couple of seconds in any state.
"""

from __future__ import annotations

import logging
import os
import signal
import sys
import threading
from collections.abc import Callable
from types import FrameType

import structlog

log = structlog.get_logger(__name__)

# How long the unit of work in flight gets to reach its boundary after a stop request.
GRACE_SECONDS = 2.0


class Interrupted(Exception):
    """A stop was requested; raised from a wait, or between units of work."""


class Stop:
    """A process's stop request. ``__main__`` makes one and hands it to everything that
    waits or loops: the GitHub clients, the engine, the daemon. A test makes its own and
    calls :meth:`request`; no state outlives the object."""

    def __init__(self) -> None:
        self._requested = threading.Event()
        self._signal: signal.Signals | None = None

    def request(self, by: signal.Signals | None = None) -> bool:
        """Ask everything to stop; True the first time. ``by``: the signal that asked."""
        if self._requested.is_set():
            return False
        self._signal = by
        self._requested.set()
        return True

    @property
    def requested(self) -> bool:
        return self._requested.is_set()

    def wait(self, seconds: float) -> bool:
        """Wait up to ``seconds``, or until a stop is requested; True if one was."""
        return self._requested.wait(seconds)

    def sleep(self, seconds: float) -> None:
        """``time.sleep`` that a stop request cuts short, raising :class:`Interrupted`."""
        if seconds > 0:
            self._requested.wait(seconds)
        self.check()

    def check(self) -> None:
        if self._requested.is_set():
            raise Interrupted("shutdown requested")

    def received(self) -> signal.Signals | None:
        """The signal that asked us to stop, if one did."""
        return self._signal

    def exit_status(self) -> int:
        """128 + the signal's number: 130 for SIGINT, 143 for SIGTERM (the shell
        convention)."""
        return 128 + int(self._signal) if self._signal else 1

    def install(self, on_stop: Callable[[signal.Signals], None] | None = None) -> None:
        """SIGTERM and SIGINT request a stop. ``on_stop`` runs once, in the main thread."""

        def handle(signum: int, _: FrameType | None) -> None:
            received = signal.Signals(signum)
            if self.request(received) and on_stop is not None:
                on_stop(received)

        signal.signal(signal.SIGTERM, handle)
        signal.signal(signal.SIGINT, handle)

    def run_in_worker(self, work: Callable[[], None], name: str) -> bool:
        """Run ``work`` on a thread and wait for it; after a stop request, wait at most
        :data:`GRACE_SECONDS` more. Returns False if the work had to be abandoned."""
        worker = threading.Thread(target=work, name=name, daemon=True)
        worker.start()
        # A join with a timeout lets the main thread run signal handlers while it waits.
        while worker.is_alive() and not self.requested:
            worker.join(0.5)
        worker.join(GRACE_SECONDS)
        return not worker.is_alive()


def abandon(status: int) -> None:
    """Exit now, leaving a worker thread behind: its open transaction rolls back when the
    process ends, and the files and sockets it holds are closed by the kernel."""
    for handler in logging.getLogger().handlers:
        handler.flush()
    sys.stderr.flush()
    os._exit(status)
