"""Which runs listings a pass reads: a pure function of cursors, counts, settings and now.

The cursors say which stretch of ``created_at`` is fully stored: every run created in
``[runs.oldest, runs.newest]`` is in the database. A pass reads, in this order, so that
fresh runs never wait behind history (``collect`` fetches and stores what is planned):

* **Live.** Runs created since ``runs.newest`` less an overlap (runs show up in listings a
  little late), from the start of the fixed window that holds that moment, so the URL
  stays put between passes and an unchanged listing answers 304.
* **Windows.** The stored history inside the re-run horizon is cut into fixed ``created``
  windows (``windows``). Those within ``lookback_days`` are re-read every pass; the older
  ones a slice per pass, so that they are all re-read once per ``rerun_sweep_minutes``,
  and those older than ``rerun_sweep_old_days`` once per ``rerun_sweep_old_minutes``.
* **Active.** Runs older than the every-pass listings that are queued or running now, by
  GitHub's ``status`` filter: re-runs of old runs, seen while they run (``active_span``).
* **Unfinished.** Runs stored as not completed and older than the every-pass windows are
  fetched by id until they complete.
* **Backfill.** Older history, newest first below ``runs.oldest``, down to the
  repository's ``since``/``max_runs`` bounds, a bounded slice per daemon pass. It is
  planned after the live runs are stored, since they count against ``max_runs``.
* **Priming.** Any listing the next pass will re-read that has no stored ETag yet.
"""

from __future__ import annotations

import math
from collections.abc import Container, Mapping, Sequence
from dataclasses import dataclass
from datetime import date, datetime, timedelta

from poller.config.settings import RepoConfig, SyncConfig
from poller.rules import cursors, windows
from poller.rules.cursors import from_cursor, to_cursor
from poller.rules.windows import Window

SECOND = timedelta(seconds=1)
FIRST_RUN = datetime(2008, 1, 1)  # before GitHub: no repository's history starts earlier


@dataclass(frozen=True)
class RunCursors:
    """A repository's run cursors, parsed (``cursors`` names them)."""

    newest: datetime | None = None
    oldest: datetime | None = None
    history_reached: bool = False
    sweep: datetime | None = None  # where the sweep of older windows goes on
    sweep_credit: float | None = None  # None: never swept
    old_sweep: datetime | None = None  # the same, past rerun_sweep_old_days
    old_sweep_credit: float | None = None
    repo_created: datetime | None = None

    @classmethod
    def parse(cls, positions: Mapping[str, str | None]) -> RunCursors:
        def number(name: str) -> float | None:
            text = positions.get(name)
            return float(text) if text else None

        return cls(
            newest=from_cursor(positions.get(cursors.RUNS_NEWEST)),
            oldest=from_cursor(positions.get(cursors.RUNS_OLDEST)),
            history_reached=positions.get(cursors.RUNS_HISTORY_START) == cursors.HISTORY_REACHED,
            sweep=from_cursor(positions.get(cursors.RUNS_SWEEP)),
            sweep_credit=number(cursors.RUNS_SWEEP_CREDIT),
            old_sweep=from_cursor(positions.get(cursors.RUNS_OLD_SWEEP)),
            old_sweep_credit=number(cursors.RUNS_OLD_SWEEP_CREDIT),
            repo_created=from_cursor(positions.get(cursors.REPO_CREATED)),
        )

    def backfill_done(self, repo: RepoConfig, stored: int) -> str | None:
        """Why the backfill has nothing left to do under ``repo``'s bounds, with ``stored``
        runs (``backfill_done``), or None: while it has, and before it started."""
        if self.oldest is None:
            return None
        return backfill_done(repo, self.oldest, self.history_reached, stored)


@dataclass(frozen=True)
class Stretch:
    """Where a pass stands: the stored stretch, and how it is cut into listings."""

    oldest: datetime
    live_start: datetime
    recent: list[Window]  # re-read every pass
    older: list[Window]  # re-read a slice per pass

    @property
    def unfinished_before(self) -> datetime:
        """Runs created before this are past the every-pass listings: fetched by id."""
        return self.recent[-1].low if self.recent else self.live_start

    def ranges(self) -> list[tuple[datetime, datetime | None]]:
        """The ``created`` ranges of the live listing and every fixed window, inclusive."""
        fixed = self.recent + self.older
        return [(self.live_start, None), *((w.low, w.high - SECOND) for w in fixed)]


