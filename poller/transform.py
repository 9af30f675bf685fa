"""Pure functions from GitHub payloads (plain dicts) to database rows (plain dicts).

This is where the dashboard's column semantics live: naive UTC datetimes, queue time in
whole seconds, runtime in seconds, and the run's OS taken from its jobs' runner labels.
Nothing here does I/O, so every rule is tested table-driven in tests/test_transform.py.
"""

from __future__ import annotations

import fnmatch
import posixpath
from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from typing import Any

Payload = Mapping[str, Any]
Row = dict[str, Any]

OS_NAMES = ("linux", "macos", "windows")


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


def label_os(label: str) -> str | None:
    """The OS one runner label names, if any (``ubuntu-22.04`` → ``linux``)."""
    label = label.lower()
    if label.startswith("ubuntu-") or label == "ubuntu" or "linux" in label:
        return "linux"
    if label.startswith("windows"):
        return "windows"
    if label.startswith("macos") or label == "osx":
        return "macos"
    return None


def jobs_os(jobs: Iterable[Payload]) -> str | None:
    """Sorted distinct OSes of the jobs, comma-joined; None when no label names one."""
    names = {name for job in jobs for label in job.get("labels") or () if (name := label_os(label))}
    return ",".join(sorted(names)) or None


def latest_attempt_jobs(run: Payload, jobs: Iterable[Payload]) -> list[Payload]:
    """Jobs of the run's current attempt (``filter=all`` also returns earlier ones)."""
    attempt = run.get("run_attempt") or 1
    return [job for job in jobs if (job.get("run_attempt") or attempt) == attempt]


def run_row(run: Payload, jobs: Iterable[Payload], repo: str) -> Row:
    """A ``workflowruns`` row. ``jobs`` may hold every attempt's jobs."""
    current = latest_attempt_jobs(run, jobs)
    created = parse_time(run.get("created_at"))
    job_starts = [t for job in current if (t := parse_time(job.get("started_at")))]
    start = min(job_starts) if job_starts else parse_time(run.get("run_started_at"))
    end = None
    if run.get("status") == "completed":
        job_ends = [t for job in current if (t := parse_time(job.get("completed_at")))]
        end = max(job_ends) if job_ends else None
    actor = run.get("actor") or {}
    return {
        "gitid": run["id"],
        "author": actor.get("login"),
        "runtime": (end - start).total_seconds() if start and end else None,
        "createtime": created,
        "starttime": start,
        "endtime": end,
        "queuetime": int((start - created).total_seconds()) if start and created else None,
        "status": run.get("status"),
        "conclusion": run.get("conclusion"),
        "url": run.get("html_url"),
        "branchname": run.get("head_branch"),
        "commithash": run.get("head_sha"),
        "workflowname": run.get("name"),
        "repo": repo,
        "os": jobs_os(current),
        "workflowid": run.get("workflow_id"),
        "runattempt": run.get("run_attempt") or 1,
        "runnumber": run.get("run_number"),
        "event": run.get("event"),
        "updatetime": parse_time(run.get("updated_at")),
    }


def job_row(job: Payload, repo: str, run_attempt: int = 1) -> Row:
    """A ``jobs`` row. ``run_attempt`` fills in for payloads that omit the field."""
    labels = [str(label) for label in job.get("labels") or ()]
    return {
        "gitid": job["id"],
        "runid": job["run_id"],
        "runattempt": job.get("run_attempt") or run_attempt,
        "name": job.get("name"),
        "status": job.get("status"),
        "conclusion": job.get("conclusion"),
        "createtime": parse_time(job.get("created_at")),
        "starttime": parse_time(job.get("started_at")),
        "endtime": parse_time(job.get("completed_at")),
        "labels": ",".join(labels),
        "runnername": job.get("runner_name"),
        "os": jobs_os([job]),
        "repo": repo,
    }


def attempt_rows(
    run: Payload, jobs: Iterable[Payload], earlier: Mapping[int, Payload] | None = None
) -> list[Row]:
    """One ``workflowrun_attempts`` row per attempt, the current one included.

    The current attempt's status and conclusion come from the run. An earlier attempt's
    come from ``earlier`` (the run as it was then) when given, else they are derived from
    its jobs, so keeping that history usually costs no extra request. An earlier attempt
    with neither is unknown, and gets no row.
    """
    by_attempt: dict[int, list[Payload]] = {}
    current = run.get("run_attempt") or 1
    for job in jobs:
        by_attempt.setdefault(job.get("run_attempt") or current, []).append(job)
    earlier = earlier or {}
    rows = []
    for attempt in range(1, current + 1):
        attempt_jobs = by_attempt.get(attempt, [])
        starts = [t for job in attempt_jobs if (t := parse_time(job.get("started_at")))]
        ends = [t for job in attempt_jobs if (t := parse_time(job.get("completed_at")))]
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


def attempts_without_jobs(run: Payload, jobs: Iterable[Payload]) -> list[int]:
    """Earlier attempts that no job shows: their outcome must be asked for."""
    seen = {job.get("run_attempt") for job in jobs}
    return [a for a in range(1, (run.get("run_attempt") or 1)) if a not in seen]


def _derived_conclusion(jobs: list[Payload]) -> str | None:
    """GitHub's run conclusion from job conclusions, worst first."""
    conclusions = {job.get("conclusion") for job in jobs}
    for worst in ("failure", "timed_out", "cancelled", "action_required", "success", "skipped"):
        if worst in conclusions:
            return worst
    return None


def commit_row(item: Payload, repo: str) -> Row:
    """A ``commits`` row from an item of ``GET /repos/{o}/{r}/commits``."""
    commit = item.get("commit") or {}
    author = commit.get("author") or {}
    return {
        "hash": item["sha"],
        "author": author.get("name"),
        "message": commit.get("message"),
        "time": parse_time(author.get("date")),
        "repo": repo,
    }


def head_commit_row(run: Payload, repo: str) -> Row | None:
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


def branch_row(item: Payload, repo: str) -> Row:
    """A ``branches`` row. GitHub gives branches no author; the legacy column stays as is."""
    return {
        "name": item["name"],
        "repo": repo,
        "commithash": (item.get("commit") or {}).get("sha"),
        "protected": bool(item.get("protected")),
    }


def builds_images(item: Payload, patterns: Iterable[str]) -> bool:
    """Whether a workflow is one of ``docker_workflows``: a glob that matches its name,
    its path or its file name, ignoring case (``*docker*``, ``publish_images.yml``)."""
    path = item.get("path") or ""
    candidates = [item.get("name") or "", path, posixpath.basename(path)]
    return any(
        fnmatch.fnmatchcase(candidate.lower(), pattern.lower())
        for pattern in patterns
        for candidate in candidates
        if candidate
    )


def workflow_row(item: Payload, repo: str, image_patterns: Iterable[str] = ()) -> Row:
    """A ``workflows`` row. ``gitid`` is GitHub's stable id, so renames update in place."""
    return {
        "gitid": item["id"],
        "name": item.get("name") or item.get("path") or str(item["id"]),
        # The legacy column is NOT NULL; real payloads always carry html_url.
        "url": item.get("html_url") or item.get("url") or "",
        "path": item.get("path"),
        "state": item.get("state"),
        "repo": repo,
        "imagebuild": builds_images(item, image_patterns),
    }
