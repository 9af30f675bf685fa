"""Units of work: one transaction each, rerun whole when the MySQL connection drops.

A dropped connection ("server has gone away", a reset, a server restart, a killed
session) rolls the transaction back on the server. The unit then reconnects, with
backoff, and runs again from the start, so nothing is lost and nothing is written twice.

Units are plain functions that the whole store calls, so what they need from their caller
comes in by two context managers, each entered where it is decided: :func:`session`
(around a pass on one thread: the stop that cuts a reconnect's wait short) and
:func:`guarded` (around one repository's sync: the check that this process still holds
its lock). A unit outside both waits its whole backoff and checks nothing.
"""

from __future__ import annotations

import contextlib
import functools
import threading
import time
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any, ParamSpec, TypeVar

import peewee
import structlog

from poller import metrics
from poller.shutdown import Stop
from poller.store import mysql
from poller.store.models import database

log = structlog.get_logger(__name__)

UNIT_ATTEMPTS = 8
P = ParamSpec("P")
T = TypeVar("T")

# Set by session() and guarded() for the thread's pass and repository; read by units.
_stop: ContextVar[Stop | None] = ContextVar("stop", default=None)
_write_guard: ContextVar[Callable[[], None] | None] = ContextVar("write_guard", default=None)


def reconnect_delay(attempt: int) -> float:
    """Seconds before reconnect ``attempt``: 0.5, 1, 2, 4, 8, then 10 (35.5 s in all over
    the seven reconnects, the time a MariaDB restart or failover takes)."""
    return min(0.25 * 2.0**attempt, 10.0)


def is_disconnect(error: BaseException) -> bool:
    if not isinstance(error, peewee.OperationalError | peewee.InterfaceError):
        return False
    return mysql.error_code(error) in mysql.DISCONNECTED


class Outage:
    """The process's view of whether its database answers, for the log: an outage is
    one warning when it begins, a reminder every ``REMIND_SECONDS`` while it lasts, and
    one line when the database answers again. Every unit and the lock session reconnect
    on their own, each cycle, and logged each attempt: some thirty warnings a minute for
    one outage. There is one per process, as there is one ``database``."""

    REMIND_SECONDS = 300.0

    def __init__(self, monotonic: Callable[[], float] = time.monotonic) -> None:
        self.monotonic = monotonic
        self.lock = threading.Lock()
        self.since: float | None = None  # when the first reconnect of this outage began
        self.reminded = 0.0

    def lost(self, event: str, error: BaseException, **fields: Any) -> None:
        now = self.monotonic()
        with self.lock:
            if self.since is None:
                self.since = self.reminded = now
                log.warning(event, **fields, error=str(error))
            elif now - self.reminded >= self.REMIND_SECONDS:
                self.reminded = now
                log.warning(
                    "store.still_reconnecting", seconds=round(now - self.since), error=str(error)
                )
            else:
                log.debug(event, **fields, error=str(error))

    def answered(self) -> None:
        if self.since is None:  # the common case, without the lock
            return
        with self.lock:
            if self.since is not None:
                log.info("store.reconnected", seconds=round(self.monotonic() - self.since, 1))
                self.since = None


OUTAGE = Outage()


def with_reconnects(
    run: Callable[[int], T],
    *,
    errors: tuple[type[BaseException], ...],
    reset: Callable[[], None],
    event: str,
    stop: Stop | None = None,
    **fields: Any,
) -> T:
    """``run(attempt)`` until it returns; after an error of ``errors`` that says the
    connection is gone, ``reset`` it, log ``event`` and wait ``reconnect_delay``, which a
    shutdown cuts short. Any other error, or the last attempt's, is raised. The one
    reconnect policy of units of work and of the lock session; what it logs is
    :class:`Outage`'s."""
    for attempt in range(1, UNIT_ATTEMPTS + 1):
        try:
            result = run(attempt)
        except errors as error:
            if mysql.error_code(error) not in mysql.DISCONNECTED or attempt == UNIT_ATTEMPTS:
                raise
            reset()
            delay = reconnect_delay(attempt)
            OUTAGE.lost(event, error, **fields, attempt=attempt, retry_in=delay)
            (stop or _stop.get() or Stop()).sleep(delay)
        else:
            OUTAGE.answered()
            return result
    raise AssertionError("unreachable")


@contextlib.contextmanager
def session(stop: Stop) -> Iterator[None]:
    """Around a pass on this thread: units connect on demand (and reconnect, a wait that
    ``stop`` cuts short), and the pass ends closed.

    Not peewee's ``connection_context``: a unit that reconnected has reset the state that
    context would pop on exit.
    """
    token = _stop.set(stop)
    try:
        yield
    finally:
        _stop.reset(token)
        with contextlib.suppress(peewee.PeeweeException):
            database.close()


@contextlib.contextmanager
def guarded(check: Callable[[], None]) -> Iterator[None]:
    """Around one repository's sync: every unit of work (not bookkeeping) runs ``check``
    in its transaction before it writes, e.g. that this process still holds the lock."""
    token = _write_guard.set(check)
    try:
        yield
    finally:
        _write_guard.reset(token)


def unit_of_work(work: Callable[P, T]) -> Callable[P, T]:
    """Run ``work`` in one transaction; on a dropped connection, reconnect and rerun it.

    Nested units join the outer transaction, and the outer one is what gets retried.
    """
    return _unit(work, checked=True)


def bookkeeping(work: Callable[P, T]) -> Callable[P, T]:
    """A unit that writes no repository data, so needs no repository lock."""
    return _unit(work, checked=False)


def _unit(work: Callable[P, T], *, checked: bool) -> Callable[P, T]:
    def once(attempt: int, *args: P.args, **kwargs: P.kwargs) -> T:
        if database.is_closed():
            database.connect()
            if attempt > 1:
                metrics.DATABASE_RECONNECTS.inc()
        with database.atomic():
            guard = _write_guard.get() if checked else None
            if guard is not None:
                guard()
            return work(*args, **kwargs)

    def rerun() -> None:
        metrics.UNITS_RERUN.inc()
        # The connection is already dead; close() still resets peewee's state.
        with contextlib.suppress(peewee.PeeweeException):
            database.close()

    @functools.wraps(work)
    def unit(*args: P.args, **kwargs: P.kwargs) -> T:
        if database.in_transaction():
            return work(*args, **kwargs)
        return with_reconnects(
            lambda attempt: once(attempt, *args, **kwargs),
            errors=(peewee.OperationalError, peewee.InterfaceError),
            reset=rerun,
            event="store.reconnecting",
            unit=work.__name__,
        )

    return unit
