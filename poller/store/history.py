"""Whether a repository's stored history still lacks runs its bounds want, read from its
cursors in the database by the rule the planner uses (``RunCursors.backfill_done``).
``status`` and a stopped sync report it."""

from __future__ import annotations

from poller.config.settings import RepoConfig
from poller.rules.plan import RunCursors
from poller.store import rows as store
from poller.store import runs as run_store


def backfill_pending(repo: RepoConfig) -> bool:
    """Whether the stored history still lacks runs that the repository's bounds want, as
    the cursors say (what ``status`` shows), however the pass ended."""
    state = RunCursors.parse(store.get_cursors(repo.name))
    return state.backfill_done(repo, run_store.count_runs_up_to(repo.name, repo.max_runs)) is None
