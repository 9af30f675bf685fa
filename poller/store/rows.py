"""Diff fetched rows against the database and write only what changed.

Every write is a batched upsert (``INSERT ... ON CONFLICT``/``ON DUPLICATE KEY UPDATE``),
so a row that appeared since we read the table can never turn into a duplicate.

Each public function is one unit of work (``units.unit_of_work``): one transaction, rerun
whole after a reconnect. A unit that writes rows also writes the cursor covering them, so
a retry or a crash can neither skip nor duplicate anything.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import peewee
import structlog

from poller.rules.transform import Row
from poller.store.model_base import natural_key
from poller.store.models import (
    Branch,
    Commit,
    Repo,
    SyncCursor,
    SyncStatus,
    Workflow,
    database,
)
from poller.store.units import unit_of_work

log = structlog.get_logger(__name__)

BATCH = 200


@dataclass
class Counts:
    inserted: int = 0
    updated: int = 0
    unchanged: int = 0
    deleted: int = 0

    def add(self, other: Counts) -> None:
        self.inserted += other.inserted
        self.updated += other.updated
        self.unchanged += other.unchanged
        self.deleted += other.deleted


def clip(model: type[peewee.Model], row: Row) -> Row:
    """Cut strings to their column's width so a strict MySQL never rejects a row."""
    for name, value in row.items():
        field = model._meta.fields[name]
        if (
            isinstance(value, str)
            and isinstance(field, peewee.CharField)
            and len(value) > field.max_length
        ):
            log.warning(
                "store.value_clipped",
                table=model._meta.table_name,
                column=name,
                length=len(value),
                width=field.max_length,
            )
            row[name] = value[: field.max_length]
    return row


def upsert(model: type[peewee.Model], rows: Sequence[Row]) -> None:
    """Insert ``rows``, updating every other column of rows whose natural key exists."""
    if not rows:
        return
    key = natural_key(model)
    columns = [model._meta.fields[name] for name in rows[0] if name not in key]
    for batch in peewee.chunked(rows, BATCH):
        query = model.insert_many(batch)
        if not columns:
            query = query.on_conflict_ignore()
        elif isinstance(database.obj, peewee.MySQLDatabase):
            # MySQL's ON DUPLICATE KEY UPDATE takes no conflict target.
            query = query.on_conflict(preserve=columns)
        else:
            target = [model._meta.fields[name] for name in key]
            query = query.on_conflict(conflict_target=target, preserve=columns)
        query.execute()


def diff(existing: dict[Any, Row], fetched: Iterable[Row], key_of: Any) -> tuple[list[Row], Counts]:
    """The fetched rows that are new or differ from what is stored, and the counts."""
    changed: list[Row] = []
    counts = Counts()
    for row in fetched:
        stored = existing.get(key_of(row))
        if stored is None:
            counts.inserted += 1
            changed.append(row)
        elif any(stored.get(name) != value for name, value in row.items()):
            counts.updated += 1
            changed.append(row)
        else:
            counts.unchanged += 1
    return changed, counts


def select_rows(model: type[peewee.Model], columns: Iterable[str], where: Any) -> list[Row]:
    fields = [model._meta.fields[name] for name in columns]
    rows: list[Row] = list(model.select(*fields).where(where).dicts())  # type: ignore[arg-type]
    return rows


# --- repos ---


@unit_of_work
def ensure_repo(name: str) -> None:
    if not Repo.select().where(Repo.name == name).exists():
        upsert(Repo, [{"name": name}])


# --- branches and workflows: mirror the current set ---


@unit_of_work
def mirror_branches(repo: str, rows: list[Row]) -> Counts:
    rows = [clip(Branch, row) for row in rows]
    columns = list(rows[0]) if rows else ["name"]
    stored = {row["name"]: row for row in select_rows(Branch, columns, Branch.repo == repo)}
    changed, counts = diff(stored, rows, lambda row: row["name"])
    upsert(Branch, changed)
    gone = set(stored) - {row["name"] for row in rows}
    if gone:
        counts.deleted = (
            Branch.delete().where((Branch.repo == repo) & Branch.name.in_(sorted(gone))).execute()
        )
    return counts


@unit_of_work
def mirror_workflows(repo: str, rows: list[Row]) -> Counts:
    """Workflows are matched by GitHub's stable id, so a rename updates the row in place.

    Rows written by the legacy backend have no id; one is adopted by name the first time.
    """
    rows = [clip(Workflow, row) for row in _unique_names(repo, rows)]
    columns = ["id", "gitid", "name", "url", "path", "state", "repo", "imagebuild"]
    stored_rows = select_rows(Workflow, columns, Workflow.repo == repo)
    legacy_by_name = {fold(row["name"]): row for row in stored_rows if row["gitid"] is None}
    for row in rows:
        legacy = legacy_by_name.pop(fold(row["name"]), None)
        if legacy is not None:
            Workflow.update(gitid=row["gitid"]).where(Workflow.id == legacy["id"]).execute()
            legacy["gitid"] = row["gitid"]
    ids = {row["gitid"]: row.pop("id") for row in stored_rows if row["gitid"] is not None}
    stored = {row["gitid"]: row for row in stored_rows if row["gitid"] is not None}
    changed, counts = diff(stored, rows, lambda row: row["gitid"])

    fetched = {row["gitid"] for row in rows}
    # Only rows we can identify are mirrored. A legacy row that matches no current name
    # may be a workflow renamed long ago that old runs still name, so it is kept.
    gone = [ids[gitid] for gitid in stored if gitid not in fetched]
    if gone:
        Workflow.delete().where(Workflow.id.in_(gone)).execute()
    # A changed row may take a name another stored row still holds (a swap, or a name
    # reused by a new workflow). That other row is changing too, so park it meanwhile.
    taken = {fold(row["name"]): row["gitid"] for row in changed}
    for gitid, row in stored.items():
        if gitid in fetched and taken.get(fold(row["name"]), gitid) != gitid:
            Workflow.update(name=f"~{gitid}").where(Workflow.id == ids[gitid]).execute()
    upsert(Workflow, changed)
    counts.deleted = len(gone)
    return counts


