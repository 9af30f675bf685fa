"""The request governor: every GitHub request of the process passes through one.

GitHub's secondary limits are per token or App installation, whatever the number of
threads: about 900 points a minute for REST (a GET is one point, and nothing in the docs
exempts a 304), and at most 100 requests in flight. The governor keeps the process below
both with a token bucket refilled at ``per_minute`` and a bounded number of requests in
flight, so that pacing follows from the budget instead of a fixed sleep per request.

The bucket holds ``concurrency`` tokens and refills at ``(per_minute - concurrency) / 60``
a second, so no rolling minute sees more than ``per_minute`` requests. Several pollers on
one database spend one installation's budget: each takes ``1 / pollers`` of it
(``share``), counting the pollers by their heartbeats in the database. Waits go through
``Stop.sleep`` and end at once on a stop request.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager

from poller.shutdown import Stop


class Governor:
    def __init__(
        self,
        per_minute: float,
        concurrency: int,
        *,
        stop: Stop,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.per_minute = per_minute
        self.concurrency = concurrency
        self.capacity = float(concurrency)
        self.rate = max(per_minute - concurrency, 1.0) / 60.0  # tokens a second
        self.clock = clock
        self.stop = stop
        self.tokens = self.capacity
        self.updated = clock()
        self.lock = threading.Lock()
        self.in_flight = threading.BoundedSemaphore(concurrency)
        self.held_until = 0.0  # after a secondary-limit answer, nobody sends before this

    def share(self, pollers: int) -> None:
        """Take a part of the budget: ``pollers`` processes spend one installation's.
        Each keeps its own burst of ``concurrency``, so a rolling minute sees at most
        ``per_minute`` from all of them together."""
        with self.lock:
            self.rate = max(self.per_minute / max(pollers, 1) - self.concurrency, 1.0) / 60.0

    def hold(self, seconds: float) -> None:
        """GitHub answered "secondary rate limit, retry after ``seconds``": that limit is
        the installation's, so every thread waits, not only the one that was told."""
        with self.lock:
            self.held_until = max(self.held_until, self.clock() + seconds)

    def _reserve(self) -> float:
        """Take a token; how long to wait before using it (tokens may go negative, which
        queues the waiters in the order they came)."""
        with self.lock:
            now = self.clock()
            self.tokens = min(self.capacity, self.tokens + (now - self.updated) * self.rate)
            self.updated = now
            self.tokens -= 1
            wait = 0.0 if self.tokens >= 0 else -self.tokens / self.rate
            return max(wait, self.held_until - now)

    @contextmanager
    def request(self) -> Iterator[None]:
        """Around one HTTP request: wait for a slot and for the budget."""
        while not self.in_flight.acquire(timeout=0.2):
            self.stop.check()
        try:
            self.stop.sleep(self._reserve())
            yield
        finally:
            self.in_flight.release()
