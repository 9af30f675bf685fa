"""The planner is pure: cursors, stored runs per day, settings and now in; listings out.
Table-driven, like ``test_windows``, with no database and no GitHub."""

from __future__ import annotations

import itertools
import math
from datetime import date, datetime, timedelta

import pytest

from poller.config.settings import RepoConfig, SyncConfig
from poller.rules import cursors, plan, windows
from poller.rules.plan import FIRST_RUN, SECOND, Backfill, RunCursors, Stretch
from poller.rules.windows import Window

NOW = datetime(2026, 12, 1, 12, 0, 0)
SETTINGS = SyncConfig()  # lookback 2 days, horizon 30, overlap 10 minutes
# One sweep over the whole horizon past the lookback, once an hour.
ONE_SWEEP = SyncConfig(rerun_sweep_old_days=30)
DAY = timedelta(days=1)


def per_day(runs: int, days: int) -> dict[date, int]:
    """``runs`` stored on each of the last ``days`` days, today included."""
    return {(NOW - i * DAY).date(): runs for i in range(days)}


def covered(where: Stretch) -> list[Window]:
    """The fixed windows newest first, checked to tile [their lowest, live_start)."""
    fixed = where.recent + where.older
    for newer, older in itertools.pairwise(fixed):
        assert older.high == newer.low, (older, newer)
    assert not fixed or fixed[0].high == where.live_start
    return fixed


@pytest.mark.parametrize(
    ("positions", "expected"),
    [
        ({}, RunCursors()),
        (
            {
                cursors.RUNS_NEWEST: "2026-12-01T11:00:00",
                cursors.RUNS_OLDEST: "2026-10-01T00:00:00",
                cursors.RUNS_HISTORY_START: cursors.HISTORY_REACHED,
                cursors.RUNS_SWEEP: "2026-11-20T00:00:00",
                cursors.RUNS_SWEEP_CREDIT: "0.250000",
                cursors.REPO_CREATED: "2019-07-01T08:00:00",
            },
            RunCursors(
                newest=datetime(2026, 12, 1, 11),
                oldest=datetime(2026, 10, 1),
                history_reached=True,
                sweep=datetime(2026, 11, 20),
                sweep_credit=0.25,
                repo_created=datetime(2019, 7, 1, 8),
            ),
        ),
        # A sweep that went round starts over from the newest: its position is "".
        ({cursors.RUNS_SWEEP: "", cursors.RUNS_HISTORY_START: "other"}, RunCursors()),
    ],
    ids=["nothing stored", "every cursor", "sweep restarted"],
)
def test_cursors_are_parsed_from_their_positions(positions, expected):
    assert RunCursors.parse(positions) == expected


def test_first_sight_plans_one_live_listing_from_now():
    where = plan.stretch(RunCursors(), {}, SETTINGS, NOW)
    assert where == Stretch(oldest=NOW, live_start=NOW, recent=[], older=[])
    assert where.ranges() == [(NOW, None)]
    assert where.unfinished_before == NOW


@pytest.mark.parametrize(
    ("runs_a_day", "recent_windows", "live_from"),
    [
        # Quiet: the lookback fits one listing, which starts at the start of its day.
        (5, 0, datetime(2026, 11, 29)),
        # Busy: today is cut into pieces of at most 60 runs, 3 hours at 480 a day, and the
        # past days into pieces of at most 90, 4 hours; the pieces reaching into the
        # lookback are re-read every pass (3 today, 6 yesterday, 3 the day before), and
        # the live listing starts at the piece that holds newest less the overlap (11:45).
        (480, 12, datetime(2026, 12, 1, 9)),
    ],
    ids=["quiet", "busy"],
)
def test_the_stretch_is_tiled_by_fixed_windows(runs_a_day, recent_windows, live_from):
    state = RunCursors(newest=NOW - timedelta(minutes=5), oldest=NOW - timedelta(days=60))
    where = plan.stretch(state, per_day(runs_a_day, 60), SETTINGS, NOW)
    fixed = covered(where)
    assert where.live_start == live_from
    assert len(where.recent) == recent_windows
    # The horizon is whole days back from now; older runs are never re-read.
    assert fixed[-1].low == plan.horizon(SETTINGS, NOW) == datetime(2026, 11, 1)
    lookback = NOW - timedelta(days=SETTINGS.lookback_days)
    assert all(w.high <= lookback for w in where.older)
    assert all(w.high > lookback for w in where.recent)
    assert where.unfinished_before == (where.recent[-1].low if where.recent else live_from)
    # Each fixed window is listed inclusive of its low and exclusive of its high.
    assert where.ranges()[1:] == [(w.low, w.high - SECOND) for w in fixed]


