"""Units of work: one transaction each, rerun whole when the MySQL connection drops.

A dropped connection ("server has gone away", a reset, a server restart, a killed
session) rolls the transaction back on the server. The unit then reconnects, with
backoff, and runs again from the start, so nothing is lost and nothing is written twice.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Callable, Iterator
from contextvars import ContextVar
from typing import Any, ParamSpec, TypeVar

import peewee
import structlog

from poller import metrics, shutdown
from poller.store import mysql
from poller.store.models import database

log = structlog.get_logger(__name__)

UNIT_ATTEMPTS = 8
P = ParamSpec("P")
T = TypeVar("T")

# Run inside each unit's transaction before its work, e.g. to check that this process
# still holds the repository's lock. Set per repository by the sync.
write_guard: ContextVar[Callable[[], None] | None] = ContextVar("write_guard", default=None)


def reconnect_delay(attempt: int) -> float:
    """Seconds before reconnect ``attempt``: 0.5, 1, 2, 4, 8, then 10 (35.5 s in all over
    the seven reconnects, the time a MariaDB restart or failover takes)."""
    return min(0.25 * 2.0**attempt, 10.0)


def is_disconnect(error: BaseException) -> bool:
    if not isinstance(error, peewee.OperationalError | peewee.InterfaceError):
        return False
    return mysql.error_code(error) in mysql.DISCONNECTED


def with_reconnects(
    run: Callable[[int], T],
    *,
    errors: tuple[type[BaseException], ...],
    reset: Callable[[], None],
    event: str,
    **fields: Any,
) -> T:
    """``run(attempt)`` until it returns; after an error of ``errors`` that says the
    connection is gone, ``reset`` it, log ``event`` and wait ``reconnect_delay``, which a
    shutdown cuts short. Any other error, or the last attempt's, is raised. The one
    reconnect policy of units of work and of the lock session."""
    for attempt in range(1, UNIT_ATTEMPTS + 1):
        try:
            return run(attempt)
        except errors as error:
            if mysql.error_code(error) not in mysql.DISCONNECTED or attempt == UNIT_ATTEMPTS:
                raise
            reset()
            delay = reconnect_delay(attempt)
            log.warning(event, **fields, attempt=attempt, error=str(error), retry_in=delay)
            shutdown.sleep(delay)
    raise AssertionError("unreachable")


@contextlib.contextmanager
def session() -> Iterator[None]:
    """Around a pass: units connect on demand (and reconnect), and the pass ends closed.

    Not peewee's ``connection_context``: a unit that reconnected has reset the state that
    context would pop on exit.
    """
    try:
        yield
    finally:
        with contextlib.suppress(peewee.PeeweeException):
            database.close()


def unit_of_work(work: Callable[P, T]) -> Callable[P, T]:
    """Run ``work`` in one transaction; on a dropped connection, reconnect and rerun it.

    Nested units join the outer transaction, and the outer one is what gets retried.
    """
    return _unit(work, guarded=True)


def bookkeeping(work: Callable[P, T]) -> Callable[P, T]:
    """A unit that writes no repository data, so needs no repository lock."""
    return _unit(work, guarded=False)


def _unit(work: Callable[P, T], *, guarded: bool) -> Callable[P, T]:
    def once(attempt: int, *args: P.args, **kwargs: P.kwargs) -> T:
        if database.is_closed():
            database.connect()
            if attempt > 1:
                metrics.DATABASE_RECONNECTS.inc()
        with database.atomic():
            guard = write_guard.get() if guarded else None
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
