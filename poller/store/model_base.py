"""What every table shares: the database proxy that ``models.open_database`` points at
the configured database, the column widths, and the base model."""

from __future__ import annotations

import peewee

database = peewee.DatabaseProxy()

NAME = 255  # GitHub allows 255-character branch names; repo and workflow names are shorter.
SHA = 100  # the legacy width; a SHA-1 is 40 characters, a SHA-256 64.
STATE = 50


class BaseModel(peewee.Model):
    class Meta:
        database = database
        legacy_table_names = False


def natural_key(model: type[peewee.Model]) -> tuple[str, ...]:
    """The columns that name a row of ``model`` as GitHub or the poller knows it: what every
    upsert conflicts on. Each model declares its own (``Meta.natural_key``), one of its
    unique keys."""
    key: tuple[str, ...] = model._meta.natural_key  # type: ignore[attr-defined]
    return key
