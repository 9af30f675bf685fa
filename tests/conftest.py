"""Fixtures: a fake GitHub over HTTP, and real databases (SQLite, and a throwaway MariaDB)."""

from __future__ import annotations

import hashlib
import itertools
import os
import shutil
import subprocess
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import port_for
import pymysql
import pytest
from mirakuru import TCPExecutor

from fake_github import FakeGitHub
from support import Database, PollerSetup

MARIADBD = shutil.which("mariadbd") or shutil.which("mariadbd", path="/usr/sbin:/usr/local/sbin")
INSTALL_DB = shutil.which("mariadb-install-db") or shutil.which("mysql_install_db")
POLLER_USER, POLLER_PASSWORD = "poller", "db-Secret-Passw0rd-xyz"


@dataclass
class MariaDB:
    """A mariadbd we started ourselves, on a free 127.0.0.1 port, datadir in a temp dir."""

    executor: TCPExecutor
    port: int

    def root(self, database: str | None = None) -> pymysql.Connection:
        return pymysql.connect(
            host="127.0.0.1",
            port=self.port,
            user="root",
            password="",
            database=database,
            autocommit=True,
        )

    def create_database(self, name: str) -> Database:
        with self.root() as connection, connection.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{name}`")
            # The server default stays latin1, as MariaDB ships: the poller must cope.
            cursor.execute(f"CREATE DATABASE `{name}`")
        url = f"mysql://{POLLER_USER}@127.0.0.1:{self.port}/{name}"
        return Database(url, POLLER_PASSWORD, kind="mariadb")

    def restart(self) -> None:
        self.executor.stop()
        self.executor.start()


@pytest.fixture(scope="session")
def mariadb_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MariaDB]:
    if not MARIADBD or not INSTALL_DB:
        reason = "mariadbd is not installed (Debian: apt-get install mariadb-server)"
        if os.environ.get("SHARK_POLLER_REQUIRE_MARIADB"):
            pytest.fail(reason)
        pytest.skip(reason)
    base = tmp_path_factory.mktemp("mariadb")
    datadir = base / "data"
    subprocess.run(
        [
            INSTALL_DB,
            "--no-defaults",
            f"--datadir={datadir}",
            "--user=root",
            "--auth-root-authentication-method=normal",
            "--skip-test-db",
        ],
        check=True,
        capture_output=True,
    )
    port = port_for.select_random()
    command = [
        MARIADBD,
        "--no-defaults",
        f"--datadir={datadir}",
        f"--port={port}",
        "--bind-address=127.0.0.1",
        f"--socket={base / 'mysqld.sock'}",
        "--user=root",
        f"--pid-file={base / 'mysqld.pid'}",
        f"--log-error={base / 'error.log'}",
        "--innodb-buffer-pool-size=64M",
        "--skip-log-bin",
        "--innodb-flush-log-at-trx-commit=2",
    ]
    executor = TCPExecutor(command, host="127.0.0.1", port=port, timeout=60)
    executor.start()
    server = MariaDB(executor, port)
    with server.root() as connection, connection.cursor() as cursor:
        cursor.execute(f"CREATE USER '{POLLER_USER}'@'%' IDENTIFIED BY '{POLLER_PASSWORD}'")
        cursor.execute(f"GRANT ALL ON *.* TO '{POLLER_USER}'@'%'")
    yield server
    executor.stop()


def _database_name(node_id: str) -> str:
    return "t_" + hashlib.sha1(node_id.encode()).hexdigest()[:16]


@pytest.fixture(params=["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)])
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    """The database under test: each test that takes it runs on SQLite and on MariaDB."""
    if request.param == "sqlite":
        return Database(f"sqlite:///{tmp_path / 'dashboard.db'}")
    server: MariaDB = request.getfixturevalue("mariadb_server")
    return server.create_database(_database_name(request.node.nodeid))


@pytest.fixture
def make_database(request: pytest.FixtureRequest, tmp_path: Path, database: Database):
    """More empty databases of the same kind as ``database``, e.g. for a from-scratch sync."""
    made = itertools.count(1)

    def make() -> Database:
        number = next(made)
        if database.kind == "sqlite":
            return Database(f"sqlite:///{tmp_path / f'scratch{number}.db'}")
        server: MariaDB = request.getfixturevalue("mariadb_server")
        return server.create_database(_database_name(f"{request.node.nodeid}#{number}"))

    return make


@pytest.fixture
def fake() -> Iterator[FakeGitHub]:
    from support import TOKEN

    server = FakeGitHub(token=TOKEN).start()
    yield server
    server.stop()


@pytest.fixture
def poller(tmp_path: Path, fake: FakeGitHub, database: Database) -> PollerSetup:
    return PollerSetup(tmp_path, fake.url, database)
