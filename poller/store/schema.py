"""Create missing tables and views, and upgrade existing tables in place, idempotently.

A database written by the legacy backend has global UNIQUE keys on ``branches.name``,
``workflows.name`` and ``commits.hash``, narrow VARCHARs, possibly latin1 tables, and none
of our added columns or tables. One written by shark-poller 0.1 has ``utf8mb4_bin``
tables, which made the dashboard's text comparisons case-sensitive. :func:`ensure_schema`
compares each model with what the database has and closes the gap, one small step at a
time. MySQL DDL is not transactional, so every step checks the current state first and a
crash mid-upgrade is finished by the next start. No step drops a table, a column or a row.

Pollers that start together (two VMs booting) would race each other's DDL, so the whole
upgrade runs under a database-wide lock: ``GET_LOCK`` on MySQL, an immediate transaction
on SQLite. Whoever comes second finds the work done.
"""

from __future__ import annotations

import contextlib
import itertools
import time
from collections.abc import Iterator
from typing import Any

import peewee
import structlog
from playhouse.migrate import SchemaMigrator, make_index_name, migrate

from poller.clock import SYSTEM, whole_seconds
from poller.rules import runner_os
from poller.store.models import ALL_MODELS, BaseModel, Job, SchemaMigration, WorkflowRun
from poller.store.mysql import MYSQL_COLLATION, dialect_ddl, mysql_collation

log = structlog.get_logger(__name__)

SCHEMA_LOCK = "shark-poller:schema"
# Indexes earlier versions created that no shipped query needs any more, by the name
# peewee gave them; dropped once their replacements exist (see the models' indexes).
RETIRED_INDEXES = {
    "workflowruns": (
        "workflowruns_repo_createtime",
        "workflowruns_commithash",
        "workflowruns_workflowid",
        "workflowruns_repo_branchname_createtime",
        "workflowruns_repo_workflowname_createtime",
    ),
    "jobs": ("jobs_runid", "jobs_repo_os"),
}
SCHEMA_LOCK_SECONDS = 120

# Views the dashboard reads with plain SQL; the same text runs on MySQL and SQLite.
VIEWS = {
    # A run whose first attempt failed and a later attempt of the same run succeeded. An
    # attempt re-runs the same commit, so nothing but flakiness changed the outcome.
    "flaky_runs": """
        SELECT r.repo, r.workflowname, r.branchname, r.commithash, r.gitid AS runid,
               r.runattempt AS attempts, r.createtime
        FROM workflowruns r
        WHERE r.runattempt > 1
          AND EXISTS (SELECT 1 FROM workflowrun_attempts a
                      WHERE a.runid = r.gitid AND a.attempt = 1
                        AND a.conclusion IN ('failure', 'timed_out'))
          AND EXISTS (SELECT 1 FROM workflowrun_attempts a
                      WHERE a.runid = r.gitid AND a.attempt > 1
                        AND a.conclusion = 'success')""",
    # Successful runs of the workflows that config.toml's docker_workflows names. Asked
    # newest first, a repository's runs are read back from its newest until one is an
    # image build: MariaDB cannot bound a join's lookup by a time window, so a window
    # would not save reading the image workflows' whole history.
    "image_builds": """
        SELECT r.repo, r.workflowname, w.path AS workflowpath, r.gitid AS runid,
               r.branchname, r.commithash, r.createtime,
               COALESCE(r.endtime, r.updatetime) AS endtime, r.url
        FROM workflowruns r
        JOIN workflows w ON w.gitid = r.workflowid
        WHERE w.imagebuild = 1 AND r.status = 'completed' AND r.conclusion = 'success'""",
    # The waterfall's platforms: per repository, commit and workflow, the newest run, and
    # in it each job name's newest execution up to the run's current attempt (after
    # "re-run failed jobs", the jobs not re-run keep their earlier one).
    "job_results": """
        SELECT r.repo, r.commithash, r.branchname, r.workflowname, r.workflowid,
               r.gitid AS runid, r.runattempt, j.runattempt AS jobattempt,
               j.gitid AS jobid, j.name AS jobname, j.status, j.conclusion, j.os,
               j.labels, j.starttime, j.endtime, r.createtime
        FROM workflowruns r
        JOIN jobs j ON j.runid = r.gitid AND j.runattempt <= r.runattempt
        WHERE NOT EXISTS (SELECT 1 FROM jobs k
                          WHERE k.runid = j.runid AND k.name = j.name
                            AND k.runattempt > j.runattempt
                            AND k.runattempt <= r.runattempt)
          AND NOT EXISTS (SELECT 1 FROM workflowruns n
                          WHERE n.repo = r.repo AND n.commithash = r.commithash
                            AND n.workflowid = r.workflowid
                            AND (n.createtime > r.createtime
                                 OR (n.createtime = r.createtime AND n.gitid > r.gitid)))""",
    # Each job's wait for a runner, with what it asked for and where it ran. Skipped jobs
    # never waited, and queued jobs have no wait yet; a job cancelled while queued waited
    # until then, and has no start.
    "job_queue_times": """
        SELECT j.repo, j.runid, j.gitid AS jobid, j.runattempt, j.name AS jobname,
               j.labels, j.runnergroup, j.runnername, j.os, j.createtime, j.starttime,
               j.queuetime
        FROM jobs j
        WHERE j.queuetime IS NOT NULL""",
}

