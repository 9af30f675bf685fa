"""A repository GitHub renamed or transferred: its history moves to the new name.

The dashboard keeps one history per repository, under the name GitHub shows now. When a
pass finds the repository moved (``github_moves``), every row stored under the old name
is moved to the new one in place, in one transaction: no row is lost, and a row the new
name already has (both names were followed for a while) is kept once, the new name's.
The config entry that named the old repository keeps its status and schedule, and
records where its repository went, so later passes use the new name.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from typing import Any

import peewee

from poller.rules import cursors
from poller.store.models import (
    Branch,
    Commit,
    Job,
    Repo,
    Step,
    SyncCursor,
    Workflow,
    WorkflowRun,
    WorkflowRunAttempt,
)
from poller.store.rows import get_cursor, set_cursors
from poller.store.units import unit_of_work

# Every table whose rows belong to a repository by its ``repo`` column. (``sync_status``
# and ``sync_schedule`` belong to the config entry, which keeps its name.)
OWNED = (Branch, Commit, Workflow, WorkflowRun, Job, Step, WorkflowRunAttempt, SyncCursor)


@unit_of_work
def move_repository(old: str, new: str, *, entry: str, now: datetime) -> int:
    """Move every row of ``old`` to ``new``; record the move under the config ``entry``.
    Returns the rows moved."""
    moved = _move_rows(old, new)
    set_cursors(entry, {cursors.REPO_MOVED_TO: new}, now)
    return moved


@unit_of_work
def adopt(name: str, repository_id: int, now: datetime) -> tuple[str, int] | None:
    """The repository GitHub knows by ``repository_id`` is called ``name`` now. When its
    history is stored under another name (an organisation's repository was renamed, or
    config.toml now names a moved repository anew), move it here. Returns the old name
    and the rows moved, or None."""
    other = Repo.get_or_none((Repo.gitid == repository_id) & (Repo.name != name))
    old: str | None = other.name if other is not None else None
    moved = None
    if old is not None:
        moved = (old, _move_rows(old, name))
        set_cursors(old, {cursors.REPO_MOVED_TO: name}, now)
    Repo.update(gitid=repository_id).where(Repo.name == name).execute()
    return moved


def _move_rows(old: str, new: str) -> int:
    moved = 0
    for model in OWNED:
        moved += _move(model, model._meta.fields["repo"], old, new)
    return moved + _move(Repo, Repo.name, old, new)


def current_name(entry: str, positions: Mapping[str, str] | None = None) -> str:
    """The name the config ``entry``'s repository has now: its own, or where it moved.
    ``positions``: the entry's cursors, when the caller has read them."""
    if positions is not None:
        return positions.get(cursors.REPO_MOVED_TO) or entry
    return get_cursor(entry, cursors.REPO_MOVED_TO) or entry


def _move(model: type[peewee.Model], owner: peewee.Field, old: str, new: str) -> int:
    if old.lower() != new.lower():
        # A row whose unique key the new name already has stays once: the new name's.
        primary = model._meta.fields["id"]  # every table here has its Id
        for key in _unique_keys(model, owner.name):
            others = [model._meta.fields[name] for name in key if name != owner.name]
            news = model.select(primary, *others).where(owner == new)
            taken = {row[1:] for row in _tuples(news)}
            old_rows = _tuples(model.select(primary, *others).where(owner == old))
            duplicates = [row[0] for row in old_rows if row[1:] in taken]
            for start in range(0, len(duplicates), 500):
                chunk = duplicates[start : start + 500]
                model.delete().where(primary.in_(chunk)).execute()
    return int(model.update({owner: new}).where(owner == old).execute())


def _tuples(query: peewee.ModelSelect) -> list[tuple[Any, ...]]:
    rows: list[tuple[Any, ...]] = list(query.tuples())  # type: ignore[arg-type]
    return rows


def _unique_keys(model: type[peewee.Model], owner: str) -> list[tuple[str, ...]]:
    """The unique keys, as the model declares them, that hold the owner column."""
    keys = [tuple(columns) for columns, unique in model._meta.indexes if unique]
    keys += [(field.name,) for field in model._meta.sorted_fields if field.unique]
    return [key for key in keys if owner in key]
