"""The dashboard's own query shapes on MySQL/MariaDB, with the index each must use.

Its API's landing page runs the first three; none filters by repository. The others are
its per-branch list and its join of runs to commit messages. ``tests/store/test_indexes.py``
checks each plan with ``EXPLAIN``, and ``benchmarks/dashboard_queries.py`` times them at a
year of 1,000 repositories.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class DashboardQuery:
    name: str
    sql: str  # %(repo)s stands for a repository
    table: str  # the table whose plan is checked
    index: str  # the index that plan must use
    landing: bool = False
    join: bool = False  # one row of the table per row joined: eq_ref


QUERIES = [
    DashboardQuery(
        "daily counts over 7 days",
        "SELECT DATE(createtime) AS day, COUNT(*) AS runs FROM workflowruns "
        "WHERE createtime >= UTC_TIMESTAMP() - INTERVAL 7 DAY "
        "GROUP BY DATE(createtime) ORDER BY day",
        "workflowruns",
        "workflowruns_createtime_conclusion",
        landing=True,
    ),
    DashboardQuery(
        "failure share over 24 hours",
        "SELECT SUM(conclusion = 'failure') / COUNT(*) AS failure_share FROM workflowruns "
        "WHERE createtime >= UTC_TIMESTAMP() - INTERVAL 1 DAY",
        "workflowruns",
        "workflowruns_createtime_conclusion",
        landing=True,
    ),
    DashboardQuery(
        "newest run",
        "SELECT * FROM workflowruns ORDER BY createtime DESC LIMIT 1",
        "workflowruns",
        "workflowruns_createtime_conclusion",
        landing=True,
    ),
    DashboardQuery(
        "a branch's runs over 7 days",
        "SELECT gitid, workflowname, conclusion, createtime FROM workflowruns "
        "WHERE repo = %(repo)s AND branchname = 'main' "
        "AND createtime >= UTC_TIMESTAMP() - INTERVAL 7 DAY ORDER BY createtime DESC",
        "workflowruns",
        "workflowruns_branchname_repo_createtime",
    ),
    DashboardQuery(
        "runs with their commit messages",
        "SELECT r.gitid, r.conclusion, c.message, c.author FROM workflowruns r "
        "JOIN commits c ON c.repo = r.repo AND c.hash = r.commithash "
        "WHERE r.repo = %(repo)s ORDER BY r.createtime DESC LIMIT 50",
        "c",
        "commits_repo_hash",
        join=True,
    ),
]


def explain(cursor: object, query: DashboardQuery, repo: str) -> list[dict[str, object]]:
    """MariaDB's plan for ``query``, one dict per table, keyed by EXPLAIN's columns."""
    cursor.execute("EXPLAIN " + query.sql, {"repo": repo})  # type: ignore[attr-defined]
    names = [column[0].lower() for column in cursor.description]  # type: ignore[attr-defined]
    return [dict(zip(names, row, strict=True)) for row in cursor.fetchall()]  # type: ignore[attr-defined]


# The scale mix of benchmarks/scale.py: runs a day per repository, and its share of them.
MIX = ((0.05, 200.0), (0.25, 10.0), (0.70, 1 / 3))
OUTCOMES = ["success"] * 17 + ["failure"] * 2 + ["cancelled"]
WORKFLOWS = ["CI", "PkgCI", "Lint", "Publish Website", "Build Docker Images"]
RUN_COLUMNS = (
    "gitid, createtime, starttime, endtime, queuetime, runtime, status, conclusion, "
    "branchname, commithash, workflowname, repo, os, runattempt"
)


def repo_names(count: int) -> list[tuple[str, float]]:
    """``count`` repositories with their runs a day, busiest first."""
    names = []
    for share, per_day in MIX:
        for _ in range(round(count * share)):
            names.append((f"org{len(names) % 10}/repo{len(names):04d}", per_day))
    return names


def fill(connection: object, *, runs: int, repos: int, now: object, batch: int = 5000) -> str:
    """``runs`` runs over the year before ``now`` in ``repos`` repositories of the scale
    mix, one commit per four runs; returns the busiest repository's name. Direct SQL, as
    fast as the server takes it: this is about reading, not about how rows arrive."""
    import random
    from datetime import timedelta

    rng = random.Random(1)
    names = repo_names(repos)
    weight = sum(per_day for _, per_day in names)
    gitid = 1
    cursor = connection.cursor()  # type: ignore[attr-defined]
    run_rows: list[tuple[object, ...]] = []
    commit_rows: list[tuple[object, ...]] = []

    def flush(final: bool = False) -> None:
        if run_rows and (final or len(run_rows) >= batch):
            marks = ", ".join(["%s"] * len(run_rows[0]))
            cursor.executemany(
                f"INSERT INTO workflowruns ({RUN_COLUMNS}) VALUES ({marks})", run_rows
            )
            run_rows.clear()
        if commit_rows and (final or len(commit_rows) >= batch):
            cursor.executemany(
                "INSERT INTO commits (hash, author, message, time, repo) "
                "VALUES (%s, %s, %s, %s, %s)",
                commit_rows,
            )
            commit_rows.clear()
        connection.commit()  # type: ignore[attr-defined]

    for index, (repo, per_day) in enumerate(names):
        count = max(1, round(runs * per_day / weight))
        for number in range(count):
            created = now - timedelta(seconds=rng.randrange(365 * 86400))  # type: ignore[operator]
            queued, took = rng.randrange(5, 600), rng.randrange(60, 3600)
            start = created + timedelta(seconds=queued)
            sha = f"{index:08x}{number // 4:032x}"
            if number % 4 == 0:
                commit_rows.append((sha, "Octo Cat", f"change {number // 4}", created, repo))
            branch = "main" if rng.random() < 0.6 else f"pr-{rng.randrange(500)}"
            run_rows.append(
                (
                    gitid,
                    created,
                    start,
                    start + timedelta(seconds=took),
                    queued,
                    float(took),
                    "completed",
                    rng.choice(OUTCOMES),
                    branch,
                    sha,
                    rng.choice(WORKFLOWS),
                    repo,
                    "Linux",
                    1,
                )
            )
            gitid += 1
            flush()
    flush(final=True)
    cursor.execute("ANALYZE TABLE workflowruns, commits")
    cursor.fetchall()
    return names[0][0]
