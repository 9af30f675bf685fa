"""The fixed windows: stable bounds, no gaps, one page each, and a sweep that visits
every window once per cycle."""

from __future__ import annotations

import itertools
import math
from datetime import date, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from poller.rules import windows
from poller.rules.windows import Window

DAY0 = datetime(2026, 11, 1)


@pytest.mark.parametrize(
    ("count", "expected"),
    [(0, 1), (60, 1), (61, 2), (180, 3), (181, 4), (576, 12), (1441, 48), (10**6, 96)],
)
def test_a_day_is_cut_into_the_fewest_pieces_of_about_60_runs(count, expected):
    assert windows.pieces(count) == expected


@pytest.mark.parametrize(("count", "expected"), [(90, 1), (91, 2), (144, 2), (576, 8)])
def test_a_past_day_is_cut_into_fuller_pieces(count, expected):
    assert windows.pieces(count, windows.PAST_TARGET_RUNS) == expected


day_counts = st.dictionaries(
    st.integers(0, 9).map(lambda d: (DAY0 + timedelta(days=d)).date()),
    st.integers(0, 3000),
)
moments = st.integers(0, 10 * 24 * 3600).map(lambda s: DAY0 + timedelta(seconds=s))


@given(counts=day_counts, a=moments, b=moments, keep=moments)
def test_windows_tile_the_range_newest_first(counts: dict[date, int], a, b, keep):
    low, high = min(a, b), max(a, b)
    cut = windows.partition(low, high, counts, keep_empty_after=keep)
    assert cut == sorted(cut, reverse=True)
    for newer, older in itertools.pairwise(cut):
        assert older.high <= newer.low
    covered = sum((w.high - w.low for w in cut), timedelta())
    skipped = timedelta()
    day = windows.floor_day(low)
    while day < high:
        if not counts.get(day.date()) and day + windows.DAY <= keep:
            skipped += min(day + windows.DAY, high) - max(day, low)
        day += windows.DAY
    assert covered + skipped == high - low
    for window in cut:
        assert window.high - window.low <= windows.DAY


def was_live(window: Window, high: datetime, later: datetime) -> bool:
    """Whether ``window`` is of the day that was live at ``high`` and is past at ``later``."""
    live_day = windows.floor_day(high)
    return windows.floor_day(window.low) == live_day < windows.floor_day(later)


@given(counts=day_counts, a=moments, b=moments)
def test_bounds_do_not_move_when_the_range_grows(counts: dict[date, int], a, b):
    """The next pass's range reaches further: every window that was whole stays as it was,
    so its URL, and the ETag stored for it, stay valid. The one exception is the day that
    was live: once past, it is cut afresh, into fuller pieces."""
    high, later = min(a, b), max(a, b)
    low = DAY0
    before = windows.partition(low, high, counts, keep_empty_after=low)
    after = set(windows.partition(low, later, counts, keep_empty_after=low))
    live_day = (
        windows.floor_day(high) if windows.floor_day(later) > windows.floor_day(high) else None
    )
    for window in before[1:]:  # the newest may have been clipped by ``high``
        assert window in after or windows.floor_day(window.low) == live_day


def test_a_window_fits_one_page_for_an_evenly_busy_day():
    counts = {DAY0.date(): 576}  # 24 runs an hour
    today = windows.partition(DAY0, DAY0 + timedelta(hours=23), counts, keep_empty_after=DAY0)
    assert len(today) == 12 and today[-1] == Window(DAY0, DAY0 + timedelta(hours=2))
    past = windows.partition(DAY0, DAY0 + windows.DAY, counts, keep_empty_after=DAY0)
    assert len(past) == 8 and past[-1] == Window(DAY0, DAY0 + timedelta(hours=3))


