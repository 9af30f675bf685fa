"""The client pool: one credential per token or App installation, each with its own
clients, governor, ETag identity and (for an installation) one shared token; a client is
lent to one repository's sync at a time, and the counts add up."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from fake_github import FakeGitHub
from poller.clock import SYSTEM, epoch
from poller.config import loader as config_module
from poller.github import pool
from poller.github import urls as github_urls
from poller.github.errors import GitHubError
from poller.shutdown import Stop
from poller.store.http_cache import HttpCacheStore
from support import TOKEN, Database, FakeClock, PollerSetup, github_app

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def connected(
    fake: FakeGitHub,
    tmp_path: Path,
    concurrency: int,
    *,
    app: dict[str, Any] | None = None,
    repos: list[dict[str, Any]] | None = None,
    orgs: list[dict[str, Any]] | None = None,
    clock: FakeClock | None = None,
) -> pool.GitHubPool:
    setup = PollerSetup(tmp_path, fake.url, Database(f"sqlite:///{tmp_path / 'p.db'}"))
    setup.repos = repos if repos is not None else [{"name": "octo/a"}]
    setup.orgs = orgs or []
    setup.github = {"concurrency": concurrency, **(app or {})}
    config = config_module.load(setup.write())
    token = None if app else setup.token
    return pool.connect(config, token, clock or SYSTEM, Stop())


def test_each_client_is_built_with_the_shared_governor_and_etag_store(
    fake: FakeGitHub, tmp_path: Path
):
    clients = connected(fake, tmp_path, 3).credential("octo")
    assert len(clients.clients) == 3
    assert len({id(client) for client in clients.clients}) == 3
    assert all(client.governor is clients.governor for client in clients.clients)
    caches = [client.cache for client in clients.clients]
    assert all(isinstance(cache, HttpCacheStore) for cache in caches)
    expected = github_urls.identity(f"token:{TOKEN}")
    assert {cache.identity for cache in caches if isinstance(cache, HttpCacheStore)} == {expected}


def test_one_token_reads_every_account(fake: FakeGitHub, tmp_path: Path):
    clients = connected(fake, tmp_path, 2)
    assert clients.credential("octo") is clients.credential("other")
    assert list(clients.by_credential()) == ["token"]


def test_a_client_is_lent_to_one_repository_at_a_time(fake: FakeGitHub, tmp_path: Path):
    clients = connected(fake, tmp_path, 2)
    in_use: set[int] = set()
    overlaps: list[int] = []
    lock = threading.Lock()
    gate = threading.Barrier(2)

    def sync(repo: str) -> int:
        with clients.for_repo(repo) as client:
            with lock:
                if id(client) in in_use:
                    overlaps.append(id(client))
                in_use.add(id(client))
            gate.wait(timeout=5)  # both repositories hold a client at once
            with lock:
                in_use.discard(id(client))
            return id(client)

    try:
        with ThreadPoolExecutor(2) as executor:
            lent = list(executor.map(sync, ["octo/a", "octo/b"]))
        assert overlaps == [] and len(set(lent)) == 2
    finally:
        clients.close()


def test_the_counts_are_the_clients_added_up(fake: FakeGitHub, tmp_path: Path):
    fake.add_repo("octo/a")
    fake.add_repo("octo/b")
    clients = connected(fake, tmp_path, 2)
    try:
        credential = clients.credential("octo")
        for client, name in zip(credential.clients, ("octo/a", "octo/b"), strict=True):
            client.cache = None
            client.repository(name)
            client.repository(name)
        stats = clients.stats
        assert (stats.sent, stats.not_modified, stats.spent) == (4, 0, 4)
        assert stats.rate_remaining == fake.budget.remaining
    finally:
        clients.close()


def test_each_installation_has_its_own_clients_governor_etags_and_one_token(
    fake: FakeGitHub, tmp_path: Path
):
    """Two organisations, two installations of one App: from config.toml for one, and
    from GitHub's list of the App's installations for the other."""
    app = github_app(fake, tmp_path, {11: "iree-org", 22: "nod-ai"})
    fake.add_repo("iree-org/iree")
    fake.add_repo("nod-ai/shark")
    clients = connected(
        fake,
        tmp_path,
        3,
        app=app,
        repos=[{"name": "iree-org/iree", "installation_id": 11}, {"name": "nod-ai/shark"}],
    )
    try:
        iree, nod = clients.credential("iree-org"), clients.credential("nod-ai")
        assert (iree.name, nod.name) == ("installation 11", "installation 22")
        assert iree.governor is not nod.governor
        identities = {c.cache.identity for c in iree.clients + nod.clients}  # type: ignore[union-attr]
        assert identities == {
            github_urls.identity("app:4242:11"),
            github_urls.identity("app:4242:22"),
        }
        for credential, name in ((iree, "iree-org/iree"), (nod, "nod-ai/shark")):
            for client in credential.clients:  # every client, one token
                client.cache = None
                assert client.repository(name)["full_name"] == name
        tokens = {i.id: set(i.tokens) for i in fake.installations[4242].values()}
        assert [len(issued) for issued in tokens.values()] == [1, 1]
        shark = [r for r in fake.requests if r.path == "/repos/nod-ai/shark"]
        assert {r.credential for r in shark} == tokens[22]
        assert set(clients.by_credential()) == {"installation 11", "installation 22"}
        assert clients.by_credential()["installation 22"].sent == 3
        # A pass's own requests: the summary since one taken before it.
        before = clients.summary()
        with nod.lend() as client:
            client.repository("nod-ai/shark")
        during = clients.summary(since=before)
        assert during["installation 22"]["spent"] == 1
        assert during["installation 11"]["spent"] == 0
        assert clients.summary()["installation 22"]["spent"] == 4
    finally:
        clients.close()


def test_an_account_without_the_app_says_how_to_fix_it(fake: FakeGitHub, tmp_path: Path):
    app = github_app(fake, tmp_path, {11: "iree-org"})
    clients = connected(fake, tmp_path, 1, app=app, repos=[{"name": "nod-ai/shark"}])
    with pytest.raises(GitHubError, match="not installed on nod-ai: install it"):
        clients.credential("nod-ai")


def test_the_installation_token_is_renewed_by_the_clock_before_it_expires(
    fake: FakeGitHub, tmp_path: Path
):
    """The fake's tokens expire after an hour by the same simulated clock: a client that
    kept its token past that would get 401s."""
    clock = FakeClock(NOW)
    fake.clock = lambda: epoch(clock.now())
    app = github_app(fake, tmp_path, {11: "octo"})
    fake.add_repo("octo/a")
    clients = connected(fake, tmp_path, 2, app=app, clock=clock)
    try:
        credential = clients.credential("octo")
        seen = []
        for _ in range(5):  # 20 minutes apart, 1 h 20 min in all
            for client in credential.clients:
                client.cache = None
                assert client.repository("octo/a")["full_name"] == "octo/a"
            seen.append(fake.requests[-1].credential)
            clock.advance(timedelta(minutes=20))
        assert all(r.status == 200 for r in fake.requests if r.path == "/repos/octo/a")
        assert len(set(seen)) == 2  # minted at 0:00, and again at 1:00 (its minute of grace)
        assert len(fake.installation_tokens) == 2
    finally:
        clients.close()


def test_an_installations_etags_are_its_own_whatever_its_current_token():
    assert github_urls.identity("app:1:2") != github_urls.identity("app:1:3")
    assert github_urls.identity("token:ghp_a") != github_urls.identity("token:ghp_b")


def test_installations_that_cannot_be_listed_say_why(fake: FakeGitHub, tmp_path: Path):
    app = github_app(fake, tmp_path, {11: "iree-org"})
    github_app(fake, tmp_path, {}, app_id=4343)
    fake.apps[4242] = fake.apps[4343]  # GitHub holds another key for the App: a bad JWT
    clients = connected(fake, tmp_path, 1, app=app, repos=[{"name": "iree-org/iree"}])
    message = "cannot list GitHub App 4242's installations: GitHub rejected the credentials"
    with pytest.raises(GitHubError, match=message):
        clients.credential("iree-org")
