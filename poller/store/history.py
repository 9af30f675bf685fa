"""Whether a repository's stored history still lacks runs its bounds want, read from its
cursors in the database, by the rule the planner uses (``plan.backfill_done``). ``status``
and a stopped sync report it."""

from __future__ import annotations

from poller.config.settings import RepoConfig
from poller.rules import cursors
from poller.rules.cursors import from_cursor
from poller.rules.plan import backfill_done
from poller.store import rows as store
from poller.store import runs as run_store


def backfill_pending(repo: RepoConfig) -> bool:
    """Whether the stored history still lacks runs that the repository's bounds want, as
    the cursors say (what ``status`` shows), however the pass ended."""
    oldest = from_cursor(store.get_cursor(repo.name, cursors.RUNS_OLDEST))
    if oldest is None:
        return True
    reached = store.get_cursor(repo.name, cursors.RUNS_HISTORY_START) == cursors.HISTORY_REACHED
    return backfill_done(repo, oldest, reached, run_store.count_runs(repo.name)) is None
