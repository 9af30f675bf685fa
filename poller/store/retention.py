"""Retention for ``jobs`` and ``steps``, the two tables that grow fastest (at a year of
1,000 repositories, steps are most of the database: docs/database.md, "What the queries
cost"). Off unless ``[sync] jobs_retention_days`` is set; runs are always kept, with their
OS, queue time and run time, which the jobs were only needed to work out.

It deletes the oldest jobs and their steps a small batch at a time, each batch its own
transaction found through the index on ``jobs.createtime``. InnoDB locks only the rows
being deleted, and the dashboard's plain SELECTs read a consistent snapshot without
taking locks, so no query of theirs waits on it
(https://mariadb.com/kb/en/innodb-lock-modes/). A pass prunes at most
``MAX_BATCHES``; a backlog (retention turned on for a big database) is worked off over
the next passes.
"""

from __future__ import annotations

from datetime import datetime

from poller.store.models import Job, Step
from poller.store.units import bookkeeping

BATCH = 1000
MAX_BATCHES = 50


def prune_jobs(created_before: datetime, batch: int = BATCH, batches: int = MAX_BATCHES) -> int:
    """Delete the jobs created before ``created_before``, and their steps, in batches of
    ``batch`` jobs, no more than ``batches`` of them. Returns the jobs deleted."""
    pruned = 0
    for _ in range(batches):
        deleted = _prune_batch(created_before, batch)
        pruned += deleted
        if deleted < batch:
            break
    return pruned


@bookkeeping
def _prune_batch(created_before: datetime, batch: int) -> int:
    oldest = (
        Job.select(Job.gitid)
        .where(Job.createtime < created_before)
        .order_by(Job.createtime)
        .limit(batch)
    )
    jobs = [row.gitid for row in oldest]
    if not jobs:
        return 0
    Step.delete().where(Step.jobid.in_(jobs)).execute()
    return int(Job.delete().where(Job.gitid.in_(jobs)).execute())
