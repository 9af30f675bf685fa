"""The process's GitHub clients, and which one a repository is synced with.

A **credential** is one personal token or one GitHub App installation. GitHub gives each
its own primary limit, its own secondary limits and, since ETags are specific to the
token, its own ETags. So each credential here has its own clients (one per worker thread:
PyGithub's requester keeps per-client state), its own request governor and its own
identity for the ETags kept in the database; an installation's clients share one token
(``app_auth``). Which credential reads an account, and what it presents, is ``auth``'s to
say; ``for_repo`` and ``for_org`` lend a client of it.
"""

from __future__ import annotations

import contextlib
import queue
import threading
from collections.abc import Iterable, Iterator

import structlog

from poller.clock import SYSTEM, Clock
from poller.config.settings import Config
from poller.github import auth
from poller.github.auth import Authenticator
from poller.github.client import GitHub
from poller.github.clock import GitHubClock
from poller.github.governor import Governor
from poller.github.types import RequestStats
from poller.shutdown import Stop
from poller.store.http_cache import HttpCacheStore

log = structlog.get_logger(__name__)


def added_up(parts: Iterable[RequestStats]) -> RequestStats:
    """Counts added up; the rate limit is the lowest seen, the latest being the lowest (it
    only falls until the reset)."""
    every = list(parts)
    known = [s for s in every if s.rate_remaining is not None]
    low = min(known, key=lambda s: s.rate_remaining or 0, default=RequestStats())
    return RequestStats(
        sent=sum(s.sent for s in every),
        not_modified=sum(s.not_modified for s in every),
        rate_remaining=low.rate_remaining,
        rate_limit=low.rate_limit,
        rate_reset=low.rate_reset,
    )


class Credential:
    """One token or one installation: its clients, governor and ETag identity."""

    def __init__(self, name: str, clients: list[GitHub]) -> None:
        self.name = name
        self.clients = clients
        self.free: queue.SimpleQueue[GitHub] = queue.SimpleQueue()
        for client in clients:
            self.free.put(client)

    @contextlib.contextmanager
    def lend(self) -> Iterator[GitHub]:
        gh = self.free.get()
        try:
            yield gh
        finally:
            self.free.put(gh)

    @property
    def governor(self) -> Governor:
        return self.clients[0].governor

    @property
    def stats(self) -> RequestStats:
        return added_up(client.stats for client in self.clients)


class GitHubPool:
    """Every credential the process reads GitHub with, built when first needed."""

    def __init__(
        self, config: Config, token: str | None, clock: Clock = SYSTEM, stop: Stop | None = None
    ) -> None:
        self.config = config
        self.clock = clock
        self.stop = stop or Stop()  # every client's waits end on it
        # GitHub's clock, learnt from every client's answers: resets and token expiry
        # are on it.
        self.github_clock = GitHubClock(clock)
        self.auth = Authenticator(config, token, self.github_clock)
        # By App installation id; None is the personal token (or no token at all).
        self.credentials: dict[int | None, Credential] = {}
        self.pollers = 1  # pollers sharing each budget (``share``)
        self.lock = threading.Lock()

    @property
    def concurrency(self) -> int:
        """Repositories synced at once: one client each, per credential."""
        return self.config.github.concurrency

    def for_repo(self, repo: str) -> contextlib.AbstractContextManager[GitHub]:
        """The client to sync ``repo`` with, for as long as the sync takes."""
        return self.credential(repo.split("/", 1)[0]).lend()

    def for_org(self, org: str) -> contextlib.AbstractContextManager[GitHub]:
        """The client to list the organisation ``org``'s repositories with."""
        return self.credential(org).lend()

    def credential(self, owner: str) -> Credential:
        """The credential that reads ``owner``'s repositories. Raises GitHubError when the
        App is not installed on the account."""
        with self.lock:
            key = self.auth.key_of(owner)
            if key not in self.credentials:
                self.credentials[key] = self._build(self.auth.credential(key))
            return self.credentials[key]

    def _build(self, presented: auth.Credential) -> Credential:
        settings = self.config.github
        governor = Governor(
            settings.requests_per_minute,
            settings.concurrency,
            stop=self.stop,
            clock=self.clock.monotonic,
        )
        governor.share(self.pollers)
        cache = HttpCacheStore(presented.identity)
        clients = [
            GitHub(
                settings,
                presented.auth,
                governor,
                cache=cache,
                clock=self.clock,
                github_clock=self.github_clock,
            )
            for _ in range(settings.concurrency)
        ]
        return Credential(presented.name, clients)

    @property
    def authenticated(self) -> bool:
        return self.auth.authenticated

    def share(self, pollers: int) -> None:
        """Several pollers on one database: each takes its part of every budget."""
        with self.lock:
            self.pollers = pollers
            for credential in self.credentials.values():
                credential.governor.share(pollers)

    @property
    def stats(self) -> RequestStats:
        """Every credential's counts added up; the rate limit is the lowest left."""
        return added_up(c.stats for c in list(self.credentials.values()))

    def by_credential(self) -> dict[str, RequestStats]:
        """Each credential's counts apart: each installation has its own budget."""
        built = sorted(list(self.credentials.values()), key=lambda c: c.name)
        return {credential.name: credential.stats for credential in built}

    def summary(
        self, since: dict[str, dict[str, int | None]] | None = None
    ) -> dict[str, dict[str, int | None]]:
        """For the logs: each credential's requests spent, free 304s and limit left; the
        requests since an earlier ``summary`` if given (a pass's own, in the daemon)."""
        before = since or {}
        summary: dict[str, dict[str, int | None]] = {}
        for name, stats in self.by_credential().items():
            earlier = before.get(name, {})
            summary[name] = {
                "spent": stats.spent - (earlier.get("spent") or 0),
                "not_modified": stats.not_modified - (earlier.get("not_modified") or 0),
                "rate_limit_remaining": stats.rate_remaining,
            }
        return summary

    def close(self) -> None:
        for credential in self.credentials.values():
            for client in credential.clients:
                client.close()


def connect(config: Config, token: str | None, clock: Clock, stop: Stop) -> GitHubPool:
    """The pool for a process: a personal token, an App, or neither (60 requests an hour)."""
    pool = GitHubPool(config, token, clock, stop)
    if not pool.authenticated:
        log.warning(
            "github.unauthenticated",
            message="GITHUB_TOKEN is not set: running unauthenticated, "
            "which GitHub limits to 60 requests an hour",
        )
    return pool
