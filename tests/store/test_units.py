"""Units of work: one transaction each, rerun whole after a dropped connection, and never
rerun for an error that waiting cannot fix."""

from __future__ import annotations

from datetime import datetime, timedelta

import peewee
import pytest

from poller.store import units
from poller.store.locks import LockLost
from poller.store.models import Repo

GONE_AWAY = peewee.OperationalError(2006, "MySQL server has gone away")


def test_a_dropped_connection_reruns_the_whole_unit(sqlite_db: peewee.Database):
    attempts = []

    @units.unit_of_work
    def add_two() -> int:
        attempts.append(1)
        Repo.insert(name=f"octo/r{len(attempts)}").execute()
        if len(attempts) == 1:
            raise GONE_AWAY  # after the first write: the server rolls it back
        Repo.insert(name="octo/second").execute()
        return len(attempts)

    assert add_two() == 2
    # The first attempt's write was rolled back; the rerun wrote both rows once.
    assert sorted(row.name for row in Repo.select()) == ["octo/r2", "octo/second"]


def test_an_error_of_the_query_is_raised_at_once(sqlite_db: peewee.Database):
    attempts = []

    @units.unit_of_work
    def broken() -> None:
        attempts.append(1)
        sqlite_db.execute_sql("SELECT * FROM no_such_table")

    with pytest.raises(peewee.OperationalError, match="no such table"):
        broken()
    assert len(attempts) == 1


def test_nested_units_join_the_outer_transaction(sqlite_db: peewee.Database):
    @units.unit_of_work
    def inner() -> None:
        Repo.insert(name="octo/inner").execute()

    @units.unit_of_work
    def outer() -> None:
        inner()
        raise ValueError("the outer unit fails after the inner one wrote")

    with pytest.raises(ValueError):
        outer()
    assert Repo.select().count() == 0


def test_the_write_guard_stops_repository_writes_but_not_bookkeeping(sqlite_db: peewee.Database):
    def lost() -> None:
        raise LockLost("another process took the repository")

    @units.unit_of_work
    def write() -> None:
        Repo.insert(name="octo/demo").execute()

    @units.bookkeeping
    def note() -> None:
        Repo.insert(name="octo/bookkeeping").execute()

    with units.guarded(lost):
        with pytest.raises(LockLost):
            write()
        note()
    write()  # outside the repository's sync, nothing is checked
    assert [row.name for row in Repo.select()] == ["octo/bookkeeping", "octo/demo"]


@pytest.mark.parametrize(
    ("attempt", "seconds"), [(1, 0.5), (2, 1.0), (3, 2.0), (5, 8.0), (6, 10.0), (8, 10.0)]
)
def test_reconnects_back_off_to_ten_seconds(attempt, seconds):
    assert units.reconnect_delay(attempt) == seconds


def test_reconnects_last_about_as_long_as_a_server_restart():
    total = sum(units.reconnect_delay(a) for a in range(1, units.UNIT_ATTEMPTS))
    assert total == 35.5


@pytest.mark.parametrize(
    ("error", "disconnect"),
    [
        (GONE_AWAY, True),
        (peewee.OperationalError(2013, "Lost connection to MySQL server"), True),
        (peewee.InterfaceError(0, ""), True),
        (peewee.OperationalError(1205, "Lock wait timeout exceeded"), False),
        (peewee.IntegrityError(1062, "Duplicate entry"), False),
        (ValueError("not a database error"), False),
    ],
)
def test_only_a_lost_connection_counts_as_a_disconnect(error, disconnect):
    assert units.is_disconnect(error) is disconnect


def test_a_database_outage_is_one_warning_a_reminder_and_one_line_when_it_is_back(
    monkeypatch,
):
    """Every unit and the lock session reconnect on their own: logged at each attempt, a
    one-minute outage was some thirty warnings. Now: one when it begins, a reminder every
    five minutes, one line when the database answers."""
    from structlog.testing import capture_logs

    from poller.shutdown import Stop
    from support import FakeClock

    clock = FakeClock(datetime(2026, 12, 1))
    monkeypatch.setattr(units, "OUTAGE", units.Outage(clock.monotonic))

    class Waits(Stop):
        def sleep(self, seconds: float) -> None:
            clock.advance(timedelta(seconds=seconds))

    def unit(failures: int) -> str:
        def run(attempt: int) -> str:
            if attempt <= failures:
                raise peewee.OperationalError(2003, "Can't connect to MySQL server")
            return "done"

        return units.with_reconnects(
            run,
            errors=(peewee.OperationalError,),
            reset=lambda: None,
            event="store.reconnecting",
            stop=Waits(),
        )

    with capture_logs() as events:
        for _ in range(20):  # units and lock sessions, each failing all its attempts
            with pytest.raises(peewee.OperationalError):
                unit(failures=units.UNIT_ATTEMPTS)
        assert unit(failures=2) == "done"  # the database answers again
        assert unit(failures=0) == "done"
    loud = [(e["event"], e["log_level"]) for e in events if e["log_level"] != "debug"]
    # 20 units of 35.5 s of waits: about 12 minutes down, so two reminders.
    assert loud == [
        ("store.reconnecting", "warning"),
        ("store.still_reconnecting", "warning"),
        ("store.still_reconnecting", "warning"),
        ("store.reconnected", "info"),
    ]
    assert events[-1]["seconds"] > 700