# Earlier versions stored the OS lowercase (``linux,windows``); GitHub's runner.os names
# are ``Linux``, ``Windows``, ``macOS``. Every value they could write, mapped.
_OLD_OS_WORDS = ("linux", "macos", "windows")
OLD_OS_VALUES = {
    ",".join(subset): runner_os.join_oses(runner_os.canonical_os(w) or w for w in subset)
    for size in (1, 2, 3)
    for subset in itertools.combinations(_OLD_OS_WORDS, size)
}
OS_NAMES_MIGRATION = "os-runner-names"


class SchemaLocked(peewee.OperationalError):
    """Another process held the schema lock for longer than we wait."""


# How long one DDL statement waits for the dashboard's open queries to let go of a table
# on MySQL/MariaDB. Online DDL still needs the table to itself for a moment at its start
# and end, and while it waits for that, every new query of the table waits behind it
# (https://mariadb.com/kb/en/metadata-locking/). The server's default is a year; a few
# seconds bound the dashboard's stall, and a start that gives up tries again later.
DDL_LOCK_WAIT_SECONDS = 5


def ensure_schema(db: peewee.Database) -> None:
    with _schema_lock(db), _ddl_lock_wait(db), dialect_ddl(db, ALL_MODELS):
        existing = set(db.get_tables())
        for model in ALL_MODELS:
            table = model._meta.table_name
            if table not in existing:
                db.create_tables([model])
                log.info("schema.table_created", table=table)
                continue
            if isinstance(db, peewee.MySQLDatabase):
                _align_text_columns(db, model)
            _add_columns(db, model)
            _align_indexes(db, model)
        _create_views(db)
        _once(db, OS_NAMES_MIGRATION, _rename_oses)


def _once(db: peewee.Database, name: str, upgrade: Any) -> None:
    """Run a data upgrade unless this database has it recorded; record it with the data."""
    if SchemaMigration.select().where(SchemaMigration.name == name).exists():
        return
    with db.atomic():
        upgrade(db)
        applied = whole_seconds(SYSTEM.now())
        SchemaMigration.insert(name=name, appliedat=applied).execute()


def _rename_oses(db: peewee.Database) -> None:
    """Rewrite lowercase OS values in place: one UPDATE per table, no row lost. On MySQL
    ``IN`` also matches the new spellings (``_ci``); rewriting those changes nothing."""
    for model in (WorkflowRun, Job):
        case = peewee.Case(model.os, list(OLD_OS_VALUES.items()), model.os)
        changed = model.update(os=case).where(model.os.in_(list(OLD_OS_VALUES))).execute()
        if changed:
            log.info("schema.os_names_upgraded", table=model._meta.table_name, rows=changed)


@contextlib.contextmanager
def _ddl_lock_wait(db: peewee.Database) -> Iterator[None]:
    if not isinstance(db, peewee.MySQLDatabase):
        yield
        return
    [(before,)] = _sql(db, "SELECT @@SESSION.lock_wait_timeout")
    _sql(db, "SET SESSION lock_wait_timeout = %s", (DDL_LOCK_WAIT_SECONDS,))
    try:
        yield
    finally:
        with contextlib.suppress(peewee.PeeweeException):
            _sql(db, "SET SESSION lock_wait_timeout = %s", (before,))


@contextlib.contextmanager
def _schema_lock(db: peewee.Database) -> Iterator[None]:
    if not isinstance(db, peewee.MySQLDatabase):
        # SQLite's DDL is transactional: an immediate transaction makes a second process
        # wait (busy_timeout) until the first has committed, then see its tables.
        with db.atomic("IMMEDIATE"):
            yield
        return
    [(taken,)] = _sql(db, "SELECT GET_LOCK(%s, %s)", (SCHEMA_LOCK, SCHEMA_LOCK_SECONDS))
    if taken != 1:
        raise SchemaLocked(f"another process held the schema lock for {SCHEMA_LOCK_SECONDS} s")
    try:
        yield
    finally:
        with contextlib.suppress(peewee.PeeweeException):
            _sql(db, "SELECT RELEASE_LOCK(%s)", (SCHEMA_LOCK,))


