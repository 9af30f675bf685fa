"""MySQL and MariaDB spelled out: the charset and collations the tables get, and
pymysql's connection options from a ``mysql://`` url.

MariaDB's server default is latin1 and peewee's connection default the 3-byte ``utf8``,
so nothing here is left to a default. Text compares without case, as in the legacy
tables; only names git keeps apart by case, inside a unique key, are binary.
"""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Sequence
from typing import Any

import peewee
from playhouse.db_url import parse as parse_db_url

# MySQL and MariaDB error codes the poller acts on, by what they mean to it.
# The connection is gone, not the query wrong: 2003 can't connect, 2006 server has gone
# away, 2013 lost connection, 2055 lost at reading (0: pymysql's own for a closed socket).
DISCONNECTED = frozenset({0, 2003, 2006, 2013, 2055})
# At start-up, what waiting can fix: no socket, no server (yet), an unknown host (DNS at
# boot), too many connections, a server shutting down or going away.
UNREACHABLE = frozenset({2002, 2003, 2005, 2006, 2013, 1040, 1053})
ACCESS_DENIED = 1045
# Another transaction holds the row: the work was another poller's this time.
LOCK_WAIT_TIMEOUT = 1205
DEADLOCK = 1213


def error_code(error: BaseException) -> int | None:
    """The MySQL error code an exception carries (pymysql and peewee put it first)."""
    code = error.args[0] if error.args else None
    return code if isinstance(code, int) else None


class CaseSensitiveCharField(peewee.CharField):
    """A name git treats as distinct by case (branches ``Feature`` and ``feature``), in a
    unique key. On MySQL it gets a binary collation; every other column is ``_ci``."""


# utf8mb4: commit messages carry emoji. unicode_ci: case-insensitive like the legacy
# latin1 tables, and present on MariaDB 10.x and MySQL 8 alike.
MYSQL_COLLATION = "utf8mb4_unicode_ci"
MYSQL_CASE_SENSITIVE_COLLATION = "utf8mb4_bin"
MYSQL_TABLE_SETTINGS = ["DEFAULT CHARSET=utf8mb4", f"COLLATE={MYSQL_COLLATION}"]


@contextlib.contextmanager
def dialect_ddl(db: peewee.Database, models: Sequence[type[peewee.Model]]) -> Iterator[None]:
    """Around DDL on ``db``: on MySQL/MariaDB the tables get utf8mb4 and the collations,
    and the byte-wise columns ``utf8mb4_bin``; on SQLite nothing (its "=" is already
    case-sensitive, and it knows no utf8mb4_bin). Peewee reads these from the models'
    class-level metadata, so they are set for the DDL only and reset after: no model
    carries one database's dialect to another."""
    mysql = isinstance(db, peewee.MySQLDatabase)
    case_sensitive = [
        field
        for model in models
        for field in model._meta.sorted_fields
        if isinstance(field, CaseSensitiveCharField)
    ]
    for model in models:
        model._meta.table_settings = MYSQL_TABLE_SETTINGS if mysql else []
    for field in case_sensitive:
        field.collation = MYSQL_CASE_SENSITIVE_COLLATION if mysql else None
    try:
        yield
    finally:
        for model in models:
            model._meta.table_settings = []
        for field in case_sensitive:
            field.collation = None


def mysql_collation(field: peewee.Field) -> str:
    """The collation a character column has on MySQL/MariaDB."""
    if isinstance(field, CaseSensitiveCharField):
        return MYSQL_CASE_SENSITIVE_COLLATION
    return MYSQL_COLLATION


def mysql_options(url: str, password: str | None) -> dict[str, Any]:
    """pymysql's connect() arguments for a ``mysql://`` url, with the password filled in."""
    options: dict[str, Any] = parse_db_url(url)
    # playhouse.db_url spells it 'passwd', which pymysql deprecates.
    if "passwd" in options:
        options["password"] = options.pop("passwd")
    elif password:
        options["password"] = password
    return options
