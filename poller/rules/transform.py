"""Pure functions from GitHub payloads (``payloads``: typed runs and jobs) to database rows.

This is where the dashboard's column semantics live: naive UTC datetimes, queue time in
whole seconds, runtime in seconds, and the run's OS in GitHub's ``runner.os`` names, taken
from its jobs (``runner_os``). Nothing here does I/O, so every rule is tested
table-driven in tests/rules/test_transform.py.

A run's row describes its current attempt as GitHub shows it:

* **Which jobs.** Per job name, its newest execution up to the current attempt. After a
  whole re-run that is the new attempt's jobs. After "re-run failed jobs" GitHub runs
  only the failed jobs (and their dependents) again; since May 2025 its jobs listing
  shows the new attempt's own jobs only, and the jobs that were not re-run keep their
  earlier execution (r-universe-org/help#607). Gitea, which copies GitHub's API, lists
  such jobs again in the new attempt with their earlier times. Either way, the newest
  execution per name is what GitHub's page for the attempt shows.
* **Which jobs ran.** A job ran when it was not skipped and a runner took it (``ran``).
  A skipped job never ran, although GitHub gives it times near its creation. Neither
  did a job cancelled while queued: it goes from ``queued`` to ``completed`` with
  ``runner_id`` 0, no runner name and no steps (actions/runner#4684), and its
  ``started_at``, like a still-queued job's, is a placeholder near its creation.
* **Start, end, queue time.** From the jobs that ran in this attempt, started no earlier
  than the attempt was requested (``run_started_at``, which resets on a re-run). The
  queue time is the attempt's wait, from ``run_started_at`` to its first job's start;
  ``createtime`` stays the run's creation. An attempt none of whose jobs ran has no
  start, end or run time; once it completed, its queue time is its wait until it ended.
* **OS.** The OSes of the shown jobs that ran.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any, TypeVar

from poller.rules import runner_os
from poller.rules.payloads import JobItem, RunItem

Row = dict[str, Any]
J = TypeVar("J")
# How a job's OS is found: from its labels alone unless the caller knows more.
JobOs = Callable[[JobItem], str | None]


def parse_time(value: str | None) -> datetime | None:
    """ISO 8601 with ``Z`` or an offset, to naive UTC at whole seconds.

    MySQL's DATETIME drops fractions, so we drop them first and rows compare equal after a
    round trip through either database.
    """
    if not value:
        return None
    moment = datetime.fromisoformat(value)
    if moment.tzinfo is not None:
        moment = moment.astimezone(UTC).replace(tzinfo=None)
    return moment.replace(microsecond=0)


def labels_os(job: JobItem) -> str | None:
    """A job's OS from its labels alone, with no map: the default ``JobOs``."""
    return runner_os.labels_os(job.get("labels") or ())


def skipped(job: JobItem) -> bool:
    return job.get("conclusion") == "skipped"


def ran(job: JobItem) -> bool:
    """Whether a runner took the job: it was not skipped, and GitHub names its runner or
    shows its steps. A job cancelled while queued has ``runner_id`` 0, no runner name and
    no steps (actions/runner#4684); a queued one has null runner fields."""
    if skipped(job):
        return False
    return bool(job.get("runner_id") or job.get("runner_name") or job.get("steps"))


def jobs_os(jobs: Iterable[JobItem], job_os: JobOs = labels_os) -> str | None:
    """Sorted distinct OSes of the jobs that ran; None when none is known."""
    return runner_os.join_oses(os for job in jobs if ran(job) and (os := job_os(job)))


def _attempt(job: JobItem, current: int) -> int:
    return int(job.get("run_attempt") or current)