@dataclass(frozen=True)
class RunPlan:
    """This pass's listings before the backfill, and the sweep cursors that follow."""

    stretch: Stretch
    windows: list[Window]  # the recent ones and this pass's slice of the older ones
    sweep_positions: dict[str, str]


@dataclass(frozen=True)
class Backfill:
    """Runs created in ``[low, high]``, newest first; at most ``budget`` runs read and
    ``room`` new ones stored (None: no bound); ``whole`` when ``low`` is the first run."""

    low: datetime
    high: datetime
    budget: int | None
    room: int | None
    whole: bool


@dataclass
class BackfillRoom:
    """What the backfill may still do this pass, page by page: runs to read (``budget``,
    the pass's share) and new runs to store (``room``: ``max_runs`` less what is stored).
    None: no bound. Runs already stored (the boundary second, legacy rows) take no room."""

    budget: int | None
    room: int | None

    def take(self, page: Sequence[int], known: Container[int]) -> int:
        """How many of ``page`` (run ids, newest first) to store; their room is taken."""
        kept = 0
        for run in page:
            if run not in known:
                if self.room is not None and self.room <= 0:
                    break
                self.room = None if self.room is None else self.room - 1
            kept += 1
            if self.budget is not None and kept >= self.budget:
                break
        return kept

    def spend(self, stored: int) -> str | None:
        """After ``stored`` runs of a page: why the backfill ends for this pass, if it
        does. ``"max_runs"``: the repository holds all it may keep, and is done;
        ``"budget"``: the pass's share is read, and the rest waits for the next pass."""
        if self.room is not None and self.room <= 0:
            return "max_runs"
        if self.budget is not None:
            self.budget -= stored
            if self.budget <= 0:
                return "budget"
        return None


def counts_from(state: RunCursors, settings: SyncConfig, now: datetime) -> datetime:
    """Where the stored runs per day that size the windows must be counted from."""
    return min(horizon(settings, now), state.oldest or now)


def horizon(settings: SyncConfig, now: datetime) -> datetime:
    # Whole days, so the oldest window does not move as the clock does.
    return windows.floor_day(now - timedelta(days=settings.rerun_horizon_days))


def stretch(
    state: RunCursors, counts: Mapping[date, int], settings: SyncConfig, now: datetime
) -> Stretch:
    newest, oldest = state.newest, state.oldest
    if newest is None or oldest is None:
        # First sight: nothing is stored yet, so the stored stretch is empty at "now".
        newest = oldest = now
    overlap = timedelta(minutes=settings.overlap_minutes)
    live_start = max(oldest, windows.piece_of(newest - overlap, counts).low)
    lookback = now - timedelta(days=settings.lookback_days)
    low = max(horizon(settings, now), oldest)
    cut = windows.partition(
        low, live_start, counts, keep_empty_after=lookback, merge_before=lookback
    )
    recent, older = windows.split(cut, lookback)
    if recent and windows.runs_since(recent[-1].low, counts) <= windows.TARGET_RUNS:
        # A quiet repository: one live listing from the lookback's start holds it all.
        live_start, recent = recent[-1].low, []
    return Stretch(oldest, live_start, recent, older)


def plan_runs(
    name: str,
    state: RunCursors,
    counts: Mapping[date, int],
    settings: SyncConfig,
    now: datetime,
    sweep_minutes: float,
) -> RunPlan:
    """The listings of the live stretch and the re-run horizon for this pass, which
    sweeps ``sweep_minutes`` worth of each sweep period (``math.inf``: all of it)."""
    where = stretch(state, counts, settings, now)
    boundary = now - timedelta(days=settings.rerun_sweep_old_days)
    younger = [w for w in where.older if w.high > boundary]
    old = [w for w in where.older if w.high <= boundary]
    younger_slice, younger_positions = sweep(
        name, younger, state.sweep, state.sweep_credit,
        sweep_share(sweep_minutes, settings.rerun_sweep_minutes),
        (cursors.RUNS_SWEEP, cursors.RUNS_SWEEP_CREDIT),
    )  # fmt: skip
    old_slice, old_positions = sweep(
        name, old, state.old_sweep, state.old_sweep_credit,
        sweep_share(sweep_minutes, settings.rerun_sweep_old_minutes),
        (cursors.RUNS_OLD_SWEEP, cursors.RUNS_OLD_SWEEP_CREDIT),
    )  # fmt: skip
    return RunPlan(
        where, where.recent + younger_slice + old_slice, {**younger_positions, **old_positions}
    )


