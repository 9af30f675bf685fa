"""Start-up: the exit codes, and opening the database the poller writes (creating or
upgrading its tables) or that ``status`` reads, each failure one line that says what to
do. The daemon waits for a database it cannot reach yet (a VM that boots before it, a
failover), with backoff, and fails only for what waiting cannot fix: credentials, a
missing database, a schema that cannot be upgraded."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import peewee
import structlog

from poller.config.loader import (
    DB_PASSWORD_ENV,
)
from poller.config.settings import (
    Config,
    Secrets,
)
from poller.shutdown import Stop
from poller.store import mysql
from poller.store.models import DatabaseMissing, SyncStatus, open_database, redact_url
from poller.store.schema import SchemaLocked, ensure_schema

EXIT_OK, EXIT_REPO_FAILED, EXIT_CONFIG, EXIT_DATABASE = 0, 1, 2, 3
EXIT_SKIPPED = 75  # sysexits' EX_TEMPFAIL: another process had a repository; try later

log = structlog.get_logger("poller")


class StartupError(Exception):
    def __init__(self, message: str, code: int, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.code = code
        # The database is not reachable yet, which waiting can fix.
        self.retryable = retryable


DATABASE_WAIT_MAX_SECONDS = 60.0


def open_for_writing(config: Config, secrets: Secrets) -> None:
    """Open the database, creating or upgrading its tables: the poller is the writer."""
    try:
        db = open_database(
            config.database.url,
            secrets.db_password,
            autoconnect=False,
            timeout_seconds=config.github.timeout_seconds * 2,
        )
    except OSError as error:  # SQLite's directory could not be made
        raise StartupError(
            f"database {redact_url(config.database.url)}: cannot create the directory "
            f"{error.filename}: {error.strerror} (create it, writable by the user the "
            "poller runs as, or point [database] url elsewhere)",
            EXIT_DATABASE,
        ) from None
    try:
        with db.connection_context():
            ensure_schema(db)
    except (peewee.PeeweeException, OSError) as error:
        code = mysql.error_code(error)
        hint = database_hint(db, error, secrets)
        # Waiting also fixes an upgrade that another poller is running, or one that the
        # dashboard's open queries held up (schema.DDL_LOCK_WAIT_SECONDS).
        busy = isinstance(error, SchemaLocked) or code == mysql.LOCK_WAIT_TIMEOUT
        raise StartupError(
            f"database {redact_url(config.database.url)}: {error}{hint}",
            EXIT_DATABASE,
            retryable=busy
            or (isinstance(error, peewee.OperationalError) and code in mysql.UNREACHABLE),
        ) from None


def database_hint(db: peewee.Database, error: Exception, secrets: Secrets) -> str:
    """What to do about a database error, where the error alone does not say it."""
    code = mysql.error_code(error)
    if (
        isinstance(db, peewee.MySQLDatabase)
        and code == mysql.ACCESS_DENIED
        and not secrets.db_password
        and not db.connect_params.get("password")  # none in the url either
    ):
        return f" (no password was given: set {DB_PASSWORD_ENV}, or the db_password credential)"
    text = str(error)
    if isinstance(db, peewee.SqliteDatabase) and ("unable to open" in text or "readonly" in text):
        where = Path(db.database).resolve()
        return (
            f" (the poller must be able to write {where.parent}: SQLite keeps "
            f"{where.name}-wal and {where.name}-shm beside the database; make the directory "
            "writable, or point [database] url elsewhere)"
        )
    return ""


def wait_for_database(
    config: Config, secrets: Secrets, stop: Stop, waiting: Callable[[StartupError], None]
) -> None:
    """Open the database for the daemon, waiting (1 s, doubling to a minute) while it is
    unreachable; ``waiting`` is told each time why. A stop ends the wait
    (``shutdown.Interrupted``); an error that waiting cannot fix is raised."""
    delay = 1.0
    while True:
        try:
            open_for_writing(config, secrets)
        except StartupError as error:
            if not error.retryable:
                raise
            log.warning("daemon.waiting_for_database", error=str(error), retry_in=delay)
            waiting(error)
            stop.sleep(delay)
            delay = min(delay * 2, DATABASE_WAIT_MAX_SECONDS)
            continue
        return


def open_for_reading(config: Config, secrets: Secrets) -> None:
    """Open an existing database read-only; status never creates or upgrades anything."""
    where = f"database {redact_url(config.database.url)}"
    try:
        db = open_database(config.database.url, secrets.db_password, read_only=True)
        with db.connection_context():
            if not db.table_exists(SyncStatus._meta.table_name):
                raise StartupError(
                    f"{where} has no shark-poller tables yet: run `python -m poller --once`",
                    EXIT_DATABASE,
                )
    except DatabaseMissing as error:
        raise StartupError(str(error), EXIT_DATABASE) from None
    except peewee.PeeweeException as error:
        raise StartupError(f"{where}: {error}", EXIT_DATABASE) from None