def newest_executions(
    current: int, jobs: Iterable[J], name: Callable[[J], object], attempt: Callable[[J], int]
) -> list[J]:
    """The jobs GitHub shows for attempt ``current``: per job name, its newest execution
    up to that attempt (see the module docstring). For payloads and stored rows alike."""
    jobs = [job for job in jobs if attempt(job) <= current]
    newest: dict[object, int] = {}
    for job in jobs:
        newest[name(job)] = max(newest.get(name(job), 0), attempt(job))
    return [job for job in jobs if attempt(job) == newest[name(job)]]


def latest_attempt_jobs(run: RunItem, jobs: Iterable[JobItem]) -> list[JobItem]:
    """The jobs GitHub shows for the run's current attempt."""
    current = int(run.get("run_attempt") or 1)
    return newest_executions(
        current, jobs, lambda job: job.get("name"), lambda job: _attempt(job, current)
    )


def stored_run_os(run_attempt: int, jobs: Iterable[Row]) -> str | None:
    """A stored run's OS from its stored jobs (``job_row``'s rows) after their OS was
    found later (a label map added): the rule ``run_row`` applies to payloads, the
    shown jobs that ran. ``job_row`` keeps a start only for a job a runner took."""
    shown = newest_executions(
        run_attempt,
        jobs,
        lambda row: row["name"],
        lambda row: int(row["runattempt"] or run_attempt),
    )
    return runner_os.join_oses(row["os"] for row in shown if row["starttime"] and row["os"])


def attempt_requested(run: RunItem) -> datetime | None:
    """When the current attempt was asked for: the run's creation for the first, and
    ``run_started_at`` (which resets on a re-run) for a later one."""
    created = parse_time(run.get("created_at"))
    if int(run.get("run_attempt") or 1) == 1:
        return created
    return parse_time(run.get("run_started_at")) or created


def ran_in_attempt(run: RunItem, shown: Iterable[JobItem]) -> list[JobItem]:
    """The shown jobs that ran in the current attempt: a runner took them, once the
    attempt was requested (an execution carried over from an earlier one did not)."""
    current = int(run.get("run_attempt") or 1)
    requested = attempt_requested(run)
    found = []
    for job in shown:
        started = parse_time(job.get("started_at"))
        if not ran(job) or started is None or _attempt(job, current) != current:
            continue
        if requested is None or started >= requested:
            found.append(job)
    return found


def attempt_ended(run: RunItem, shown: Iterable[JobItem]) -> datetime | None:
    """When a completed attempt none of whose jobs ran ended: its jobs' last completion
    (they were cancelled or skipped). None for an attempt with no job, which waited for
    no runner."""
    if run.get("status") != "completed":
        return None
    current = int(run.get("run_attempt") or 1)
    ends = [
        t
        for job in shown
        if _attempt(job, current) == current and (t := parse_time(job.get("completed_at")))
    ]
    return max(ends) if ends else None


def seconds_between(start: datetime | None, end: datetime | None) -> int | None:
    """Whole seconds from ``start`` to ``end``, never negative; None if either is unknown."""
    if start is None or end is None:
        return None
    return max(0, int((end - start).total_seconds()))


def run_row(run: RunItem, jobs: Iterable[JobItem], repo: str, job_os: JobOs = labels_os) -> Row:
    """A ``workflowruns`` row. ``jobs`` may hold every attempt's jobs."""
    shown = latest_attempt_jobs(run, jobs)
    ran_jobs = ran_in_attempt(run, shown)
    created = parse_time(run.get("created_at"))
    requested = attempt_requested(run)
    job_starts = [t for job in ran_jobs if (t := parse_time(job.get("started_at")))]
    start = min(job_starts) if job_starts else None
    end = None
    if run.get("status") == "completed":
        job_ends = [t for job in ran_jobs if (t := parse_time(job.get("completed_at")))]
        end = max(job_ends) if job_ends else None
    # The attempt's wait: until its first job started, or, when none ran, until it ended.
    waited_until = start if ran_jobs else attempt_ended(run, shown)
    actor = run.get("actor") or {}
    return {
        "gitid": run["id"],
        "author": actor.get("login"),
        "runtime": max(0.0, (end - start).total_seconds()) if start and end else None,
        "createtime": created,
        "starttime": start,
        "endtime": end,
        "queuetime": seconds_between(requested, waited_until),
        "status": run.get("status"),
        "conclusion": run.get("conclusion"),
        "url": run.get("html_url"),
        "branchname": run.get("head_branch"),
        "commithash": run.get("head_sha"),
        "workflowname": run.get("name"),
        "repo": repo,
        "os": jobs_os(shown, job_os),
        "workflowid": run.get("workflow_id"),
        "runattempt": run.get("run_attempt") or 1,
        "runnumber": run.get("run_number"),
        "event": run.get("event"),
        "updatetime": parse_time(run.get("updated_at")),
        "deletetime": None,  # GitHub has just shown it
    }


