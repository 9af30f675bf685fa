"""PyGithub's retry policy, made to stop when the process stops.

urllib3 sleeps between tries where no signal reaches, and would hold a stopping poller
for minutes; a connection failure has no answer and so no Retry-After, and waiting a
minute for it on every repository of a pass helps nobody. A secondary limit's
Retry-After holds the whole process (the governor), not just the thread that met it.
"""

from __future__ import annotations

from types import TracebackType
from typing import Any

from github import GithubRetry
from github.GithubException import RateLimitExceededExceedsMaxWait
from urllib3 import BaseHTTPResponse, HTTPResponse
from urllib3.connectionpool import ConnectionPool
from urllib3.util.retry import Retry

from poller import metrics
from poller.github.governor import Governor
from poller.shutdown import Stop

# A refused connection or a failed DNS lookup is retried briefly: unlike a 5xx, waiting a
# minute rarely helps, and it would cost that minute on every repository of the pass.
CONNECT_RETRIES = 2
CONNECT_RETRY_SECONDS = 1.0


# A GET that GitHub moves elsewhere: a renamed or transferred repository's old URLs answer
# 301 (GitHub changelog, 2015-07-21, "automatic redirects for renamed repositories").
REDIRECTS = frozenset({301, 302, 307, 308})


class Redirected(Exception):
    """A GET answered with a redirect. It leaves urllib3 and PyGithub unanswered, since
    PyGithub's requester follows a 301 with the Location's path alone and drops its query
    (``created``, ``filter``, ``per_page``); the client follows the whole Location."""

    def __init__(self, status: int, location: str) -> None:
        super().__init__(f"{status} to {location}")
        self.status = status
        self.location = location


def primary_limit(response: BaseHTTPResponse) -> bool:
    """An answer of the exhausted primary limit: 403 or 429 with no request left and no
    Retry-After (GitHub's docs on rate limits: "If you exceed your primary rate limit,
    you will receive a 403 or 429 response, and the x-ratelimit-remaining header will
    be 0")."""
    headers = response.headers
    return (
        response.status in (403, 429)
        and headers.get("x-ratelimit-remaining") == "0"
        and "retry-after" not in headers
    )


class InterruptibleRetry(GithubRetry):
    """PyGithub's retry policy, but every wait between tries is cut short by a stop
    request (urllib3 sleeps where no signal reaches), and waits after a connection
    failure, which has no answer and so no Retry-After, are kept short."""

    def __init__(self, *, governor: Governor, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.governor = governor

    def new(self, **kwargs: Any) -> InterruptibleRetry:
        # urllib3 makes a new Retry for every try; the governor must come along.
        return super().new(governor=self.governor, **kwargs)

    @property
    def stop(self) -> Stop:
        return self.governor.stop

    def increment(  # type: ignore[override]
        self,
        method: str | None = None,
        url: str | None = None,
        response: HTTPResponse | None = None,
        error: Exception | None = None,
        _pool: ConnectionPool | None = None,
        _stacktrace: TracebackType | None = None,
    ) -> Retry:
        # Every answer that is retried, or that ends the tries, passes here and never
        # reaches the client: counted here, each once.
        metrics.count_request(
            url or "", response.status if response else None, response.headers if response else {}
        )
        location = response.headers.get("location") if response is not None else None
        if response is not None and response.status in REDIRECTS and location:
            response.drain_conn()  # the connection goes back to the pool
            raise Redirected(response.status, location)
        if response is not None and primary_limit(response):
            # GithubRetry would wait for x-ratelimit-reset measured on this host's clock.
            # The client waits instead, on GitHub's clock, where a stop can cut it short.
            raise RateLimitExceededExceedsMaxWait(
                response.status, {"message": "API rate limit exceeded"}, dict(response.headers)
            )
        return super().increment(method, url, response, error, _pool, _stacktrace)

    def is_retry(self, method: str, status_code: int, has_retry_after: bool = False) -> bool:
        # A redirected GET must reach ``increment``, which hands it to the client.
        if method == "GET" and status_code in REDIRECTS:
            return True
        return bool(super().is_retry(method, status_code, has_retry_after))

    def sleep(self, response: BaseHTTPResponse | None = None) -> None:
        seconds = self.get_retry_after(response) if response else None
        secondary = response is not None and response.status in (403, 429)
        if seconds and secondary:
            # A secondary limit: the whole process holds off, not just this thread.
            self.governor.hold(seconds)
        if not seconds:
            seconds = self.get_backoff_time()
            if self.history and self.history[-1].status is None:
                seconds = min(seconds, CONNECT_RETRY_SECONDS)
        self.stop.sleep(seconds)
