"""A year of GitHub Actions history in the product's own schema, filled by direct SQL.

The shapes are those of a real fleet, at any size: the scale mix of repositories
(``dashboard_sql.MIX``), five workflows each (one builds images), five jobs a run and a few
steps a job, re-runs with their attempts (3% of runs, the failed job re-run), a handful of
runs still going, jobs on a self-hosted label nothing maps (their OS unknown), one commit
per four runs, and each repository's sync state. The busiest repository runs all on
``main``, as nightly and push-heavy ones do; the next spreads its runs over branches.

``tests/store/test_query_cost.py`` fills a small year; ``benchmarks/query_cost.py`` a
year of 1,000 repositories. Both measure the queries of ``query_cost.py`` over it.
"""

from __future__ import annotations

import random
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, ClassVar

from dashboard_sql import OUTCOMES, repo_names

WORKFLOWS = ("CI", "PkgCI", "Lint", "Publish Website", "Build Docker Images")
IMAGE_WORKFLOW = "Build Docker Images"
# The docs' waterfall asks for these jobs of CI; every other workflow has generic ones.
CI_JOBS = (
    ("linux_x64_clang", "azure-linux-scale", "Linux"),
    ("windows_x64_msvc", "azure-windows-scale", "Windows"),
    ("macos_arm64_clang", "macos-14", "macOS"),
    ("linux_arm64_clang", "ubuntu-24.04-arm", "Linux"),
    ("linux_x64_gcc", "nodai-amdgpu-mi300-x86-64", None),  # a label nothing maps
)
OTHER_JOBS = (
    ("setup", "ubuntu-24.04", "Linux"),
    ("build", "ubuntu-24.04", "Linux"),
    ("test", "ubuntu-24.04", "Linux"),
    ("test_windows", "windows-2022", "Windows"),
    ("summary", "ubuntu-24.04", "Linux"),
)
RERUN_SHARE = 0.03
UNFINISHED_RUNS = 28  # the newest runs of the fleet, still queued or in progress


@dataclass(frozen=True)
class Year:
    """What a fill made, for the queries' parameters and the report."""

    now: datetime
    all_on_main: str  # the busiest repository: every run on main
    spread: str  # the next busiest: ~20% on main, the rest over 500 branches
    repos: list[str]
    runs: int


class _Batches:
    """Rows per table, inserted by the ``batch``; the tables' columns named once."""

    COLUMNS: ClassVar[dict[str, str]] = {
        "workflowruns": "gitid, createtime, starttime, endtime, updatetime, queuetime, runtime, "
        "status, conclusion, branchname, commithash, workflowname, workflowid, repo, os, "
        "runattempt, runnumber, event, url",
        "jobs": "gitid, runid, runattempt, name, status, conclusion, createtime, starttime, "
        "endtime, labels, runnername, os, repo, runnergroup, queuetime",
        "steps": "jobid, runid, number, name, status, conclusion, starttime, endtime, repo",
        "workflowrun_attempts": "runid, attempt, status, conclusion, starttime, endtime, repo",
        "commits": "hash, author, message, time, repo",
        "workflows": "gitid, name, url, repo, path, state, imagebuild",
        "sync_status": "repo, lastpass, lastsuccess, requests, notmodified",
        "sync_cursors": "repo, resource, position, updatetime",
    }

    def __init__(self, connection: Any, batch: int) -> None:
        self.connection, self.batch = connection, batch
        self.rows: dict[str, list[tuple[Any, ...]]] = {table: [] for table in self.COLUMNS}

    def add(self, table: str, row: tuple[Any, ...]) -> None:
        rows = self.rows[table]
        rows.append(row)
        if len(rows) >= self.batch:
            self.flush(table)

    def flush(self, table: str | None = None) -> None:
        for name in [table] if table else list(self.rows):
            rows = self.rows[name]
            if rows:
                marks = ", ".join(["%s"] * len(rows[0]))
                with self.connection.cursor() as cursor:
                    cursor.executemany(
                        f"INSERT INTO {name} ({self.COLUMNS[name]}) VALUES ({marks})", rows
                    )
                rows.clear()
        self.connection.commit()


