"""The process's GitHub clients: one PyGithub client per worker thread (PyGithub's
requester keeps per-client state), all behind one request governor and one ETag store,
lent to a worker for one repository at a time."""

from __future__ import annotations

import contextlib
import queue
from collections.abc import Iterator

from poller.github import GitHub, RequestStats
from poller.governor import Governor


class GitHubClients:
    """One PyGithub client per worker thread (PyGithub's requester keeps per-client state),
    all behind one governor and one ETag store."""

    def __init__(self, clients: list[GitHub]) -> None:
        self.clients = clients
        self.free: queue.SimpleQueue[GitHub] = queue.SimpleQueue()
        for client in clients:
            self.free.put(client)

    def __len__(self) -> int:
        return len(self.clients)

    @contextlib.contextmanager
    def client(self) -> Iterator[GitHub]:
        gh = self.free.get()
        try:
            yield gh
        finally:
            self.free.put(gh)

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
