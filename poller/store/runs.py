"""Runs, with their jobs, steps and attempts: the diff and the upsert, one unit of work each.

A page of runs and everything it makes (jobs, steps, attempts, head commits) is written
with the cursor that covers it, in one transaction (see ``store``), so a retry or a crash
neither skips nor duplicates a run.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from datetime import date, datetime
from typing import Any

import peewee

from poller.rules import transform
from poller.rules.transform import Row, RunPage
from poller.store.model_base import BaseModel, natural_key
from poller.store.models import Commit, Job, Step, WorkflowRun, WorkflowRunAttempt
from poller.store.rows import Counts, clip, diff, save_commits, select_rows, set_cursors, upsert
from poller.store.units import unit_of_work


@unit_of_work
def stored_runs(gitids: Sequence[int]) -> dict[int, Row]:
    columns = [field.name for field in WorkflowRun._meta.sorted_fields if field.name != "id"]
    return {
        row["gitid"]: row
        for row in select_rows(WorkflowRun, columns, WorkflowRun.gitid.in_(list(gitids)))
    }


@unit_of_work
def save_run_page(
    repo: str, page: RunPage, stored: Mapping[int, Row], cursors: dict[str, str], now: datetime
) -> dict[type[BaseModel], Counts]:
    """One page of runs with their jobs, steps, attempts and head commits, and its cursor.
    ``page.runs`` are the runs that changed (``transform.run_changed``) from ``stored``:
    each is written, as an insert or an update."""
    counts = {
        WorkflowRun: _save_runs(page.runs, stored),
        Job: _save_children(Job, page.jobs, "gitid"),
        Step: _save_children(Step, page.steps, "jobid"),
        WorkflowRunAttempt: _save_children(WorkflowRunAttempt, page.attempts, "runid"),
        Commit: save_commits(repo, page.head_commits, insert_only=True),
    }
    set_cursors(repo, cursors, now)
    return counts


def _save_runs(rows: list[Row], stored: Mapping[int, Row]) -> Counts:
    upsert(WorkflowRun, [clip(WorkflowRun, row) for row in rows])
    inserted = sum(1 for row in rows if row["gitid"] not in stored)
    return Counts(inserted=inserted, updated=len(rows) - inserted)


def _save_children(model: type[peewee.Model], rows: list[Row], parent: str) -> Counts:
    """Upsert the ``rows`` that differ from what is stored under the same natural key; the
    stored ones are read by ``parent``, a column the rows share many values of."""
    key = natural_key(model)
    rows = [clip(model, row) for row in rows]
    if not rows:
        return Counts()
    parents = sorted({row[parent] for row in rows})
    stored = {
        tuple(row[name] for name in key): row
        for row in select_rows(model, list(rows[0]), model._meta.fields[parent].in_(parents))
    }
    changed, counts = diff(stored, rows, lambda row: tuple(row[name] for name in key))
    upsert(model, changed)
    return counts


@unit_of_work
def stored_job_os(gitid: int) -> str | None:
    row = Job.select(Job.os).where(Job.gitid == gitid).first()
    return row.os if row else None


def not_completed() -> peewee.Expression:
    """Runs not completed yet: what passes fetch by id, and what status and the metrics
    count. Spelt as two ranges and NULL, not ``!=``, so that both engines read the few
    unfinished runs through the index on ``status`` (SQLite uses no index for ``!=``),
    at the same cost whatever the history holds."""
    status = WorkflowRun.status
    return (status < "completed") | (status > "completed") | status.is_null()


def unfinished_runs() -> list[Row]:
    """Every run not completed, with its repository, workflow and status: a handful,
    read through the index on ``status`` (no GROUP BY, which would lead an engine to
    walk another index over the whole history); the metrics count them."""
    return select_rows(WorkflowRun, ("repo", "workflowname", "status"), not_completed())


@unit_of_work
def unfinished_runs_of(repo: str, created_before: datetime) -> list[int]:
    query = (
        WorkflowRun.select(WorkflowRun.gitid)
        .where(
            (WorkflowRun.repo == repo) & not_completed() & (WorkflowRun.createtime < created_before)
        )
        .order_by(WorkflowRun.createtime)
    )
    return [row.gitid for row in query]


@unit_of_work
def mark_deleted(gitids: Sequence[int], now: datetime) -> int:
    """Runs GitHub no longer has: the rows stay, as the dashboard's history, with the
    time we found out (``deletetime``). A run or job that was not completed is no longer
    live: it can never complete now. Returns the runs newly marked."""
    ids = sorted(gitids)
    if not ids:
        return 0
    run_ids = WorkflowRun.gitid.in_(ids)
    WorkflowRun.update(status="completed").where(run_ids & not_completed()).execute()
    Job.update(status="completed").where(
        Job.runid.in_(ids) & ((Job.status != "completed") | Job.status.is_null())
    ).execute()
    marked = WorkflowRun.update(deletetime=now).where(run_ids & WorkflowRun.deletetime.is_null())
    return int(marked.execute())


@unit_of_work
def runs_created_between(repo: str, low: datetime, high: datetime | None) -> set[int]:
    """The runs GitHub still had when we last looked, created in ``[low, high]`` (no
    upper bound: None)."""
    created = WorkflowRun.createtime >= low
    if high is not None:
        created &= WorkflowRun.createtime <= high
    query = WorkflowRun.select(WorkflowRun.gitid).where(
        (WorkflowRun.repo == repo) & created & WorkflowRun.deletetime.is_null()
    )
    return {row.gitid for row in query}


def count_runs_up_to(repo: str, cap: int | None) -> int:
    """The stored runs of ``repo``, counted no further than ``cap``: all a pass needs to
    hold ``max_runs`` (None: no cap to hold, and nothing read, not even a transaction).
    A pass of a repository with a year of history would otherwise read all of it to learn
    a number it ignores."""
    return 0 if cap is None else _count_runs_up_to(repo, cap)


@unit_of_work
def _count_runs_up_to(repo: str, cap: int) -> int:
    return int(
        WorkflowRun.select(WorkflowRun.id).where(WorkflowRun.repo == repo).limit(cap).count()
    )


@unit_of_work
def runs_per_day(repo: str, since: datetime) -> dict[date, int]:
    """Stored runs per UTC day of ``created_at``, from ``since``: what sizes the windows."""
    day = peewee.fn.DATE(WorkflowRun.createtime)
    query = (
        WorkflowRun.select(day.alias("day"), peewee.fn.COUNT(WorkflowRun.id).alias("runs"))
        .where((WorkflowRun.repo == repo) & (WorkflowRun.createtime >= since))
        .group_by(day)
        .dicts()
    )
    # SQLite's DATE() gives text, MySQL's a date.
    rows: list[dict[str, Any]] = list(query)  # type: ignore[arg-type]
    return {date.fromisoformat(str(row["day"])[:10]): int(row["runs"]) for row in rows}


@unit_of_work
def resolve_unknown_oses(repo: str, job_os: Callable[[list[str]], str | None]) -> int:
    """Give stored jobs of unknown OS the one ``job_os`` now finds from their labels (a
    label map added since), and their runs the OSes that follow. Returns the jobs fixed."""
    label_sets = [
        row.labels
        for row in Job.select(Job.labels)
        .where((Job.repo == repo) & Job.os.is_null() & Job.labels.is_null(False))
        .distinct()
    ]
    fixed, runs = 0, set[int]()
    for labels in label_sets:
        os = job_os(labels.split(",")) if labels else None
        if os is None:
            continue
        where = (Job.repo == repo) & (Job.labels == labels) & Job.os.is_null()
        runs.update(row.runid for row in Job.select(Job.runid).where(where))
        fixed += Job.update(os=os).where(where).execute()
    for run in WorkflowRun.select(WorkflowRun.gitid, WorkflowRun.runattempt).where(
        WorkflowRun.gitid.in_(sorted(runs))
    ):
        jobs = select_rows(Job, ("name", "runattempt", "starttime", "os"), Job.runid == run.gitid)
        run_os = transform.stored_run_os(run.runattempt or 1, jobs)
        WorkflowRun.update(os=run_os).where(WorkflowRun.gitid == run.gitid).execute()
    return fixed
