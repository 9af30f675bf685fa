"""The dashboard's queries at the scale we serve: a year of 1,000 repositories on MariaDB.

It fills a throwaway MariaDB (MariaDB's default 128 MB buffer pool) with a year of runs in
the scale mix (5% of repositories busy at 200 runs a day, 25% at 10, 70% at one every
three days), one commit per four runs, and five jobs with three steps each for the last
week's runs. Then it times each of the dashboard's query shapes (``tests/dashboard_sql.py``)
and the docs' queries, the median of five, with our schema, and again without the two
indexes this version adds, to show what they buy. Plans are printed beside the times.

    scripts/dashboard-queries [--runs 4000000] [--repos 1000]
"""

from __future__ import annotations

import argparse
import re
import statistics
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT / "tests"))

from dashboard_sql import QUERIES, explain, fill  # noqa: E402
from mariadb import MariaDB, mariadb_installed, start_mariadb  # noqa: E402
from poller.store.schema import ensure_schema  # noqa: E402

NEW_INDEXES = ("workflowruns_createtime_conclusion", "workflowruns_branchname_repo_createtime")
DOCS_TITLES = (
    "Waterfall: each platform's result per commit (MySQL/MariaDB)",
    "Job queue time per runner label over the last week (MySQL, MariaDB)",
    "Failed steps, newest first",
    "flaky share of main runs over the last 24 hours (MySQL/MariaDB)",
    "last docker build in 30 days (MySQL/MariaDB)",
)
JOB_NAMES = ["linux_x64_clang", "windows_x64_msvc", "macos_arm64_clang", "linux_arm64_clang"]


def docs_sql(title: str) -> str:
    for page in sorted((ROOT / "docs").glob("*.md")):
        for block in re.findall(r"```sql\n(.*?)```", page.read_text(), re.S):
            if block.startswith(f"-- {title}\n"):
                return str(block.strip().rstrip(";"))
    raise SystemExit(f"docs/ has no sql block titled {title!r}")


def fill_jobs(connection: object, now: datetime) -> int:
    """Five jobs, three steps each, for every run of the last week."""
    cursor = connection.cursor()  # type: ignore[attr-defined]
    cursor.execute(
        "SELECT gitid, repo, createtime, conclusion FROM workflowruns WHERE createtime >= %s",
        (now - timedelta(days=7),),
    )
    runs = cursor.fetchall()
    job_id = 10**9
    jobs, steps = [], []
    for gitid, repo, created, conclusion in runs:
        for index, name in enumerate([*JOB_NAMES, "test_mi300"]):
            job_id += 1
            wait = 30 + (gitid * 37 + index * 101) % (1800 if index == 4 else 120)
            start = created + timedelta(seconds=wait)
            labels = [
                "ubuntu-24.04",
                "azure-windows-scale",
                "macos-14",
                "ah-ubuntu_22_04-c7g_4x-50",
                "nodai-amdgpu-mi300-x86-64",
            ][index]
            result = conclusion if index == 4 else "success"
            jobs.append(
                (
                    job_id,
                    gitid,
                    1,
                    name,
                    "completed",
                    result,
                    created,
                    start,
                    start + timedelta(minutes=20),
                    labels,
                    "Linux",
                    repo,
                    "Default",
                    wait,
                )
            )
            for number, step in enumerate(["Set up job", "Build and test", "Complete job"], 1):
                steps.append(
                    (
                        job_id,
                        gitid,
                        number,
                        step,
                        "completed",
                        result if number == 3 else "success",
                        start,
                        start,
                        repo,
                    )
                )
    columns = (
        "gitid, runid, runattempt, name, status, conclusion, createtime, starttime, "
        "endtime, labels, os, repo, runnergroup, queuetime"
    )
    for batch in range(0, len(jobs), 5000):
        cursor.executemany(
            f"INSERT INTO jobs ({columns}) VALUES ({', '.join(['%s'] * 14)})",
            jobs[batch : batch + 5000],
        )
    for batch in range(0, len(steps), 5000):
        cursor.executemany(
            "INSERT INTO steps (jobid, runid, number, name, status, conclusion, starttime, "
            "endtime, repo) VALUES (%s, %s, %s, %s, %s, %s, %s, %s, %s)",
            steps[batch : batch + 5000],
        )
    connection.commit()  # type: ignore[attr-defined]
    cursor.execute("ANALYZE TABLE jobs, steps")
    cursor.fetchall()
    return len(jobs)


def timed(connection: object, sql: str, params: dict[str, str] | None = None) -> float:
    """Median milliseconds of five runs, after one to warm the buffer pool."""
    cursor = connection.cursor()  # type: ignore[attr-defined]
    times = []
    for attempt in range(6):
        started = time.perf_counter()
        cursor.execute(sql, params)
        cursor.fetchall()
        if attempt:
            times.append((time.perf_counter() - started) * 1000)
    return statistics.median(times)


def table(connection: object, busiest: str, label: str) -> list[str]:
    lines = [f"| query ({label}) | median ms | plan |", "| --- | --- | --- |"]
    with connection.cursor() as cursor:  # type: ignore[attr-defined]
        for query in QUERIES:
            plan = {row["table"]: row for row in explain(cursor, query, busiest)}
            step = plan[query.table]
            shape = f"{step['type']} on {step['key'] or '-'}, {step['rows']} rows"
            ms = timed(connection, query.sql, {"repo": busiest})
            flag = " (landing page)" if query.landing else ""
            lines.append(f"| {query.name}{flag} | {ms:,.1f} | {shape} |")
    return lines


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--runs", type=int, default=4_000_000)
    parser.add_argument("--repos", type=int, default=1000)
    args = parser.parse_args()
    if not mariadb_installed():
        raise SystemExit("needs mariadbd (Debian: apt-get install mariadb-server)")
    with tempfile.TemporaryDirectory() as scratch:
        server: MariaDB = start_mariadb(Path(scratch), buffer_pool="128M")
        try:
            database = server.create_database("dashboard_year")
            with database.open() as db:
                ensure_schema(db)
            connection = server.root("dashboard_year")
            now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
            started = time.perf_counter()
            busiest = fill(connection, runs=args.runs, repos=args.repos, now=now)
            jobs = fill_jobs(connection, now)
            with connection.cursor() as cursor:
                cursor.execute("SELECT COUNT(*) FROM workflowruns")
                [(stored,)] = cursor.fetchall()
            print(
                f"filled {stored:,} runs in {args.repos} repositories and {jobs:,} jobs "
                f"in {time.perf_counter() - started:.0f} s; busiest: {busiest}\n"
            )
            print("\n".join(table(connection, busiest, "with this version's indexes")))
            join = QUERIES[-1]
            runs_first = join.sql.replace("SELECT", "SELECT STRAIGHT_JOIN", 1)
            ms = timed(connection, runs_first, {"repo": busiest})
            print(f"| {join.name}, runs first (STRAIGHT_JOIN) | {ms:,.1f} | eq_ref on commits |")
            print("\n| docs query | median ms |\n| --- | --- |")
            for title in DOCS_TITLES:
                print(f"| {title} | {timed(connection, docs_sql(title)):,.1f} |")
            with connection.cursor() as cursor:
                for index in NEW_INDEXES:
                    cursor.execute(f"DROP INDEX {index} ON workflowruns")
            print()
            print("\n".join(table(connection, busiest, "without the two new indexes")))
            connection.close()
        finally:
            server.executor.stop()


if __name__ == "__main__":
    main()