def test_a_stretch_younger_than_the_horizon_is_cut_from_its_oldest_run():
    oldest = NOW - timedelta(days=5, hours=3)
    state = RunCursors(newest=NOW, oldest=oldest)
    where = plan.stretch(state, per_day(100, 6), SETTINGS, NOW)
    assert covered(where)[-1].low == oldest
    assert plan.counts_from(state, SETTINGS, NOW) == datetime(2026, 11, 1)


@pytest.mark.parametrize(
    ("share", "state", "swept", "position", "credit"),
    [
        # All of it every pass (--once --full, or rerun_sweep_minutes = 0).
        (1.0, RunCursors(sweep_credit=0.0), "all", "", "0.000000"),
        # 0.3 of 8 older windows (blocks of 4 quiet days): 2 this pass, and 0.4 of one
        # carried over.
        (0.3, RunCursors(sweep_credit=0.0), "first part", "next", "0.400000"),
        (0.3, RunCursors(sweep=datetime(2026, 11, 16), sweep_credit=0.0), "below", "next", None),
        # Too small a share for a window this pass: the credit carries over.
        (0.001, RunCursors(sweep_credit=0.0), "none", "", None),
    ],
    ids=["everything", "a part", "continued", "credit only"],
)
def test_the_sweep_reads_its_share_of_the_older_windows(share, state, swept, position, credit):
    state = RunCursors(
        newest=NOW, oldest=NOW - 60 * DAY, sweep=state.sweep, sweep_credit=state.sweep_credit
    )
    minutes = math.inf if share == 1.0 else share * ONE_SWEEP.rerun_sweep_minutes
    planned = plan.plan_runs("octo/demo", state, per_day(20, 60), ONE_SWEEP, NOW, minutes)
    older = planned.stretch.older
    chosen = planned.windows[len(planned.stretch.recent) :]
    assert planned.windows[: len(planned.stretch.recent)] == planned.stretch.recent
    if swept == "all":
        assert chosen == older
    elif swept == "none":
        assert chosen == []
    else:
        pending = [w for w in older if state.sweep is None or w.low < state.sweep]
        assert chosen == pending[: int(len(older) * share)] and chosen
    saved = planned.sweep_positions
    if position == "next":
        assert saved[cursors.RUNS_SWEEP] == chosen[-1].low.isoformat()
    else:
        assert saved[cursors.RUNS_SWEEP] == position
    if credit is not None:
        assert saved[cursors.RUNS_SWEEP_CREDIT] == credit
    else:
        assert 0 <= float(saved[cursors.RUNS_SWEEP_CREDIT]) < 1


def test_a_first_sweep_starts_at_a_phase_fixed_by_the_name():
    state = RunCursors(newest=NOW, oldest=NOW - 60 * DAY)
    planned = [
        plan.plan_runs(name, state, per_day(20, 60), ONE_SWEEP, NOW, 0.6).sweep_positions
        for name in ("octo/a", "octo/b")
    ]
    credits = [float(positions[cursors.RUNS_SWEEP_CREDIT]) for positions in planned]
    expected = [windows.sweep_phase(name) for name in ("octo/a", "octo/b")]
    older = len(plan.stretch(state, per_day(20, 60), ONE_SWEEP, NOW).older)
    assert credits == pytest.approx([(c + older * 0.01) % 1 for c in expected], abs=1e-6)


