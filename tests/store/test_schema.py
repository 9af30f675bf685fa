"""Schema creation on a fresh database, and the in-place upgrade of a legacy one."""

from __future__ import annotations

import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import peewee
import pytest
from legacy_schema import LEGACY_ROWS, LEGACY_RUN_COLUMNS, create_legacy

from fake_github import FakeGitHub
from poller.store.models import Branch, Commit, Workflow, WorkflowRun
from poller.store.schema import ensure_schema
from support import Database, PollerSetup, table_rows

NOW = datetime.now(UTC).replace(microsecond=0)


@pytest.mark.mariadb
def test_legacy_database_is_upgraded_in_place_without_losing_a_row(
    tmp_path, fake: FakeGitHub, mariadb_server
):
    database = mariadb_server.create_database("legacy_upgrade")
    create_legacy(database)
    repo = fake.add_repo("iree-org/iree")
    ci = fake.add_workflow(repo, "CI")
    fake.add_commit(repo, "main", message="Ship it 🚢", when=NOW - timedelta(hours=2))
    fake.create_branch(repo, "x" * 120)
    fresh = fake.add_run(repo, ci, created=NOW - timedelta(hours=1), job_seconds=120)

    poller = PollerSetup(tmp_path, fake.url, database, repos=[{"name": "iree-org/iree"}])
    first = poller.run()
    assert first.returncode == 0, first.stderr
    assert "schema.index_dropped" in first.stderr
    assert "schema.os_names_upgraded" in first.stderr
    second = poller.run()
    assert second.returncode == 0, second.stderr
    assert "schema." not in second.stderr  # the upgrade is idempotent

    with database.open() as db:
        # Every legacy row is still there under its Id, its legacy columns unchanged, except
        # the CI workflow, which GitHub still has: its url is refreshed from GitHub.
        for table, rows in LEGACY_ROWS.items():
            width = len(rows[0])
            stored = {row[0]: row[:width] for row in table_rows(db, table, exclude=())}
            for row in rows:
                if (table, row[0]) == ("workflows", 1):
                    assert stored[1][:2] == row[:2]
                    assert stored[1][2] == repo.workflows[ci]["html_url"]
                elif table == "workflowruns":
                    # The one value rewritten: the OS, in GitHub's runner.os spelling.
                    assert stored[row[0]][:-1] == row[:-1]
                    assert stored[row[0]][-1] == {"linux": "Linux", "windows": "Windows"}[row[-1]]
                else:
                    assert stored[row[0]] == row, table
        assert Branch.get(Branch.id == 1).author == "alice"
        # The legacy CI row was adopted by GitHub's workflow id instead of duplicated.
        assert Workflow.get(Workflow.id == 1).gitid == ci
        assert Workflow.select().where(Workflow.name == "CI").count() == 1
        # New rows need what the legacy schema could not hold.
        assert Commit.get(Commit.message == "Ship it 🚢").repo == "iree-org/iree"
        assert Branch.get(Branch.name == "x" * 120).repo == "iree-org/iree"
        assert WorkflowRun.get(WorkflowRun.gitid == fresh).runtime == 120.0
        # Per-repository uniqueness: another repository may now have a 'main' branch.
        Branch.create(name="main", repo="nod-ai/SHARK")
        collations = {
            name: collation
            for name, collation in db.execute_sql(
                "SELECT table_name, table_collation FROM information_schema.tables "
                "WHERE table_schema = DATABASE() AND table_type = 'BASE TABLE'"
            ).fetchall()
        }
        assert set(collations.values()) == {"utf8mb4_unicode_ci"}


def index_columns(db: peewee.Database, table: str) -> set[tuple[tuple[str, ...], bool]]:
    return {
        (tuple(c.lower() for c in index.columns), bool(index.unique))
        for index in db.get_indexes(table)
    }


def test_fresh_schema_has_the_dashboard_indexes(database: Database):
    with database.open() as db:
        ensure_schema(db)
        ensure_schema(db)  # idempotent
        runs = index_columns(db, "workflowruns")
        assert {
            (("repo", "createtime", "branchname", "conclusion"), False),
            (("branchname", "repo", "createtime"), False),
            (("workflowid", "commithash", "createtime"), False),
            (("branchname", "createtime"), False),
            (("gitid",), True),
        } <= runs
        assert (("commithash",), False) not in runs
        assert (("runid", "name", "runattempt"), False) in index_columns(db, "jobs")
        assert (("repo", "name"), True) in index_columns(db, "branches")
        assert (("repo", "hash"), True) in index_columns(db, "commits")
        assert (("repo", "name"), True) in index_columns(db, "workflows")
        queuetime = [c for c in db.get_columns("workflowruns") if c.name == "queuetime"]
        assert str(queuetime[0].default) in ("0", "'0'")
        names = {c.name for c in db.get_columns("workflowruns")}
        assert {"Id", *LEGACY_RUN_COLUMNS} <= names