def _sql(db: peewee.Database, sql: str, params: tuple[Any, ...] = ()) -> list[tuple[Any, ...]]:
    cursor = db.execute_sql(sql, params)  # type: ignore[no-untyped-call]
    return list(cursor.fetchall()) if cursor.description else []


def _align_text_columns(db: peewee.Database, model: type[BaseModel]) -> None:
    """utf8mb4 throughout, ``_ci`` except for case-sensitive names, VARCHARs widened.

    One ALTER per table, column by column. ``CONVERT TO`` would be shorter, but it would
    give every column the table's ``_ci`` collation, and two branches ``Feature`` and
    ``feature`` would then collide on the unique key before the binary one is applied.
    """
    table = model._meta.table_name
    [(table_collation,)] = _sql(
        db,
        "SELECT table_collation FROM information_schema.tables "
        "WHERE table_schema = DATABASE() AND table_name = %s",
        (table,),
    )
    columns = {
        name.lower(): (data_type, column_type, width, collation, nullable == "YES", default)
        for name, data_type, column_type, width, collation, nullable, default in _sql(
            db,
            "SELECT column_name, data_type, column_type, character_maximum_length, "
            "collation_name, is_nullable, column_default FROM information_schema.columns "
            "WHERE table_schema = DATABASE() AND table_name = %s",
            (table,),
        )
    }
    clauses: list[str] = []
    params: list[Any] = []
    for field in model._meta.sorted_fields:
        if not isinstance(field, peewee.CharField | peewee.TextField):
            continue
        current = columns.get(field.column_name.lower())
        if current is None:
            continue  # added later, with the right collation, by _add_columns
        data_type, column_type, width, collation, nullable, default = current
        wanted = mysql_collation(field)
        if data_type == "varchar" and isinstance(field, peewee.CharField):
            new_type = f"VARCHAR({max(width, field.max_length)})"
            if collation == wanted and width >= field.max_length:
                continue
        elif data_type in ("text", "mediumtext", "longtext", "tinytext"):
            new_type = column_type.upper()
            if collation == wanted:
                continue
        else:
            continue
        clause = (
            f"MODIFY `{field.column_name}` {new_type} CHARACTER SET utf8mb4 COLLATE {wanted} "
            + ("NULL" if nullable else "NOT NULL")
        )
        if default is not None and default != "NULL":
            # MariaDB reports a string default quoted, MySQL 8 bare.
            clause += " DEFAULT %s"
            params.append(default[1:-1] if default.startswith("'") else default)
        clauses.append(clause)
        log.info(
            "schema.column_altered",
            table=table,
            column=field.column_name,
            was=f"{column_type} {collation}",
            now=f"{new_type.lower()} {wanted}",
        )
    if table_collation != MYSQL_COLLATION:
        clauses.insert(0, f"DEFAULT CHARACTER SET utf8mb4 COLLATE {MYSQL_COLLATION}")
        log.info("schema.collation_changed", table=table, was=table_collation)
    if clauses:
        _sql(db, f"ALTER TABLE `{table}` " + ", ".join(clauses), tuple(params))


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
        _add_index(db, migrator, table, columns, unique)
    # After the new ones: a query never finds neither.
    for index in db.get_indexes(table):
        if index.name in RETIRED_INDEXES.get(table, ()):
            migrate(migrator.drop_index(table, index.name))
            log.info("schema.index_dropped", table=table, index=index.name)


def _add_index(
    db: peewee.Database,
    migrator: SchemaMigrator,
    table: str,
    columns: tuple[str, ...],
    unique: bool,
) -> None:
    started = time.monotonic()
    if isinstance(db, peewee.MySQLDatabase) and not unique:
        # Online: the dashboard and other pollers keep reading and writing the table
        # while the index builds. If the server cannot do that, it refuses rather than
        # lock the table (https://mariadb.com/kb/en/innodb-online-ddl-overview/).
        listed = ", ".join(f"`{column}`" for column in columns)
        _sql(
            db,
            f"ALTER TABLE `{table}` ADD INDEX `{make_index_name(table, columns)}` ({listed}), "
            "ALGORITHM=INPLACE, LOCK=NONE",
        )
    else:
        migrate(migrator.add_index(table, columns, unique))
    log.info(
        "schema.index_added",
        table=table,
        columns=list(columns),
        unique=unique,
        seconds=round(time.monotonic() - started, 1),
    )


def _create_views(db: peewee.Database) -> None:
    for name, select in VIEWS.items():
        if isinstance(db, peewee.MySQLDatabase):
            _sql(db, f"CREATE OR REPLACE VIEW `{name}` AS {select}")
        else:
            _sql(db, f'DROP VIEW IF EXISTS "{name}"')
            _sql(db, f'CREATE VIEW "{name}" AS {select}')