def test_nothing_older_means_no_sweep_cursor_is_written():
    state = RunCursors(newest=NOW, oldest=NOW - timedelta(hours=1))
    assert plan.plan_runs("octo/demo", state, {}, SETTINGS, NOW, 30).sweep_positions == {}


def test_windows_past_the_old_days_are_swept_over_their_own_longer_period():
    # 480 runs a day: past days are cut into 6 windows of 4 hours. From the lookback (2
    # days back, noon) to 7 days back: 5 days, 30 windows, swept once an hour; older, to
    # the horizon (November 1): 23.5 days, 141 windows, swept once per 6 hours.
    state = RunCursors(newest=NOW, oldest=NOW - 60 * DAY, sweep_credit=0.0, old_sweep_credit=0.0)
    counts = per_day(480, 60)
    boundary = NOW - timedelta(days=SETTINGS.rerun_sweep_old_days)
    older = plan.stretch(state, counts, SETTINGS, NOW).older
    younger, old = [w for w in older if w.high > boundary], [w for w in older if w.high <= boundary]
    assert (len(younger), len(old)) == (30, 141)
    planned = plan.plan_runs("octo/demo", state, counts, SETTINGS, NOW, 5)
    chosen = planned.windows[len(planned.stretch.recent) :]
    # Five minutes earn 30 * 5/60 = 2.5 of the first and 141 * 5/360 = 1.96 of the second.
    assert chosen == younger[:2] + old[:1]
    positions = planned.sweep_positions
    assert positions[cursors.RUNS_SWEEP] == younger[1].low.isoformat()
    assert positions[cursors.RUNS_SWEEP_CREDIT] == "0.500000"
    assert positions[cursors.RUNS_OLD_SWEEP] == old[0].low.isoformat()
    assert float(positions[cursors.RUNS_OLD_SWEEP_CREDIT]) == pytest.approx(141 * 5 / 360 - 1)
    # The next pass goes on from both positions: 0.5 + 2.5 and 0.96 + 1.96 windows.
    following = plan.plan_runs(
        "octo/demo", RunCursors.parse({**positions, cursors.RUNS_NEWEST: NOW.isoformat(),
                                        cursors.RUNS_OLDEST: (NOW - 60 * DAY).isoformat()}),
        counts, SETTINGS, NOW, 5,
    )  # fmt: skip
    assert following.windows[len(following.stretch.recent) :] == younger[2:5] + old[1:3]
    # A full pass reads both sweeps whole, and each period of 0 means every pass.
    full = plan.plan_runs("octo/demo", state, counts, SETTINGS, NOW, math.inf)
    assert full.windows[len(full.stretch.recent) :] == younger + old
    every = SyncConfig(rerun_sweep_minutes=0, rerun_sweep_old_minutes=0)
    assert plan.plan_runs("octo/demo", state, counts, every, NOW, 5).windows == full.windows


@pytest.mark.parametrize(
    ("minutes", "period", "share"),
    [(5, 60, 5 / 60), (5, 360, 5 / 360), (90, 60, 1.0), (5, 0, 1.0), (math.inf, 360, 1.0)],
)
def test_a_sweeps_share_is_its_minutes_over_its_period(minutes, period, share):
    assert plan.sweep_share(minutes, period) == pytest.approx(share)


OLDEST = datetime(2026, 11, 20)
CREATED = datetime(2020, 1, 1)


