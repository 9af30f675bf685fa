"""Fixed ``created`` windows over stored history: listings that stay the same until a run
inside them changes, so re-reading them is free.

GitHub gives no feed of run changes, and a re-run keeps its ``created_at``: the only way
to see one is to list the stretch of history that holds it again. An open-ended listing
(``created>=X``) shifts with every new run, so every page answers 200. A window with fixed
bounds in the past (``created=A..B``) answers 304 to ``If-None-Match`` until a run in it
changes; the ETag stays valid across passes and restarts because it is kept in the
database.

The bounds must not move from pass to pass, and each window should fit one page. So each
UTC day is cut into 1, 2, 3, 4, 6, 8, 12, 24, 48 or 96 equal pieces, the fewest that hold
about :data:`TARGET_RUNS` stored runs each. The cut depends only on the day and its
stored count, which stops changing once the day is past. Everything here is pure.
"""

from __future__ import annotations

import itertools
import math
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

# Pieces a day may be cut into: each divides 24 hours into whole minutes.
PIECES_PER_DAY = (1, 2, 3, 4, 6, 8, 12, 24, 48, 96)
# Runs a window is sized for: a page holds 100, and a day may run busier than its count.
TARGET_RUNS = 60
DAY = timedelta(days=1)


@dataclass(frozen=True, order=True)
class Window:
    """Runs created in ``[low, high)``."""

    low: datetime
    high: datetime


def pieces(count: int) -> int:
    """How many windows a day with ``count`` stored runs is cut into."""
    for candidate in PIECES_PER_DAY:
        if count <= TARGET_RUNS * candidate:
            return candidate
    return PIECES_PER_DAY[-1]


def floor_day(moment: datetime) -> datetime:
    return moment.replace(hour=0, minute=0, second=0, microsecond=0)


def piece_of(moment: datetime, counts: Mapping[date, int]) -> Window:
    """The day's piece that holds ``moment``."""
    day = floor_day(moment)
    size = DAY / pieces(counts.get(day.date(), 0))
    index = math.floor((moment - day) / size)
    return Window(day + index * size, day + (index + 1) * size)


def runs_since(moment: datetime, counts: Mapping[date, int]) -> int:
    """Stored runs of the days from ``moment``'s on (an upper bound for ``[moment, ...)``)."""
    return sum(count for day, count in counts.items() if day >= moment.date())


def partition(
    low: datetime, high: datetime, counts: Mapping[date, int], *, keep_empty_after: datetime
) -> list[Window]:
    """Windows covering the days of ``[low, high)``, newest first: the days' pieces,
    clipped to the range. Only the clipped ends move when ``low`` or ``high`` do.

    A day with no stored run before ``keep_empty_after`` gets no window: a re-run needs a
    run to re-run. Later days keep theirs, to catch runs that show up in listings late.
    """
    windows: list[Window] = []
    day = floor_day(high - timedelta(microseconds=1)) if high > low else floor_day(low)
    while day + DAY > low and high > low:
        if not counts.get(day.date()) and day + DAY <= keep_empty_after:
            day -= DAY
            continue
        size = DAY / pieces(counts.get(day.date(), 0))
        bounds = [day + i * size for i in range(round(DAY / size) + 1)]
        for start, end in reversed(list(itertools.pairwise(bounds))):
            clipped = Window(max(start, low), min(end, high))
            if clipped.low < clipped.high:
                windows.append(clipped)
        day -= DAY
    return windows


def sweep_slice(
    older: Sequence[Window], position: datetime | None, count: int
) -> tuple[list[Window], datetime | None]:
    """The next ``count`` of the ``older`` windows (newest first) below ``position``, and
    where the next slice starts; None once the sweep has reached the oldest and starts
    over from the newest."""
    pending = [w for w in older if position is None or w.low < position]
    chosen = pending[:count]
    if len(chosen) == len(pending):
        return chosen, None
    return chosen, chosen[-1].low


def split(windows: Iterable[Window], since: datetime) -> tuple[list[Window], list[Window]]:
    """Windows that reach past ``since`` (checked every pass), and the older ones."""
    recent: list[Window] = []
    older: list[Window] = []
    for window in windows:
        (recent if window.high > since else older).append(window)
    return recent, older