def test_an_upgrade_retires_the_indexes_no_shipped_query_needs(database: Database):
    """Earlier versions' indexes by the names peewee gave them: the index on commithash
    alone made MariaDB join commits first into runs (tests/store/test_query_cost.py).
    They go once their replacements exist; an index of the operator's own stays."""
    with database.open() as db:
        ensure_schema(db)
        for name, table, columns in (
            ("workflowruns_commithash", "workflowruns", "commithash"),
            ("workflowruns_repo_createtime", "workflowruns", "repo, createtime"),
            ("jobs_runid", "jobs", "runid"),
            ("operators_own", "workflowruns", "commithash"),
        ):
            db.execute_sql(f"CREATE INDEX {name} ON {table} ({columns})")
        ensure_schema(db)
        names = {index.name for index in db.get_indexes("workflowruns")}
        names |= {index.name for index in db.get_indexes("jobs")}
    assert not names & {"workflowruns_commithash", "workflowruns_repo_createtime", "jobs_runid"}
    assert {"operators_own", "workflowruns_repo_createtime_branchname_conclusion"} <= names


@pytest.mark.parametrize("rounds", [2, pytest.param(20, marks=pytest.mark.stress)])
def test_pollers_started_together_on_a_fresh_database_all_succeed(
    tmp_path, fake: FakeGitHub, make_database, database: Database, rounds: int
):
    """Two VMs that boot together race to create the schema. Repeated, because a race
    that loses half the time still passes now and then: twice in the default run, 20
    times in the stress lane."""
    import subprocess

    repo = fake.add_repo("octo/demo")
    ci = fake.add_workflow(repo, "CI")
    fake.add_commit(repo, "main")
    fake.add_run(repo, ci, created=NOW - timedelta(hours=1))
    for round_number in range(rounds):
        fresh = make_database()
        setup = PollerSetup(tmp_path, fake.url, fresh, repos=[{"name": "octo/demo"}])
        command, env = setup.command("--once"), setup.env()
        processes = [
            subprocess.Popen(command, env=env, cwd=tmp_path, stderr=subprocess.PIPE, text=True)
            for _ in range(3)
        ]
        for process in processes:
            _, stderr = process.communicate(timeout=120)
            # 75: the repository was another poller's this time, which is no failure.
            assert process.returncode in (0, 75), f"round {round_number}: {stderr}"
        with fresh.open() as db:
            assert db.execute_sql("SELECT COUNT(*) FROM workflowruns").fetchone() == (1,)


@pytest.mark.mariadb
def test_an_upgrade_held_up_by_an_open_query_gives_up_in_seconds_and_the_start_waits(
    mariadb_server, monkeypatch
):
    """Online DDL still needs the table alone for a moment, and while it waits, every new
    query of the table queues behind it. With the server's default wait (a year), one
    long dashboard query would stall the dashboard until it ended; the upgrade gives up
    after DDL_LOCK_WAIT_SECONDS instead, and the start counts that as a wait, not a
    failure."""
    from poller.config.loader import parse
    from poller.config.settings import Secrets
    from poller.service import startup
    from poller.store import schema

    monkeypatch.setattr(schema, "DDL_LOCK_WAIT_SECONDS", 1)
    database = mariadb_server.create_database("t_ddl_lock_wait")
    with database.open() as db:
        ensure_schema(db)
    dashboard = mariadb_server.root("t_ddl_lock_wait")
    reader = mariadb_server.root("t_ddl_lock_wait")
    with dashboard.cursor() as cursor:
        cursor.execute("DROP INDEX workflowruns_status ON workflowruns")
        # A query still open in a transaction: it holds the table's metadata lock.
        cursor.execute("BEGIN")
        cursor.execute("SELECT COUNT(*) FROM workflowruns")
    config = parse(
        {"database": {"url": database.url}, "repos": [{"name": "octo/demo"}]}, Path("config.toml")
    )
    secrets = Secrets(db_password=database.password)
    started = time.monotonic()
    with pytest.raises(startup.StartupError) as held_up:
        startup.open_for_writing(config, secrets)
    assert held_up.value.retryable, held_up.value
    assert "Lock wait timeout" in str(held_up.value)
    assert time.monotonic() - started < 10
    # Readers are not left queued behind it.
    with reader.cursor() as cursor:
        begun = time.monotonic()
        cursor.execute("SELECT COUNT(*) FROM workflowruns")
        assert time.monotonic() - begun < 1
    dashboard.commit()
    startup.open_for_writing(config, secrets)  # the next try, once the query ended
    with database.open() as db:
        assert "workflowruns_status" in {index.name for index in db.get_indexes("workflowruns")}