def run_changed(stored: Row | None, run: RunItem) -> bool:
    """Whether a listed run is new, or differs from its row in what a new attempt or
    status changes: the one rule for whether a run costs a jobs request and a write."""
    return stored is None or bool(
        stored.get("deletetime") is not None  # marked deleted, yet GitHub lists it
        or stored["updatetime"] != parse_time(run.get("updated_at"))
        or stored["runattempt"] != (run.get("run_attempt") or 1)
        or stored["status"] != run.get("status")
        or stored["conclusion"] != run.get("conclusion")
    )


def job_row(job: JobItem, repo: str, run_attempt: int = 1, job_os: JobOs = labels_os) -> Row:
    """A ``jobs`` row. ``run_attempt`` fills in for payloads that omit the field. The
    queue time is the job's own wait for a runner, ``started_at - created_at``. A job no
    runner took has no start (GitHub's ``started_at`` is a placeholder); if it was
    cancelled, its wait lasted until then. A skipped job never waited for one."""
    labels = [str(label) for label in job.get("labels") or ()]
    created = parse_time(job.get("created_at"))
    started = parse_time(job.get("started_at")) if ran(job) else None
    # Until a runner took it, or until it was cancelled without one; a skipped or still
    # queued job has no wait (yet).
    cancelled = not ran(job) and not skipped(job) and job.get("status") == "completed"
    waited_until = parse_time(job.get("completed_at")) if cancelled else started
    return {
        "gitid": job["id"],
        "runid": job["run_id"],
        "runattempt": job.get("run_attempt") or run_attempt,
        "name": job.get("name"),
        "status": job.get("status"),
        "conclusion": job.get("conclusion"),
        "createtime": created,
        "starttime": started,
        "endtime": parse_time(job.get("completed_at")),
        "labels": ",".join(labels),
        "runnername": job.get("runner_name"),
        "runnergroup": job.get("runner_group_name"),
        "queuetime": seconds_between(created, waited_until),
        "os": job_os(job),
        "repo": repo,
    }


def step_rows(job: JobItem, repo: str) -> list[Row]:
    """A ``steps`` row per step the jobs listing carries: they cost no request."""
    return [
        {
            "jobid": job["id"],
            "runid": job.get("run_id"),
            "number": step.get("number") or index + 1,
            "name": step.get("name"),
            "status": step.get("status"),
            "conclusion": step.get("conclusion"),
            "starttime": parse_time(step.get("started_at")),
            "endtime": parse_time(step.get("completed_at")),
            "repo": repo,
        }
        for index, step in enumerate(job.get("steps") or ())
    ]


