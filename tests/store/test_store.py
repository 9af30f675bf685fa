"""The diff and the upsert: only what changed is written, the counts say what was done,
and mirrored sets lose what GitHub no longer has. Real SQLite (MariaDB's semantics are
what ``test_schema``, ``test_dashboard`` and the end-to-end tests cover)."""

from __future__ import annotations

from datetime import datetime

import peewee

from poller.store import rows as store
from poller.store.models import Branch, Commit, SyncCursor
from poller.store.rows import Counts

NOW = datetime(2026, 12, 1, 12)


def branch(name: str, sha: str, protected: bool = False) -> dict[str, object]:
    return {"name": name, "repo": "octo/demo", "commithash": sha, "protected": protected}


def test_diff_says_which_rows_are_new_changed_or_the_same():
    stored = {1: {"gitid": 1, "name": "a"}, 2: {"gitid": 2, "name": "b"}}
    fetched = [{"gitid": 1, "name": "a"}, {"gitid": 2, "name": "B"}, {"gitid": 3, "name": "c"}]
    changed, counts = store.diff(stored, fetched, lambda row: row["gitid"])
    assert [row["gitid"] for row in changed] == [2, 3]
    assert counts == Counts(inserted=1, updated=1, unchanged=1)


def test_counts_add_up():
    total = Counts(1, 2, 3, 4)
    total.add(Counts(10, 20, 30, 40))
    assert total == Counts(11, 22, 33, 44)


def test_upsert_updates_every_column_but_the_key(sqlite_db: peewee.Database):
    store.upsert(Branch, [branch("main", "a1")])
    store.upsert(Branch, [branch("main", "b2", protected=True)])
    [row] = Branch.select()
    assert (row.name, row.commithash, row.protected) == ("main", "b2", True)


def test_branches_are_mirrored_as_a_set(sqlite_db: peewee.Database):
    first = store.mirror_branches("octo/demo", [branch("main", "a1"), branch("old", "c3")])
    assert first == Counts(inserted=2)
    again = store.mirror_branches("octo/demo", [branch("main", "a1"), branch("new", "d4")])
    assert again == Counts(inserted=1, unchanged=1, deleted=1)
    assert sorted(row.name for row in Branch.select()) == ["main", "new"]


def test_a_head_commit_never_overwrites_a_listed_commit(sqlite_db: peewee.Database):
    head = {"hash": "a1", "author": "Octo", "message": "subject", "time": NOW, "repo": "o/r"}
    listed = {**head, "message": "subject\n\nbody", "authorurl": "https://github.com/octo"}
    assert store.save_commits("o/r", [listed]) == Counts(inserted=1)
    assert store.save_commits("o/r", [head], insert_only=True) == Counts()
    assert Commit.get().message == "subject\n\nbody"
    # The same commit twice in one batch is one row.
    assert store.save_commits("o/r", [{**head, "hash": "b2"}] * 2) == Counts(inserted=1)


def test_a_value_wider_than_its_column_is_clipped_not_refused():
    row = store.clip(Branch, branch("x" * 300, "a1"))
    assert len(row["name"]) == Branch.name.max_length


def test_cursors_are_read_back_together(sqlite_db: peewee.Database):
    store.set_cursors("octo/demo", {"runs.newest": "2026-12-01T11:00:00", "runs.sweep": ""}, NOW)
    store.set_cursors("octo/other", {"runs.newest": "2026-01-01T00:00:00"}, NOW)
    store.set_cursors("octo/demo", {"runs.newest": "2026-12-01T12:00:00"}, NOW)
    SyncCursor.insert(repo="octo/demo", resource="legacy", position=None, updatetime=NOW).execute()
    assert store.get_cursors("octo/demo") == {
        "runs.newest": "2026-12-01T12:00:00",
        "runs.sweep": "",
    }
    assert store.get_cursor("octo/demo", "runs.newest") == "2026-12-01T12:00:00"
    assert store.get_cursor("octo/demo", "missing") is None