def test_piece_of_finds_the_window_that_holds_a_moment():
    counts = {DAY0.date(): 576}
    moment = DAY0 + timedelta(hours=5, minutes=59)
    assert windows.piece_of(moment, counts) == Window(
        DAY0 + timedelta(hours=4), DAY0 + timedelta(hours=6)
    )
    assert windows.piece_of(moment, {}) == Window(DAY0, DAY0 + windows.DAY)


@given(size=st.integers(1, 200), share=st.floats(0.01, 1.0), phase=st.floats(0, 0.999))
def test_the_sweep_visits_every_window_once_per_cycle(size: int, share: float, phase: float):
    older = [Window(DAY0 - timedelta(hours=i + 1), DAY0 - timedelta(hours=i)) for i in range(size)]
    position = None
    credit = phase
    seen: list[Window] = []
    passes = 0
    while True:
        count, credit = windows.sweep_count(size, share, credit)
        chosen, position = windows.sweep_slice(older, position, count)
        seen += chosen
        passes += 1
        if position is None and chosen:
            break
    assert seen == older
    # A cycle takes the passes the share implies, not one per window and no fewer.
    assert passes <= math.ceil(1 / share) + 1


def test_a_repository_with_one_window_sweeps_it_once_per_sweep_period():
    credit = windows.sweep_phase("iree-org/quiet")
    counts = []
    for _ in range(36):
        count, credit = windows.sweep_count(1, 5 / 60, credit)
        counts.append(count)
    assert sum(counts) == 3  # 36 passes of 5 minutes, once an hour
    assert max(counts) == 1


def test_repositories_start_their_sweeps_at_different_passes():
    phases = {windows.sweep_phase(f"org/repo-{i}") for i in range(100)}
    assert len(phases) > 80


MERGE = DAY0 + timedelta(days=8)


@given(counts=day_counts, a=moments, b=moments, keep=moments)
def test_blocks_of_quiet_days_tile_the_range(counts: dict[date, int], a, b, keep):
    low, high = min(a, b), max(a, b)
    cut = windows.partition(low, high, counts, keep_empty_after=keep, merge_before=MERGE)
    assert cut == sorted(cut, reverse=True)
    for newer, older in itertools.pairwise(cut):
        assert older.high <= newer.low
    for window in cut:
        assert low <= window.low < window.high <= high
        if window.high - window.low > windows.DAY:
            # The days the window covers; its high end is exclusive, often a midnight.
            held, day = [], windows.floor_day(window.low)
            while day < window.high:
                held.append(day.date())
                day += windows.DAY
            assert sum(counts.get(day, 0) for day in held) <= windows.PAST_TARGET_RUNS
            assert window.high <= MERGE
    # Every stored run, and everything after ``keep``, is inside a window.
    day = windows.floor_day(low)
    while day < high:
        if counts.get(day.date()) or day + windows.DAY > keep:
            start, end = max(day, low), min(day + windows.DAY, high)
            inside = sum(
                (
                    min(w.high, end) - max(w.low, start)
                    for w in cut
                    if w.low < end and w.high > start
                ),
                timedelta(),
            )
            assert inside == end - start
        day += windows.DAY


@given(counts=day_counts, a=moments, b=moments)
def test_block_bounds_do_not_move_when_the_range_grows(counts: dict[date, int], a, b):
    high, later = min(a, b), max(a, b)
    before = windows.partition(DAY0, high, counts, keep_empty_after=DAY0, merge_before=MERGE)
    after = set(windows.partition(DAY0, later, counts, keep_empty_after=DAY0, merge_before=MERGE))
    for window in before[1:]:
        assert window in after or was_live(window, high, later)


def test_a_quiet_month_is_a_few_windows():
    start = datetime(2026, 10, 1)
    counts = {(start + timedelta(days=d)).date(): 1 for d in range(30)}
    merged = windows.partition(
        start, start + timedelta(days=30), counts, keep_empty_after=start, merge_before=MERGE
    )
    assert len(merged) <= 3
    assert (
        len(windows.partition(start, start + timedelta(days=30), counts, keep_empty_after=start))
        == 30
    )