def attempt_rows(
    run: RunItem, jobs: Iterable[JobItem], earlier: Mapping[int, RunItem] | None = None
) -> list[Row]:
    """One ``workflowrun_attempts`` row per attempt, the current one included.

    The current attempt's status and conclusion come from the run. An earlier attempt's
    come from ``earlier`` (the run as it was then) when given, else they are derived from
    its jobs, so keeping that history usually costs no extra request. An earlier attempt
    with neither is unknown, and gets no row.
    """
    by_attempt: dict[int, list[JobItem]] = {}
    current = run.get("run_attempt") or 1
    for job in jobs:
        by_attempt.setdefault(job.get("run_attempt") or current, []).append(job)
    earlier = earlier or {}
    rows = []
    for attempt in range(1, current + 1):
        attempt_jobs = by_attempt.get(attempt, [])
        ran_jobs = [job for job in attempt_jobs if ran(job)]
        starts = [t for job in ran_jobs if (t := parse_time(job.get("started_at")))]
        ends = [t for job in ran_jobs if (t := parse_time(job.get("completed_at")))]
        if attempt == current:
            status, conclusion = run.get("status"), run.get("conclusion")
        elif attempt in earlier:
            status, conclusion = earlier[attempt].get("status"), earlier[attempt].get("conclusion")
        elif attempt_jobs:
            status, conclusion = "completed", _derived_conclusion(attempt_jobs)
        else:
            continue
        rows.append(
            {
                "runid": run["id"],
                "attempt": attempt,
                "status": status,
                "conclusion": conclusion,
                "starttime": min(starts) if starts else None,
                "endtime": max(ends) if ends and status == "completed" else None,
            }
        )
    return rows


def attempts_without_jobs(run: RunItem, jobs: Iterable[JobItem]) -> list[int]:
    """Earlier attempts that no job shows: their outcome must be asked for."""
    seen = {job.get("run_attempt") for job in jobs}
    return [a for a in range(1, (run.get("run_attempt") or 1)) if a not in seen]


def _derived_conclusion(jobs: list[JobItem]) -> str | None:
    """GitHub's run conclusion from job conclusions, worst first."""
    conclusions = {job.get("conclusion") for job in jobs}
    for worst in ("failure", "timed_out", "cancelled", "action_required", "success", "skipped"):
        if worst in conclusions:
            return worst
    return None


def head_commit_row(run: RunItem, repo: str) -> Row | None:
    """A ``commits`` row from a run's ``head_commit``, which the runs listing carries."""
    head = run.get("head_commit")
    if not head or not head.get("id"):
        return None
    author = head.get("author") or {}
    return {
        "hash": head["id"],
        "author": author.get("name"),
        "message": head.get("message"),
        "time": parse_time(head.get("timestamp")),
        "repo": repo,
    }


@dataclass(frozen=True)
class RunDetails:
    """A changed run with what was fetched for it: its jobs of every attempt, and the
    earlier attempts that no job shows (``attempts_without_jobs``), by number."""

    run: RunItem
    jobs: Sequence[JobItem]
    earlier: Mapping[int, RunItem] = field(default_factory=dict)


@dataclass(frozen=True)
class RunPage:
    """The rows one page of runs makes."""

    runs: list[Row]
    jobs: list[Row]
    attempts: list[Row]
    steps: list[Row]
    head_commits: list[Row]


def run_page(
    changed: Sequence[RunDetails], listed: Sequence[RunItem], repo: str, job_os: JobOs
) -> RunPage:
    """The rows of a page: the changed runs and theirs, and every listed run's head commit."""
    page = RunPage([], [], [], [], [])
    for details in changed:
        run, jobs = details.run, details.jobs
        attempt = run.get("run_attempt") or 1
        page.runs.append(run_row(run, jobs, repo, job_os))
        page.jobs.extend(job_row(job, repo, attempt, job_os) for job in jobs)
        page.steps.extend(row for job in jobs for row in step_rows(job, repo))
        page.attempts.extend(
            {**row, "repo": repo} for row in attempt_rows(run, jobs, details.earlier)
        )
    page.head_commits.extend(row for run in listed if (row := head_commit_row(run, repo)))
    return page


def os_unknown(jobs: Iterable[JobItem], job_os: JobOs) -> int:
    """Jobs that ran and whose OS nothing could tell."""
    return sum(1 for job in jobs if ran(job) and job_os(job) is None)