def active_span(
    where: Stretch, counts: Mapping[date, int], settings: SyncConfig, now: datetime
) -> tuple[datetime, datetime] | None:
    """The ``created`` range, inclusive, whose queued and running runs a pass lists by
    status: the stored stretch inside the re-run horizon, older than the every-pass
    listings (which hold the newer runs whatever their state). A re-run keeps its run's
    ``created_at`` and moves its status, so this is where a re-run of an old run shows
    while it runs. None when the settings turn it off, or the range holds no stored run
    (``counts``, per day): nothing there to re-run. Its bounds move only with whole days
    and with the cut of the windows, so an unchanged listing answers 304."""
    low = max(horizon(settings, now), where.oldest)
    high = where.unfinished_before - SECOND
    stored = sum(n for day, n in counts.items() if low.date() <= day <= high.date())
    if not settings.active_reruns or low > high or not stored:
        return None
    return low, high


def sweep_share(minutes: float, period_minutes: float) -> float:
    """The share of a sweep period's windows that ``minutes`` of it earn (a period of 0:
    every window every pass)."""
    if period_minutes <= 0 or math.isinf(minutes):
        return 1.0
    return min(1.0, max(0.0, minutes / period_minutes))


def sweep(
    name: str,
    tier: Sequence[Window],
    position: datetime | None,
    credit: float | None,
    share: float,
    saved_as: tuple[str, str],
) -> tuple[list[Window], dict[str, str]]:
    """This pass's slice of one sweep's windows, and the cursors it leaves, named
    ``saved_as``: where the next slice starts, and the credit (none for an empty one)."""
    if not tier:
        return [], {}
    start = credit if credit is not None else windows.sweep_phase(name)
    count, left = windows.sweep_count(len(tier), share, start)
    chosen, following = windows.sweep_slice(tier, position, count)
    at, earned = saved_as
    return chosen, {at: to_cursor(following) if following else "", earned: f"{left:.6f}"}


def plan_backfill(
    repo: RepoConfig, oldest: datetime, state: RunCursors, stored: int, budget: int | None
) -> Backfill | None:
    """The backfill below ``oldest`` this pass, given the runs stored once the live
    listings are; None when the bounds are met (``history.backfill_done``)."""
    if backfill_done(repo, oldest, state.history_reached, stored):
        return None
    room = None if repo.max_runs is None else repo.max_runs - stored
    low = repo.since or state.repo_created or FIRST_RUN
    return Backfill(low, oldest, budget, room, whole=repo.since is None)


def backfill_reached(plan: Backfill) -> dict[str, str]:
    """The cursors once the backfill's listing is exhausted: the stored stretch now
    reaches its lower bound, and perhaps the repository's first run."""
    positions = {cursors.RUNS_OLDEST: to_cursor(plan.low)}
    if plan.whole:
        positions[cursors.RUNS_HISTORY_START] = cursors.HISTORY_REACHED
    return positions


def unprimed(where: Stretch, primed: list[bool]) -> tuple[bool, list[Window]]:
    """From whether each of ``where.ranges()`` has a stored ETag: whether the live listing
    must be read now, and which fixed windows."""
    live, *fixed_primed = primed
    fixed = where.recent + where.older
    return not live, [w for w, known in zip(fixed, fixed_primed, strict=True) if not known]


def backfill_done(
    repo: RepoConfig, oldest: datetime, history_reached: bool, stored: int
) -> str | None:
    """Why the backfill has nothing left to do under the repository's bounds, or None."""
    if history_reached:
        return "whole history"
    if repo.since is not None and oldest <= repo.since:
        return f"since {repo.since.date()}"
    if repo.max_runs is not None and stored >= repo.max_runs:
        return f"{repo.max_runs} runs"
    return None
