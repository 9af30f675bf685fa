"""What a query costs MariaDB: the rows its storage engine reads, beside the rows it must.

Plans estimate; the engine's counters count. One execution is bracketed by resetting and
reading the performance schema's per-table counts (the server runs with
``--performance-schema=ON``, see ``mariadb.start_mariadb(counting=True)``): every row or
index entry a handler fetched from one of our tables, an index probe that found nothing
included. Index condition pushdown filters entries inside InnoDB, where those counts do
not see them, so the entries it examined and skipped are added from the session's
``Handler_icp_attempts`` less ``Handler_icp_match``. The server's own temporary tables
(a GROUP BY's, a window function's) are not ours: ``Handler_read_*`` counts them too,
and the difference is shown apart.

Each query comes with the SQL that counts the rows it must touch: the rows of our tables
its answer is made of, and every row its conditions must look at when the best index is
used. The budget is three times that, plus 100.

``tests/store/test_query_cost.py`` holds every query to the budget over a small year;
``benchmarks/query_cost.py`` prints the figures at a year of 1,000 repositories.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from year_fill import Year

from dashboard_sql import QUERIES
from poller.config.loader import parse
from poller.service import exposition, status
from support import docs_sql

SLACK = 100
FACTOR = 3


@dataclass(frozen=True)
class CostedQuery:
    name: str
    sql: str  # %(repo)s: a repository
    needed: str  # counts the rows the query must touch, with the same parameters
    repo: str = ""  # "all_on_main", "spread", or "" when it takes no repository


def _week(column: str, days: int) -> str:
    return f"{column} >= UTC_TIMESTAMP() - INTERVAL {days} DAY"


def dashboard_queries() -> list[CostedQuery]:
    """The dashboard's five, as its API writes them; the per-repository ones for a
    repository mostly on main and for one spread over branches."""
    needed = {
        "daily counts over 7 days": "SELECT COUNT(*) FROM workflowruns WHERE "
        + _week("createtime", 7),
        "failure share over 24 hours": "SELECT COUNT(*) FROM workflowruns WHERE "
        + _week("createtime", 1),
        "newest run": "SELECT 1",
        "a branch's runs over 7 days": "SELECT COUNT(*) FROM workflowruns WHERE "
        "repo = %(repo)s AND branchname = 'main' AND " + _week("createtime", 7),
        # The 50 runs, and one commit each.
        "runs with their commit messages": "SELECT 2 * LEAST(50, COUNT(*)) FROM workflowruns "
        "WHERE repo = %(repo)s",
    }
    costed = []
    for query in QUERIES:
        shapes = ["all_on_main", "spread"] if "%(repo)s" in query.sql else [""]
        for shape in shapes:
            name = f"dashboard: {query.name}" + (f" ({shape.replace('_', ' ')})" if shape else "")
            costed.append(CostedQuery(name, query.sql, needed[query.name], shape))
    return costed


def readme_queries() -> list[CostedQuery]:
    """Every SQL query the docs show for MySQL/MariaDB, with its repository made a
    parameter."""

    def read(title: str) -> str:
        return docs_sql(title).replace("'iree-org/iree'", "%(repo)s")

    busy = "all_on_main"
    return [
        CostedQuery(
            "docs: flaky share of main runs over 24 hours",
            read("flaky share of main runs over the last 24 hours (MySQL/MariaDB)"),
            # Each completed main run of the day, and its attempts.
            "SELECT COUNT(*) + COALESCE(SUM(r.runattempt), 0) FROM workflowruns r "
            "WHERE r.repo = %(repo)s AND r.branchname = 'main' AND r.status = 'completed' "
            "AND " + _week("r.createtime", 1),
            busy,
        ),
        CostedQuery(
            "docs: last docker build",
            read("last docker build in 30 days (MySQL/MariaDB)"),
            # A run does not carry its workflow's image flag, so the repository's runs are
            # read back from the newest, each with its workflow, to the newest build.
            "SELECT 2 * COUNT(*) FROM workflowruns WHERE repo = %(repo)s AND createtime >= "
            "(SELECT MAX(r.createtime) FROM workflowruns r "
            "JOIN workflows w ON w.gitid = r.workflowid WHERE r.repo = %(repo)s "
            "AND w.imagebuild = 1 AND r.status = 'completed' AND r.conclusion = 'success')",
            busy,
        ),
        CostedQuery(
            "docs: waterfall of the last two weeks",
            read("Waterfall: each platform's result per commit (MySQL/MariaDB)"),
            # The window's CI runs, and every job of theirs.
            "SELECT COUNT(DISTINCT r.gitid) + COUNT(j.gitid) FROM workflowruns r "
            "LEFT JOIN jobs j ON j.runid = r.gitid "
            "WHERE r.repo = %(repo)s AND r.workflowname = 'CI' AND " + _week("r.createtime", 14),
            busy,
        ),
        CostedQuery(
            "docs: queue time per runner label over a week",
            read("Job queue time per runner label over the last week (MySQL, MariaDB)"),
            "SELECT COUNT(*) FROM jobs WHERE queuetime IS NOT NULL AND " + _week("createtime", 7),
        ),
        CostedQuery(
            "docs: a repository's newest 20 runs on main (Python)",
            "SELECT workflowname, conclusion, createtime, os FROM workflowruns "
            "WHERE repo = %(repo)s AND branchname = 'main' ORDER BY createtime DESC LIMIT 20",
            "SELECT 20",
            busy,
        ),
        CostedQuery(
            "docs: failed steps, newest first",
            read("Failed steps, newest first"),
            "SELECT 40",  # 20 steps and their 20 jobs
        ),
    ]


# status: once, each organisation's status rows and then every repository's, every
# cursor, the unfinished runs and the runs of the last week; per repository, the label
# sets of the week's jobs of unknown OS.
STATUS_NEEDS = (
    "SELECT (SELECT COUNT(*) FROM workflowruns WHERE "
    + _week("createtime", 7)
    + ") + (SELECT COUNT(*) FROM jobs WHERE os IS NULL AND "
    + _week("createtime", 7)
    + ") + 2 * (SELECT COUNT(*) FROM sync_status) + (SELECT COUNT(*) FROM sync_cursors) "
    "+ (SELECT COUNT(*) FROM workflowruns WHERE status <> 'completed')"
)
# A collection: the status rows (the organisations' and each repository's), the unfinished
# runs twice (per repository, and per workflow for the CI metrics), every workflow.
METRICS_NEEDS = (
    "SELECT 2 * (SELECT COUNT(*) FROM sync_status) + (SELECT COUNT(*) FROM workflows) "
    "+ (SELECT COUNT(*) FROM workflowruns WHERE status <> 'completed')"
)
CHECK_NEEDS = "SELECT 2 * COUNT(*) FROM sync_status"


def poller_reads(year: Year) -> list[tuple[str, Callable[[], object], str]]:
    """What ``status``, ``status --check`` and a metrics collection (the CI metrics on)
    read over the fill's repositories, followed as their organisations' members: each a
    call of the poller's own code, with the SQL that counts what it must touch."""
    owners = sorted({name.split("/")[0] for name in year.repos})
    document = {
        "database": {"url": "sqlite:///unused.db"},
        "orgs": [{"name": owner} for owner in owners],
        "metrics": {"ci": True, "ci_per_repository": True},
    }
    config = parse(document, Path("config.toml"))
    collector = exposition.DataCollector(config, pool=None)  # type: ignore[arg-type]

    def collect() -> object:
        with exposition.reading():
            return collector.database_families()

    return [
        ("status", lambda: status.stored_status(config, year.now)[1], STATUS_NEEDS),
        ("status --check", lambda: status.health(config, year.now), CHECK_NEEDS),
        ("a metrics collection", collect, METRICS_NEEDS),
    ]


