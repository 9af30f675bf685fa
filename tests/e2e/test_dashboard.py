"""The dashboard's own SQL, run against what the poller wrote.

MariaDB is where the dashboard lives, and where collations decide answers: SQLite's
``LIKE`` is case-insensitive for ASCII whatever the schema says, so it cannot show a
case-sensitive column. The views and the docs' queries run on both databases.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from legacy_schema import LEGACY_DDL, LEGACY_RUN_COLUMNS

from fake_github import FakeGitHub, FakeRepo
from mariadb import MariaDB
from poller.store.models import Branch
from support import Database, PollerSetup, docs_sql

NOW = datetime.now(UTC).replace(microsecond=0)
REPO = "iree-org/iree"

# Dashboard-style reads: lower-case patterns against mixed-case names, '=' on branches.
DASHBOARD_QUERIES = [
    "SELECT COUNT(*) FROM workflowruns WHERE workflowname LIKE '%test%'",
    "SELECT COUNT(*) FROM workflowruns WHERE workflowname LIKE '%lint%'",
    "SELECT COUNT(*) FROM workflowruns WHERE workflowname LIKE '%doc%'",
    "SELECT COUNT(*) FROM workflowruns WHERE branchname = 'main'",
    "SELECT COUNT(*) FROM workflowruns WHERE branchname = 'main' AND conclusion = 'FAILURE'",
    f"SELECT COUNT(*) FROM workflowruns WHERE repo = '{REPO.upper()}'",
    "SELECT LOWER(workflowname), COUNT(*) FROM workflowruns "
    "WHERE workflowname LIKE '%test%' OR workflowname LIKE '%doc%' "
    "GROUP BY LOWER(workflowname) ORDER BY 1",
]


def busy_repo(fake: FakeGitHub) -> FakeRepo:
    """Mixed-case workflow names, and branches that differ only in case."""
    repo = fake.add_repo(REPO)
    fake.add_commit(repo, "main", when=NOW - timedelta(days=1))
    fake.create_branch(repo, "Feature")
    fake.add_commit(repo, "Feature", message="upper")
    fake.create_branch(repo, "feature")
    fake.add_commit(repo, "feature", message="lower")
    for index, name in enumerate(["PkgCI Test", "Lint", "Build Docs", "CI", "unit-TESTS"]):
        workflow = fake.add_workflow(repo, name)
        for hours, branch, conclusion in [
            (index + 1, "main", "success"),
            (index + 2, "main", "failure"),
            (index + 3, "Main", "success"),
            (index + 4, "feature", "success"),
        ]:
            fake.add_run(
                repo,
                workflow,
                created=NOW - timedelta(hours=hours),
                branch=branch,
                conclusion=conclusion,
            )
    return repo


def answers(connection: Any) -> list[Any]:
    results = []
    with connection.cursor() as cursor:
        for query in DASHBOARD_QUERIES:
            cursor.execute(query)
            results.append([tuple(row) for row in cursor.fetchall()])
    return results


def legacy_copy(server: MariaDB, source: Database, name: str) -> list[Any]:
    """The poller's workflowruns, copied into a database with the legacy DDL (latin1, the
    server's case-insensitive default collation): the answers the dashboard used to get."""
    legacy = server.create_database(name)
    columns = ", ".join(LEGACY_RUN_COLUMNS)
    with source.open() as db:
        rows = db.execute_sql(f"SELECT {columns} FROM workflowruns").fetchall()
    dbname = legacy.url.rsplit("/", 1)[1]
    with server.root(dbname) as connection:
        with connection.cursor() as cursor:
            for ddl in LEGACY_DDL:
                cursor.execute(ddl)
            marks = ", ".join(["%s"] * len(LEGACY_RUN_COLUMNS))
            cursor.executemany(f"INSERT INTO workflowruns ({columns}) VALUES ({marks})", rows)
        return answers(connection)


def poller_answers(server: MariaDB, database: Database) -> list[Any]:
    with server.root(database.url.rsplit("/", 1)[1]) as connection:
        return answers(connection)


def assert_case_distinct_branches(database: Database) -> None:
    with database.open():
        names = {b.name for b in Branch.select().where(Branch.repo == REPO)}
    assert {"Feature", "feature", "main"} <= names


