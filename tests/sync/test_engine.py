"""The engine, in-process against the fake GitHub and a real SQLite file: it syncs what
it is handed through the gate it is given, contains each repository's failure, stops
trying once GitHub does not answer at all, and reports unlistable organisations."""

from __future__ import annotations

import socket
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from fake_github import FakeGitHub
from poller.clock import SYSTEM
from poller.config import loader as config_module
from poller.config.settings import Config
from poller.github import pool
from poller.shutdown import Stop
from poller.store import models
from poller.store.locks import NoLocks
from poller.store.models import WorkflowRun
from poller.store.schema import ensure_schema
from poller.sync.engine import Engine
from poller.sync.report import PassRecord
from support import Database, PollerSetup

NOW = datetime.now(UTC).replace(microsecond=0)


def add_repo(fake: FakeGitHub, name: str) -> None:
    repo = fake.add_repo(name)
    ci = fake.add_workflow(repo, "CI")
    fake.add_commit(repo, "main")
    fake.add_run(repo, ci, created=NOW - timedelta(hours=3))


@pytest.fixture
def setup(fake: FakeGitHub, tmp_path: Path) -> Iterator[PollerSetup]:
    database = Database(f"sqlite:///{tmp_path / 'engine.db'}")
    db = models.open_database(database.url)
    db.connect()
    ensure_schema(db)
    yield PollerSetup(tmp_path, fake.url, database)
    db.close()


def engine_for(setup: PollerSetup, stop: Stop | None = None, **github: object) -> Engine:
    setup.github = {"concurrency": 1, "max_retries": 0, **github}
    config: Config = config_module.load(setup.write())
    return Engine(config, pool.connect(config, setup.token, SYSTEM, stop or Stop()), NoLocks())


class RecordingGate:
    """The daemon's part, played by the test: which repositories may be synced."""

    def __init__(self, refused: set[str]) -> None:
        self.refused = refused
        self.claimed: list[str] = []
        self.released: list[tuple[str, bool]] = []

    def claim(self, repo: str) -> bool:
        self.claimed.append(repo)
        return repo not in self.refused

    def done(self, repo: str, *, finished: bool) -> None:
        self.released.append((repo, finished))


def test_the_gate_decides_which_repositories_are_synced(fake: FakeGitHub, setup: PollerSetup):
    for name in ("octo/a", "octo/b", "octo/c"):
        add_repo(fake, name)
    setup.repos = [{"name": name} for name in ("octo/a", "octo/b", "octo/c")]
    gate = RecordingGate(refused={"octo/b"})
    with engine_for(setup) as engine:
        reports = engine.run_pass(engine.config.repos, gate=gate)
    assert [report.repo for report in reports] == ["octo/a", "octo/c"]
    assert gate.claimed == ["octo/a", "octo/b", "octo/c"]
    assert gate.released == [("octo/a", True), ("octo/c", True)]
    assert fake.count("/repos/octo/b", rate_limited=False) == 0


def test_one_failing_repository_never_stops_the_others(fake: FakeGitHub, setup: PollerSetup):
    add_repo(fake, "octo/good")
    setup.repos = [{"name": "octo/missing"}, {"name": "octo/good"}]
    with engine_for(setup) as engine:
        missing, good = engine.run_pass(engine.config.repos)
    assert "repository not found" in (missing.error or "")
    assert good.error is None and good.counts[WorkflowRun].inserted == 1


def test_once_github_does_not_answer_the_rest_of_the_pass_is_not_tried(setup: PollerSetup):
    with socket.socket() as closed:
        closed.bind(("127.0.0.1", 0))
        port = closed.getsockname()[1]
    setup.repos = [{"name": name} for name in ("octo/a", "octo/b", "octo/c")]
    with engine_for(setup, api_url=f"http://127.0.0.1:{port}") as engine:
        first, *rest = engine.run_pass(engine.config.repos)
        sent = engine.github.stats.sent
    assert first.unreachable and "octo/a" in first.repo
    assert [r.error.split(":")[0] for r in rest if r.error] == ["not tried"] * 2
    assert sent == 0  # no answer came back from any request


def test_an_organisation_that_cannot_be_listed_is_reported_first(
    fake: FakeGitHub, setup: PollerSetup
):
    add_repo(fake, "solo/lib")
    setup.repos = [{"name": "solo/lib"}]
    setup.orgs = [{"name": "ghost"}]
    record = PassRecord()
    with engine_for(setup) as engine:
        reports = engine.run_all(record=record)
    assert [report.repo for report in reports] == ["ghost/*", "solo/lib"]
    assert "organisation not found" in (reports[0].error or "")
    # The caller follows the pass in its record: the unlisted organisation first.
    assert record.reports == reports and [repo.name for repo in record.repos] == ["solo/lib"]


def test_after_a_stop_request_no_repository_is_started(fake: FakeGitHub, setup: PollerSetup):
    add_repo(fake, "octo/a")
    setup.repos = [{"name": "octo/a"}]
    stop = Stop()
    stop.request()
    with engine_for(setup, stop) as engine:
        assert engine.run_pass(engine.config.repos) == []
    with setup.database.open():
        assert WorkflowRun.select().count() == 0
