"""One writer per repository, across processes and machines.

Two pollers on one database, by mistake or to share repositories between machines, must
never write the same repository at once. Before syncing a repository a process takes its
lock without waiting; if another process holds it, the repository is skipped this pass.

* MySQL/MariaDB: ``GET_LOCK`` on a dedicated connection. The lock belongs to that
  session, so it is never the pooled connection the writes use, and before each unit of
  work we check ``IS_USED_LOCK(name) = CONNECTION_ID()``: a reconnect silently drops the
  lock, and then we must stop writing. When the server restarts, that connection waits
  and reconnects with the same backoff as the units of work, so a restart costs the time
  the server is down, not a failed pass.
* SQLite: an OS file lock next to the database file, released by the kernel if the
  process dies.
"""

from __future__ import annotations

import hashlib
import threading
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit

import filelock
import pymysql
import structlog
from playhouse.db_url import parse as parse_db_url

from poller.shutdown import Stop
from poller.store import units
from poller.store.mysql import mysql_options

log = structlog.get_logger(__name__)


class LockLost(Exception):
    """This process no longer holds the repository's lock; it must stop writing."""


class RepoLocks(Protocol):
    def acquire(self, repo: str) -> bool: ...
    def verify(self, repo: str) -> None: ...
    def release(self, repo: str) -> None: ...
    def close(self) -> None: ...


def lock_name(repo: str) -> str:
    # MySQL lock names are at most 64 characters; repository names can be longer.
    return "shark-poller:" + hashlib.sha1(repo.encode()).hexdigest()


class MySQLLocks:
    def __init__(
        self, url: str, password: str | None, stop: Stop, timeout_seconds: float = 30
    ) -> None:
        self.stop = stop  # cuts a reconnect's wait short
        self.options = {
            **mysql_options(url, password),
            "charset": "utf8mb4",
            "connect_timeout": 10,
            "read_timeout": int(timeout_seconds),
            "write_timeout": int(timeout_seconds),
            "autocommit": True,
        }
        self.connection: pymysql.Connection[Any] | None = None
        # One session holds the locks of every repository the process syncs at once, and
        # pymysql's connection is not safe to share between threads unguarded.
        self.guard = threading.RLock()

    def _query(self, sql: str, *params: Any) -> Any:
        """One query on the lock session; a lost connection is reopened with backoff
        (a server restart), any other error raised at once."""

        def once(attempt: int) -> Any:
            with self.guard:
                try:
                    if self.connection is None or not self.connection.open:
                        self.connection = pymysql.connect(**self.options)
                    with self.connection.cursor() as cursor:
                        cursor.execute(sql, params)
                        (value,) = cursor.fetchone()
                        return value
                except (pymysql.OperationalError, pymysql.InterfaceError):
                    self.connection = None  # whatever went wrong, the next query reconnects
                    raise

        return units.with_reconnects(
            once,
            errors=(pymysql.OperationalError, pymysql.InterfaceError),
            reset=lambda: None,
            event="locks.reconnecting",
            stop=self.stop,
        )

    def acquire(self, repo: str) -> bool:
        try:
            return bool(self._query("SELECT GET_LOCK(%s, 0)", lock_name(repo)) == 1)
        except pymysql.Error:
            self.connection = None
            raise

    def verify(self, repo: str) -> None:
        """Still ours? If the lock's session dropped, take the lock again if it is free:
        nobody else can have it then. If another process took it meanwhile, give up."""
        name = lock_name(repo)
        try:
            if self._query("SELECT IS_USED_LOCK(%s) = CONNECTION_ID()", name) == 1:
                return
        except pymysql.Error:
            self.connection = None
        try:
            if self._query("SELECT GET_LOCK(%s, 0)", name) == 1:
                return
        except pymysql.Error as error:
            self.connection = None
            raise LockLost(f"cannot check the repository lock: {error}") from None
        raise LockLost("another shark-poller process took this repository's lock")

    def release(self, repo: str) -> None:
        try:
            self._query("SELECT RELEASE_LOCK(%s)", lock_name(repo))
        except pymysql.Error:
            self.connection = None  # a dropped session has released its locks already

    def close(self) -> None:
        if self.connection is not None and self.connection.open:
            self.connection.close()
        self.connection = None


class FileLocks:
    def __init__(self, database_path: str) -> None:
        self.directory = Path(database_path).resolve().parent
        self.stem = Path(database_path).name
        self.held: dict[str, filelock.FileLock] = {}

    def acquire(self, repo: str) -> bool:
        digest = hashlib.sha1(repo.encode()).hexdigest()[:16]
        lock = filelock.FileLock(self.directory / f".{self.stem}.{digest}.lock")
        try:
            lock.acquire(timeout=0)
        except filelock.Timeout:
            return False
        self.held[repo] = lock
        return True

    def verify(self, repo: str) -> None:
        lock = self.held.get(repo)
        if lock is None or not lock.is_locked:
            raise LockLost("this process does not hold the repository's lock")

    def release(self, repo: str) -> None:
        lock = self.held.pop(repo, None)
        if lock is not None:
            lock.release()

    def close(self) -> None:
        for repo in list(self.held):
            self.release(repo)


class NoLocks:
    """For an in-memory SQLite database, which no other process can open."""

    def acquire(self, repo: str) -> bool:
        return True

    def verify(self, repo: str) -> None:
        pass

    def release(self, repo: str) -> None:
        pass

    def close(self) -> None:
        pass


def for_database(url: str, password: str | None, stop: Stop) -> RepoLocks:
    if urlsplit(url).scheme == "mysql":
        return MySQLLocks(url, password, stop)
    path = parse_db_url(url)["database"]
    return NoLocks() if path == ":memory:" else FileLocks(path)
