"""A faithful re-implementation of the legacy backfill (``local-database.py``), the baseline.

What the legacy script does, per its README and code: list the repository's runs with
PyGithub's defaults (the unfiltered listing, 30 per page), and for each run call
``run.jobs()`` and ``run.timing()``, derive the OS from the job labels, and write the row
with its own ``INSERT ... ON DUPLICATE KEY UPDATE`` and commit, one row at a time. Its
runtime bug (milliseconds divided by 100) is kept: this measures cost, not correctness.

Usage: python benchmarks/legacy.py API_URL OWNER/NAME MAX_RUNS MYSQL_URL
(token in GITHUB_TOKEN, password in SHARK_POLLER_DB_PASSWORD).
"""

from __future__ import annotations

import os
import sys
from datetime import UTC, datetime
from urllib.parse import urlsplit

import pymysql
from github import Auth, Github

from poller.rules.transform import jobs_os

UPSERT = """
INSERT INTO workflowruns (gitid, author, runtime, createtime, starttime, endtime, queuetime,
    status, conclusion, url, branchname, commithash, workflowname, repo, os)
VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s, %s)
ON DUPLICATE KEY UPDATE author = VALUES(author), runtime = VALUES(runtime),
    starttime = VALUES(starttime), endtime = VALUES(endtime), queuetime = VALUES(queuetime),
    status = VALUES(status), conclusion = VALUES(conclusion), os = VALUES(os)
"""


def naive(moment: datetime | None) -> datetime | None:
    return moment.astimezone(UTC).replace(tzinfo=None) if moment else None


def main(api_url: str, repo_name: str, max_runs: int, mysql_url: str) -> int:
    github = Github(
        auth=Auth.Token(os.environ["GITHUB_TOKEN"]), base_url=api_url, seconds_between_requests=0
    )
    parts = urlsplit(mysql_url)
    connection = pymysql.connect(
        host=parts.hostname,
        port=parts.port or 3306,
        user=parts.username,
        password=os.environ.get("SHARK_POLLER_DB_PASSWORD", ""),
        database=parts.path.lstrip("/"),
        charset="utf8mb4",
    )
    repo = github.get_repo(repo_name)
    written = 0
    for run in repo.get_workflow_runs()[:max_runs]:
        # Attributes only: .raw_data would cost one more hidden GET per object.
        jobs = list(run.jobs())
        timing = run.timing()
        created = naive(run.created_at)
        started = naive(run.run_started_at)
        ends = [naive(job.completed_at) for job in jobs if job.completed_at]
        with connection.cursor() as cursor:
            cursor.execute(
                UPSERT,
                (
                    run.id,
                    run.actor.login if run.actor else None,
                    timing.run_duration_ms / 100 if timing.run_duration_ms else None,
                    created,
                    started,
                    max(ends) if ends else None,
                    (started - created).total_seconds() if started and created else 0,
                    run.status,
                    run.conclusion,
                    run.html_url,
                    run.head_branch,
                    run.head_sha,
                    run.name,
                    repo_name,
                    jobs_os({"labels": job.labels} for job in jobs),
                ),
            )
        connection.commit()
        written += 1
    connection.close()
    print(written)
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]))
