"""One client's primary rate limit, as GitHub's answers tell it, measured on GitHub's
clock (``github_clock``): what is left, when it resets, and the reserve kept unspent."""

from __future__ import annotations

from typing import Any

import structlog

from poller.clock import epoch
from poller.github.clock import GitHubClock
from poller.github.types import RequestStats
from poller.shutdown import Stop

log = structlog.get_logger(__name__)


class PrimaryLimit:
    def __init__(
        self, stats: RequestStats, github_clock: GitHubClock, reserve: int, stop: Stop
    ) -> None:
        self.stats = stats  # where the answers' x-ratelimit-* go
        self.github_clock = github_clock
        self.stop = stop
        self.configured_reserve = reserve

    def read(self, headers: dict[str, Any]) -> None:
        """An answer's ``x-ratelimit-*`` headers (lower-case names), and its ``Date``: the
        reset is an epoch on GitHub's clock, so every answer tells both."""
        self.github_clock.learn(headers)
        remaining = headers.get("x-ratelimit-remaining")
        if remaining is not None:
            self.stats.rate_remaining = int(float(remaining))
        limit = headers.get("x-ratelimit-limit")
        if limit is not None:
            self.stats.rate_limit = int(float(limit))
        reset = headers.get("x-ratelimit-reset")
        if reset is not None:
            self.stats.rate_reset = int(float(reset))

    @property
    def reserve(self) -> int:
        """Requests to leave unspent; at most a fifth of the limit (60 without a token)."""
        return min(self.configured_reserve, (self.stats.rate_limit or 5000) // 5)

    def seconds_to_reset(self) -> float:
        """Until the limit resets, on GitHub's clock (its reset is in GitHub's epoch
        seconds; the extra second because the reset may come anywhere in it)."""
        return (self.stats.rate_reset or 0) + 1 - epoch(self.github_clock.now())

    def low(self) -> bool:
        """True once the reserve is reached: the backfill waits for the next reset."""
        remaining = self.stats.rate_remaining
        return remaining is not None and remaining < self.reserve and self.seconds_to_reset() > 0

    def wait_if_exhausted(self) -> None:
        """Live work spends the reserve down to a tenth, then waits for the reset."""
        remaining = self.stats.rate_remaining
        if remaining is None or remaining >= max(1, self.reserve // 10):
            return
        seconds = self.seconds_to_reset()
        if seconds > 0:
            self.wait(seconds)

    def wait(self, seconds: float) -> None:
        """Wait for the limit to reset; a shutdown cuts the wait short."""
        log.warning(
            "github.waiting_for_reset", remaining=self.stats.rate_remaining, seconds=round(seconds)
        )
        self.stop.sleep(seconds)
        self.stats.rate_remaining = None  # unknown until the next answer