def fill_year(
    connection: Any,
    *,
    runs: int,
    repos: int,
    now: datetime,
    steps_per_job: int = 4,
    jobs_days: int = 366,
    busiest_share: float | None = None,
    batch: int = 5000,
) -> Year:
    """``runs`` runs over the year before ``now`` in ``repos`` repositories, with all
    that hangs off them; then ``ANALYZE``, as a server's statistics would be. Only the
    runs of the last ``jobs_days`` get their jobs, steps and attempts: a test's year
    fills faster, and still holds a month more than any window asks.

    ``busiest_share``: the share of all runs the two busiest repositories each have (at
    a year of 1,000 repositories, 1.6%). A small year needs more to put as many runs in
    them as a big year does, which is what MariaDB's choices depend on."""
    rng = random.Random(1)
    names = repo_names(repos)
    if busiest_share is not None:
        rest = sum(per_day for _, per_day in names[2:])
        busy = rest * busiest_share / (1 - 2 * busiest_share)
        names[:2] = [(name, busy) for name, _ in names[:2]]
    weight = sum(per_day for _, per_day in names)
    out = _Batches(connection, batch)
    gitid, job_id = 1, 10**9
    for index, (repo, per_day) in enumerate(names):
        main_share = 1.0 if index == 0 else 0.2 if index == 1 else 0.6
        workflow_ids = {}
        for number, workflow in enumerate(WORKFLOWS):
            workflow_ids[workflow] = index * 10 + number + 1
            path = f".github/workflows/{workflow.lower().replace(' ', '_')}.yml"
            out.add(
                "workflows",
                (
                    workflow_ids[workflow],
                    workflow,
                    f"https://github.com/{repo}/{path}",
                    repo,
                    path,
                    "active",
                    workflow == IMAGE_WORKFLOW,
                ),
            )
        out.add("sync_status", (repo, now, now, 3, 2))
        for resource in ("runs:newest", "runs:oldest", "commits:main", "branches"):
            out.add("sync_cursors", (repo, resource, "2026-01-01T00:00:00Z", now))
        count = max(1, round(runs * per_day / weight))
        for number in range(count):
            created = now - timedelta(seconds=rng.randrange(3600, 365 * 86400))
            sha = f"{index:08x}{number // 4:032x}"
            if number % 4 == 0:
                out.add("commits", (sha, "Octo Cat", f"change {number // 4}", created, repo))
            branch = "main" if rng.random() < main_share else f"pr-{rng.randrange(500)}"
            workflow = rng.choice(WORKFLOWS)
            attempts = 2 if rng.random() < RERUN_SHARE else 1
            conclusion = "success" if attempts == 2 else rng.choice(OUTCOMES)
            jobs = CI_JOBS if workflow == "CI" else OTHER_JOBS
            start, end = created, created
            detailed = created >= now - timedelta(days=jobs_days)
            for attempt in range(1, attempts + 1 if detailed else 1):
                attempt_created = created + timedelta(hours=attempt - 1)
                first = attempt_created + timedelta(seconds=rng.randrange(5, 600))
                last = first
                # A re-run re-runs the failed job; the others keep attempt 1's execution.
                for position, (name, labels, os) in enumerate(jobs if attempt == 1 else jobs[:1]):
                    queued = rng.randrange(5, 600)
                    began = attempt_created + timedelta(seconds=queued)
                    took = rng.randrange(60, 3600)
                    finished = began + timedelta(seconds=took)
                    failed = attempts == 2 and attempt == 1 and position == 0
                    outcome = "failure" if failed else "success"
                    job_id += 1
                    out.add(
                        "jobs",
                        (
                            job_id,
                            gitid,
                            attempt,
                            name,
                            "completed",
                            outcome,
                            attempt_created,
                            began,
                            finished,
                            labels,
                            f"runner-{position}",
                            os,
                            repo,
                            "Default",
                            queued,
                        ),
                    )
                    for step in range(1, steps_per_job + 1):
                        out.add(
                            "steps",
                            (
                                job_id,
                                gitid,
                                step,
                                f"step {step}",
                                "completed",
                                "failure" if failed and step == steps_per_job else "success",
                                began,
                                finished,
                                repo,
                            ),
                        )
                    first, last = min(first, began), max(last, finished)
                out.add(
                    "workflowrun_attempts",
                    (
                        gitid,
                        attempt,
                        "completed",
                        "failure" if attempts == 2 and attempt == 1 else conclusion,
                        first,
                        last,
                        repo,
                    ),
                )
                start, end = (first, last) if attempt == attempts else (start, end)
            out.add(
                "workflowruns",
                (
                    gitid,
                    created,
                    start,
                    end,
                    end,
                    int((start - created).total_seconds()),
                    float((end - start).total_seconds()),
                    "completed",
                    conclusion,
                    branch,
                    sha,
                    workflow,
                    workflow_ids[workflow],
                    repo,
                    "Linux,macOS,Windows",
                    attempts,
                    number + 1,
                    "push",
                    f"https://github.com/{repo}/actions/runs/{gitid}",
                ),
            )
            gitid += 1
    out.flush()
    with connection.cursor() as cursor:
        # The fleet's newest runs are the ones still going.
        cursor.execute(
            "UPDATE workflowruns SET status = 'in_progress', conclusion = NULL "
            "ORDER BY createtime DESC LIMIT %s",
            (UNFINISHED_RUNS,),
        )
        cursor.execute(
            "ANALYZE TABLE workflowruns, jobs, steps, workflowrun_attempts, commits, workflows"
        )
        cursor.fetchall()
    connection.commit()
    return Year(now, names[0][0], names[1][0], [name for name, _ in names], gitid - 1)