def fold(name: str) -> str:
    """A workflow name as MySQL's ``utf8mb4_unicode_ci`` compares it: without case and
    accents, so ``CI`` and ``ci`` are one name, as in the legacy table."""
    decomposed = unicodedata.normalize("NFKD", name)
    return "".join(c for c in decomposed if not unicodedata.combining(c)).casefold()


def _unique_names(repo: str, rows: list[Row]) -> list[Row]:
    """GitHub allows two workflows with one name; the table is unique on (repo, name),
    compared without case."""
    seen: dict[str, Row] = {}
    for row in sorted(rows, key=lambda row: (row.get("state") != "active", row["gitid"])):
        key = fold(row["name"])
        if key in seen:
            log.warning(
                "store.workflow_name_duplicate",
                repo=repo,
                name=row["name"],
                kept=seen[key]["gitid"],
                skipped=row["gitid"],
            )
            continue
        seen[key] = row
    return list(seen.values())


# --- commits ---


@unit_of_work
def save_commits(repo: str, rows: list[Row], *, insert_only: bool = False) -> Counts:
    """Upsert commits. ``insert_only`` is for a run's ``head_commit``, which carries less
    than the commits listing: it may add a commit but never overwrite one."""
    rows = [clip(Commit, row) for row in {row["hash"]: row for row in rows}.values()]
    if not rows:
        return Counts()
    stored = {
        row["hash"]: row
        for row in select_rows(
            Commit,
            list(rows[0]),
            (Commit.repo == repo) & Commit.hash.in_([r["hash"] for r in rows]),
        )
    }
    if insert_only:
        rows = [row for row in rows if row["hash"] not in stored]
    changed, counts = diff(stored, rows, lambda row: row["hash"])
    upsert(Commit, changed)
    return counts


# --- cursors and status ---


@unit_of_work
def get_cursor(repo: str, resource: str) -> str | None:
    row = SyncCursor.get_or_none((SyncCursor.repo == repo) & (SyncCursor.resource == resource))
    return row.position if row else None


@unit_of_work
def get_cursors(repo: str) -> dict[str, str]:
    """Every cursor of ``repo``, by name: one query."""
    query = SyncCursor.select(SyncCursor.resource, SyncCursor.position)
    rows = query.where((SyncCursor.repo == repo) & SyncCursor.position.is_null(False))
    return {row.resource: str(row.position) for row in rows}


def all_cursors() -> dict[str, dict[str, str]]:
    """Every repository's cursors, by repository and name: one query, for status."""
    cursors: dict[str, dict[str, str]] = {}
    query = SyncCursor.select(SyncCursor.repo, SyncCursor.resource, SyncCursor.position)
    for row in query.where(SyncCursor.position.is_null(False)):
        cursors.setdefault(row.repo, {})[row.resource] = str(row.position)
    return cursors


@unit_of_work
def set_cursors(repo: str, positions: dict[str, str], now: datetime) -> None:
    rows = [
        {"repo": repo, "resource": resource, "position": position, "updatetime": now}
        for resource, position in positions.items()
    ]
    upsert(SyncCursor, rows)


@unit_of_work
def save_branch_commits(
    repo: str, rows: list[Row], cursors: dict[str, str], now: datetime
) -> Counts:
    """A page of a branch's commits; the branch's cursor moves with its last page."""
    counts = save_commits(repo, rows)
    set_cursors(repo, cursors, now)
    return counts


@unit_of_work
def mark_forced(repo: str, sha: str) -> None:
    Commit.update(forced=True).where((Commit.repo == repo) & (Commit.hash == sha)).execute()


@unit_of_work
def record_org(name: str, now: datetime, error: str | None) -> None:
    """An organisation's listing failed (kept, for status), or worked (forgotten)."""
    if error is None:
        SyncStatus.delete().where(SyncStatus.repo == name).execute()
        return
    record_pass(
        name, now, error=error, requests_spent=0, requests_not_modified=0, rate_remaining=None
    )


@unit_of_work
def record_pass(
    repo: str,
    now: datetime,
    *,
    error: str | None,
    requests_spent: int,
    requests_not_modified: int,
    rate_remaining: int | None,
) -> None:
    stored = SyncStatus.get_or_none(SyncStatus.repo == repo)
    row = {
        "repo": repo,
        "lastpass": now,
        "lastsuccess": now if error is None else (stored.lastsuccess if stored else None),
        "lasterror": error,
        "requests": requests_spent,
        "notmodified": requests_not_modified,
        "ratelimitremaining": rate_remaining,
    }
    upsert(SyncStatus, [row])


def last_pass(repo: str) -> datetime | None:
    """When a pass last synced ``repo``, whatever its outcome; None if none has."""
    stored = SyncStatus.get_or_none(SyncStatus.repo == repo)
    return stored.lastpass if stored else None
