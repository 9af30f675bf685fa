"""The poller's own tables, beside the dashboard's (``models``): cursors, the outcome of
each pass, the daemon's schedule and heartbeats, data migrations done, and the ETag
cache. The dashboard never reads them; ``status`` does."""

from __future__ import annotations

import peewee

from poller.store.model_base import NAME, BaseModel
from poller.store.mysql import CaseSensitiveCharField


class SyncCursor(BaseModel):
    """How far a repository's resource is synced, committed with the rows it covers."""

    id = peewee.AutoField(column_name="Id")
    repo = peewee.CharField(NAME)
    resource = CaseSensitiveCharField(NAME)  # "commits:BRANCH"
    position = peewee.CharField(NAME, null=True)
    updatetime = peewee.DateTimeField()

    class Meta:
        table_name = "sync_cursors"
        natural_key = ("repo", "resource")
        indexes = ((("repo", "resource"), True),)


class SyncStatus(BaseModel):
    """The outcome of the latest pass per repository, for ``python -m poller status``."""

    id = peewee.AutoField(column_name="Id")
    repo = peewee.CharField(NAME, unique=True)
    lastpass = peewee.DateTimeField(null=True)
    lastsuccess = peewee.DateTimeField(null=True)
    lasterror = peewee.TextField(null=True)
    requests = peewee.IntegerField(null=True)  # rate-limited requests of the last pass
    notmodified = peewee.IntegerField(null=True)  # its free 304 answers
    ratelimitremaining = peewee.IntegerField(null=True)

    class Meta:
        table_name = "sync_status"
        natural_key = ("repo",)


class SyncSchedule(BaseModel):
    """When each repository is due for the daemon, and which poller holds it now. Pollers
    on one database claim due repositories here, so they divide the work."""

    id = peewee.AutoField(column_name="Id")
    repo = peewee.CharField(NAME, unique=True)
    due = peewee.DateTimeField()
    leaseowner = peewee.CharField(NAME, null=True)
    leaseuntil = peewee.DateTimeField(null=True)

    class Meta:
        table_name = "sync_schedule"
        natural_key = ("repo",)


class PollerHeartbeat(BaseModel):
    """Each running daemon and when it last woke: the pollers on one database share one
    installation's request budget, each taking its part of it."""

    id = peewee.AutoField(column_name="Id")
    owner = peewee.CharField(NAME, unique=True)
    seen = peewee.DateTimeField()

    class Meta:
        table_name = "sync_pollers"
        natural_key = ("owner",)


class SchemaMigration(BaseModel):
    """Data upgrades done once per database, such as the OS names of earlier versions."""

    id = peewee.AutoField(column_name="Id")
    name = CaseSensitiveCharField(NAME, unique=True)
    appliedat = peewee.DateTimeField()

    class Meta:
        table_name = "schema_migrations"
        natural_key = ("name",)


class LongBlobField(peewee.BlobField):
    # MySQL's BLOB stops at 64 KiB; a cached page of runs can be larger.
    field_type = "LONGBLOB"


class HttpCache(BaseModel):
    """ETag and body of each polled GitHub URL, per token, so that after a restart an
    unchanged listing still answers 304, which costs no rate limit."""

    id = peewee.AutoField(column_name="Id")
    key = CaseSensitiveCharField(64, unique=True)  # sha256 of the token's identity and the URL
    url = peewee.TextField()
    etag = peewee.CharField(NAME)
    body = LongBlobField()  # zlib-compressed JSON
    updatetime = peewee.DateTimeField(index=True)

    class Meta:
        table_name = "http_cache"
        natural_key = ("key",)
