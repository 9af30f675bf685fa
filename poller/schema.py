"""Create missing tables and upgrade existing ones in place, idempotently.

A database written by the legacy backend has global UNIQUE keys on ``branches.name``,
``workflows.name`` and ``commits.hash``, narrow VARCHARs, possibly latin1 tables, and none
of our added columns or tables. :func:`ensure_schema` compares each model with what the
database has and closes the gap, one small step at a time. MySQL DDL is not transactional,
so every step checks the current state first and a crash mid-upgrade is finished by the
next start. No step drops a table, a column or a row.
"""

from __future__ import annotations

from typing import Any

import peewee
import structlog
from playhouse.migrate import SchemaMigrator, migrate

from poller.models import ALL_MODELS, BaseModel

log = structlog.get_logger(__name__)

COLLATION = "utf8mb4_bin"


def ensure_schema(db: peewee.Database) -> None:
    existing = set(db.get_tables())
    for model in ALL_MODELS:
        table = model._meta.table_name
        if table not in existing:
            db.create_tables([model])
            log.info("schema.table_created", table=table)
            continue
        if isinstance(db, peewee.MySQLDatabase):
            _convert_charset(db, table)
            _widen_varchars(db, model)
        _add_columns(db, model)
        _align_indexes(db, model)


def _sql(db: peewee.Database, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    cursor = db.execute_sql(sql, params)  # type: ignore[no-untyped-call]
    return list(cursor.fetchall()) if cursor.description else []


def _convert_charset(db: peewee.Database, table: str) -> None:
    [(collation,)] = _sql(
        db,
        "SELECT table_collation FROM information_schema.tables "
        "WHERE table_schema = DATABASE() AND table_name = %s",
        (table,),
    )
    if collation != COLLATION:
        _sql(db, f"ALTER TABLE `{table}` CONVERT TO CHARACTER SET utf8mb4 COLLATE {COLLATION}")
        log.info("schema.charset_converted", table=table, was=collation)


def _widen_varchars(db: peewee.Database, model: type[BaseModel]) -> None:
    table = model._meta.table_name
    widths = {
        name.lower(): (width, nullable == "YES")
        for name, width, nullable in _sql(
            db,
            "SELECT column_name, character_maximum_length, is_nullable "
            "FROM information_schema.columns "
            "WHERE table_schema = DATABASE() AND table_name = %s AND data_type = 'varchar'",
            (table,),
        )
    }
    for field in model._meta.sorted_fields:
        if not isinstance(field, peewee.CharField):
            continue
        current = widths.get(field.column_name.lower())
        if current is None or current[0] >= field.max_length:
            continue
        null = "NULL" if current[1] else "NOT NULL"
        _sql(
            db,
            f"ALTER TABLE `{table}` MODIFY `{field.column_name}` "
            f"VARCHAR({field.max_length}) {null}",
        )
        log.info(
            "schema.column_widened",
            table=table,
            column=field.column_name,
            was=current[0],
            now=field.max_length,
        )


def _add_columns(db: peewee.Database, model: type[BaseModel]) -> None:
    table = model._meta.table_name
    have = {column.name.lower() for column in db.get_columns(table)}
    migrator = SchemaMigrator.from_database(db)
    for field in model._meta.sorted_fields:
        if field.column_name.lower() in have:
            continue
        # Added columns are nullable, so existing rows need no value.
        migrate(migrator.add_column(table, field.column_name, field))
        log.info("schema.column_added", table=table, column=field.column_name)


def _wanted_indexes(model: type[BaseModel]) -> set[tuple[tuple[str, ...], bool]]:
    wanted: set[tuple[tuple[str, ...], bool]] = {
        ((field.column_name.lower(),), bool(field.unique))
        for field in model._meta.sorted_fields
        if (field.unique or field.index) and not field.primary_key
    }
    for columns, unique in model._meta.indexes:
        names = tuple(model._meta.fields[name].column_name.lower() for name in columns)
        wanted.add((names, bool(unique)))
    return wanted


def _align_indexes(db: peewee.Database, model: type[BaseModel]) -> None:
    table = model._meta.table_name
    wanted = _wanted_indexes(model)
    have: set[tuple[tuple[str, ...], bool]] = set()
    migrator = SchemaMigrator.from_database(db)
    for index in db.get_indexes(table):
        key = (tuple(column.lower() for column in index.columns), bool(index.unique))
        if index.name == "PRIMARY" or key in wanted:
            have.add(key)
            continue
        if index.unique:
            # A legacy global UNIQUE (e.g. on branches.name) would stop two repositories
            # from both having a 'main' branch. It carries no data, so dropping it is safe.
            if index.name.startswith("sqlite_autoindex"):
                raise RuntimeError(
                    f"table {table} has an inline UNIQUE on {index.columns} that SQLite "
                    "cannot drop; recreate the table without it"
                )
            migrate(migrator.drop_index(table, index.name))
            log.info("schema.index_dropped", table=table, index=index.name)
    for columns, unique in sorted(wanted - have):
        migrate(migrator.add_index(table, columns, unique))
        log.info("schema.index_added", table=table, columns=list(columns), unique=unique)
