"""One repository's sync: when its metadata is due, and how each way a sync can end is
reported and recorded. In-process, against the fake GitHub and a real SQLite file."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import peewee
import pytest

from fake_github import FakeGitHub
from poller.config.settings import Config, GitHubConfig, RepoConfig, SyncConfig
from poller.github.client import GitHub
from poller.rules import cursors
from poller.rules.cursors import to_cursor
from poller.store import rows as store
from poller.store.locks import FileLocks, NoLocks
from poller.store.models import Branch, SyncStatus, Workflow, WorkflowRun
from poller.sync.metadata import settings_fingerprint
from poller.sync.options import PassOptions
from poller.sync.progress import NoProgress
from poller.sync.repository import RepoSync, sync_repository

NOW = datetime(2026, 12, 1, 12)
REPO = "octo/demo"


def config_for(fake: FakeGitHub | None, repo: RepoConfig) -> Config:
    api = fake.url if fake else "http://127.0.0.1:9"
    github = GitHubConfig(api_url=api, max_retries=0)
    return Config(Path("config.toml"), github=github, repos=(repo,), sync=SyncConfig())


@pytest.mark.parametrize(
    ("metadata_minutes", "read_ago", "pushed_at", "stored_pushed_at", "due"),
    [
        (None, timedelta(minutes=1), None, None, True),  # --once --full: every pass
        (60, None, None, None, True),  # never read
        (60, timedelta(minutes=59), None, None, False),
        (60, timedelta(minutes=60), None, None, True),
        # A repository of [[orgs]]: its listing's pushed_at says when anything moved.
        (60, timedelta(hours=5), "2026-12-01T11:00:00Z", "2026-12-01T11:00:00Z", False),
        (60, timedelta(minutes=1), "2026-12-01T11:59:00Z", "2026-12-01T11:00:00Z", True),
        (60, timedelta(days=1), "2026-12-01T11:00:00Z", "2026-12-01T11:00:00Z", True),
    ],
    ids=["full", "never read", "fresh", "stale", "not pushed", "pushed", "daily anyway"],
)
def test_metadata_is_read_when_due(
    sqlite_db: peewee.Database, metadata_minutes, read_ago, pushed_at, stored_pushed_at, due
):
    repo = RepoConfig(REPO)
    if read_ago is not None:
        read = {
            cursors.REPO_METADATA: to_cursor(NOW - read_ago),
            cursors.REPO_SETTINGS: settings_fingerprint(repo),
        }
        store.set_cursors(REPO, read, NOW)
    if stored_pushed_at is not None:
        store.set_cursors(REPO, {cursors.REPO_PUSHED_AT: stored_pushed_at}, NOW)
    config = config_for(None, repo)
    gh = GitHub(config.github, None)
    options = PassOptions(metadata_minutes=metadata_minutes)
    sync = RepoSync(gh, config, repo, NOW, options, NoProgress(), pushed_at)
    assert sync.metadata_due() is due


def test_metadata_is_read_at_once_when_config_toml_changed_what_it_holds(
    sqlite_db: peewee.Database,
):
    """docker_workflows or branches changed: the next pass re-reads the metadata, not
    metadata_minutes later."""
    before = RepoConfig(REPO, docker_workflows=("*docker*",))
    read = {
        cursors.REPO_METADATA: to_cursor(NOW - timedelta(minutes=1)),
        cursors.REPO_SETTINGS: settings_fingerprint(before),
    }
    store.set_cursors(REPO, read, NOW)
    options = PassOptions(metadata_minutes=60)
    for repo, due in ((before, False), (RepoConfig(REPO, docker_workflows=()), True)):
        config = config_for(None, repo)
        sync = RepoSync(GitHub(config.github, None), config, repo, NOW, options, NoProgress())
        assert sync.metadata_due() is due
    followed = RepoConfig(REPO, docker_workflows=("*docker*",), branches=("release",))
    config = config_for(None, followed)
    sync = RepoSync(GitHub(config.github, None), config, followed, NOW, options, NoProgress())
    assert sync.metadata_due() is True


def sync(fake: FakeGitHub, repo: RepoConfig, locks=None, *, stopped: bool = False):
    config = config_for(fake, repo)
    gh = GitHub(config.github, None)
    if stopped:
        gh.stop.request()
    now = datetime.now(UTC).replace(tzinfo=None, microsecond=0)
    report = sync_repository(
        config, gh, repo, options=PassOptions(), locks=locks or NoLocks(), now=now
    )
    return report, gh


def small(fake: FakeGitHub) -> None:
    repo = fake.add_repo(REPO)
    ci = fake.add_workflow(repo, "CI")
    fake.add_commit(repo, "main")
    fake.add_run(repo, ci, created=datetime.now(UTC) - timedelta(hours=2))


def test_a_sync_is_reported_and_recorded(fake: FakeGitHub, sqlite_db: peewee.Database):
    small(fake)
    report, gh = sync(fake, RepoConfig(REPO))
    assert report.error is None and not report.stopped and not report.skipped
    assert report.counts[WorkflowRun].inserted == 1
    assert report.counts[Workflow].inserted == report.counts[Branch].inserted == 1
    assert report.requests_spent + report.requests_not_modified == gh.stats.sent > 0
    status = SyncStatus.get(SyncStatus.repo == REPO)
    assert status.lasterror is None and status.requests == report.requests_spent


def test_an_error_is_contained_in_the_report(fake: FakeGitHub, sqlite_db: peewee.Database):
    report, _ = sync(fake, RepoConfig("octo/missing"))
    assert report.error == "octo/missing: repository not found (404), or the token cannot see it"
    assert SyncStatus.get(SyncStatus.repo == "octo/missing").lasterror == report.error


def test_a_repository_locked_elsewhere_is_skipped_without_a_request(
    fake: FakeGitHub, sqlite_db: peewee.Database, tmp_path: Path
):
    small(fake)
    elsewhere = FileLocks(str(tmp_path / "unit.db"))
    assert elsewhere.acquire(REPO)
    try:
        report, gh = sync(fake, RepoConfig(REPO), FileLocks(str(tmp_path / "unit.db")))
    finally:
        elsewhere.close()
    assert report.skipped and report.error is None
    assert gh.stats.sent == 0 and SyncStatus.select().count() == 0


def test_a_stop_request_ends_the_sync_and_the_cursors_say_what_is_pending(
    fake: FakeGitHub, sqlite_db: peewee.Database
):
    small(fake)
    report, _ = sync(fake, RepoConfig(REPO), stopped=True)
    assert report.stopped and report.error is None
    assert report.backfill_pending  # nothing stored: the history is still to come
    assert WorkflowRun.select().count() == 0
    assert SyncStatus.select().count() == 0  # a stopped sync is no pass to record
