"""`[[orgs]]`: every matching repository of an organisation, new ones picked up by the next
pass, archived ones skipped, and one named in `[[repos]]` too synced once, its way."""

from __future__ import annotations

import contextlib
import json
import time
from datetime import UTC, datetime, timedelta

import pytest

from fake_github import FakeGitHub
from poller.clock import SYSTEM
from poller.config import loader as config_module
from poller.config.settings import OrgConfig
from poller.github.pool import connect
from poller.shutdown import Stop
from poller.store.locks import NoLocks
from poller.store.models import Branch, WorkflowRun
from poller.store.schema import ensure_schema
from poller.sync.engine import Engine
from poller.sync.options import PassOptions
from poller.sync.orgs import wanted
from support import PollerSetup, repo_done_events

NOW = datetime.now(UTC).replace(microsecond=0)


def add(fake: FakeGitHub, name: str, runs: int = 3, *, archived: bool = False):
    repo = fake.add_repo(name)
    repo.archived = archived
    ci = fake.add_workflow(repo, "CI")
    fake.add_commit(repo, "main", when=NOW - timedelta(days=5))
    for i in range(runs):
        fake.add_run(repo, ci, created=NOW - timedelta(days=2, hours=i))
    return repo


def synced(result) -> list[str]:
    return sorted(event["repo"] for event in repo_done_events(result.stderr))


def runs_of(poller: PollerSetup, name: str) -> int:
    with poller.database.open():
        return WorkflowRun.select().where(WorkflowRun.repo == name).count()


@pytest.mark.sqlite_only
def test_an_organisation_is_followed_as_it_changes(fake: FakeGitHub, poller: PollerSetup):
    add(fake, "octo/api", runs=4)
    web = add(fake, "octo/web")
    add(fake, "octo/old", archived=True)
    add(fake, "octo/docs-site")
    add(fake, "other/thing")
    poller.repos = [{"name": "octo/api", "max_runs": 1}]
    poller.orgs = [{"name": "octo", "exclude": ["docs-*"], "max_runs": 2}]
    run = poller.run

    first = run("--once")
    assert first.returncode == 0, first.stderr
    assert synced(first) == ["octo/api", "octo/web"]  # once each; archived, excluded skipped
    assert runs_of(poller, "octo/api") == 1  # [[repos]]'s max_runs, not the org's
    assert runs_of(poller, "octo/web") == 2  # the org's max_runs

    add(fake, "octo/new")
    web.archived = True
    time.sleep(1.1)  # freshness counts whole seconds: let the archived one fall behind
    second = run("--once")
    assert second.returncode == 0, second.stderr
    assert synced(second) == ["octo/api", "octo/new"]
    assert runs_of(poller, "octo/web") == 2  # an archived repository keeps its rows

    status = run("status", "--json")
    assert status.returncode == 0, status.stderr
    repos = json.loads(status.stdout)["repos"]
    # The stalest first: the archived repository was last synced a pass ago.
    assert [repo["repo"] for repo in repos] == ["octo/web", "octo/api", "octo/new"]
    assert repos[0]["freshness_seconds"] >= repos[1]["freshness_seconds"] >= 0


@pytest.mark.sqlite_only
def test_an_organisation_that_cannot_be_listed_fails_alone(fake: FakeGitHub, poller: PollerSetup):
    add(fake, "octo/api")
    poller.repos = [{"name": "octo/api"}]
    poller.orgs = [{"name": "ghost"}]
    result = poller.run("--once")
    assert result.returncode == 1
    assert synced(result) == ["octo/api"]
    [failed] = [line for line in result.stderr.splitlines() if "sync.org_failed" in line]
    assert "ghost: organisation not found (404)" in failed


@pytest.mark.parametrize(
    ("item", "include", "exclude", "expected"),
    [
        ({"full_name": "o/api"}, ("*",), (), True),
        ({"full_name": "o/api", "archived": True}, ("*",), (), False),
        ({"full_name": "o/API"}, ("api",), (), True),
        ({"full_name": "o/docs-site"}, ("*",), ("docs-*",), False),
        ({"full_name": "o/web"}, ("api*", "sdk-*"), (), False),
    ],
)
def test_which_repositories_of_an_organisation_are_followed(item, include, exclude, expected):
    assert wanted(OrgConfig("o", include, exclude), item) is expected


@pytest.mark.sqlite_only
def test_the_listing_pushed_at_says_when_to_read_branches(fake: FakeGitHub, poller: PollerSetup):
    """Daemon passes (metadata re-read at most hourly): a repository of an organisation is
    re-read when its ``pushed_at`` moves, even without a run to show the push, and not
    otherwise; one from ``[[repos]]`` has no ``pushed_at`` and waits for the hour."""
    followed = add(fake, "octo/api")
    named = add(fake, "solo/lib")
    poller.repos = [{"name": "solo/lib"}]
    poller.orgs = [{"name": "octo"}]
    settings = config_module.load(poller.write())
    engine = Engine(settings, connect(settings, poller.token, SYSTEM, Stop()), NoLocks())
    options = PassOptions(metadata_minutes=60)

    def branch_reads() -> dict[str, int]:
        before = {name: fake.count(f"/repos/{name}/branches", rate_limited=False) for name in NAMES}
        reports = engine.run_all(options)
        assert not any(report.error for report in reports)
        return {
            name: fake.count(f"/repos/{name}/branches", rate_limited=False) - before[name]
            for name in NAMES
        }

    with poller.database.open() as db, contextlib.closing(engine):
        ensure_schema(db)
        assert branch_reads() == {"octo/api": 1, "solo/lib": 1}  # the first sight
        assert branch_reads() == {"octo/api": 0, "solo/lib": 0}  # nothing pushed
        time.sleep(1.1)  # pushed_at has whole seconds
        fake.create_branch(followed, "feature")
        fake.create_branch(named, "feature")
        assert branch_reads() == {"octo/api": 1, "solo/lib": 0}
        assert branch_reads() == {"octo/api": 0, "solo/lib": 0}
        with poller.database.open():
            branches = {(b.repo, b.name) for b in Branch.select()}
        assert ("octo/api", "feature") in branches and ("solo/lib", "feature") not in branches


NAMES = ("octo/api", "solo/lib")
