"""Fixtures: a fake GitHub over HTTP, and real databases (SQLite, and a throwaway MariaDB)."""

from __future__ import annotations

import hashlib
import itertools
import os
from collections.abc import Iterator
from pathlib import Path

import peewee
import pytest

from fake_github import FakeGitHub
from mariadb import MariaDB, mariadb_installed, start_mariadb
from support import Database, PollerSetup


@pytest.fixture(autouse=True)
def own_cache_directory(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """Installation tokens kept by one test are never seen by another."""
    monkeypatch.delenv("CACHE_DIRECTORY", raising=False)
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "cache"))


@pytest.fixture(scope="session")
def mariadb_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[MariaDB]:
    if not mariadb_installed():
        reason = "mariadbd is not installed (Debian: apt-get install mariadb-server)"
        if os.environ.get("SHARK_POLLER_REQUIRE_MARIADB"):
            pytest.fail(reason)
        pytest.skip(reason)
    server = start_mariadb(tmp_path_factory.mktemp("mariadb"))
    yield server
    server.executor.stop()


def _database_name(node_id: str) -> str:
    return "t_" + hashlib.sha1(node_id.encode()).hexdigest()[:16]


DATABASES = ["sqlite", pytest.param("mariadb", marks=pytest.mark.mariadb)]


def pytest_generate_tests(metafunc: pytest.Metafunc) -> None:
    """Each test that takes ``database`` runs on SQLite and on MariaDB; one marked
    ``sqlite_only`` is about something other than the database (what the poller asks
    GitHub, signals, exit codes), and runs on SQLite alone."""
    if "database" in metafunc.fixturenames:
        alone = metafunc.definition.get_closest_marker("sqlite_only")
        metafunc.parametrize("database", ["sqlite"] if alone else DATABASES, indirect=True)


@pytest.fixture
def database(request: pytest.FixtureRequest, tmp_path: Path) -> Database:
    """The database under test: each test that takes it runs on SQLite and on MariaDB,
    unless it is marked ``sqlite_only``."""
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


@pytest.fixture
def sqlite_poller(tmp_path: Path, fake: FakeGitHub) -> PollerSetup:
    """A poller on SQLite only: for tests of what the poller asks GitHub, where the
    database is not what is tested."""
    return PollerSetup(tmp_path, fake.url, Database(f"sqlite:///{tmp_path / 'dashboard.db'}"))


@pytest.fixture
def report(capsys: pytest.CaptureFixture[str], request: pytest.FixtureRequest):
    """Print a measured figure into the test run's output, past pytest's capture."""

    def emit(message: str) -> None:
        with capsys.disabled():
            print(f"\n    {request.node.name}: {message}")

    return emit


@pytest.fixture
def sqlite_db(tmp_path: Path) -> Iterator[peewee.Database]:
    """A real SQLite database with the poller's schema, open for the test's thread: for
    the unit tests of the store rooms."""
    from poller.store.models import open_database
    from poller.store.schema import ensure_schema

    db = open_database(f"sqlite:///{tmp_path / 'unit.db'}")
    # Not connection_context: a unit that reconnects resets the state it would pop.
    db.connect()
    ensure_schema(db)
    yield db
    db.close()
