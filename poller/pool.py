"""The process's GitHub clients, and which one a repository is synced with.

One PyGithub client per worker thread (PyGithub's requester keeps per-client state), all
behind one request governor and the ETags kept in the database, each lent to one
repository's sync at a time. ``for_repo`` is the one place that says which client, and
so which token or installation, a repository is read with.
"""

from __future__ import annotations

import contextlib
import queue
from collections.abc import Iterator

import structlog

from poller.clock import SYSTEM, Clock
from poller.config import Config
from poller.github import GitHub, identity
from poller.github_types import RequestStats
from poller.governor import Governor
from poller.http_cache import HttpCacheStore

log = structlog.get_logger(__name__)


class GitHubPool:
    def __init__(self, clients: list[GitHub]) -> None:
        self.clients = clients
        self.free: queue.SimpleQueue[GitHub] = queue.SimpleQueue()
        for client in clients:
            self.free.put(client)

    def __len__(self) -> int:
        return len(self.clients)

    @contextlib.contextmanager
    def for_repo(self, repo: str) -> Iterator[GitHub]:
        """The client to sync ``repo`` with, for as long as the sync takes."""
        del repo  # one token or installation reads every repository
        gh = self.free.get()
        try:
            yield gh
        finally:
            self.free.put(gh)

    def for_org(self, org: str) -> contextlib.AbstractContextManager[GitHub]:
        """The client to list the organisation ``org``'s repositories with."""
        return self.for_repo(f"{org}/*")

    @property
    def authenticated(self) -> bool:
        return self.clients[0].authenticated

    @property
    def governor(self) -> Governor:
        return self.clients[0].governor

    @property
    def stats(self) -> RequestStats:
        """The clients' counts added up; the rate limit is the one the clients last saw,
        the lowest being the latest (it only falls until the reset)."""
        remaining = [
            c.stats.rate_remaining for c in self.clients if c.stats.rate_remaining is not None
        ]
        return RequestStats(
            sent=sum(c.stats.sent for c in self.clients),
            not_modified=sum(c.stats.not_modified for c in self.clients),
            rate_remaining=min(remaining) if remaining else None,
            rate_limit=self.clients[0].stats.rate_limit,
            rate_reset=self.clients[0].stats.rate_reset,
        )

    def close(self) -> None:
        for client in self.clients:
            client.close()


def connect(config: Config, token: str | None, clock: Clock = SYSTEM) -> GitHubPool:
    """One client per repository synced at once, sharing a governor and the ETags kept
    in the database under the token's identity."""
    governor = Governor(config.github.requests_per_minute, config.github.concurrency)
    cache = HttpCacheStore(identity(config.github, token))
    pool = GitHubPool(
        [
            GitHub(config.github, token, governor, cache=cache, clock=clock)
            for _ in range(config.github.concurrency)
        ]
    )
    if not pool.authenticated:
        log.warning(
            "github.unauthenticated",
            message="GITHUB_TOKEN is not set: running unauthenticated, "
            "which GitHub limits to 60 requests an hour",
        )
    return pool