@dataclass(frozen=True)
class Cost:
    rows_read: int  # by the storage engine, in our tables
    temporary: int  # rows the server read back from its own temporary tables
    rows_needed: int
    rows_returned: int
    seconds: float

    @property
    def budget(self) -> int:
        return FACTOR * self.rows_needed + SLACK

    @property
    def within(self) -> bool:
        return self.rows_read <= self.budget


def handler_counts(cursor: Any) -> dict[str, int]:
    # The pattern is a parameter: a % in the statement's text would be pymysql's.
    cursor.execute("SHOW SESSION STATUS LIKE %s", ("Handler_%",))
    return {name: int(value) for name, value in cursor.fetchall()}


def own_reads(cursor: Any) -> int:
    """Rows fetched from the current database's tables since the last reset."""
    cursor.execute(
        "SELECT COALESCE(SUM(count_fetch), 0) "
        "FROM performance_schema.table_io_waits_summary_by_table "
        "WHERE object_schema = DATABASE()"
    )
    return int(cursor.fetchone()[0])


def reset(cursor: Any) -> None:
    cursor.execute("TRUNCATE TABLE performance_schema.table_io_waits_summary_by_table")
    cursor.execute("FLUSH STATUS")


def _icp_skipped_globally(cursor: Any) -> int:
    cursor.execute("SHOW GLOBAL STATUS LIKE %s", ("Handler_icp%",))
    counts = {name: int(value) for name, value in cursor.fetchall()}
    return counts["Handler_icp_attempts"] - counts["Handler_icp_match"]


def measure_call(cursor: Any, call: Callable[[], object], needed_sql: str) -> tuple[Cost, object]:
    """The cost of the poller's own code, ``call``, which reads on its own connection:
    ``cursor`` (another session, on the same database) resets and reads the server-wide
    counts around it. Returns what the call returned too."""
    cursor.execute(needed_sql)
    needed = int(cursor.fetchone()[0] or 0)
    reset(cursor)
    skipped = _icp_skipped_globally(cursor)
    started = time.perf_counter()
    answer = call()
    seconds = time.perf_counter() - started
    skipped = _icp_skipped_globally(cursor) - skipped
    return Cost(own_reads(cursor) + skipped, 0, needed, 0, seconds), answer


def engine_reads(cursor: Any) -> tuple[int, int]:
    """Rows read from our tables, and from temporary ones, since :func:`reset`."""
    counts = handler_counts(cursor)
    fetched = own_reads(cursor)
    skipped = counts.get("Handler_icp_attempts", 0) - counts.get("Handler_icp_match", 0)
    handled = sum(value for name, value in counts.items() if name.startswith("Handler_read_"))
    return fetched + skipped, max(0, handled - fetched)


def measure(cursor: Any, sql: str, needed_sql: str, params: dict[str, Any]) -> Cost:
    cursor.execute(needed_sql, params)
    needed = int(cursor.fetchone()[0] or 0)
    reset(cursor)
    started = time.perf_counter()
    cursor.execute(sql, params)
    returned = len(cursor.fetchall())
    seconds = time.perf_counter() - started
    read, temporary = engine_reads(cursor)
    return Cost(read, temporary, needed, returned, seconds)
