"""The docs' MariaDB setup, run as written against a fresh MariaDB: the grants it lists
are enough for the poller (tables, views, the in-place upgrade of a legacy database) and
for a dashboard that only reads."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pymysql
import pytest
from legacy_schema import LEGACY_DDL

from fake_github import FakeGitHub
from mariadb import mariadb_installed, start_mariadb
from support import Database, PollerSetup, docs_sql


@pytest.mark.mariadb
def test_the_readmes_setup_block_gives_the_poller_and_the_dashboard_what_they_need(
    tmp_path, fake: FakeGitHub
):
    if not mariadb_installed():
        pytest.skip("mariadbd is not installed")
    # As many production servers run: accounts match by the address connected from.
    server = start_mariadb(tmp_path / "fresh", skip_name_resolve=True)
    try:
        block = docs_sql("MariaDB setup: the poller's database and user")
        with server.root() as root, root.cursor() as cursor:
            for statement in block.split(";"):
                if statement.strip():
                    cursor.execute(statement)
            cursor.execute("USE shark_dashboard_db")
            for ddl in LEGACY_DDL:  # what the legacy backend left, to be upgraded
                cursor.execute(ddl)
            cursor.execute("INSERT INTO repos (name) VALUES ('iree-org/iree')")

        repo = fake.add_repo("iree-org/iree")
        ci = fake.add_workflow(repo, "CI")
        fake.add_commit(repo, "main")
        fake.add_run(repo, ci, created=datetime.now(UTC) - timedelta(hours=1))
        url = f"mysql://shark_poller@127.0.0.1:{server.port}/shark_dashboard_db"
        database = Database(url, "change-me", kind="mariadb")
        poller = PollerSetup(tmp_path, fake.url, database, repos=[{"name": "iree-org/iree"}])
        upgrade = poller.run()
        assert upgrade.returncode == 0, upgrade.stderr[-2000:]
        assert "schema.index_dropped" in upgrade.stderr  # the legacy UNIQUE keys went
        again = poller.run()
        assert again.returncode == 0, again.stderr[-2000:]
        assert "schema." not in again.stderr

        # The grants one would guess are not enough, as docs/install.md says.
        with server.root() as root, root.cursor() as cursor:
            cursor.execute("CREATE DATABASE guessed CHARACTER SET utf8mb4")
            cursor.execute("CREATE USER 'guess'@'127.0.0.1' IDENTIFIED BY 'pw'")
            cursor.execute(
                "GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, INDEX ON guessed.* "
                "TO 'guess'@'127.0.0.1'"
            )
        short = Database(f"mysql://guess@127.0.0.1:{server.port}/guessed", "pw", kind="mariadb")
        guessed = PollerSetup(tmp_path / "guess", fake.url, short, poller.repos)
        guessed.tmp_path.mkdir()
        failed = guessed.run()
        assert failed.returncode == 3
        assert "1142" in failed.stderr and "CREATE VIEW command denied" in failed.stderr

        reader = pymysql.connect(
            host="127.0.0.1",
            port=server.port,
            user="dashboard",
            password="change-me-too",
            database="shark_dashboard_db",
        )
        with reader, reader.cursor() as cursor:
            for view in ("flaky_runs", "image_builds", "job_results", "job_queue_times"):
                cursor.execute(f"SELECT COUNT(*) FROM {view}")
            cursor.execute("SELECT COUNT(*) FROM workflowruns")
            assert cursor.fetchone() == (1,)
            with pytest.raises(pymysql.err.OperationalError, match="1142"):
                cursor.execute("DELETE FROM workflowruns")
    finally:
        server.executor.stop()