@pytest.mark.mariadb
def test_dashboard_queries_answer_as_on_the_legacy_database(
    tmp_path, fake: FakeGitHub, mariadb_server: MariaDB
):
    busy_repo(fake)
    database = mariadb_server.create_database("dash_fresh")
    poller = PollerSetup(tmp_path, fake.url, database, repos=[{"name": REPO}])
    result = poller.run()
    assert result.returncode == 0, result.stderr

    got = poller_answers(mariadb_server, database)
    assert got == legacy_copy(mariadb_server, database, "dash_fresh_legacy")
    # Not vacuous: each pattern matches mixed-case names, and 'main' matches 'Main'.
    test_runs, lint_runs, doc_runs, main_runs, main_failures, repo_runs, _ = got
    assert test_runs == [(8,)] and lint_runs == [(4,)] and doc_runs == [(4,)]
    assert main_runs == [(15,)] and main_failures == [(5,)] and repo_runs == [(20,)]
    assert_case_distinct_branches(database)


@pytest.mark.mariadb
def test_a_database_from_shark_poller_0_1_is_made_case_insensitive_in_place(
    tmp_path, fake: FakeGitHub, mariadb_server: MariaDB
):
    """0.1 created every table utf8mb4_bin. The upgrade keeps every row, including two
    branches that differ only in case, which a careless CONVERT TO would collide."""
    busy_repo(fake)
    database = mariadb_server.create_database("dash_v01")
    poller = PollerSetup(tmp_path, fake.url, database, repos=[{"name": REPO}])
    assert poller.run().returncode == 0
    dbname = database.url.rsplit("/", 1)[1]
    with mariadb_server.root(dbname) as connection, connection.cursor() as cursor:
        cursor.execute(
            "SELECT table_name FROM information_schema.tables "
            "WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE'"
        )
        for (table,) in cursor.fetchall():
            cursor.execute(
                f"ALTER TABLE `{table}` CONVERT TO CHARACTER SET utf8mb4 COLLATE utf8mb4_bin"
            )
        cursor.execute("SELECT COUNT(*) FROM workflowruns WHERE workflowname LIKE '%test%'")
        assert cursor.fetchone() == (0,)  # the 0.1 defect, reproduced
        counts = {}
        for table in ("branches", "commits", "workflows", "workflowruns", "jobs"):
            cursor.execute(f"SELECT COUNT(*) FROM `{table}`")
            counts[table] = cursor.fetchone()[0]

    upgrade = poller.run()
    assert upgrade.returncode == 0, upgrade.stderr
    assert "schema.collation_changed" in upgrade.stderr
    again = poller.run()
    assert "schema." not in again.stderr  # idempotent

    with mariadb_server.root(dbname) as connection, connection.cursor() as cursor:
        for table, count in counts.items():
            cursor.execute(f"SELECT COUNT(*) FROM `{table}`")
            assert cursor.fetchone() == (count,), table
        cursor.execute(
            "SELECT column_name, collation_name FROM information_schema.columns "
            "WHERE table_schema = DATABASE() AND table_name = 'branches' "
            "AND collation_name IS NOT NULL"
        )
        assert dict(cursor.fetchall()) == {
            "name": "utf8mb4_bin",
            "author": "utf8mb4_unicode_ci",
            "repo": "utf8mb4_unicode_ci",
            "commithash": "utf8mb4_unicode_ci",
        }
    got = poller_answers(mariadb_server, database)
    assert got == legacy_copy(mariadb_server, database, "dash_v01_legacy")
    assert got[0] == [(8,)]
    assert_case_distinct_branches(database)


@pytest.mark.mariadb
def test_an_upgraded_legacy_database_answers_as_before(
    tmp_path, fake: FakeGitHub, mariadb_server: MariaDB
):
    from legacy_schema import create_legacy

    database = mariadb_server.create_database("dash_legacy_upgrade")
    create_legacy(database)
    dbname = database.url.rsplit("/", 1)[1]
    with mariadb_server.root(dbname) as connection, connection.cursor() as cursor:
        cursor.execute(
            "INSERT INTO workflowruns (gitid, workflowname, branchname, repo, status) VALUES "
            "(901, 'Nightly Tests', 'Main', 'iree-org/iree', 'completed'), "
            "(902, 'DOCS', 'main', 'iree-org/iree', 'completed')"
        )
        before = answers(connection)
    busy_repo(fake)
    poller = PollerSetup(tmp_path, fake.url, database, repos=[{"name": REPO}])
    result = poller.run()
    assert result.returncode == 0, result.stderr
    # The legacy rows answer as they did, and the new rows join them case-insensitively.
    got = poller_answers(mariadb_server, database)
    assert got == legacy_copy(mariadb_server, database, "dash_legacy_upgrade_copy")
    assert got[0] == [(before[0][0][0] + 8,)]
    assert got[2] == [(before[2][0][0] + 4,)]


# --- the views, on both databases ---


