"""The client pool: a client is built whole (governor, ETag store under its token's
identity), lent to one repository's sync at a time, and the counts add up."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

from fake_github import FakeGitHub
from poller import config as config_module
from poller import github, pool
from poller.config import GitHubConfig
from poller.http_cache import HttpCacheStore
from support import TOKEN, Database, PollerSetup


def connected(fake: FakeGitHub, tmp_path: Path, concurrency: int) -> pool.GitHubPool:
    setup = PollerSetup(tmp_path, fake.url, Database(f"sqlite:///{tmp_path / 'p.db'}"))
    setup.repos = [{"name": "octo/a"}]
    setup.github = {"concurrency": concurrency}
    return pool.connect(config_module.load(setup.write()), setup.token)


def test_each_client_is_built_with_the_shared_governor_and_etag_store(
    fake: FakeGitHub, tmp_path: Path
):
    clients = connected(fake, tmp_path, 3)
    try:
        assert len(clients) == 3
        assert len({id(client) for client in clients.clients}) == 3
        assert all(client.governor is clients.governor for client in clients.clients)
        caches = [client.cache for client in clients.clients]
        assert all(isinstance(cache, HttpCacheStore) for cache in caches)
        expected = github.identity(clients.clients[0].config, TOKEN)
        assert {cache.identity for cache in caches if isinstance(cache, HttpCacheStore)} == {
            expected
        }
    finally:
        clients.close()


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
        for client, name in zip(clients.clients, ("octo/a", "octo/b"), strict=True):
            client.cache = None
            client.repository(name)
            client.repository(name)
        stats = clients.stats
        assert (stats.sent, stats.not_modified, stats.spent) == (4, 0, 4)
        assert stats.rate_remaining == fake.rate_remaining
    finally:
        clients.close()


def test_an_installations_etags_are_its_own_whatever_its_current_token(tmp_path: Path):
    key = tmp_path / "app.pem"
    key.write_text("not read for the identity")
    app = GitHubConfig(app_id=1, installation_id=2, private_key_file=str(key))
    other_installation = GitHubConfig(app_id=1, installation_id=3, private_key_file=str(key))
    tokens = GitHubConfig()
    assert github.identity(app, None) == github.identity(app, "ghp_ignored")
    assert github.identity(app, None) != github.identity(other_installation, None)
    assert github.identity(tokens, "ghp_a") != github.identity(tokens, "ghp_b")
