"""The dashboard's tables as peewee models, and one call to open the database.

The five legacy tables (``repos``, ``branches``, ``commits``, ``workflows``,
``workflowruns``) keep the legacy names, column names and column types, because dashboard
code queries them directly. Two deliberate differences, both safe for readers:

* VARCHAR columns that hold GitHub names are widened (branch names reach 255 characters,
  the legacy ``varchar(50)`` would truncate them and make distinct branches collide).
* Uniqueness is per repository: ``(repo, name)`` and ``(repo, hash)`` instead of a global
  UNIQUE on the name or hash.

On MySQL/MariaDB text compares case-insensitively, as it did in the legacy tables, so the
dashboard's ``workflowname LIKE '%test%'`` and ``branchname = 'main'`` keep their answers.
Only names that git keeps apart by case and that a unique key covers (branch names,
commit hashes, cursor names) are compared byte for byte.

Dashboard scripts open the database like this::

    from poller.store import models
    models.connect("config.toml")
    failed = models.WorkflowRun.select().where(models.WorkflowRun.conclusion == "failure")
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import peewee
from playhouse.db_url import parse as parse_db_url

from poller.config.loader import ConfigError, load, load_secrets, resolve_path
from poller.store.model_base import NAME, SHA, STATE, BaseModel, database
from poller.store.mysql import (
    CaseSensitiveCharField,
    mysql_options,
)
from poller.store.state_models import (
    HttpCache,
    PollerHeartbeat,
    SchemaMigration,
    SyncCursor,
    SyncSchedule,
    SyncStatus,
)

# The poller's own tables live in state_models; readers find every table here.
__all__ = [
    "ALL_MODELS",
    "LEGACY_MODELS",
    "NAME",
    "SHA",
    "STATE",
    "STATE_MODELS",
    "SYNCED_MODELS",
    "BaseModel",
    "Branch",
    "Commit",
    "DatabaseMissing",
    "HttpCache",
    "Job",
    "PollerHeartbeat",
    "Repo",
    "SchemaMigration",
    "Step",
    "SyncCursor",
    "SyncSchedule",
    "SyncStatus",
    "Workflow",
    "WorkflowRun",
    "WorkflowRunAttempt",
    "connect",
    "database",
    "open_database",
    "redact_url",
]

# --- the legacy tables ---


class Repo(BaseModel):
    id = peewee.AutoField(column_name="Id")
    name = peewee.CharField(NAME, null=True, unique=True)
    # Added by shark-poller: GitHub's id, which stays when the repository is renamed or
    # transferred, so that its history follows it (``repo_moves``).
    gitid = peewee.BigIntegerField(null=True)

    class Meta:
        table_name = "repos"
        natural_key = ("name",)


class Branch(BaseModel):
    id = peewee.AutoField(column_name="Id")
    name = CaseSensitiveCharField(NAME)
    author = peewee.CharField(NAME, null=True)  # legacy; GitHub's branch API has no author
    repo = peewee.CharField(NAME)
    commithash = peewee.CharField(SHA, null=True)
    protected = peewee.BooleanField(null=True)

    class Meta:
        table_name = "branches"
        natural_key = ("repo", "name")
        indexes = ((("repo", "name"), True),)


class Commit(BaseModel):
    id = peewee.AutoField(column_name="Id")
    hash = CaseSensitiveCharField(SHA)
    author = peewee.CharField(NAME, null=True)
    message = peewee.TextField(null=True)
    time = peewee.DateTimeField(null=True)
    repo = peewee.CharField(NAME)
    # The dashboard's later legacy schema has these two. ``forced``: the branch head
    # moved to this commit from one it does not descend from (a force-push); NULL
    # otherwise. ``authorurl``: the author's GitHub profile, when the e-mail has one.
    forced = peewee.BooleanField(null=True)
    authorurl = peewee.CharField(NAME, null=True)

    class Meta:
        table_name = "commits"
        natural_key = ("repo", "hash")
        indexes = ((("repo", "hash"), True),)


class Workflow(BaseModel):
    id = peewee.AutoField(column_name="Id")
    name = peewee.CharField(NAME)
    url = peewee.CharField(NAME)
    repo = peewee.CharField(NAME)
    gitid = peewee.BigIntegerField(null=True, unique=True)
    path = peewee.CharField(NAME, null=True)
    state = peewee.CharField(STATE, null=True)
    # Whether config.toml's docker_workflows names this workflow (view image_builds).
    imagebuild = peewee.BooleanField(null=True)

    class Meta:
        table_name = "workflows"
        natural_key = ("gitid",)
        indexes = ((("repo", "name"), True),)


class WorkflowRun(BaseModel):
    id = peewee.AutoField(column_name="Id")
    gitid = peewee.BigIntegerField(unique=True)
    author = peewee.CharField(NAME, null=True)
    runtime = peewee.FloatField(null=True)  # seconds
    createtime = peewee.DateTimeField(null=True)
    starttime = peewee.DateTimeField(null=True)
    endtime = peewee.DateTimeField(null=True)
    # Whole seconds; the legacy DDL's DEFAULT 0 is kept for writers other than us.
    queuetime = peewee.BigIntegerField(null=True, constraints=[peewee.SQL("DEFAULT 0")])
    status = peewee.CharField(STATE, null=True)
    conclusion = peewee.CharField(STATE, null=True)
    url = peewee.CharField(NAME, null=True)
    branchname = peewee.CharField(NAME, null=True)
    commithash = peewee.CharField(SHA, null=True)
    workflowname = peewee.CharField(NAME, null=True)
    repo = peewee.CharField(NAME)
    os = peewee.CharField(100, null=True)
    # Added by shark-poller: what the incremental sync compares and the dashboard may use.
    workflowid = peewee.BigIntegerField(null=True)
    runattempt = peewee.IntegerField(null=True)
    runnumber = peewee.IntegerField(null=True)
    event = peewee.CharField(STATE, null=True)
    updatetime = peewee.DateTimeField(null=True)
    # When the poller found that GitHub no longer has the run (deleted by someone, or
    # past the repository's retention); NULL while it has. The row is history: kept.
    deletetime = peewee.DateTimeField(null=True)

    class Meta:
        table_name = "workflowruns"
        natural_key = ("gitid",)
        # Each index serves a shipped query; tests/store/test_query_cost.py holds each such
        # query, on MariaDB, to the rows it must read. MariaDB picks among them by cost
        # estimates that a year of history makes wrong in two ways, shaped out here:
        # - Only one index leads with repo. A repository's newest runs (LIMIT 50) then
        #   come through it, newest first, stopping at the 50th; offered another, MariaDB
        #   took that and sorted the year, or walked (createtime, ...) back over every
        #   repository's runs.
        # - Its entries are wider than (branchname, repo, createtime)'s. A branch's runs
        #   of a week then cost less as a range of that one, and MariaDB reads the week;
        #   where they did not, it chose a `ref` on (repo, branchname) and read the
        #   branch's whole year (a repository that runs all on main).
        indexes = (
            (("repo", "createtime", "branchname", "conclusion"), False),
            (("branchname", "repo", "createtime"), False),
            (("branchname", "createtime"), False),  # a branch across repositories
            # The dashboard's landing page filters on createtime alone (counts per day,
            # the failure share, the newest run); conclusion makes the share index-only.
            (("createtime", "conclusion"), False),
            # A workflow's runs of a window by name: the waterfall (job_results).
            (("workflowname", "repo", "createtime"), False),
            # A workflow's runs by time, and the newer run of the same commit that
            # job_results looks for. No index leads with commithash alone: one would
            # tempt MariaDB to join commits first into runs (the dashboard's runs with
            # their commit messages), and sort the repository's year.
            (("workflowid", "createtime"), False),
            (("workflowid", "commithash", "createtime"), False),
            # The runs not completed (a handful): what passes revisit and metrics count.
            (("status",), False),
        )


# --- tables shark-poller adds ---


class Job(BaseModel):
    """One row per job of every attempt of a run."""

    id = peewee.AutoField(column_name="Id")
    gitid = peewee.BigIntegerField(unique=True)
    runid = peewee.BigIntegerField()
    runattempt = peewee.IntegerField()
    name = peewee.CharField(NAME, null=True)
    status = peewee.CharField(STATE, null=True)
    conclusion = peewee.CharField(STATE, null=True)
    createtime = peewee.DateTimeField(null=True)
    starttime = peewee.DateTimeField(null=True)
    endtime = peewee.DateTimeField(null=True)
    labels = peewee.TextField(null=True)  # comma-joined runner labels
    runnername = peewee.CharField(NAME, null=True)
    os = peewee.CharField(100, null=True)  # GitHub's runner.os name, NULL when unknown
    repo = peewee.CharField(NAME)
    runnergroup = peewee.CharField(NAME, null=True)
    queuetime = peewee.BigIntegerField(null=True)  # whole seconds, started_at - created_at

    class Meta:
        table_name = "jobs"
        natural_key = ("gitid",)
        indexes = (
            # A run's jobs, and job_results' look for a later execution of the same job.
            (("runid", "name", "runattempt"), False),
            (("createtime",), False),  # job_queue_times over a window
            (("starttime",), False),
            # A repository's jobs of unknown OS: all of them, which a pass resolves when
            # the label map changes, and a week's, whose labels status lists.
            (("repo", "os", "createtime"), False),
        )


class Step(BaseModel):
    """The steps of each job, as the jobs listing carries them (no extra request)."""

    id = peewee.AutoField(column_name="Id")
    jobid = peewee.BigIntegerField()
    runid = peewee.BigIntegerField(null=True)
    number = peewee.IntegerField()
    name = peewee.CharField(NAME, null=True)
    status = peewee.CharField(STATE, null=True)
    conclusion = peewee.CharField(STATE, null=True)
    starttime = peewee.DateTimeField(null=True)
    endtime = peewee.DateTimeField(null=True)
    repo = peewee.CharField(NAME)

    class Meta:
        table_name = "steps"
        natural_key = ("jobid", "number")
        indexes = ((("jobid", "number"), True), (("conclusion", "starttime"), False))


class WorkflowRunAttempt(BaseModel):
    """Run-level facts of each attempt; ``workflowruns`` holds only the latest."""

    id = peewee.AutoField(column_name="Id")
    runid = peewee.BigIntegerField()
    attempt = peewee.IntegerField()
    status = peewee.CharField(STATE, null=True)
    conclusion = peewee.CharField(STATE, null=True)
    starttime = peewee.DateTimeField(null=True)
    endtime = peewee.DateTimeField(null=True)
    repo = peewee.CharField(NAME)

    class Meta:
        table_name = "workflowrun_attempts"
        natural_key = ("runid", "attempt")
        indexes = ((("runid", "attempt"), True),)


LEGACY_MODELS: tuple[type[BaseModel], ...] = (Repo, Branch, Commit, Workflow, WorkflowRun)
# What a repository's pass writes from GitHub, in its report's order: a table added here is
# created, counted and reported. The pass's counts are keyed by these models.
SYNCED_MODELS: tuple[type[BaseModel], ...] = (
    Workflow,
    Branch,
    Commit,
    WorkflowRun,
    Job,
    Step,
    WorkflowRunAttempt,
)
# The poller's own state: where each repository's sync stands, and the shared schedule.
STATE_MODELS: tuple[type[BaseModel], ...] = (
    SyncCursor,
    SyncStatus,
    HttpCache,
    SyncSchedule,
    PollerHeartbeat,
    SchemaMigration,
)
ALL_MODELS: tuple[type[BaseModel], ...] = (Repo, *SYNCED_MODELS, *STATE_MODELS)


class DatabaseMissing(Exception):
    """A reader was pointed at a database that does not exist."""


def open_database(
    url: str,
    password: str | None = None,
    *,
    autoconnect: bool = True,
    timeout_seconds: float = 60,
    read_only: bool = False,
) -> peewee.Database:
    """Make a peewee database for ``url`` and bind the models to it. Does not connect.

    The poller, the one writer, creates a missing SQLite file and its directories. A
    reader (``read_only``) opens an existing database only, and never writes to it.
    """
    scheme = urlsplit(url).scheme
    db: peewee.Database
    if scheme == "sqlite":
        db = _sqlite(url, autoconnect, timeout_seconds, read_only=read_only)
    elif scheme == "mysql":
        options = mysql_options(url, password)
        name = options.pop("database")
        if read_only:
            options["init_command"] = "SET SESSION TRANSACTION READ ONLY"
        db = peewee.MySQLDatabase(
            name,
            autoconnect=autoconnect,
            # peewee's default is the 3-byte 'utf8'; commit messages carry emoji.
            charset="utf8mb4",
            connect_timeout=10,
            # pymysql waits forever on a half-open socket unless these are set.
            read_timeout=int(timeout_seconds),
            write_timeout=int(timeout_seconds),
            **options,
        )
    else:
        raise ConfigError(f"database url: unsupported scheme {scheme!r}")
    database.initialize(db)
    return db


def _sqlite(
    url: str, autoconnect: bool, timeout_seconds: float, *, read_only: bool
) -> peewee.SqliteDatabase:
    options = parse_db_url(url)
    path = options.pop("database")
    pragmas: dict[str, Any] = {"busy_timeout": int(timeout_seconds * 1000)}
    if read_only and path != ":memory:":
        if not Path(path).is_file():
            raise DatabaseMissing(
                f"database {path} does not exist (shark-poller creates it on its first pass)"
            )
        # A read-only connection: it cannot create, upgrade or write anything.
        resolved = Path(path).resolve()
        mode = "mode=ro"
        if not Path(f"{resolved}-wal").exists() and not os.access(resolved.parent, os.W_OK):
            # Reading a WAL database needs its -shm file, which SQLite cannot create in
            # a directory we may not write. No -wal file means no writer is connected
            # (it would hold both), so the file is read as it stands.
            mode = "immutable=1"
        path = f"file:{resolved}?{mode}"
        options["uri"] = True
    elif path != ":memory:":
        Path(path).parent.mkdir(parents=True, exist_ok=True)
        # WAL lets dashboard readers query while the poller writes.
        pragmas["journal_mode"] = "wal"
        # A writer's transactions take the write lock when they begin. A deferred one
        # that reads and then writes fails at once, without waiting, when another
        # process wrote in between (SQLITE_BUSY_SNAPSHOT).
        options["lock_type"] = "IMMEDIATE"
    return peewee.SqliteDatabase(
        path, autoconnect=autoconnect, timeout=timeout_seconds, pragmas=pragmas, **options
    )


def redact_url(url: str) -> str:
    """The database url as it may appear in a log line: without its password."""
    parts = urlsplit(url)
    if parts.password is None:
        return url
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    user = f"{parts.username}@" if parts.username else ""
    return urlunsplit(parts._replace(netloc=f"{user}{host}"))


def connect(config_path: str | os.PathLike[str] | None = None) -> peewee.Database:
    """Open the database named in ``config.toml`` for reading, as dashboard scripts do.

    The path defaults to ``$SHARK_POLLER_CONFIG``, else ``./config.toml``; the password
    comes from ``$SHARK_POLLER_DB_PASSWORD`` when the url has none. The connection is
    read-only, and a missing SQLite file raises :class:`DatabaseMissing`.
    """
    config = load(resolve_path(os.fspath(config_path) if config_path else None))
    db = open_database(config.database.url, load_secrets().db_password, read_only=True)
    db.connect(reuse_if_open=True)
    return db