def flaky_history(fake: FakeGitHub) -> dict[str, int]:
    repo = fake.add_repo(REPO)
    ci = fake.add_workflow(repo, "CI")
    fake.add_commit(repo, "main", when=NOW - timedelta(days=3))
    fake.create_branch(repo, "feature")

    def run(hours: float, conclusion: str, branch: str = "main") -> int:
        return fake.add_run(
            repo, ci, created=NOW - timedelta(hours=hours), branch=branch, conclusion=conclusion
        )

    runs = {
        "flaky": run(5, "failure"),
        "broken": run(4, "failure"),
        "green": run(3, "success"),
        "flaky_feature": run(2, "failure", "feature"),
        "flaky_old": run(40, "failure"),
        "timed_out_then_green": run(6, "timed_out"),
    }
    for name, conclusions in {
        "flaky": ["success"],
        "broken": ["failure"],
        "flaky_feature": ["success"],
        "flaky_old": ["success"],
        "timed_out_then_green": ["failure", "success"],
    }.items():
        for attempt, conclusion in enumerate(conclusions):
            at = NOW - timedelta(hours=1, minutes=10 * attempt)
            fake.rerun(repo, runs[name], at=at, conclusion=conclusion)
    return runs


def query(database: Database, sql: str) -> list[tuple[Any, ...]]:
    with database.open() as db:
        return [tuple(row) for row in db.execute_sql(sql).fetchall()]


def test_flaky_runs_view_and_the_readme_query(fake: FakeGitHub, poller: PollerSetup):
    runs = flaky_history(fake)
    poller.repos = [{"name": REPO}]
    result = poller.run()
    assert result.returncode == 0, result.stderr

    flaky = dict(query(poller.database, "SELECT runid, attempts FROM flaky_runs"))
    assert flaky == {
        runs["flaky"]: 2,
        runs["flaky_feature"]: 2,
        runs["flaky_old"]: 2,
        runs["timed_out_then_green"]: 3,
    }
    row = query(
        poller.database,
        "SELECT repo, workflowname, branchname, commithash, createtime FROM flaky_runs "
        f"WHERE runid = {runs['flaky_feature']}",
    )
    assert row[0][:3] == (REPO, "CI", "feature") and len(row[0][3]) == 40

    kind = "MySQL/MariaDB" if poller.database.kind == "mariadb" else "SQLite"
    [(share,)] = query(
        poller.database, docs_sql(f"flaky share of main runs over the last 24 hours ({kind})")
    )
    # Main runs of the last 24 hours: flaky, broken, green, timed_out_then_green.
    assert float(share) == pytest.approx(2 / 4, abs=1e-4)


def test_image_builds_view_and_the_last_docker_build_query(fake: FakeGitHub, poller: PollerSetup):
    repo = fake.add_repo(REPO)
    fake.add_commit(repo, "main", when=NOW - timedelta(days=3))
    docker = fake.add_workflow(repo, "Build Docker Images")
    publish = fake.add_workflow(repo, "Publish", path=".github/workflows/publish_images.yml")
    ci = fake.add_workflow(repo, "CI")
    older = fake.add_run(repo, publish, created=NOW - timedelta(hours=9))
    latest = fake.add_run(repo, docker, created=NOW - timedelta(hours=6))
    fake.add_run(repo, docker, created=NOW - timedelta(hours=3), conclusion="failure")
    fake.add_run(repo, ci, created=NOW - timedelta(hours=1))
    poller.repos = [{"name": REPO, "docker_workflows": ["*docker*", "publish_images.yml"]}]
    result = poller.run()
    assert result.returncode == 0, result.stderr

    assert {r for (r,) in query(poller.database, "SELECT runid FROM image_builds")} == {
        older,
        latest,
    }
    kind = "MySQL/MariaDB" if poller.database.kind == "mariadb" else "SQLite"
    [(name, endtime, commithash, url)] = query(
        poller.database, docs_sql(f"last docker build in 30 days ({kind})")
    )
    assert name == "Build Docker Images"
    assert commithash == repo.branches["main"]
    assert url.endswith(f"/actions/runs/{latest}")
    # The fake's job starts 30 s after creation and runs 120 s.
    expected = (NOW - timedelta(hours=6) + timedelta(seconds=150)).replace(tzinfo=None)
    assert str(endtime)[:19] == expected.isoformat(sep=" ")

    # Dropping the pattern from config.toml takes the workflow out of the view.
    poller.repos = [{"name": REPO, "docker_workflows": ["*docker*"]}]
    assert poller.run().returncode == 0
    assert {r for (r,) in query(poller.database, "SELECT runid FROM image_builds")} == {latest}
