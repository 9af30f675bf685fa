"""GitHub's clock, learnt from the ``Date`` of its answers.

Every time GitHub gives is on its own clock: ``x-ratelimit-reset`` ("the time at which
the current rate limit window resets in UTC epoch seconds", GitHub's REST docs on rate
limits) and an installation token's ``expires_at`` among them. Hosts drift, VMs more so,
and GitHub says as much: its App docs ask for a JWT's ``iat`` 60 s in the past "to
protect against clock drift". A reset compared with our own clock is wrong by the drift:
7 minutes ahead, we think it has passed and spend retries on 403s; 7 minutes behind, we
wait 7 minutes too long.

Every answer carries ``Date`` (RFC 9110, section 6.6.1), to the second, so the offset
between GitHub's clock and ours is learnt from each answer and every wait on GitHub's
time is measured on GitHub's clock. This is a ``Clock`` itself (its ``now`` is GitHub's),
so whatever compares GitHub's times takes it where it would take ours.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping
from datetime import datetime, timedelta
from email.utils import parsedate_to_datetime

import structlog

from poller import metrics
from poller.clock import Clock, epoch

log = structlog.get_logger(__name__)

# An offset this large is worth an operator's attention (GitHub's own JWT allowance).
SKEW_WORTH_SAYING = 60.0


class GitHubClock:
    """GitHub's time: ours plus the offset its ``Date`` headers show. One per process,
    shared by every client: the offset belongs to this host's clock, not to a token."""

    def __init__(self, local: Clock) -> None:
        self.local = local
        self.offset = 0.0  # seconds GitHub's clock is ahead of ours
        self.said = False
        self.lock = threading.Lock()

    def now(self) -> datetime:
        return self.local.now() + timedelta(seconds=self.offset)

    def monotonic(self) -> float:
        return self.local.monotonic()

    def learn(self, headers: Mapping[str, str]) -> None:
        """Take the offset from an answer's ``Date`` (lower-case header names). ``Date`` is
        whole seconds, truncated, so the middle of its second is the best guess; the
        newest answer wins, since clocks drift."""
        date = headers.get("date")
        if not date:
            return
        try:
            moment = parsedate_to_datetime(date)
        except (TypeError, ValueError):
            return
        offset = moment.timestamp() + 0.5 - epoch(self.local.now())
        with self.lock:
            self.offset = offset
            metrics.GITHUB_CLOCK_SKEW.set(round(offset, 1))
            if abs(offset) > SKEW_WORTH_SAYING and not self.said:
                self.said = True
                log.warning(
                    "github.clock_skew",
                    seconds=round(offset),
                    hint="this host's clock differs from GitHub's; waits for GitHub's rate "
                    "limit use GitHub's clock, but set up NTP (timedatectl set-ntp true)",
                )
