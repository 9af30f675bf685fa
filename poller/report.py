"""What one repository's sync did in a pass: its counts, requests, time and outcome.

The sync fills it in, the pass logs and records it, and the command line turns the
reports into an exit status. It lives apart so that each of them can import it.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from poller.store import Counts

TABLES = (
    "workflows",
    "branches",
    "commits",
    "workflowruns",
    "jobs",
    "steps",
    "workflowrun_attempts",
)


@dataclass
class RepoReport:
    repo: str
    counts: dict[str, Counts] = field(default_factory=lambda: {t: Counts() for t in TABLES})
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

    def summary(self) -> dict[str, dict[str, int]]:
        return {
            table: {
                "inserted": c.inserted,
                "updated": c.updated,
                "unchanged": c.unchanged,
                "deleted": c.deleted,
            }
            for table, c in self.counts.items()
        }