@pytest.mark.parametrize(
    ("repo", "history_reached", "stored", "budget", "expected"),
    [
        (RepoConfig("o/r"), True, 10, None, None),
        (RepoConfig("o/r", since=datetime(2026, 11, 25)), False, 10, None, None),
        (RepoConfig("o/r", max_runs=10), False, 10, None, None),
        (RepoConfig("o/r"), False, 10, 500, Backfill(CREATED, OLDEST, 500, None, whole=True)),
        (
            RepoConfig("o/r", since=datetime(2026, 1, 1), max_runs=25),
            False,
            10,
            None,
            Backfill(datetime(2026, 1, 1), OLDEST, None, 15, whole=False),
        ),
    ],
    ids=["whole history", "since reached", "max_runs reached", "to the first run", "bounded"],
)
def test_the_backfill_is_planned_within_the_bounds(repo, history_reached, stored, budget, expected):
    state = RunCursors(oldest=OLDEST, history_reached=history_reached, repo_created=CREATED)
    assert plan.plan_backfill(repo, OLDEST, state, stored, budget) == expected


def test_a_repository_of_unknown_age_is_backfilled_from_githubs_first_year():
    backfill = plan.plan_backfill(RepoConfig("o/r"), OLDEST, RunCursors(oldest=OLDEST), 0, None)
    assert backfill is not None and backfill.low == FIRST_RUN


@pytest.mark.parametrize(
    ("backfill", "expected"),
    [
        (
            Backfill(CREATED, OLDEST, None, None, whole=True),
            {
                cursors.RUNS_OLDEST: CREATED.isoformat(),
                cursors.RUNS_HISTORY_START: cursors.HISTORY_REACHED,
            },
        ),
        (
            Backfill(datetime(2026, 1, 1), OLDEST, None, None, whole=False),
            {cursors.RUNS_OLDEST: "2026-01-01T00:00:00"},
        ),
    ],
    ids=["to the first run", "to since"],
)
def test_an_exhausted_backfill_moves_the_cursors_to_its_bound(backfill, expected):
    assert plan.backfill_reached(backfill) == expected


def test_priming_reads_the_listings_that_have_no_etag():
    state = RunCursors(newest=NOW, oldest=NOW - 60 * DAY)
    where = plan.stretch(state, per_day(480, 60), SETTINGS, NOW)
    fixed = where.recent + where.older
    primed = [True] + [i % 3 != 0 for i in range(len(fixed))]
    live, unprimed = plan.unprimed(where, primed)
    assert live is False
    assert unprimed == fixed[::3]
    assert plan.unprimed(where, [False] + [True] * len(fixed)) == (True, [])


def stored_stretch(oldest: datetime) -> RunCursors:
    return RunCursors(newest=NOW - timedelta(minutes=5), oldest=oldest, history_reached=True)


@pytest.mark.parametrize(
    ("oldest", "counts", "settings", "expected"),
    [
        # Busy: the every-pass windows start 2 days back; the status listings hold the
        # rest of the 30-day horizon, from its first whole day.
        (NOW - 60 * DAY, per_day(90, 60), SETTINGS, (datetime(2026, 11, 1), "recent")),
        # History stored only 10 days back: nothing older is stored, nothing to re-run.
        (NOW - 10 * DAY, per_day(90, 10), SETTINGS, (datetime(2026, 11, 21, 12), "recent")),
        # Quiet, but with runs in the span: the live listing starts at the lookback.
        (NOW - 60 * DAY, per_day(2, 60), SETTINGS, (datetime(2026, 11, 1), "live")),
        # No stored run older than the every-pass listings: nothing to list.
        (NOW - 60 * DAY, per_day(2, 2), SETTINGS, None),
        # Turned off: the sweeps alone find old re-runs.
        (NOW - 60 * DAY, per_day(90, 60), SyncConfig(active_reruns=False), None),
    ],
)
def test_the_runs_listed_by_status_are_the_horizons_older_than_every_pass(
    oldest, counts, settings, expected
):
    where = plan.stretch(stored_stretch(oldest), counts, settings, NOW)
    span = plan.active_span(where, counts, settings, NOW)
    if expected is None:
        assert span is None
        return
    low, upper = expected
    bound = where.recent[-1].low if upper == "recent" else where.live_start
    assert span == (low, bound - SECOND)
    assert bound == where.unfinished_before
