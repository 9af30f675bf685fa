"""Retention of jobs and steps: the old ones go, a small batch at a time, and every run
stays. On both databases, through the poller's own store."""

from __future__ import annotations

from datetime import datetime, timedelta

from poller.store import retention
from poller.store.models import Job, Step, WorkflowRun
from poller.store.schema import ensure_schema
from support import Database

NOW = datetime(2026, 12, 1, 12)


def fill(days_ago: list[int]) -> None:
    """One run a day, each with two jobs of two steps."""
    for number, days in enumerate(days_ago):
        created = NOW - timedelta(days=days)
        WorkflowRun.create(gitid=number, repo="octo/demo", createtime=created, status="completed")
        for job in range(2):
            gitid = number * 10 + job
            Job.create(
                gitid=gitid, runid=number, runattempt=1, repo="octo/demo", createtime=created
            )
            for step in range(2):
                Step.create(jobid=gitid, runid=number, number=step, repo="octo/demo")


def test_jobs_and_steps_older_than_the_retention_go_in_batches_and_runs_stay(
    database: Database,
):
    with database.open() as db:
        ensure_schema(db)
        fill([1, 5, 40, 41, 42, 43, 44])  # five runs past 30 days: ten jobs
        before = NOW - timedelta(days=30)
        # Batches of three jobs, at most two a call: six jobs now, the rest next time.
        assert retention.prune_jobs(before, batch=3, batches=2) == 6
        assert Job.select().where(Job.createtime < before).count() == 4
        assert retention.prune_jobs(before, batch=3, batches=2) == 4
        assert retention.prune_jobs(before, batch=3, batches=2) == 0
        assert sorted(job.runid for job in Job.select()) == [0, 0, 1, 1]
        assert sorted({step.jobid for step in Step.select()}) == [0, 1, 10, 11]
        assert WorkflowRun.select().count() == 7
