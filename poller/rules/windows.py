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
about :data:`TARGET_RUNS` stored runs each while the day is still filling up, and
:data:`PAST_TARGET_RUNS` once it is past. The cut depends only on the day and its stored
count, which stops changing once the day is past; the day is cut afresh once, when it
becomes past. Fuller windows matter because GitHub's ETags are specific to the token:
under an App's hourly token every window costs a point once an hour, so fewer windows
over the same runs are fewer points.

Quiet days before ``merge_before`` are merged instead, into aligned blocks of 2, 4, 8, 16
or 32 days (the largest that hold at most :data:`PAST_TARGET_RUNS`), so that a quiet
repository's whole re-run horizon is one or two windows, not thirty. The blocks are
aligned to the calendar's day numbers, so they too depend only on counts of past days.
A block holds a day exactly when it is the largest valid block around that day, and any
smaller block inside a valid one is valid, so the blocks tile without overlap.
Everything here is pure.
"""

from __future__ import annotations

import itertools
import math
import zlib
from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

# Pieces a day may be cut into: each divides 24 hours into whole minutes.
PIECES_PER_DAY = (1, 2, 3, 4, 6, 8, 12, 24, 48, 96)
# Runs a window of today is sized for: a page holds 100, and the day is still filling up.
TARGET_RUNS = 60
# Runs a window of a past day is sized for: its count is final, and pieces of a day are
# equal in time, not in runs, so a little room is left for a busier piece.
PAST_TARGET_RUNS = 90
DAY = timedelta(days=1)
# Sizes, in days, of the aligned blocks that quiet days are merged into, largest first.
BLOCK_DAYS = (32, 16, 8, 4, 2)


@dataclass(frozen=True, order=True)
class Window:
    """Runs created in ``[low, high)``."""

    low: datetime
    high: datetime


def pieces(count: int, target: int = TARGET_RUNS) -> int:
    """How many windows a day with ``count`` stored runs is cut into."""
    for candidate in PIECES_PER_DAY:
        if count <= target * candidate:
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


def block_of(day: date, counts: Mapping[date, int], limit: date) -> tuple[date, int]:
    """The largest aligned block of days around ``day`` that ends by ``limit`` and holds at
    most :data:`PAST_TARGET_RUNS` stored runs, as (first day, days); ``(day, 1)`` if none."""
    for size in BLOCK_DAYS:
        first = date.fromordinal(day.toordinal() - day.toordinal() % size)
        days = [first + timedelta(days=i) for i in range(size)]
        if days[-1] < limit and sum(counts.get(d, 0) for d in days) <= PAST_TARGET_RUNS:
            return first, size
    return day, 1


def partition(
    low: datetime,
    high: datetime,
    counts: Mapping[date, int],
    *,
    keep_empty_after: datetime,
    merge_before: datetime | None = None,
) -> list[Window]:
    """Windows covering the days of ``[low, high)``, newest first: the days' pieces, and
    blocks of quiet days that end by ``merge_before``'s day, clipped to the range. Only the
    clipped ends move when ``low`` or ``high`` do, and the days before ``high``'s are past
    (``high`` is the live listing's start: every day before its day is stored whole).

    A day (or block) with no stored run before ``keep_empty_after`` gets no window: a
    re-run needs a run to re-run. Later days keep theirs, to catch runs that show up in
    listings late.
    """
    windows: list[Window] = []
    limit = floor_day(merge_before).date() if merge_before is not None else date.min
    day = floor_day(high - timedelta(microseconds=1)) if high > low else floor_day(low)
    while day + DAY > low and high > low:
        first, days = block_of(day.date(), counts, limit)
        if days > 1:
            start = datetime.combine(first, datetime.min.time())
            block = Window(start, start + days * DAY)
            stored = sum(counts.get(first + timedelta(days=i), 0) for i in range(days))
            clipped = Window(max(block.low, low), min(block.high, high))
            if (stored or block.high > keep_empty_after) and clipped.low < clipped.high:
                windows.append(clipped)
            day = block.low - DAY
            continue
        if not counts.get(day.date()) and day + DAY <= keep_empty_after:
            day -= DAY
            continue
        target = PAST_TARGET_RUNS if day < floor_day(high) else TARGET_RUNS
        size = DAY / pieces(counts.get(day.date(), 0), target)
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
    if count <= 0:
        return [], position
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


def sweep_count(windows_total: int, share: float, credit: float) -> tuple[int, float]:
    """How many windows this pass sweeps, and the credit carried to the next.

    Each pass earns ``windows_total * share`` windows; the fraction carries over, so over
    a cycle the sweep reads each window once, not the at least one per pass that rounding
    up would cost a quiet repository.
    """
    earned = credit + windows_total * min(1.0, share)
    count = min(windows_total, math.floor(earned + 1e-9))
    return count, max(0.0, earned - count) if count < windows_total else 0.0


def sweep_phase(name: str) -> float:
    """A repository's first credit, fixed by its name, so that repositories sharing a
    sweep period spread their sweeps over it instead of all sweeping in the same pass."""
    return zlib.crc32(name.encode()) % 1000 / 1000
