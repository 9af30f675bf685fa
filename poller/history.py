"""Where a repository's stored history stands, read from its cursors.

Cursor positions are ISO times; these turn them into datetimes and back, and say whether
the backfill has anything left to do under the repository's bounds. ``runs`` moves the
cursors, and ``status`` and the pass report them, all by these rules.
"""

from __future__ import annotations

from datetime import UTC, datetime

from poller import cursors, run_store, store
from poller.config import RepoConfig


def utcnow() -> datetime:
    return datetime.now(UTC).replace(tzinfo=None, microsecond=0)


def to_cursor(moment: datetime) -> str:
    return moment.isoformat()


def from_cursor(position: str | None) -> datetime | None:
    return datetime.fromisoformat(position) if position else None


def backfill_pending(repo: RepoConfig) -> bool:
    """Whether the stored history still lacks runs that the repository's bounds want, as
    the cursors say (what ``status`` shows), however the pass ended."""
    oldest = from_cursor(store.get_cursor(repo.name, cursors.RUNS_OLDEST))
    if oldest is None:
        return True
    reached = store.get_cursor(repo.name, cursors.RUNS_HISTORY_START) == cursors.HISTORY_REACHED
    return backfill_done(repo, oldest, reached, run_store.count_runs(repo.name)) is None


def backfill_done(
    repo: RepoConfig, oldest: datetime, history_reached: bool, stored: int
) -> str | None:
    """Why the backfill has nothing left to do under the repository's bounds, or None."""
    if history_reached:
        return "whole history"
    if repo.since is not None and oldest <= repo.since:
        return f"since {repo.since.date()}"
    if repo.max_runs is not None and stored >= repo.max_runs:
        return f"{repo.max_runs} runs"
    return None
