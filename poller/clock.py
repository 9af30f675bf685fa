"""The one clock: what time it is, for everything that asks.

Engine, schedule and daemon take a ``Clock`` rather than reading the time themselves, as
huey's consumer loop takes ``now``, so that tests drive hours of passes on a clock they
hold, with no sleeps and no patching. Times are naive UTC, as the database keeps them.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from typing import Protocol


class Clock(Protocol):
    def now(self) -> datetime:
        """Naive UTC, to the microsecond."""
        ...

    def monotonic(self) -> float:
        """Seconds, for intervals: never goes back when the wall clock is set."""
        ...


class SystemClock:
    def now(self) -> datetime:
        return datetime.now(UTC).replace(tzinfo=None)

    def monotonic(self) -> float:
        return time.monotonic()


SYSTEM = SystemClock()


def whole_seconds(moment: datetime) -> datetime:
    """Cursors and rows keep whole seconds."""
    return moment.replace(microsecond=0)


def epoch(moment: datetime) -> float:
    """A naive UTC time as seconds since the epoch, as GitHub's rate-limit reset is."""
    return moment.replace(tzinfo=UTC).timestamp()
