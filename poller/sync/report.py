"""What one repository's sync did in a pass: its counts, requests, time and outcome.

The run sync returns what it stored (``RunsSynced``), the repository's sync turns that into
a report, the pass logs and records it, and the command line turns the
reports into an exit status. It lives apart so that each of them can import it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from poller.config.settings import RepoConfig
from poller.store.model_base import BaseModel
from poller.store.models import SYNCED_MODELS
from poller.store.rows import Counts

# What a pass did to each table it writes, keyed by the table's model.
TableCounts = dict[type[BaseModel], Counts]


def no_counts() -> TableCounts:
    return {model: Counts() for model in SYNCED_MODELS}


@dataclass
class RunsSynced:
    """What one repository's run sync did in a pass (``RunSync.sync``)."""

    counts: TableCounts = field(default_factory=no_counts)
    # Jobs stored whose OS nothing could tell (status lists their labels).
    jobs_os_unknown: int = 0
    # A run new to us shows a push: branches and commits may have moved.
    pushed: bool = False
    backfill_pending: bool = False


@dataclass
class PassRecord:
    """What a pass has done so far, for a caller that may stop waiting for it (``--once``
    after a stop request): the repositories it set out to sync, and a report as each one
    ends, the organisations that could not be listed first. The caller makes it and hands
    it to the pass; appending to a list is atomic, so the caller may read it meanwhile."""

    repos: list[RepoConfig] = field(default_factory=list)
    reports: list[RepoReport] = field(default_factory=list)


@dataclass
class RepoReport:
    repo: str
    counts: TableCounts = field(default_factory=no_counts)
    error: str | None = None
    # Requests that counted against the rate limit, and free 304 answers.
    requests_spent: int = 0
    requests_not_modified: int = 0
    seconds: float = 0.0
    backfill_pending: bool = False
    # Jobs stored this pass whose OS nothing could tell (status lists their labels).
    jobs_os_unknown: int = 0
    # Why the repository was not synced at all this pass (another process's lock).
    skipped: str | None = None
    # A stop request ended its sync part-way.
    stopped: bool = False
    # GitHub could not be reached (no answer at all, unlike an error status).
    unreachable: bool = False
    # The database failed the sync (down, restarting), not GitHub or the data.
    database_failed: bool = False

    def take(self, synced: RunsSynced) -> None:
        """What the repository's runs and metadata stored."""
        for model, counts in synced.counts.items():
            self.counts[model].add(counts)
        self.jobs_os_unknown += synced.jobs_os_unknown
        self.backfill_pending = self.backfill_pending or synced.backfill_pending

    def summary(self) -> dict[str, dict[str, int]]:
        return {
            model._meta.table_name: {
                "inserted": c.inserted,
                "updated": c.updated,
                "unchanged": c.unchanged,
                "deleted": c.deleted,
            }
            for model, c in self.counts.items()
        }
